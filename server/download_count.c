/*
 * download_count.c: see download_count.h. Pending counts live in a small
 * chained hash table keyed by repo id and day, the dataset windows in
 * another keyed by peer and repo id; both under one mutex. The flush
 * swaps the pending table out under the lock and writes it outside it,
 * so requests never wait for LMDB.
 */
#include "common/compat.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "server/download_count.h"
#include "storage/stats.h"

#define BUCKETS 256
#define WINDOW_MAX 100000	/* bounds memory under many peers */

struct pending {
	struct pending *next;
	char repo_id[REPO_ID_LEN + 1];
	char day[STATS_DAY_LEN + 1];
	uint64_t n;
};

struct window {
	struct window *next;
	char key[REPO_ID_LEN + 2 + 64];	/* repo id '/' peer */
	time_t start;
};

struct download_count {
	struct meta *meta;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stopping;
	struct pending *pending[BUCKETS];
	struct window *windows[BUCKETS];
	size_t window_count;
	uint64_t counted;
	pthread_mutex_t flush_lock;	/* one flush at a time */
	download_sink_fn sink;		/* NULL: this node's LMDB */
	void *sink_arg;
};

static unsigned hash_str(const char *a, const char *b)
{
	unsigned h = 2166136261u;

	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 16777619u;
	for (; b && *b; b++)
		h = (h ^ (unsigned char)*b) * 16777619u;
	return h % BUCKETS;
}

/* True when a dataset download from this peer opens a new window; the
 * caller holds the lock. */
static bool window_open(struct download_count *dc, const char *repo_id,
			const char *peer, time_t now)
{
	char key[sizeof(((struct window *)0)->key)];
	unsigned h;
	struct window *w;

	snprintf(key, sizeof(key), "%s/%.63s", repo_id, peer);
	h = hash_str(key, NULL);
	for (w = dc->windows[h]; w; w = w->next) {
		if (strcmp(w->key, key))
			continue;
		if (now - w->start < DOWNLOAD_DATASET_WINDOW_S)
			return false;
		w->start = now;
		return true;
	}
	if (dc->window_count >= WINDOW_MAX || !(w = calloc(1, sizeof(*w))))
		return true;	/* count rather than lose the download */
	str_copy(w->key, key, sizeof(w->key));
	w->start = now;
	w->next = dc->windows[h];
	dc->windows[h] = w;
	dc->window_count++;
	return true;
}

static void pending_add(struct download_count *dc, const char *repo_id,
			const char *day, uint64_t n)
{
	unsigned h = hash_str(repo_id, day);
	struct pending *p;

	for (p = dc->pending[h]; p; p = p->next)
		if (!strcmp(p->repo_id, repo_id) && !strcmp(p->day, day)) {
			p->n += n;
			return;
		}
	if (!(p = calloc(1, sizeof(*p)))) {
		log_msg(LOG_WARN, "event=download_lost repo_id=%s reason=oom",
			repo_id);
		return;
	}
	str_copy(p->repo_id, repo_id, sizeof(p->repo_id));
	str_copy(p->day, day, sizeof(p->day));
	p->n = n;
	p->next = dc->pending[h];
	dc->pending[h] = p;
}

void download_count_hit(struct download_count *dc,
			const struct repo_record *rec, const char *path,
			bool diffusers, const char *peer)
{
	char day[STATS_DAY_LEN + 1];
	time_t now = time(NULL);

	if (!dc || !stats_counts_download(rec->type, path, diffusers))
		return;
	stats_day(day, now);
	pthread_mutex_lock(&dc->lock);
	if (strcmp(rec->type, "dataset") ||
	    window_open(dc, rec->id, peer ? peer : "", now)) {
		pending_add(dc, rec->id, day, 1);
		dc->counted++;
	}
	pthread_mutex_unlock(&dc->lock);
}

