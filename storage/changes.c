/*
 * changes.c: the change log of the metadata, see changes.h. An entry is
 *   <8-byte ms time> <4-byte op count> op...
 * and an op
 *   'P' <1-byte db name length> <db name> <4-byte key length> <key>
 *       <4-byte value length> <value>
 *   'D' <1-byte db name length> <db name> <4-byte key length> <key>
 * with numbers big-endian and keys and values exactly as LMDB holds them
 * (version bytes included), so applying an entry is a put or delete per
 * op. Frames on the wire and in snapshots are <8-byte seq> <4-byte
 * length> <entry>.
 */
#include "common/compat.h"

#include <errno.h>
#include <openssl/rand.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/changes.h"
#include "storage/meta_internal.h"
#include "storage/meta_keys.h"

/* Entries dropped per commit once the log is past CHANGES_KEEP: the log
 * shrinks back a little at a time, never in one long transaction. */
#define TRIM_PER_COMMIT 16
#define SNAPSHOT_ENTRY_BYTES (1u << 20)
#define ENTRY_HEAD 12	/* time and op count */

static void be_put(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t be_get(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- collecting a transaction's ops --- */

static bool ops_reserve(struct change_ops *ops, size_t more)
{
	size_t cap = ops->cap ? ops->cap : 256;
	unsigned char *grown;

	if (ops->failed)
		return false;
	while (cap < ops->len + more)
		cap *= 2;
	if (cap == ops->cap)
		return true;
	if (!(grown = realloc(ops->data, cap))) {
		ops->failed = true;
		return false;
	}
	ops->data = grown;
	ops->cap = cap;
	return true;
}

static void ops_add(struct change_ops *ops, const void *data, size_t len)
{
	memcpy(ops->data + ops->len, data, len);
	ops->len += len;
}

static void ops_add_u32(struct change_ops *ops, uint32_t v)
{
	unsigned char b[4];

	be_put(b, v, 4);
	ops_add(ops, b, 4);
}

static void ops_add_op(struct change_ops *ops, const char *db, char kind,
		       const void *key, size_t klen, const void *val,
		       size_t vlen)
{
	size_t dlen = strlen(db);
	size_t need = 2 + dlen + 4 + klen + (kind == 'P' ? 4 + vlen : 0);
	unsigned char head[2] = { (unsigned char)kind, (unsigned char)dlen };

	if (!ops_reserve(ops, need))
		return;
	ops_add(ops, head, 2);
	ops_add(ops, db, dlen);
	ops_add_u32(ops, (uint32_t)klen);
	ops_add(ops, key, klen);
	if (kind == 'P') {
		ops_add_u32(ops, (uint32_t)vlen);
		ops_add(ops, val, vlen);
	}
	ops->count++;
}

void changes_note(struct meta_txn *txn, MDB_dbi dbi, char kind,
		  const MDB_val *key, const void *val, size_t vlen)
{
	const char *db;

	if (!txn->write || txn->unlogged ||
	    !(db = meta_db_name(txn->meta, dbi)))
		return;
	ops_add_op(&txn->ops, db, kind, key->mv_data, key->mv_size, val,
		   vlen);
}

/* --- the log --- */

static int last_seq(MDB_txn *txn, MDB_dbi dbi, MDB_cursor_op op,
		    uint64_t *seq, struct err *err)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*seq = 0;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		return meta_mdb_fail(err, rc, "cannot open the change log");
	rc = mdb_cursor_get(cur, &k, &v, op);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return meta_mdb_fail(err, rc, "cannot read the change log");
	if (k.mv_size != 8)
		return err_set(err, ERR_CORRUPT, "malformed change log key");
	*seq = be_get(k.mv_data, 8);
	return 0;
}

static int trim(MDB_txn *txn, MDB_dbi dbi, uint64_t newest,
		struct err *err)
{
	uint64_t too_old = now_ms() - CHANGES_KEEP_MS;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		return meta_mdb_fail(err, rc, "cannot open the change log");
	for (int i = 0; i < TRIM_PER_COMMIT; i++) {
		uint64_t seq;
		if ((rc = mdb_cursor_get(cur, &k, &v, i ? MDB_NEXT : MDB_FIRST)))
			break;
		if (k.mv_size != 8 || v.mv_size < ENTRY_HEAD ||
		    (seq = be_get(k.mv_data, 8)) == newest)
			break;
		if (seq + CHANGES_KEEP > newest &&
		    be_get(v.mv_data, 8) >= too_old)
			break;
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_fail(err, rc, "cannot trim the change log");
	return 0;
}

int changes_append(struct meta_txn *txn, struct err *err)
{
	struct change_ops *ops = &txn->ops;
	unsigned char kbuf[8];
	MDB_val k = { 8, kbuf }, v;
	uint64_t seq;
	int rc;

	if (ops->failed)
		return err_set(err, ERR_FAIL, "out of memory");
	if (!ops->count)
		return 0;
	if ((rc = last_seq(txn->txn, txn->meta->changes, MDB_LAST, &seq,
			   err)) < 0)
		return rc;
	seq++;
	be_put(kbuf, seq, 8);
	v.mv_size = ENTRY_HEAD + ops->len;
	if ((rc = mdb_put(txn->txn, txn->meta->changes, &k, &v,
			  MDB_APPEND | MDB_RESERVE)))
		return meta_mdb_fail(err, rc, "cannot append to the change log");
	be_put(v.mv_data, now_ms(), 8);
	be_put((unsigned char *)v.mv_data + 8, ops->count, 4);
	memcpy((unsigned char *)v.mv_data + ENTRY_HEAD, ops->data, ops->len);
	return trim(txn->txn, txn->meta->changes, seq, err);
}

static int state_get(MDB_txn *txn, MDB_dbi dbi, const char *name,
		     char *out, size_t size)
{
	MDB_val k = { strlen(name), (void *)name }, v;

	if (mdb_get(txn, dbi, &k, &v) || v.mv_size >= size)
		return ERR_NOTFOUND;
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = '\0';
	return 0;
}

static int state_put(MDB_txn *txn, MDB_dbi dbi, const char *name,
		     const char *value, struct err *err)
{
	MDB_val k = { strlen(name), (void *)name };
	MDB_val v = { strlen(value), (void *)value };
	int rc = mdb_put(txn, dbi, &k, &v, 0);

	return rc ? meta_mdb_fail(err, rc, "cannot write replication state") : 0;
}

int changes_open(struct meta *meta, MDB_txn *txn, struct err *err)
{
	char id[CHANGES_LOG_ID_LEN + 1];
	unsigned char raw[CHANGES_LOG_ID_LEN / 2];
	int rc;

	if ((rc = mdb_dbi_open(txn, META_DB_CHANGES, MDB_CREATE,
			       &meta->changes)) ||
	    (rc = mdb_dbi_open(txn, META_DB_REPLICATION, MDB_CREATE,
			       &meta->replication)))
		return meta_mdb_fail(err, rc, "cannot open the change log");
	if (state_get(txn, meta->replication, "log_id", id, sizeof(id)) == 0)
		return 0;
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return err_set(err, ERR_FAIL, "no random bytes for a log id");
	hex_encode(id, raw, sizeof(raw));
	return state_put(txn, meta->replication, "log_id", id, err);
}

int changes_head(struct meta *meta, uint64_t *seq,
		 char log_id[CHANGES_LOG_ID_LEN + 1], struct err *err)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &txn)))
		return meta_mdb_fail(err, rc, "cannot begin metadata transaction");
	rc = last_seq(txn, meta->changes, MDB_LAST, seq, err);
	if (rc == 0 && log_id &&
	    state_get(txn, meta->replication, "log_id", log_id,
		      CHANGES_LOG_ID_LEN + 1) < 0)
		rc = err_set(err, ERR_CORRUPT, "the change log has no id");
	mdb_txn_abort(txn);
	return rc;
}

