/*
 * git_backend.c: git smart HTTP through stock `git http-backend`, run as
 * a CGI child per request; see git_backend.h.
 *
 * One struct cgi per request, owned by the worker thread that accepted
 * it. Its two pipes are non-blocking and watched by the worker's
 * event_base:
 *
 *   request body -> pending bytes -> child's stdin
 *   child's stdout -> CGI head parser -> streamed (chunked) answer
 *
 * Backpressure towards the child: the HTTP layer cannot pause a body
 * reader (its data callback is synchronous), so body bytes the child has
 * not taken yet stay in memory up to SPILL_AT and are appended past that
 * to an unlinked file in <data>/tmp, and go to the child in order. Memory
 * stays bounded however slowly the child reads (git index-pack writing a
 * large push to disk), at the price of that much temporary disk.
 *
 * Backpressure towards the client: when a write leaves more than OUT_HIGH
 * bytes queued for the client, reading stdout stops until the queue falls
 * to OUT_LOW (http_response_on_drain); the child then blocks on its pipe.
 *
 * The answer begins only once the whole request body has been read,
 * because answering ends a body reader; git http-backend prints its head
 * before it reads stdin. Until then at most OUT_HOLD bytes of output are
 * held. If the child's output ends first (it refused the request), the
 * answer goes out at once and the rest of the body is dropped by the HTTP
 * layer.
 *
 * End of a request: the cgi is freed once its answer is complete, its
 * body reader is over, both pipes are closed and the child is reaped.
 * Reaping polls waitpid() on a short timer after stdout reaches EOF (no
 * SIGCHLD handler: the server's signals are the main thread's), and kills
 * a child that lingers past REAP_GRACE_MS. A failed body read (the client
 * went away or sent a malformed body) kills the child. A client that
 * leaves during the answer is not visible here: the child runs to its end
 * (bounded by IDLE_S without output) and what it writes is dropped.
 *
 * Every live cgi is also on a global list, so that git_backend_shutdown()
 * can kill and reap children that were in flight when the server stopped.
 */
#include "common/compat.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "server/git_backend.h"
#include "server/http.h"
#include "server/hub_error.h"

extern char **environ;

#define SPILL_AT (4u << 20)	/* body bytes held in memory */
#define REFILL_CHUNK (256u << 10)	/* read back from the spill file */
#define OUT_CHUNK (128u << 10)	/* read from stdout at once */
#define OUT_HOLD (1u << 20)	/* output held before the answer begins */
#define OUT_HIGH (1u << 20)	/* queued for the client: pause stdout */
#define OUT_LOW (256u << 10)	/* ... and resume here */
#define HEAD_MAX (64u << 10)	/* CGI head */
#define IDLE_S 600		/* child silent that long: killed */
#define REAP_GRACE_MS 5000
#define PIPE_SIZE (1 << 20)
#define ENV_MAX 40

#define CGI_MAGIC 0x43474931u

enum answer { ANSWER_NONE, ANSWER_STREAM, ANSWER_DONE };

struct cgi {
	unsigned magic;
	LIST_ENTRY(cgi) link;
	struct http_request *req;	/* NULL once the answer is done */
	struct event_base *base;
	pid_t pid;			/* -1 once reaped */
	int in_fd, out_fd;		/* our ends; -1 once closed */
	struct event *in_ev, *out_ev, *reap_ev;
	unsigned reap_waited_ms;
	bool killed;

	/* Request body on its way to the child. */
	bool reading_body;		/* our body reader is running */
	bool body_done;			/* the whole body is in (or none) */
	struct evbuffer *pending;
	int spill_fd;
	off_t spill_w, spill_r;
	bool spill_failed;		/* our fault, not the client's */
	char tmp_dir[4200];

	/* The child's answer. */
	struct evbuffer *out;		/* read from stdout, not yet sent */
	struct evbuffer *hdrs;		/* "Name: value\n" lines to send */
	bool head_done, out_eof, waiting_drain;
	int status;
	enum answer answer;
	char label[80];			/* for logs: service and repo id */
};

static LIST_HEAD(, cgi) live = LIST_HEAD_INITIALIZER(live);
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

/* Set once by git_backend_setup(), read-only afterwards. */
static char backend_path[PATH_MAX];	/* "" means `git http-backend` */
/* Absolute: git runs hooks in the repository's directory. */
static char data_dir[PATH_MAX];

