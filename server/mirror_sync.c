/*
 * mirror_sync.c: the background sync of mirrored repositories; see
 * mirror_sync.h.
 */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/mirror.h"
#include "server/mirror_sync.h"
#include "storage/mirror_state.h"

/* The first pass waits this long after the start, so a restarted server
 * answers before it begins to fetch. */
#define FIRST_PASS_DELAY_S 1

struct mirror_sync {
	struct store *store;
	long interval_s;
	struct upstream_config base;
	char token[512], ca_bundle[4096];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	atomic_bool cancel;	/* cuts a sync in progress short */
};

struct state_list {
	struct mirror_state *v;
	size_t n, cap;
};

static int collect(const struct mirror_state *st, void *arg)
{
	struct state_list *l = arg;

	if (st->mode != MIRROR_MODE_MIRROR)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct mirror_state *p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return ERR_FAIL;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = *st;
	return 0;
}

static bool stopping(struct mirror_sync *ms)
{
	bool s;

	pthread_mutex_lock(&ms->lock);
	s = ms->stopping;
	pthread_mutex_unlock(&ms->lock);
	return s;
}

static void sync_one(struct mirror_sync *ms, const struct mirror_state *st)
{
	const char *revs[MIRROR_MAX_REVS], *inc[MIRROR_MAX_GLOBS],
		*exc[MIRROR_MAX_GLOBS];
	struct upstream_config cfg = ms->base;
	struct mirror_options opt = { 0 };
	struct mirror_result res;
	struct err err = { 0 };

	for (size_t i = 0; i < st->nrevisions; i++)
		revs[i] = st->revisions[i];
	for (size_t i = 0; i < st->ninclude; i++)
		inc[i] = st->include[i];
	for (size_t i = 0; i < st->nexclude; i++)
		exc[i] = st->exclude[i];
	cfg.url = st->upstream;
	opt.type = st->type;
	opt.name = st->name;
	opt.revisions = revs;
	opt.nrevisions = st->nrevisions;
	opt.include = inc;
	opt.ninclude = st->ninclude;
	opt.exclude = exc;
	opt.nexclude = st->nexclude;
	opt.cancel = &ms->cancel;
	if (mirror_repo(ms->store, &cfg, &opt, &res, &err) < 0)
		log_msg(LOG_WARN, "event=mirror_sync_failed repo=%s error=\"%s\"",
			st->name, err.msg);
	else if (res.refs_updated || res.lfs_fetched)
		log_msg(LOG_INFO, "event=mirror_synced repo=%s refs=%llu files=%llu "
			"bytes=%llu", st->name,
			(unsigned long long)res.refs_updated,
			(unsigned long long)res.lfs_fetched,
			(unsigned long long)res.bytes_fetched);
}

static void sync_pass(struct mirror_sync *ms)
{
	struct state_list list = { 0 };
	struct err err = { 0 };

	/* the records are copied out first: syncing writes to the same db */
	if (mirror_state_foreach(ms->store->meta, collect, &list, &err) < 0)
		log_msg(LOG_WARN, "event=mirror_sync_failed error=\"%s\"", err.msg);
	for (size_t i = 0; i < list.n && !stopping(ms); i++)
		sync_one(ms, &list.v[i]);
	free(list.v);
}

/* Sleeps until the deadline or a stop; false when stopping. */
static bool wait_until(struct mirror_sync *ms, time_t deadline)
{
	struct timespec ts = { .tv_sec = deadline, .tv_nsec = 0 };
	bool go_on;

	pthread_mutex_lock(&ms->lock);
	while (!ms->stopping &&
	       pthread_cond_timedwait(&ms->wake, &ms->lock, &ts) != ETIMEDOUT)
		;
	go_on = !ms->stopping;
	pthread_mutex_unlock(&ms->lock);
	return go_on;
}

static void *sync_thread(void *arg)
{
	struct mirror_sync *ms = arg;
	time_t next = time(NULL) + FIRST_PASS_DELAY_S;

	while (wait_until(ms, next)) {
		sync_pass(ms);
		next = time(NULL) + ms->interval_s;
	}
	return NULL;
}

int mirror_sync_start(struct mirror_sync **out, struct store *store,
		      long interval_s, const struct upstream_config *base,
		      struct err *err)
{
	struct mirror_sync *ms = calloc(1, sizeof(*ms));
	pthread_condattr_t attr;

	if (!ms)
		return err_set(err, ERR_FAIL, "out of memory");
	ms->store = store;
	ms->interval_s = interval_s;
	if (base)
		ms->base = *base;
	/* own copies: the caller's strings may not outlive the thread */
	if (base && base->token) {
		str_copy(ms->token, base->token, sizeof(ms->token));
		ms->base.token = ms->token;
	}
	if (base && base->ca_bundle) {
		str_copy(ms->ca_bundle, base->ca_bundle, sizeof(ms->ca_bundle));
		ms->base.ca_bundle = ms->ca_bundle;
	}
	pthread_mutex_init(&ms->lock, NULL);
	/* the realtime clock: deadlines are time(NULL) values */
	pthread_condattr_init(&attr);
	pthread_cond_init(&ms->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&ms->thread, NULL, sync_thread, ms) != 0) {
		pthread_cond_destroy(&ms->wake);
		pthread_mutex_destroy(&ms->lock);
		free(ms);
		return err_set(err, ERR_FAIL, "cannot start the mirror sync thread");
	}
	*out = ms;
	return 0;
}

void mirror_sync_stop(struct mirror_sync *ms)
{
	if (!ms)
		return;
	pthread_mutex_lock(&ms->lock);
	ms->stopping = true;
	atomic_store(&ms->cancel, true);
	pthread_cond_signal(&ms->wake);
	pthread_mutex_unlock(&ms->lock);
	pthread_join(ms->thread, NULL);
	pthread_cond_destroy(&ms->wake);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}
