/*
 * fsck.c: see fsck.h. Both passes start from the repository records, read
 * in one short LMDB transaction and then walked without one.
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/fsck.h"
#include "storage/gitrepo.h"
#include "storage/mirror_state.h"
#include "storage/reach.h"

struct record_list {
	struct repo_record *items;
	size_t count, cap;
};

static int collect_record(const struct repo_record *rec, void *arg)
{
	struct record_list *rl = arg;

	if (rl->count == rl->cap) {
		size_t cap = rl->cap ? rl->cap * 2 : 32;
		void *p = realloc(rl->items, cap * sizeof(*rl->items));
		if (!p)
			return ERR_FAIL;
		rl->items = p;
		rl->cap = cap;
	}
	rl->items[rl->count++] = *rec;
	return 0;
}

static int load_records(struct store *store, struct record_list *rl,
			struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if ((rc = meta_txn_begin(&txn, store->meta, false, err)) < 0)
		return rc;
	rc = meta_repo_foreach(txn, NULL, collect_record, rl, err);
	meta_txn_abort(txn);
	return rc;
}

struct fsck_ctx {
	struct store *store;
	const struct repo_record *rec;
	FILE *out;
	struct fsck_report *rep;
	/* A mirror holds the LFS objects of the revisions it was asked for;
	 * the others are fetched later (pull-through, or the next `haven
	 * mirror`), so their absence is noted, not a problem. */
	bool mirrored;
	uint64_t not_fetched;
};

static int check_lfs(const char *sha, uint64_t size, const char *path,
		     void *arg)
{
	struct fsck_ctx *fc = arg;
	struct blob_info st;
	bool have;

	fc->rep->lfs_refs++;
	have = blob_stat(fc->store->blobs, sha, &st, NULL) == 0;
	if (!have && fc->mirrored) {
		fc->not_fetched++;
	} else if (!have) {
		fprintf(fc->out, "%s %s: '%s' names LFS object %s, which is missing\n",
			fc->rec->type, fc->rec->name, path, sha);
		fc->rep->problems++;
	} else if (st.size != size) {
		fprintf(fc->out, "%s %s: '%s' names LFS object %s of %llu bytes, "
			"but the blob has %llu\n", fc->rec->type, fc->rec->name,
			path, sha, (unsigned long long)size,
			(unsigned long long)st.size);
		fc->rep->problems++;
	}
	return 0;
}

static void check_repo(struct fsck_ctx *fc)
{
	struct mirror_state mirror;
	git_repository *repo = NULL;
	struct err e = { 0 };
	size_t refs = 0;

	if (repo_open_git(&repo, fc->store, fc->rec, &e) < 0) {
		fprintf(fc->out, "%s %s: %s\n", fc->rec->type, fc->rec->name, e.msg);
		fc->rep->problems++;
		return;
	}
	fc->mirrored = mirror_state_get(fc->store->meta, fc->rec->id, &mirror,
					NULL) == 0;
	fc->not_fetched = 0;
	if (reach_lfs_objects(repo, check_lfs, fc, &refs, &e) < 0) {
		fprintf(fc->out, "%s %s: %s\n", fc->rec->type, fc->rec->name, e.msg);
		fc->rep->problems++;
	}
	if (fc->not_fetched)
		fprintf(fc->out, "note: %s %s: %llu LFS references not fetched "
			"from %s (not mirrored yet)\n", fc->rec->type,
			fc->rec->name, (unsigned long long)fc->not_fetched,
			mirror.upstream);
	fc->rep->refs += refs;
	git_repository_free(repo);
}

static void find_stray_git_dirs(struct store *store, struct record_list *rl,
				FILE *out, struct fsck_report *rep)
{
	char dir[4200];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/git", store->data_dir);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		bool known = false;
		if (e->d_name[0] == '.')
			continue;
		for (size_t i = 0; i < rl->count && !known; i++) {
			known = !strncmp(e->d_name, rl->items[i].id, REPO_ID_LEN) &&
				!strcmp(e->d_name + REPO_ID_LEN, ".git");
		}
		if (!known) {
			fprintf(out, "warning: git/%s belongs to no repository\n",
				e->d_name);
			rep->warnings++;
		}
	}
	closedir(d);
}

struct deep_ctx {
	struct store *store;
	FILE *out;
	struct fsck_report *rep;
};

static int verify_blob(const char *sha, const struct blob_info *info,
		       void *arg)
{
	struct deep_ctx *dc = arg;
	struct err e = { 0 };

	(void)info;
	dc->rep->blobs_checked++;
	if (blob_verify(dc->store->blobs, sha, &e) < 0) {
		fprintf(dc->out, "%s\n", e.msg);
		dc->rep->problems++;
	}
	return 0;
}

int fsck_run(struct store *store, bool deep, FILE *out,
	     struct fsck_report *rep, struct err *err)
{
	struct record_list rl = { 0 };
	int rc;

