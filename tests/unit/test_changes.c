/*
 * test_changes.c: the change log read replicas follow (storage/changes.h).
 *
 * A "primary" environment takes writes through the ordinary meta calls;
 * a "replica" environment applies what changes_read hands out, or a
 * snapshot, and must end up with the same records.
 */
#include "common/compat.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "storage/changes.h"
#include "storage/meta.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

static int put(struct meta *meta, const char *key, const char *json)
{
	struct meta_txn *txn = NULL;

	if (meta_txn_begin(&txn, meta, true, NULL) < 0)
		return -1;
	if (meta_kv_put(txn, META_KV_ACCOUNTS, key, json, false, NULL) < 0) {
		meta_txn_abort(txn);
		return -1;
	}
	return meta_txn_commit(txn, NULL);
}

static int del(struct meta *meta, const char *key)
{
	struct meta_txn *txn = NULL;

	if (meta_txn_begin(&txn, meta, true, NULL) < 0)
		return -1;
	if (meta_kv_del(txn, META_KV_ACCOUNTS, key, NULL) < 0) {
		meta_txn_abort(txn);
		return -1;
	}
	return meta_txn_commit(txn, NULL);
}

/* The value of key in the replica, or "" when absent. */
static void get(struct meta *meta, const char *key, char *out, size_t size)
{
	struct meta_txn *txn = NULL;
	char *json = NULL;

	out[0] = '\0';
	if (meta_txn_begin(&txn, meta, false, NULL) < 0)
		return;
	if (meta_kv_get(txn, META_KV_ACCOUNTS, key, &json, NULL) == 0)
		str_copy(out, json, size);
	free(json);
	meta_txn_abort(txn);
}

struct frames {
	struct meta_txn *txn;
	uint64_t seen[16];
	size_t n;
};

static int apply_one(uint64_t seq, const void *entry, size_t len, void *arg)
{
	struct frames *f = arg;

	if (f->n < 16)
		f->seen[f->n++] = seq;
	return changes_apply(f->txn, entry, len, NULL, NULL, NULL);
}

/* Applies what the primary has after since; the last seq applied. */
static int follow(struct meta *primary, struct meta *replica, uint64_t since,
		  struct frames *f, uint64_t *last)
{
	uint64_t head;
	int rc;

	memset(f, 0, sizeof(*f));
	if (meta_txn_begin(&f->txn, replica, true, NULL) < 0)
		return -1;
	meta_txn_unlogged(f->txn);
	rc = changes_read(primary, since, 1 << 20, apply_one, f, last, &head,
			  NULL);
	if (rc < 0) {
		meta_txn_abort(f->txn);
		return rc;
	}
	return meta_txn_commit(f->txn, NULL);
}

static int test_changes_follow_puts_and_deletes(void)
{
	struct meta *p = NULL, *r = NULL;
	char dp[SCRATCH_LEN] = "", dr[SCRATCH_LEN] = "", v[64];
	char log_id[CHANGES_LOG_ID_LEN + 1];
	struct frames f;
	uint64_t head, last;
	int rc = -1;

	CHECK(scratch_meta(&p, dp, "primary") == 0);
	CHECK(scratch_meta(&r, dr, "replica") == 0);
	CHECK(changes_head(p, &head, log_id, NULL) == 0);
	CHECK(head == 0 && strlen(log_id) == CHANGES_LOG_ID_LEN);
	CHECK(put(p, "alice", "{\"n\":1}") == 0);
	CHECK(put(p, "bob", "{\"n\":2}") == 0);
	CHECK(del(p, "alice") == 0);
	CHECK(del(p, "nobody") == 0);	/* nothing deleted: no entry */
	CHECK(changes_head(p, &head, NULL, NULL) == 0 && head == 3);
	CHECK(follow(p, r, 0, &f, &last) == 0);
	CHECK(f.n == 3 && f.seen[0] == 1 && f.seen[2] == 3 && last == 3);
	get(r, "bob", v, sizeof(v));
	CHECK(!strcmp(v, "{\"n\":2}"));
	get(r, "alice", v, sizeof(v));
	CHECK(!v[0]);
	/* What the replica applied was not logged again. */
	CHECK(changes_head(r, &head, NULL, NULL) == 0 && head == 0);
	/* Nothing new: an empty answer, still at 3. */
	CHECK(follow(p, r, 3, &f, &last) == 0 && f.n == 0 && last == 3);
	CHECK(put(p, "carol", "{\"n\":3}") == 0);
	CHECK(follow(p, r, 3, &f, &last) == 0 && f.n == 1 && last == 4);
	get(r, "carol", v, sizeof(v));
	CHECK(!strcmp(v, "{\"n\":3}"));
	rc = 0;
out:
	meta_free(p);
	meta_free(r);
	rm_rf(dp);
	rm_rf(dr);
	return rc;
}

