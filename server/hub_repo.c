/*
 * hub_repo.c: see hub_repo.h. The cache is a per-thread array, replaced
 * round-robin; it is freed by a pthread key destructor at thread exit.
 */
#include "common/compat.h"

#include <pthread.h>
#include <strings.h>

#include "common/util.h"
#include "server/hub_repo.h"

#define CACHE_GIT 32
#define CACHE_LISTINGS 16

struct thread_cache {
	struct {
		char id[REPO_ID_LEN + 1];
		git_repository *git;
	} git[CACHE_GIT];
	size_t git_next;
	struct listing *listings[CACHE_LISTINGS];
	size_t listing_next;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_destroy(void *p)
{
	struct thread_cache *c = p;

	if (!c)
		return;
	for (size_t i = 0; i < CACHE_GIT; i++)
		git_repository_free(c->git[i].git);
	for (size_t i = 0; i < CACHE_LISTINGS; i++)
		listing_free(c->listings[i]);
	free(c);
}

static void cache_key_init(void)
{
	pthread_key_create(&cache_key, cache_destroy);
}

static struct thread_cache *cache_get(void)
{
	struct thread_cache *c;

	pthread_once(&cache_once, cache_key_init);
	c = pthread_getspecific(cache_key);
	if (!c && (c = calloc(1, sizeof(*c))))
		pthread_setspecific(cache_key, c);
	return c;
}

void hub_repo_cache_flush(void)
{
	pthread_once(&cache_once, cache_key_init);
	cache_destroy(pthread_getspecific(cache_key));
	pthread_setspecific(cache_key, NULL);
}

static int cached_git(git_repository **out, struct store *store,
		      const struct repo_record *rec, struct err *err)
{
	struct thread_cache *c = cache_get();
	size_t slot;
	int rc;

	if (!c)
		return err_set(err, ERR_FAIL, "out of memory");
	for (size_t i = 0; i < CACHE_GIT; i++) {
		if (c->git[i].git && !strcmp(c->git[i].id, rec->id)) {
			*out = c->git[i].git;
			return 0;
		}
	}
	slot = c->git_next++ % CACHE_GIT;
	git_repository_free(c->git[slot].git);
	c->git[slot].git = NULL;
	if ((rc = repo_open_git(&c->git[slot].git, store, rec, err)) < 0)
		return rc;
	str_copy(c->git[slot].id, rec->id, sizeof(c->git[slot].id));
	*out = c->git[slot].git;
	return 0;
}

/* Where the request's URL is once the repository's old name segments
 * are replaced by to: the path of the public URL (a prefix behind a
 * proxy), the rewritten path and the query. False when the path does not
 * hold the name as sent (percent-encoded letters). */
static bool moved_location(char *out, size_t size, struct hub_call *call,
			   const char *to)
{
	const char *path = http_request_path(call->req);
	const char *q = http_request_query(call->req);
	const char *pub = strstr(call->app->public_url, "://");
	size_t n = strlen(call->repo);

	pub = pub ? strchr(pub + 3, '/') : NULL;
	for (const char *p = path; (p = strchr(p, '/')); p++) {
		const char *rest = p + 1;
		if (strlen(rest) < n || strncasecmp(rest, call->repo, n) ||
		    (rest[n] && rest[n] != '/' && strncmp(rest + n, ".git", 4)))
			continue;
		snprintf(out, size, "%s%.*s/%s%s%s%s", pub ? pub : "",
			 (int)(p - path), path, to, rest + n, q ? "?" : "",
			 q ? q : "");
		return true;
	}
	return false;
}

/* A repository that was renamed answers ERR_MOVED with a relative
 * Location, if the caller may see it; else RepoNotFound as before. */
static int check_moved(struct hub_call *call, struct err *err)
{
	struct repo_record rec;
	char location[8192];

	if (repo_lookup_moved(call->app->store, call->type, call->repo, &rec,
			      NULL) < 0 ||
	    auth_check_read(call->app, &call->who, &rec, NULL) < 0)
		return err_set(err, ERR_NOREPO, "Repository not found");
	if (!moved_location(location, sizeof(location), call, rec.name))
		return err_set(err, ERR_NOREPO, "Repository not found");
	http_response_header(call->req, "Location", location);
	return err_set(err, ERR_MOVED, "Repository moved to %s", rec.name);
}

int hub_repo_open(struct hub_repo *r, struct hub_call *call, const char *rev,
		  struct err *err)
{
	struct store *store = call->app->store;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = repo_lookup(store, call->type, call->repo, &r->rec, err);
	if (rc == ERR_NOREPO)
		rc = check_moved(call, err);
	if (rc < 0 ||
	    (rc = auth_check_read(call->app, &call->who, &r->rec, err)) < 0 ||
	    (rc = cached_git(&r->git, store, &r->rec, err)) < 0)
		return rc;
	if (!rev)
		return 0;
	if (!rev[0])
		rev = "HEAD";
	if ((rc = gitrepo_resolve(r->git, rev, &r->commit, r->ref,
				  sizeof(r->ref), err)) < 0)
		return rc;
	gitrepo_oid_hex(r->commit_hex, &r->commit);
	return 0;
}

int hub_repo_listing(struct hub_repo *r, struct hub_call *call,
		     struct err *err)
{
	struct thread_cache *c = cache_get();
	struct listing *l = NULL;
	size_t slot;
	int rc;

	if (!c)
		return err_set(err, ERR_FAIL, "out of memory");
	for (size_t i = 0; i < CACHE_LISTINGS; i++) {
		if (c->listings[i] && !strcmp(c->listings[i]->commit, r->commit_hex)) {
			r->listing = c->listings[i];
			return 0;
		}
	}
	if ((rc = listing_load(&l, call->app->store->meta, r->git, &r->commit,
			       err)) < 0)
		return rc;
	slot = c->listing_next++ % CACHE_LISTINGS;
	listing_free(c->listings[slot]);
	c->listings[slot] = l;
	r->listing = l;
	return 0;
}

void hub_repo_close(struct hub_repo *r)
{
	r->git = NULL;
	r->listing = NULL;
}
