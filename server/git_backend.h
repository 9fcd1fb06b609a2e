/*
 * git_backend.h: git's smart HTTP protocol, served by running stock
 * `git http-backend` (the reference implementation) as a CGI child for
 * each request, with its pipes on the worker's event loop.
 *
 * Calling sequence:
 *   git_backend_setup(data_dir)   once, before the workers start: finds
 *                                 git http-backend and the haven binary,
 *                                 writes <data>/hooks/pre-receive
 *   git_backend_run(req, ...)     per request, from a handler, after the
 *                                 caller has been authorised; answers req
 *   git_backend_shutdown()        once, after the workers have stopped:
 *                                 kills and reaps children still running
 *
 * Pushes run the pre-receive hook (`haven hook pre-receive`), which
 * refuses refs outside refs/heads/ and refs/tags/, the deletion of the
 * default branch, and LFS pointers whose objects Haven does not hold.
 */
#ifndef HAVEN_GIT_BACKEND_H
#define HAVEN_GIT_BACKEND_H

#include <stdbool.h>

#include "common/err.h"

struct http_request;

/* What one request asks of git. Strings are copied by git_backend_run. */
struct git_backend_call {
	const char *repo_id;	/* <data>/git/<repo_id>.git */
	bool receive;		/* git-receive-pack (push), else upload-pack */
	bool advertise;		/* GET info/refs, else the POST service */
	const char *remote_user;	/* the authenticated caller, or NULL */
};

/* Prepares what every request needs, for the data directory the server
 * runs on (every request uses it); ERR_FAIL when the hook cannot be
 * written. */
int git_backend_setup(const char *data_dir, struct err *err);

/* Runs git http-backend for the request and streams its answer. Always
 * answers req, possibly later from the worker's event loop (the caller
 * must not answer it). */
void git_backend_run(struct http_request *req,
		     const struct git_backend_call *call);

/* Kills and reaps every child still running and frees what the requests
 * held. Only after the worker threads have ended. */
void git_backend_shutdown(void);

#endif
