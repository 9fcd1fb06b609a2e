/*
 * err.h: error codes and the error-detail struct every layer passes down.
 *
 * Functions return 0 on success and a negative enum err_code on failure.
 * Detail travels in a caller-supplied struct err (always the last
 * parameter, may be NULL). The message is set once, where the failure
 * happens, and passed upward unchanged. Only server/http_error.c maps codes
 * to HTTP statuses.
 */
#ifndef HAVEN_ERR_H
#define HAVEN_ERR_H

enum err_code {
	ERR_OK = 0,
	ERR_FAIL = -1,      /* anything unexpected: I/O, library failure */
	ERR_NOTFOUND = -2,  /* generic "no such thing" */
	ERR_EXISTS = -3,    /* already exists */
	ERR_INVALID = -4,   /* malformed input from a user or client */
	ERR_TOOBIG = -5,    /* past a size limit */
	ERR_CONFLICT = -6,  /* state changed under the caller */
	ERR_AUTH = -7,      /* missing or bad credentials */
	ERR_FORBIDDEN = -8, /* credentials fine, permission missing */
	ERR_NOREPO = -9,    /* repository not found */
	ERR_NOREV = -10,    /* revision not found */
	ERR_NOENTRY = -11,  /* file or folder not found in a revision */
	ERR_RANGE = -12,    /* unsatisfiable byte range */
	ERR_CORRUPT = -13,  /* stored data failed a check */
	ERR_GATED = -14,    /* gated repository, access not granted */
	ERR_UNAVAILABLE = -15, /* a dependency is down; try again later */
	ERR_MOVED = -16,    /* repository renamed; the answer redirects */
	ERR_UPSTREAM = -17, /* the upstream Hub answered with a failure */
	ERR_TIMEOUT = -18,  /* the upstream Hub could not be reached in time */
};

#define ERR_MSG_LEN 256

struct err {
	int code;
	char msg[ERR_MSG_LEN];
};

/* Records code and message in err (if not NULL) and returns code. */
int err_set(struct err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Clears err to the success state. */
void err_clear(struct err *err);

/* Short lower-case name of a code ("not found"), for logs. */
const char *err_code_name(int code);

#endif