int changes_read(struct meta *meta, uint64_t since, size_t max_bytes,
		 changes_frame_fn fn, void *arg, uint64_t *last,
		 uint64_t *head, struct err *err)
{
	uint64_t first;
	unsigned char kbuf[8];
	MDB_val k = { 8, kbuf }, v;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	size_t sent = 0;
	int rc;

	*last = since;
	if ((rc = mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &txn)))
		return meta_mdb_fail(err, rc, "cannot begin metadata transaction");
	if ((rc = last_seq(txn, meta->changes, MDB_LAST, head, err)) < 0 ||
	    (rc = last_seq(txn, meta->changes, MDB_FIRST, &first, err)) < 0)
		goto out;
	if (since > *head || (since < *head && since + 1 < first)) {
		rc = err_set(err, ERR_RANGE, "seq %" PRIu64 " is outside the "
			     "change log (%" PRIu64 "..%" PRIu64 ")", since,
			     first, *head);
		goto out;
	}
	if (since == *head)
		goto out;
	if ((rc = mdb_cursor_open(txn, meta->changes, &cur))) {
		rc = meta_mdb_fail(err, rc, "cannot open the change log");
		goto out;
	}
	be_put(kbuf, since + 1, 8);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t seq = be_get(k.mv_data, 8);
		if (fn(seq, v.mv_data, v.mv_size, arg) < 0) {
			rc = err_set(err, ERR_FAIL, "cannot send the changes");
			goto out;
		}
		*last = seq;
		if ((sent += v.mv_size) >= max_bytes)
			break;
	}
	rc = (rc == 0 || rc == MDB_NOTFOUND) ? 0 :
	     meta_mdb_fail(err, rc, "cannot read the change log");
out:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

/* --- snapshots --- */

static int frame_write(int fd, uint64_t seq, struct change_ops *ops)
{
	unsigned char head[12 + ENTRY_HEAD];

	be_put(head, seq, 8);
	be_put(head + 8, ENTRY_HEAD + ops->len, 4);
	be_put(head + 12, now_ms(), 8);
	be_put(head + 20, ops->count, 4);
	if (write_full(fd, head, sizeof(head)) < 0 ||
	    write_full(fd, ops->data, ops->len) < 0)
		return -1;
	ops->len = 0;
	ops->count = 0;
	return 0;
}

static int snapshot_db(MDB_txn *txn, const struct meta *meta, MDB_dbi dbi,
		       int fd, uint64_t seq, struct change_ops *ops,
		       struct err *err)
{
	const char *name = meta_db_name(meta, dbi);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)))
		return meta_mdb_fail(err, rc, "cannot open cursor");
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		ops_add_op(ops, name, 'P', k.mv_data, k.mv_size, v.mv_data,
			   v.mv_size);
		if (ops->failed) {
			rc = err_set(err, ERR_FAIL, "out of memory");
			break;
		}
		if (ops->len >= SNAPSHOT_ENTRY_BYTES &&
		    frame_write(fd, seq, ops) < 0) {
			rc = err_set(err, ERR_FAIL, "cannot write the snapshot: %s",
				     strerror(errno));
			break;
		}
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc < 0 ? rc : meta_mdb_fail(err, rc, "cannot read metadata");
}