	memset(rep, 0, sizeof(*rep));
	if ((rc = load_records(store, &rl, err)) < 0)
		goto out;
	for (size_t i = 0; i < rl.count; i++) {
		struct fsck_ctx fc = { .store = store, .rec = &rl.items[i],
				       .out = out, .rep = rep };
		check_repo(&fc);
	}
	rep->repos = rl.count;
	find_stray_git_dirs(store, &rl, out, rep);
	if (deep) {
		struct deep_ctx dc = { store, out, rep };
		rc = blob_foreach(store->blobs, verify_blob, &dc, err);
	}
out:
	free(rl.items);
	return rc;
}

/* --- gc --- */

struct sha_set {
	char (*items)[SHA256_HEX_LEN + 1];
	size_t count, cap;
};

static int add_sha(const char *sha, uint64_t size, const char *path, void *arg)
{
	struct sha_set *s = arg;

	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		void *p = realloc(s->items, cap * sizeof(*s->items));
		if (!p)
			return ERR_FAIL;
		s->items = p;
		s->cap = cap;
	}
	memcpy(s->items[s->count++], sha, SHA256_HEX_LEN + 1);
	return 0;
}

static int cmp_sha(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int collect_referenced(struct store *store, struct sha_set *set,
			      struct err *err)
{
	struct record_list rl = { 0 };
	int rc;

	if ((rc = load_records(store, &rl, err)) < 0)
		goto out;
	for (size_t i = 0; i < rl.count && rc == 0; i++) {
		git_repository *repo = NULL;
		/* A repository we cannot read might reference anything:
		 * refuse to collect rather than guess. */
		if ((rc = repo_open_git(&repo, store, &rl.items[i], err)) < 0 ||
		    (rc = reach_lfs_objects(repo, add_sha, set, NULL, err)) < 0)
			err_set(err, rc, "gc stopped: %s %s is unreadable; run "
				"haven fsck", rl.items[i].type, rl.items[i].name);
		git_repository_free(repo);
	}
	if (set->count)
		qsort(set->items, set->count, sizeof(*set->items), cmp_sha);
out:
	free(rl.items);
	return rc;
}

struct gc_ctx {
	struct store *store;
	struct sha_set *refs;
	time_t cutoff;
	bool dry_run;
	FILE *out;
	struct gc_report *rep;
};

static int sweep_blob(const char *sha, const struct blob_info *st,
		      void *arg)
{
	struct gc_ctx *gc = arg;

	if ((gc->refs->count && bsearch(sha, gc->refs->items, gc->refs->count,
		    sizeof(*gc->refs->items), cmp_sha)) ||
	    st->mtime > gc->cutoff) {
		gc->rep->blobs_kept++;
		return 0;
	}
	if (!gc->dry_run && blob_remove(gc->store->blobs, sha, NULL) < 0) {
		gc->rep->blobs_kept++;
		return 0;
	}
	fprintf(gc->out, "%s blob %s (%lld bytes)\n",
		gc->dry_run ? "would remove" : "removed", sha,
		(long long)st->size);
	gc->rep->blobs_removed++;
	gc->rep->bytes_removed += st->size;
	return 0;
}

static void sweep_tmp(struct gc_ctx *gc)
{
	char dir[4200], path[8400];
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/tmp", gc->store->data_dir);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_mtime <= gc->cutoff && (gc->dry_run || unlink(path) == 0))
			gc->rep->tmp_removed++;
	}
	closedir(d);
}

static int lock_gc(struct store *store, int *fd, struct err *err)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/gc.lock", store->data_dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0)
		return err_set(err, ERR_FAIL, "cannot open '%s': %s", path,
			       strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		close(*fd);
		*fd = -1;
		return err_set(err, ERR_CONFLICT, "another gc, or a blob "
			       "migration (haven blobs migrate), is running");
	}
	return 0;
}

int gc_run(struct store *store, int64_t grace_seconds, bool dry_run,
	   FILE *out, struct gc_report *rep, struct err *err)
{
	struct sha_set refs = { 0 };
	struct gc_ctx gc = { store, &refs, time(NULL) - grace_seconds, dry_run,
			     out, rep };
	int lock = -1, rc;

	memset(rep, 0, sizeof(*rep));
	/* Mid-migration the objects are in two stores and the copy reads
	 * from the old one: nothing may be removed from either. (The
	 * migration also holds gc.lock while it copies.) */
	if (blob_migrating(store->blobs))
		return err_set(err, ERR_CONFLICT, "a blob migration is in "
			       "progress (blobs.conf names a previous store); "
			       "run haven gc after haven blobs migrate ends");
	/* The cutoff is taken before the walk: a blob written after it
	 * started is younger than the cutoff and always kept. */
	if ((rc = lock_gc(store, &lock, err)) < 0 ||
	    (rc = collect_referenced(store, &refs, err)) < 0)
		goto out;
	rc = blob_foreach(store->blobs, sweep_blob, &gc, err);
	sweep_tmp(&gc);
out:
	free(refs.items);
	if (lock >= 0)
		close(lock);
	return rc;
}