static void cgi_settle(struct cgi *c);
static void out_pump(struct cgi *c);

/* --- setup ------------------------------------------------------------ */

static void find_backend(void)
{
	static const char *const dirs[] = {
		"/usr/lib/git-core", "/usr/libexec/git-core",
		"/usr/local/libexec/git-core",
	};
	const char *env = getenv("HAVEN_GIT_HTTP_BACKEND");
	char path[PATH_MAX];

	backend_path[0] = '\0';
	if (env && env[0] == '/') {
		str_copy(backend_path, env, sizeof(backend_path));
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(path, sizeof(path), "%s/git-http-backend", dirs[i]);
		if (access(path, X_OK) == 0) {
			str_copy(backend_path, path, sizeof(backend_path));
			return;
		}
	}
}

/* A hook (pre-receive: the checks before a push lands; post-receive:
 * the lineage update after it did): a shell script that runs this very
 * binary. */
static int write_hook(const char *hook, struct err *err)
{
	char dir[4200], path[4300], tmp[4400], exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *f = NULL;

	/* readlink does not terminate: terminate before looking at it. */
	if (n > 0 && (size_t)n < sizeof(exe) - 1)
		exe[n] = '\0';
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1 || strchr(exe, '\''))
		return err_set(err, ERR_FAIL, "cannot find the haven binary "
			       "through /proc/self/exe");
	snprintf(dir, sizeof(dir), "%s/hooks", data_dir);
	snprintf(path, sizeof(path), "%s/%s", dir, hook);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (mkdir_p(dir) < 0 || !(f = fopen(tmp, "w")))
		goto fail;
	/* The data dir and repo id come from the environment git passes
	 * down from http-backend, so the script never needs rewriting for a
	 * moved data dir; only a moved binary does (at the next start). */
	fprintf(f, "#!/bin/sh\n"
		"# Written by `haven serve` at every start: Haven's %s "
		"hook.\n# Do not edit.\n"
		"exec '%s' hook %s --data \"$HAVEN_DATA\" "
		"--repo-id \"$HAVEN_REPO_ID\"\n", hook, exe, hook);
	if (fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	f = NULL;
	if (chmod(tmp, 0755) < 0 || rename(tmp, path) < 0)
		goto fail;
	return 0;
fail:
	if (f)
		fclose(f);
	unlink(tmp);
	return err_set(err, ERR_FAIL, "cannot write the %s hook '%s': "
		       "%s", hook, path, strerror(errno));
}

int git_backend_setup(const char *dir, struct err *err)
{
	int rc;

	if (!realpath(dir, data_dir))
		return err_set(err, ERR_FAIL, "cannot resolve the data directory "
			       "'%s': %s", dir, strerror(errno));
	find_backend();
	if (!backend_path[0])
		log_msg(LOG_WARN, "event=git_http_backend_not_found "
			"fallback=\"git http-backend\"");
	rc = write_hook("pre-receive", err);
	return rc < 0 ? rc : write_hook("post-receive", err);
}

/* --- environment and spawning ----------------------------------------- */

struct envb {
	char *v[ENV_MAX + 1];
	size_t n;
	bool failed;
};

static void env_add(struct envb *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void env_add(struct envb *e, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (e->n >= ENV_MAX || vasprintf(&s, fmt, ap) < 0) {
		e->failed = true;
		s = NULL;
	}
	va_end(ap);
	if (s)
		e->v[e->n++] = s;
}

static void env_release(struct envb *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	e->n = 0;
}

static void env_pass(struct envb *e, const char *name)
{
	const char *v = getenv(name);

	if (v)
		env_add(e, "%s=%s", name, v);
}

/* A header value fit for the environment: printable ASCII, bounded. */
static const char *header_env(struct http_request *req, const char *name,
			      size_t max)
{
	const char *v = http_request_header(req, name);

	if (!v || strlen(v) > max)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return NULL;
	}
	return v;
}

/* Configuration through GIT_CONFIG_COUNT (git >= 2.31): nothing from the
 * machine's or a user's config applies, only this. */