int changes_snapshot(struct meta *meta, int fd, uint64_t *seq,
		     struct err *err)
{
	struct change_ops ops = { 0 };
	MDB_dbi all[3 + META_KV_COUNT];
	size_t n = meta_db_all(meta, all, 3 + META_KV_COUNT);
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &txn)))
		return meta_mdb_fail(err, rc, "cannot begin metadata transaction");
	if ((rc = last_seq(txn, meta->changes, MDB_LAST, seq, err)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = snapshot_db(txn, meta, all[i], fd, *seq, &ops, err);
	if (rc == 0 && ops.count && frame_write(fd, *seq, &ops) < 0)
		rc = err_set(err, ERR_FAIL, "cannot write the snapshot: %s",
			     strerror(errno));
out:
	mdb_txn_abort(txn);
	free(ops.data);
	return rc;
}

/* --- applying --- */

/* Reads n bytes at *p within end; NULL when the entry is too short. */
static const unsigned char *take(const unsigned char **p,
				 const unsigned char *end, size_t n)
{
	const unsigned char *at = *p;

	if ((size_t)(end - at) < n)
		return NULL;
	*p += n;
	return at;
}

static int apply_op(struct meta_txn *txn, const unsigned char **p,
		    const unsigned char *end, changes_op_fn fn, void *arg,
		    struct err *err)
{
	const unsigned char *head, *db, *klen, *key, *vlen = NULL, *val = NULL;
	MDB_val k, v;
	MDB_dbi dbi;
	bool put;
	int rc;

	if (!(head = take(p, end, 2)) || (head[0] != 'P' && head[0] != 'D') ||
	    !(db = take(p, end, head[1])) || !(klen = take(p, end, 4)) ||
	    !(key = take(p, end, be_get(klen, 4))))
		return err_set(err, ERR_CORRUPT, "malformed change entry");
	put = head[0] == 'P';
	if (put && (!(vlen = take(p, end, 4)) ||
		    !(val = take(p, end, be_get(vlen, 4)))))
		return err_set(err, ERR_CORRUPT, "malformed change entry");
	if (meta_db_by_name(txn->meta, (const char *)db, head[1], &dbi) < 0)
		return err_set(err, ERR_CORRUPT, "the change log names a "
			       "database this Haven does not know (%.*s): "
			       "upgrade it to the primary's version",
			       (int)head[1], (const char *)db);
	k.mv_size = be_get(klen, 4);
	k.mv_data = (void *)key;
	if (put) {
		v.mv_size = be_get(vlen, 4);
		v.mv_data = (void *)val;
		rc = mdb_put(txn->txn, dbi, &k, &v, 0);
	} else {
		rc = mdb_del(txn->txn, dbi, &k, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (rc)
		return meta_mdb_fail(err, rc, "cannot apply a change");
	if (fn)
		fn(meta_db_name(txn->meta, dbi), k.mv_data, k.mv_size,
		   put ? v.mv_data : NULL, put ? v.mv_size : 0, put, arg);
	return 0;
}

int changes_apply(struct meta_txn *txn, const void *entry, size_t len,
		  changes_op_fn fn, void *arg, struct err *err)
{
	const unsigned char *p = entry, *end = p + len;
	uint64_t count;
	int rc;

	if (len < ENTRY_HEAD)
		return err_set(err, ERR_CORRUPT, "malformed change entry");
	count = be_get(p + 8, 4);
	p += ENTRY_HEAD;
	for (uint64_t i = 0; i < count; i++)
		if ((rc = apply_op(txn, &p, end, fn, arg, err)) < 0)
			return rc;
	return p == end ? 0 :
	       err_set(err, ERR_CORRUPT, "malformed change entry");
}

int changes_clear(struct meta_txn *txn, struct err *err)
{
	MDB_dbi all[3 + META_KV_COUNT];
	size_t n = meta_db_all(txn->meta, all, 3 + META_KV_COUNT);
	int rc;

	for (size_t i = 0; i < n; i++)
		if ((rc = mdb_drop(txn->txn, all[i], 0)))
			return meta_mdb_fail(err, rc, "cannot clear metadata");
	/* Listings are keyed by commit and still true, but a snapshot is
	 * the moment to drop what may describe commits no longer held. */
	if ((rc = mdb_drop(txn->txn, txn->meta->listings, 0)))
		return meta_mdb_fail(err, rc, "cannot clear listings");
	return 0;
}

int changes_applied_get(struct meta_txn *txn,
			char primary_log_id[CHANGES_LOG_ID_LEN + 1],
			uint64_t *seq, struct err *err)
{
	char text[CHANGES_LOG_ID_LEN + 32], *end;

	if (state_get(txn->txn, txn->meta->replication, "applied", text,
		      sizeof(text)) < 0)
		return err_set(err, ERR_NOTFOUND, "no replication state");
	if (strlen(text) < CHANGES_LOG_ID_LEN + 2 ||
	    text[CHANGES_LOG_ID_LEN] != ' ')
		return err_set(err, ERR_CORRUPT, "malformed replication state");
	memcpy(primary_log_id, text, CHANGES_LOG_ID_LEN);
	primary_log_id[CHANGES_LOG_ID_LEN] = '\0';
	*seq = strtoull(text + CHANGES_LOG_ID_LEN + 1, &end, 10);
	return *end ? err_set(err, ERR_CORRUPT, "malformed replication state")
		    : 0;
}

int changes_applied_set(struct meta_txn *txn, const char *primary_log_id,
			uint64_t seq, struct err *err)
{
	char text[CHANGES_LOG_ID_LEN + 32];

	snprintf(text, sizeof(text), "%.*s %" PRIu64, CHANGES_LOG_ID_LEN,
		 primary_log_id, seq);
	return state_put(txn->txn, txn->meta->replication, "applied", text,
			 err);
}

/* --- the replicas a primary knows --- */

#define REPLICA_KEY "replica/"

static int replica_write(struct meta *meta, const char *id, int64_t wall_ms,
			 bool forget, struct err *err)
{
	char key[128], val[24];
	MDB_val k, v;
	MDB_txn *txn;
	int rc;

	snprintf(key, sizeof(key), REPLICA_KEY "%.64s", id);
	snprintf(val, sizeof(val), "%" PRId64, wall_ms);
	k.mv_size = strlen(key);
	k.mv_data = key;
	v.mv_size = strlen(val);
	v.mv_data = val;
	if ((rc = mdb_txn_begin(meta->env, NULL, 0, &txn)))
		return meta_mdb_fail(err, rc, "cannot begin metadata transaction");
	rc = forget ? mdb_del(txn, meta->replication, &k, NULL) :
		      mdb_put(txn, meta->replication, &k, &v, 0);
	if (rc && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return meta_mdb_fail(err, rc, "cannot write replication state");
	}
	if ((rc = mdb_txn_commit(txn)))
		return meta_mdb_fail(err, rc, "cannot write replication state");
	return 0;
}

int changes_replica_seen(struct meta *meta, const char *id, int64_t wall_ms,
			 struct err *err)
{
	return replica_write(meta, id, wall_ms, false, err);
}

int changes_replica_forget(struct meta *meta, const char *id,
			   struct err *err)
{
	return replica_write(meta, id, 0, true, err);
}

int changes_replicas(struct meta *meta, changes_replica_fn fn, void *arg,
		     struct err *err)
{
	size_t plen = strlen(REPLICA_KEY);
	MDB_val k = { plen, REPLICA_KEY }, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &txn)))
		return meta_mdb_fail(err, rc, "cannot begin metadata transaction");
	if ((rc = mdb_cursor_open(txn, meta->replication, &cur))) {
		mdb_txn_abort(txn);
		return meta_mdb_fail(err, rc, "cannot open cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char id[72], num[24];
		if (k.mv_size <= plen || memcmp(k.mv_data, REPLICA_KEY, plen))
			break;
		if (k.mv_size - plen >= sizeof(id) || v.mv_size >= sizeof(num))
			continue;
		memcpy(id, (char *)k.mv_data + plen, k.mv_size - plen);
		id[k.mv_size - plen] = '\0';
		memcpy(num, v.mv_data, v.mv_size);
		num[v.mv_size] = '\0';
		fn(id, strtoll(num, NULL, 10), arg);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return 0;
}