uint64_t download_count_counted(struct download_count *dc)
{
	uint64_t n;

	if (!dc)
		return 0;
	pthread_mutex_lock(&dc->lock);
	n = dc->counted;
	pthread_mutex_unlock(&dc->lock);
	return n;
}

/* Drops dataset windows that have closed; the caller holds the lock. */
static void windows_prune(struct download_count *dc, time_t now)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		struct window **pp = &dc->windows[i], *w;
		while ((w = *pp)) {
			if (now - w->start >= DOWNLOAD_DATASET_WINDOW_S) {
				*pp = w->next;
				free(w);
				dc->window_count--;
			} else {
				pp = &w->next;
			}
		}
	}
}

static struct pending *take_pending(struct download_count *dc)
{
	struct pending *list = NULL, *p;

	pthread_mutex_lock(&dc->lock);
	for (size_t i = 0; i < BUCKETS; i++) {
		while ((p = dc->pending[i])) {
			dc->pending[i] = p->next;
			p->next = list;
			list = p;
		}
	}
	windows_prune(dc, time(NULL));
	pthread_mutex_unlock(&dc->lock);
	return list;
}

static int write_pending(struct meta *meta, const struct pending *list,
			 struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	for (; list; list = list->next) {
		struct repo_record rec;

		/* Deleted since the request: its counters are gone with it,
		 * and no count may outlive it under its id. */
		if (meta_repo_get_by_id(txn, list->repo_id, &rec, NULL) ==
		    ERR_NOREPO)
			continue;
		if ((rc = stats_add(txn, list->repo_id, list->day, list->n,
				    err)) < 0) {
			meta_txn_abort(txn);
			return rc;
		}
	}
	return meta_txn_commit(txn, err);
}

/* The counts as download_count_apply reads them; NULL when out of
 * memory. */
static char *pending_text(const struct pending *list, size_t *len)
{
	size_t cap = 0, n = 0;
	char *text;

	for (const struct pending *p = list; p; p = p->next)
		cap += REPO_ID_LEN + STATS_DAY_LEN + 24;
	if (!(text = malloc(cap + 1)))
		return NULL;
	for (; list; list = list->next)
		n += (size_t)snprintf(text + n, cap + 1 - n, "%s %s %" PRIu64
				      "\n", list->repo_id, list->day, list->n);
	*len = n;
	return text;
}

static int sink_pending(struct download_count *dc, const struct pending *list,
			struct err *err)
{
	size_t len = 0;
	char *text = pending_text(list, &len);
	int rc;

	if (!text)
		return err_set(err, ERR_FAIL, "out of memory");
	rc = dc->sink(text, len, dc->sink_arg, err);
	free(text);
	return rc;
}

int download_count_flush(struct download_count *dc, struct err *err)
{
	struct pending *list, *p;
	int rc = 0;

	pthread_mutex_lock(&dc->flush_lock);
	list = take_pending(dc);
	if (list && (rc = dc->sink ? sink_pending(dc, list, err) :
				write_pending(dc->meta, list, err)) < 0) {
		/* Keep the counts for the next try. */
		pthread_mutex_lock(&dc->lock);
		for (p = list; p; p = p->next)
			pending_add(dc, p->repo_id, p->day, p->n);
		pthread_mutex_unlock(&dc->lock);
	}
	while ((p = list)) {
		list = p->next;
		free(p);
	}
	pthread_mutex_unlock(&dc->flush_lock);
	return rc;
}

void download_count_send_to(struct download_count *dc, download_sink_fn fn,
			    void *arg)
{
	dc->sink = fn;
	dc->sink_arg = arg;
}