static void env_config(struct envb *e, const struct git_backend_call *call)
{
	static const char *const common[][2] = {
		{ "uploadpack.allowFilter", "true" },
		{ "core.logAllRefUpdates", "false" },
	};
	static const char *const push[][2] = {
		{ "http.receivepack", "true" },
		/* Tree entries such as ".." or ".git" never get in. */
		{ "receive.fsckObjects", "true" },
		/* gc --auto runs inside the push, so nothing outlives it. */
		{ "gc.autoDetach", "false" },
	};
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(common); i++, n++) {
		env_add(e, "GIT_CONFIG_KEY_%zu=%s", n, common[i][0]);
		env_add(e, "GIT_CONFIG_VALUE_%zu=%s", n, common[i][1]);
	}
	if (call->receive) {
		for (size_t i = 0; i < ARRAY_SIZE(push); i++, n++) {
			env_add(e, "GIT_CONFIG_KEY_%zu=%s", n, push[i][0]);
			env_add(e, "GIT_CONFIG_VALUE_%zu=%s", n, push[i][1]);
		}
		env_add(e, "GIT_CONFIG_KEY_%zu=core.hooksPath", n);
		env_add(e, "GIT_CONFIG_VALUE_%zu=%s/hooks", n, data_dir);
		n++;
	}
	env_add(e, "GIT_CONFIG_COUNT=%zu", n);
}