static int test_changes_outside_the_log_needs_a_snapshot(void)
{
	struct meta *p = NULL;
	char dp[SCRATCH_LEN] = "";
	struct err e = { 0 };
	struct frames f = { 0 };
	uint64_t last, head;
	int rc = -1;

	CHECK(scratch_meta(&p, dp, "primary") == 0);
	CHECK(put(p, "alice", "{}") == 0);
	/* A replica ahead of the log (the primary came back from an older
	 * copy) is told to start again. */
	CHECK(changes_read(p, 7, 1 << 20, apply_one, &f, &last, &head, &e) ==
	      ERR_RANGE);
	CHECK(head == 1);
	rc = 0;
out:
	meta_free(p);
	rm_rf(dp);
	return rc;
}

static int test_changes_snapshot_rebuilds_a_replica(void)
{
	struct meta *p = NULL, *r = NULL;
	char dp[SCRATCH_LEN] = "", dr[SCRATCH_LEN] = "", path[SCRATCH_LEN + 16];
	char v[64], log_id[CHANGES_LOG_ID_LEN + 1], got_id[CHANGES_LOG_ID_LEN + 1];
	struct meta_txn *txn = NULL;
	unsigned char *map = MAP_FAILED;
	struct stat st;
	uint64_t seq = 0, head = 0, applied = 0;
	int fd = -1, rc = -1;

	CHECK(scratch_meta(&p, dp, "primary") == 0);
	CHECK(scratch_meta(&r, dr, "replica") == 0);
	CHECK(put(p, "alice", "{\"n\":1}") == 0);
	CHECK(put(p, "bob", "{\"n\":2}") == 0);
	CHECK(put(r, "stale", "{\"n\":0}") == 0);	/* must go */
	snprintf(path, sizeof(path), "%s/snap", dp);
	CHECK((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0);
	CHECK(changes_snapshot(p, fd, &seq, NULL) == 0 && seq == 2);
	CHECK(fstat(fd, &st) == 0 && st.st_size > 12);
	CHECK((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
			  fd, 0)) != MAP_FAILED);
	CHECK(changes_head(p, &head, log_id, NULL) == 0 && head == seq);
	CHECK(meta_txn_begin(&txn, r, true, NULL) == 0);
	meta_txn_unlogged(txn);
	CHECK(changes_clear(txn, NULL) == 0);
	/* One frame here (small): <seq> <length> <entry>. */
	for (size_t at = 0; at < (size_t)st.st_size;) {
		size_t len = (size_t)map[at + 8] << 24 | (size_t)map[at + 9] << 16 |
			     (size_t)map[at + 10] << 8 | map[at + 11];
		CHECK(changes_apply(txn, map + at + 12, len, NULL, NULL,
				    NULL) == 0);
		at += 12 + len;
	}
	CHECK(changes_applied_set(txn, log_id, seq, NULL) == 0);
	CHECK(meta_txn_commit(txn, NULL) == 0);
	txn = NULL;
	get(r, "alice", v, sizeof(v));
	CHECK(!strcmp(v, "{\"n\":1}"));
	get(r, "stale", v, sizeof(v));
	CHECK(!v[0]);
	CHECK(meta_txn_begin(&txn, r, false, NULL) == 0);
	CHECK(changes_applied_get(txn, got_id, &applied, NULL) == 0);
	CHECK(!strcmp(got_id, log_id) && applied == 2);
	rc = 0;
out:
	meta_txn_abort(txn);
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	meta_free(p);
	meta_free(r);
	rm_rf(dp);
	rm_rf(dr);
	return rc;
}

static int test_changes_malformed_entry_is_refused(void)
{
	static const unsigned char bad[] = { 0, 0, 0, 0, 0, 0, 0, 1,
					     0, 0, 0, 1, 'P', 200, 'x' };
	struct meta *r = NULL;
	struct meta_txn *txn = NULL;
	char dr[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_meta(&r, dr, "replica") == 0);
	CHECK(meta_txn_begin(&txn, r, true, NULL) == 0);
	CHECK(changes_apply(txn, bad, sizeof(bad), NULL, NULL, NULL) ==
	      ERR_CORRUPT);
	CHECK(changes_apply(txn, bad, 5, NULL, NULL, NULL) == ERR_CORRUPT);
	rc = 0;
out:
	meta_txn_abort(txn);
	meta_free(r);
	rm_rf(dr);
	return rc;
}

int main(void)
{
	RUN(test_changes_follow_puts_and_deletes);
	RUN(test_changes_outside_the_log_needs_a_snapshot);
	RUN(test_changes_snapshot_rebuilds_a_replica);
	RUN(test_changes_malformed_entry_is_refused);
	return TEST_REPORT();
}