/* One "<repo id> <day> <n>" line; -1 when malformed. */
static int parse_line(const char *line, size_t len, struct pending *p)
{
	char buf[128], *end;

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (len < REPO_ID_LEN + STATS_DAY_LEN + 3 || buf[REPO_ID_LEN] != ' ' ||
	    buf[REPO_ID_LEN + 1 + STATS_DAY_LEN] != ' ')
		return -1;
	memcpy(p->repo_id, buf, REPO_ID_LEN);
	p->repo_id[REPO_ID_LEN] = '\0';
	memcpy(p->day, buf + REPO_ID_LEN + 1, STATS_DAY_LEN);
	p->day[STATS_DAY_LEN] = '\0';
	errno = 0;
	p->n = strtoull(buf + REPO_ID_LEN + STATS_DAY_LEN + 2, &end, 10);
	if (*end || errno || !is_hex(p->repo_id, REPO_ID_LEN))
		return -1;
	return 0;
}

int download_count_apply(struct meta *meta, const char *text, size_t len,
			 struct err *err)
{
	struct pending *list = NULL, *p;
	const char *end = text + len;
	int rc = 0;

	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		size_t n = nl ? (size_t)(nl - text) : (size_t)(end - text);
		if (!(p = calloc(1, sizeof(*p)))) {
			rc = err_set(err, ERR_FAIL, "out of memory");
			break;
		}
		p->next = list;
		list = p;
		if (parse_line(text, n, p) < 0) {
			rc = err_set(err, ERR_INVALID, "malformed download "
				     "count: expected \"<repo id> <day> <n>\"");
			break;
		}
		text += n + (nl != NULL);
	}
	if (rc == 0 && list)
		rc = write_pending(meta, list, err);
	while ((p = list)) {
		list = p->next;
		free(p);
	}
	return rc;
}

static void *flush_thread(void *arg)
{
	struct download_count *dc = arg;
	struct err err = { 0 };
	struct timespec ts;
	bool stop;

	for (;;) {
		pthread_mutex_lock(&dc->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += DOWNLOAD_FLUSH_S;
		while (!dc->stopping &&
		       pthread_cond_timedwait(&dc->wake, &dc->lock, &ts) == 0)
			;
		stop = dc->stopping;
		pthread_mutex_unlock(&dc->lock);
		if (download_count_flush(dc, &err) < 0)
			log_msg(LOG_ERROR, "event=download_flush_failed error=\"%s\"",
				err.msg);
		if (stop)
			return NULL;
	}
}

int download_count_start(struct download_count **out, struct meta *meta,
			 struct err *err)
{
	struct download_count *dc = calloc(1, sizeof(*dc));

	*out = NULL;
	if (!dc)
		return err_set(err, ERR_FAIL, "out of memory");
	dc->meta = meta;
	pthread_mutex_init(&dc->lock, NULL);
	pthread_mutex_init(&dc->flush_lock, NULL);
	pthread_cond_init(&dc->wake, NULL);
	if (pthread_create(&dc->thread, NULL, flush_thread, dc) != 0) {
		pthread_cond_destroy(&dc->wake);
		pthread_mutex_destroy(&dc->flush_lock);
		pthread_mutex_destroy(&dc->lock);
		free(dc);
		return err_set(err, ERR_FAIL, "cannot start the download "
			       "counter thread");
	}
	*out = dc;
	return 0;
}

void download_count_stop(struct download_count *dc)
{
	if (!dc)
		return;
	pthread_mutex_lock(&dc->lock);
	dc->stopping = true;
	pthread_cond_signal(&dc->wake);
	pthread_mutex_unlock(&dc->lock);
	/* The thread flushes once more before it returns. */
	pthread_join(dc->thread, NULL);
	for (size_t i = 0; i < BUCKETS; i++) {
		struct window *w;
		struct pending *p;
		while ((w = dc->windows[i])) {
			dc->windows[i] = w->next;
			free(w);
		}
		while ((p = dc->pending[i])) {	/* only after a failed flush */
			log_msg(LOG_ERROR, "event=download_lost repo_id=%s n=%llu",
				p->repo_id, (unsigned long long)p->n);
			dc->pending[i] = p->next;
			free(p);
		}
	}
	pthread_cond_destroy(&dc->wake);
	pthread_mutex_destroy(&dc->flush_lock);
	pthread_mutex_destroy(&dc->lock);
	free(dc);
}