static void env_build(struct envb *e, struct http_request *req,
		      const struct git_backend_call *call)
{
	const char *svc = call->receive ? "git-receive-pack" : "git-upload-pack";
	const char *v;
	int64_t len = http_request_content_length(req);

	env_add(e, "PATH=%s", getenv("PATH") ? getenv("PATH") :
		"/usr/local/bin:/usr/bin:/bin");
	env_add(e, "HOME=%s/tmp", data_dir);
	env_add(e, "GIT_CONFIG_NOSYSTEM=1");
	env_add(e, "GIT_CONFIG_GLOBAL=/dev/null");
	env_add(e, "GIT_HTTP_EXPORT_ALL=1");
	env_add(e, "GIT_PROJECT_ROOT=%s/git", data_dir);
	env_add(e, "GATEWAY_INTERFACE=CGI/1.1");
	env_add(e, "SERVER_PROTOCOL=HTTP/1.1");
	env_add(e, "REQUEST_METHOD=%s", call->advertise ? "GET" : "POST");
	env_add(e, "PATH_INFO=/%s.git/%s", call->repo_id,
		call->advertise ? "info/refs" : svc);
	env_add(e, "QUERY_STRING=%s%s", call->advertise ? "service=" : "",
		call->advertise ? svc : "");
	env_add(e, "REMOTE_ADDR=%s", http_request_peer(req));
	if (call->remote_user && call->remote_user[0])
		env_add(e, "REMOTE_USER=%s", call->remote_user);
	if (!call->advertise && len >= 0)
		env_add(e, "CONTENT_LENGTH=%lld", (long long)len);
	if ((v = header_env(req, "Content-Type", 256)))
		env_add(e, "CONTENT_TYPE=%s", v);
	if ((v = header_env(req, "Content-Encoding", 64)))
		env_add(e, "HTTP_CONTENT_ENCODING=%s", v);
	if ((v = header_env(req, "Git-Protocol", 256))) {
		env_add(e, "GIT_PROTOCOL=%s", v);
		env_add(e, "HTTP_GIT_PROTOCOL=%s", v);
	}
	env_add(e, "HAVEN_DATA=%s", data_dir);
	env_add(e, "HAVEN_REPO_ID=%s", call->repo_id);
	/* For running the hook under the sanitizers or a private libgit2. */
	env_pass(e, "LD_LIBRARY_PATH");
	env_pass(e, "ASAN_OPTIONS");
	env_pass(e, "UBSAN_OPTIONS");
	env_pass(e, "LSAN_OPTIONS");
	/* The hook checks LFS objects in the blob store, which may be S3
	 * (its keys live in the environment, never in the data dir). */
	env_pass(e, "AWS_ACCESS_KEY_ID");
	env_pass(e, "AWS_SECRET_ACCESS_KEY");
	env_pass(e, "AWS_REGION");
	env_pass(e, "HAVEN_S3_ENDPOINT");
	env_config(e, call);
	e->v[e->n] = NULL;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Starts the child with its stdin and stdout on two new pipes; stderr is
 * the server's, every other descriptor is closed. */
static int cgi_spawn(struct cgi *c, char **envp, struct err *err)
{
	char *argv_direct[] = { backend_path, NULL };
	char *argv_git[] = { (char *)"git", (char *)"http-backend", NULL };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, rc = ERR_FAIL, e;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t mask, dfl;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		err_set(err, ERR_FAIL, "cannot create pipes: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&attr);
	/* The workers block SIGTERM and the server ignores SIGPIPE; the
	 * child gets neither. */
	sigemptyset(&mask);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	posix_spawnattr_setsigmask(&attr, &mask);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	if (backend_path[0])
		e = posix_spawn(&c->pid, backend_path, &fa, &attr, argv_direct,
				envp);
	else
		e = posix_spawnp(&c->pid, "git", &fa, &attr, argv_git, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (e != 0) {
		c->pid = -1;
		err_set(err, ERR_FAIL, "cannot run git http-backend: %s",
			strerror(e));
		goto out;
	}
	c->in_fd = in[1];
	c->out_fd = out[0];
	in[1] = out[0] = -1;
	set_nonblock(c->in_fd);
	set_nonblock(c->out_fd);
	/* Fewer wake-ups per megabyte of pack; a refusal is harmless. */
	fcntl(c->out_fd, F_SETPIPE_SZ, PIPE_SIZE);
	rc = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return rc;
}

/* --- the request body, towards the child's stdin ---------------------- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The child stopped reading: drop what it will never take. */
static void stdin_close(struct cgi *c)
{
	if (c->in_ev)
		event_del(c->in_ev);
	close_fd(&c->in_fd);
	evbuffer_drain(c->pending, evbuffer_get_length(c->pending));
	close_fd(&c->spill_fd);
	c->spill_r = c->spill_w = 0;
}

static int spill_open(struct cgi *c)
{
	char path[4300];

	log_msg(LOG_DEBUG, "event=git_body_spill %s", c->label);
	c->spill_fd = open(c->tmp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (c->spill_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/git-body.XXXXXX", c->tmp_dir);
	if ((c->spill_fd = mkstemp(path)) < 0)
		return -1;
	unlink(path);
	return 0;
}

static int spill_write(struct cgi *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = pwrite(c->spill_fd, data, len, c->spill_w);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
		c->spill_w += n;
	}
	return 0;
}

/* Moves the next spilled bytes into memory; forgets the file's content
 * once all of it has been read back. */
static int spill_refill(struct cgi *c)
{
	size_t want = REFILL_CHUNK;
	struct evbuffer_iovec v;
	ssize_t n;

	if ((off_t)want > c->spill_w - c->spill_r)
		want = (size_t)(c->spill_w - c->spill_r);
	if (evbuffer_reserve_space(c->pending, want, &v, 1) < 1)
		return -1;
	do {
		n = pread(c->spill_fd, v.iov_base, want, c->spill_r);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->pending, &v, 1);
	c->spill_r += n;
	if (c->spill_r == c->spill_w) {
		c->spill_r = c->spill_w = 0;
		if (ftruncate(c->spill_fd, 0) < 0)
			return -1;
	}
	return 0;
}

/* Writes what the pipe takes; waits for EV_WRITE when it is full. */
static void stdin_pump(struct cgi *c)
{
	while (c->in_fd >= 0) {
		if (evbuffer_get_length(c->pending) < REFILL_CHUNK &&
		    c->spill_w > c->spill_r && spill_refill(c) < 0) {
			log_msg(LOG_WARN, "event=git_spill_fail %s error=\"%s\"",
				c->label, strerror(errno));
			stdin_close(c);
			return;
		}
		if (evbuffer_get_length(c->pending) == 0) {
			if (c->body_done)
				stdin_close(c);
			return;
		}
		if (evbuffer_write(c->pending, c->in_fd) < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				event_add(c->in_ev, NULL);
				return;
			}
			/* EPIPE: the child answered without reading it all. */
			stdin_close(c);
			return;
		}
	}
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cgi *c = arg;

	assert(c && c->magic == CGI_MAGIC);
	stdin_pump(c);
	cgi_settle(c);
}

static int body_data(struct http_request *req, const char *data, size_t len,
		     void *arg)
{
	struct cgi *c = arg;
	bool spilling = c->spill_w > c->spill_r;

	assert(c && c->magic == CGI_MAGIC);
	if (c->in_fd < 0)
		return 0;	/* the child is done with its input */
	if (!spilling && evbuffer_get_length(c->pending) + len <= SPILL_AT) {
		if (evbuffer_add(c->pending, data, len) < 0)
			return ERR_FAIL;
	} else if ((c->spill_fd < 0 && spill_open(c) < 0) ||
		   spill_write(c, data, len) < 0) {
		log_msg(LOG_WARN, "event=git_spill_fail %s error=\"%s\"",
			c->label, strerror(errno));
		c->spill_failed = true;
		return ERR_FAIL;
	}
	stdin_pump(c);
	return 0;
}

static void cgi_kill(struct cgi *c)
{
	if (c->pid > 0 && !c->killed) {
		kill(c->pid, SIGKILL);
		c->killed = true;
	}
}

static void answer_error(struct cgi *c, int code, const char *msg)
{
	if (c->answer != ANSWER_NONE)
		return;
	c->answer = ANSWER_DONE;
	c->reading_body = false;
	hub_error_replyf(c->req, code, "%s", msg);
	c->req = NULL;
}

static void body_done(struct http_request *req, int rc, void *arg)
{
	struct cgi *c = arg;

	assert(c && c->magic == CGI_MAGIC);
	c->reading_body = false;
	if (rc < 0) {
		/* The client left or sent a broken body: git must not act on
		 * a partial request. */
		log_msg(LOG_INFO, "event=git_body_fail %s error=%s", c->label,
			err_code_name(rc));
		cgi_kill(c);
		stdin_close(c);
		if (c->spill_failed)
			answer_error(c, ERR_FAIL, "cannot hold the request body "
				     "on the server");
		else
			answer_error(c, rc == ERR_FAIL ? ERR_INVALID : rc,
				     "the request body could not be read");
	} else {
		c->body_done = true;
		stdin_pump(c);
	}
	out_pump(c);
	cgi_settle(c);
}

/* --- the child's answer ----------------------------------------------- */

static bool header_passes(const char *name, size_t len)
{
	static const char *const dropped[] = {
		"Content-Length", "Date", "Connection", "X-Request-Id",
		"Transfer-Encoding", "Status",
	};

	for (size_t i = 0; i < ARRAY_SIZE(dropped); i++) {
		if (strlen(dropped[i]) == len &&
		    !strncasecmp(name, dropped[i], len))
			return false;
	}
	return true;
}

/* One line of the CGI head; -1 for one that makes no sense. */
static int head_line(struct cgi *c, const char *line)
{
	const char *colon = strchr(line, ':');
	const char *value;
	size_t nlen;

	if (!colon || colon == line)
		return -1;
	nlen = (size_t)(colon - line);
	value = colon + 1 + strspn(colon + 1, " \t");
	if (nlen == 6 && !strncasecmp(line, "Status", 6)) {
		char *end;
		long st = strtol(value, &end, 10);
		if (end == value || st < 200 || st > 599)
			return -1;
		c->status = (int)st;
		return 0;
	}
	if (header_passes(line, nlen))
		evbuffer_add_printf(c->hdrs, "%.*s\n%s\n", (int)nlen, line, value);
	return 0;
}

/* Parses head lines from c->out; -1 for a malformed head. */
static int head_parse(struct cgi *c)
{
	char *line;
	size_t n;
	int rc = 0;

	while (!c->head_done &&
	       (line = evbuffer_readln(c->out, &n, EVBUFFER_EOL_CRLF))) {
		if (n == 0)
			c->head_done = true;
		else
			rc = head_line(c, line);
		free(line);
		if (rc < 0)
			return -1;
	}
	if (!c->head_done && evbuffer_get_length(c->out) > HEAD_MAX)
		return -1;
	return 0;
}

static void answer_begin(struct cgi *c)
{
	char *name, *value;

	while ((name = evbuffer_readln(c->hdrs, NULL, EVBUFFER_EOL_LF))) {
		value = evbuffer_readln(c->hdrs, NULL, EVBUFFER_EOL_LF);
		if (value)
			http_response_header(c->req, name, value);
		free(name);
		free(value);
	}
	c->answer = ANSWER_STREAM;
	if (!c->body_done) {
		/* The child answered before the body ended (a refusal):
		 * answering ends the reader, and the child wants no more. */
		c->reading_body = false;
		stdin_close(c);
	}
	http_response_begin(c->req, c->status, -1);
}

static void on_drain(struct http_request *req, void *arg)
{
	struct cgi *c = arg;

	assert(c && c->magic == CGI_MAGIC);
	c->waiting_drain = false;
	out_pump(c);
	cgi_settle(c);
}

/* Sends what was read; pauses when the client's queue is long. */
static void answer_write(struct cgi *c)
{
	struct evbuffer_iovec v[4];

	while (!c->waiting_drain && evbuffer_get_length(c->out) > 0) {
		int n = evbuffer_peek(c->out, -1, NULL, v, 4);
		size_t queued = 0, sent = 0;

		for (int i = 0; i < n && i < 4; i++) {
			queued = http_response_write(c->req, v[i].iov_base,
						     v[i].iov_len);
			sent += v[i].iov_len;
		}
		if (sent == 0)
			break;
		evbuffer_drain(c->out, sent);
		if (queued > OUT_HIGH) {
			c->waiting_drain = true;
			http_response_on_drain(c->req, OUT_LOW, on_drain, c);
		}
	}
	if (c->out_eof && !c->waiting_drain && !evbuffer_get_length(c->out)) {
		c->answer = ANSWER_DONE;
		http_response_end(c->req);
		c->req = NULL;
	}
}

/* Watch stdout only while its bytes have somewhere to go. */
static void out_watch(struct cgi *c)
{
	struct timeval idle = { IDLE_S, 0 };
	bool want = c->out_fd >= 0 && !c->waiting_drain &&
		    evbuffer_get_length(c->out) < OUT_HOLD;

	if (!want) {
		event_del(c->out_ev);
		return;
	}
	/* While the body still arrives the child may rightly say nothing. */
	event_add(c->out_ev, c->body_done ? &idle : NULL);
}

/* Moves the answer along after anything changed. */
static void out_pump(struct cgi *c)
{
	if (c->answer == ANSWER_NONE && !c->head_done && head_parse(c) < 0) {
		log_msg(LOG_WARN, "event=git_bad_cgi_head %s", c->label);
		cgi_kill(c);
		answer_error(c, ERR_FAIL,
			     "git http-backend gave a malformed answer");
	}
	if (c->answer == ANSWER_NONE && c->out_eof && !c->head_done)
		answer_error(c, ERR_FAIL,
			     "git http-backend ended without an answer");
	if (c->answer == ANSWER_NONE && c->head_done &&
	    (c->body_done || c->out_eof || !c->reading_body))
		answer_begin(c);
	if (c->answer == ANSWER_STREAM)
		answer_write(c);
	else if (c->answer == ANSWER_DONE)
		evbuffer_drain(c->out, evbuffer_get_length(c->out));
	if (c->out_ev)
		out_watch(c);
}

static void stdout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cgi *c = arg;
	int n;

	assert(c && c->magic == CGI_MAGIC);
	if (what & EV_TIMEOUT) {
		log_msg(LOG_WARN, "event=git_child_idle %s seconds=%d", c->label,
			IDLE_S);
		cgi_kill(c);
		out_watch(c);
		return;
	}
	n = evbuffer_read(c->out, c->out_fd, OUT_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->out_eof = true;
		event_free(c->out_ev);
		c->out_ev = NULL;
		close_fd(&c->out_fd);
	}
	out_pump(c);
	cgi_settle(c);
}

/* --- reaping and freeing ---------------------------------------------- */

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cgi *c = arg;

	assert(c && c->magic == CGI_MAGIC);
	cgi_settle(c);
}

/* Collects the child once it has exited; 0 when it has. */
static int reap(struct cgi *c)
{
	int st = 0;
	pid_t r = waitpid(c->pid, &st, WNOHANG);

	if (r == 0)
		return -1;
	if (r > 0 && !c->killed && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		log_msg(LOG_WARN, "event=git_child_failed %s status=%d", c->label,
			WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	c->pid = -1;
	return 0;
}

static void cgi_free(struct cgi *c)
{
	pthread_mutex_lock(&live_lock);
	LIST_REMOVE(c, link);
	pthread_mutex_unlock(&live_lock);
	if (c->in_ev)
		event_free(c->in_ev);
	if (c->out_ev)
		event_free(c->out_ev);
	if (c->reap_ev)
		event_free(c->reap_ev);
	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	close_fd(&c->spill_fd);
	if (c->pending)
		evbuffer_free(c->pending);
	if (c->out)
		evbuffer_free(c->out);
	if (c->hdrs)
		evbuffer_free(c->hdrs);
	c->magic = 0;
	free(c);
}

/* Frees the cgi once nothing is left to do; reaps the child first. The
 * last thing every callback does: c may be gone afterwards. */
static void cgi_settle(struct cgi *c)
{
	struct timeval tv = { 0, 20 * 1000 };

	if (c->answer != ANSWER_DONE || c->reading_body || c->in_fd >= 0)
		return;
	if (c->out_fd >= 0) {
		/* Answered early (an error): the child's output is unwanted. */
		cgi_kill(c);
		if (c->out_ev)
			event_free(c->out_ev);
		c->out_ev = NULL;
		close_fd(&c->out_fd);
	}
	if (c->pid > 0 && reap(c) < 0) {
		c->reap_waited_ms += 20;
		if (c->reap_waited_ms >= REAP_GRACE_MS)
			cgi_kill(c);
		evtimer_add(c->reap_ev, &tv);
		return;
	}
	cgi_free(c);
}

/* --- entry points ----------------------------------------------------- */

static struct cgi *cgi_new(struct http_request *req,
			   const struct git_backend_call *call)
{
	struct cgi *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->magic = CGI_MAGIC;
	c->req = req;
	c->base = http_request_base(req);
	c->pid = -1;
	c->in_fd = c->out_fd = c->spill_fd = -1;
	c->status = 200;
	snprintf(c->tmp_dir, sizeof(c->tmp_dir), "%s/tmp", data_dir);
	snprintf(c->label, sizeof(c->label), "service=%s repo=%.32s",
		 call->receive ? "receive-pack" : "upload-pack", call->repo_id);
	pthread_mutex_lock(&live_lock);
	LIST_INSERT_HEAD(&live, c, link);
	pthread_mutex_unlock(&live_lock);
	if (!(c->pending = evbuffer_new()) || !(c->out = evbuffer_new()) ||
	    !(c->hdrs = evbuffer_new()) ||
	    !(c->reap_ev = evtimer_new(c->base, reap_cb, c))) {
		cgi_free(c);
		return NULL;
	}
	return c;
}

static int cgi_events(struct cgi *c)
{
	c->in_ev = event_new(c->base, c->in_fd, EV_WRITE, stdin_cb, c);
	c->out_ev = event_new(c->base, c->out_fd, EV_READ | EV_PERSIST,
			      stdout_cb, c);
	return c->in_ev && c->out_ev ? 0 : -1;
}

void git_backend_run(struct http_request *req,
		     const struct git_backend_call *call)
{
	struct envb env = { { NULL }, 0, false };
	struct err err = { 0 };
	struct cgi *c;

	if (!(c = cgi_new(req, call))) {
		hub_error_replyf(req, ERR_FAIL, "out of memory");
		return;
	}
	env_build(&env, req, call);
	if (env.failed || cgi_spawn(c, env.v, &err) < 0 || cgi_events(c) < 0) {
		log_msg(LOG_ERROR, "event=git_spawn_fail %s error=\"%s\"", c->label,
			err.msg[0] ? err.msg : "out of memory");
		env_release(&env);
		answer_error(c, ERR_FAIL, "cannot run git on the server");
		cgi_kill(c);
		stdin_close(c);
		cgi_settle(c);
		return;
	}
	env_release(&env);
	if (call->advertise) {
		c->body_done = true;
		stdin_close(c);
	} else {
		c->reading_body = true;
		http_request_read_body(req, body_data, body_done, c);
	}
	out_watch(c);
}

void git_backend_shutdown(void)
{
	struct cgi *c;

	pthread_mutex_lock(&live_lock);
	while ((c = LIST_FIRST(&live))) {
		pthread_mutex_unlock(&live_lock);
		/* The requests are orphans the HTTP layer frees; only ours
		 * is left to release. */
		if (c->pid > 0) {
			kill(c->pid, SIGKILL);
			while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
				;
			c->pid = -1;
		}
		cgi_free(c);
		pthread_mutex_lock(&live_lock);
	}
	pthread_mutex_unlock(&live_lock);
}
