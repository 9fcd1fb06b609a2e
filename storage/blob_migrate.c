/*
 * blob_migrate.c: moves the blobs of a data directory to another backend
 * while a server may be serving them; see blob_migrate.h for the steps
 * and why each is safe to interrupt.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/blob_migrate.h"

struct copy_ctx {
	struct blob_store *src, *dst;
	FILE *progress;
	struct blob_migrate_report *rep;
	struct err *err;
	bool second;		/* the pass after the switch */
	int rc;
};

static bool same_place(const struct blob_location *a,
		       const struct blob_location *b)
{
	return !strcmp(a->url, b->url) && !strcmp(a->endpoint, b->endpoint);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_sink(void *arg, const void *data, size_t len,
		      struct err *err)
{
	return blob_writer_write(arg, data, len, err);
}

/* Streams one object into the destination's writer, which checks the
 * sha256 before the object appears under its name (local: before the
 * rename; S3: before CompleteMultipartUpload); then the size. */
static int copy_object(struct copy_ctx *cx, const char *sha,
		       const struct blob_info *info)
{
	struct blob_writer *w = NULL;
	char got[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	int rc;

	if ((rc = blob_writer_begin_sha(&w, cx->dst, sha, cx->err)) < 0)
		return rc;
	if ((rc = blob_read(cx->src, sha, 0, 0, write_sink, w, cx->err)) < 0) {
		blob_writer_abort(w);
		return rc;
	}
	if ((rc = blob_writer_commit(w, sha, got, &size, cx->err)) < 0)
		return rc;
	if (size != info->size)
		return err_set(cx->err, ERR_CORRUPT, "blob %s: %llu bytes "
			       "arrived, the source holds %llu", sha,
			       (unsigned long long)size,
			       (unsigned long long)info->size);
	return 0;
}

static int visit(const char *sha, const struct blob_info *info, void *arg)
{
	struct copy_ctx *cx = arg;
	struct blob_migrate_report *rep = cx->rep;
	struct blob_info have;

	/* What is there with the right size was verified when written. */
	if (blob_stat(cx->dst, sha, &have, NULL) == 0 &&
	    have.size == info->size) {
		if (!cx->second) {
			rep->objects++;
			rep->skipped++;
			rep->skipped_bytes += info->size;
		}
		return 0;
	}
	if ((cx->rc = copy_object(cx, sha, info)) < 0)
		return 1;
	rep->objects++;
	rep->copied++;
	rep->copied_bytes += info->size;
	if (cx->progress)
		fprintf(cx->progress, "haven: copied %s (%llu bytes)%s\n", sha,
			(unsigned long long)info->size,
			cx->second ? ", written during the switch" : "");
	return 0;
}

static int copy_all(struct copy_ctx *cx)
{
	int rc;

	cx->rc = 0;
	rc = blob_foreach(cx->src, visit, cx, cx->err);
	if (cx->rc < 0)
		return cx->rc;
	if (rc < 0)
		return rc;
	return rc ? ERR_FAIL : 0;
}

/* gc.lock: no gc removes a source object while it is being copied, and
 * one migration runs at a time. */
static int lock_gc(const char *data_dir, int *fd, struct err *err)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/gc.lock", data_dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0)
		return err_set(err, ERR_FAIL, "cannot open '%s': %s", path,
			       strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		close(*fd);
		*fd = -1;
		return err_set(err, ERR_CONFLICT, "haven gc or another blob "
			       "migration is running; try again when it ends");
	}
	return 0;
}

/* Where the objects come from: the current store, or the previous one
 * of a migration to `to` that was interrupted. ERR_EXISTS: nothing to do. */
static int pick_source(const struct blob_config *bc,
		       const struct blob_location *to,
		       struct blob_location *from, struct err *err)
{
	if (bc->prev.url[0]) {
		if (!same_place(to, &bc->cur))
			return err_set(err, ERR_CONFLICT, "a migration from %s "
				       "to %s is in progress; finish it first "
				       "(haven blobs migrate --to %s)",
				       bc->prev.url, bc->cur.url, bc->cur.url);
		*from = bc->prev;
		return 0;
	}
	if (same_place(to, &bc->cur))
		return ERR_EXISTS;
	*from = bc->cur;
	return 0;
}

/* Writes blobs.conf and waits until the server (if any) uses it. */
static int switch_to(const char *data_dir, struct blob_config *bc,
		     int wait_s, bool *server, struct err *err)
{
	int rc;

	bc->serial++;
	if ((rc = blob_config_write(data_dir, bc, err)) < 0)
		return rc;
	return blob_config_wait(data_dir, bc->serial, wait_s, server, err);
}

/* A progress line. */
static void note(struct copy_ctx *cx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct copy_ctx *cx, const char *fmt, ...)
{
	va_list ap;

	if (!cx->progress)
		return;
	fputs("haven: ", cx->progress);
	va_start(ap, fmt);
	vfprintf(cx->progress, fmt, ap);
	va_end(ap);
	fputc('\n', cx->progress);
}

static int migrate(const char *data_dir, struct blob_config *bc,
		   const struct blob_location *from,
		   const struct blob_location *to, int wait_s,
		   struct copy_ctx *cx)
{
	struct err *err = cx->err;
	bool server = false;
	int rc;

	if ((rc = blob_store_open_at(&cx->src, data_dir, from, err)) < 0 ||
	    (rc = blob_store_open_at(&cx->dst, data_dir, to, err)) < 0 ||
	    (rc = copy_all(cx)) < 0)
		return rc;
	bc->cur = *to;
	bc->prev = *from;
	note(cx, "blobs.conf names %s now, %s as previous; waiting for the "
	     "server", to->url, from->url);
	if ((rc = switch_to(data_dir, bc, wait_s, &server, err)) < 0)
		return rc;
	cx->rep->server = server;
	note(cx, "%s; copying what arrived meanwhile", server ?
	     "the server switched" : "no server runs");
	cx->second = true;
	if ((rc = copy_all(cx)) < 0)
		return rc;
	memset(&bc->prev, 0, sizeof(bc->prev));
	return switch_to(data_dir, bc, wait_s, &server, err);
}

int blob_migrate_run(const char *data_dir, const struct blob_location *to,
		     bool create_bucket, int wait_s, FILE *progress,
		     struct blob_migrate_report *rep, struct err *err)
{
	struct copy_ctx cx = { .progress = progress, .rep = rep, .err = err };
	struct blob_location from;
	struct blob_config bc;
	double start = now_s();
	int lock = -1, rc;

	memset(rep, 0, sizeof(*rep));
	str_copy(rep->to, to->url, sizeof(rep->to));
	if ((rc = blob_config_read(data_dir, &bc, err)) < 0)
		return rc;
	if ((rc = pick_source(&bc, to, &from, err)) == ERR_EXISTS) {
		str_copy(rep->from, to->url, sizeof(rep->from));
		rep->noop = true;
		return 0;
	}
	if (rc < 0)
		return rc;
	str_copy(rep->from, from.url, sizeof(rep->from));
	if ((!create_bucket && (rc = blob_location_check(to, err)) < 0) ||
	    (rc = lock_gc(data_dir, &lock, err)) < 0)
		return rc;
	rc = migrate(data_dir, &bc, &from, to, wait_s, &cx);
	blob_store_free(cx.src);
	blob_store_free(cx.dst);
	close(lock);
	rep->seconds = now_s() - start;
	return rc;
}
