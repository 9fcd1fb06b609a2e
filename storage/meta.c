/*
 * meta.c: the LMDB environment and its records. MDB_* codes are turned
 * into Haven's codes here, with mdb_strerror's text in the message.
 */
#include "common/compat.h"

#include <errno.h>
#include <jansson.h>
#include <lmdb.h>

#include "common/util.h"
#include "storage/meta.h"
#include "storage/meta_internal.h"
#include "storage/meta_keys.h"

static const char *const kv_names[META_KV_COUNT] = {
	[META_KV_ACCOUNTS] = META_DB_ACCOUNTS,
	[META_KV_MEMBERS] = META_DB_MEMBERS,
	[META_KV_TOKENS] = META_DB_TOKENS,
	[META_KV_ACCESS] = META_DB_ACCESS,
	[META_KV_LFS_CLAIMS] = META_DB_LFS_CLAIMS,
	[META_KV_DOWNLOADS] = META_DB_DOWNLOADS,
	[META_KV_LIKES] = META_DB_LIKES,
	[META_KV_LINEAGE_UP] = META_DB_LINEAGE_UP,
	[META_KV_LINEAGE_DOWN] = META_DB_LINEAGE_DOWN,
	[META_KV_CARD_ERRORS] = META_DB_CARD_ERRORS,
	[META_KV_USER_LIKES] = META_DB_USER_LIKES,
	[META_KV_MIRRORS] = META_DB_MIRRORS,
	[META_KV_GIT_REFS] = META_DB_GIT_REFS,
};

static int mdb_fail(struct err *err, int rc, const char *what);

int meta_mdb_fail(struct err *err, int rc, const char *what)
{
	return mdb_fail(err, rc, what);
}

const char *meta_db_name(const struct meta *meta, MDB_dbi dbi)
{
	if (dbi == meta->repos)
		return META_DB_REPOS;
	if (dbi == meta->repo_ids)
		return META_DB_REPO_IDS;
	if (dbi == meta->redirects)
		return META_DB_REDIRECTS;
	for (int i = 0; i < META_KV_COUNT; i++)
		if (dbi == meta->kv[i])
			return kv_names[i];
	return NULL;
}

size_t meta_db_all(const struct meta *meta, MDB_dbi *out, size_t max)
{
	size_t n = 0;

	if (max < 3 + META_KV_COUNT)
		return 0;
	out[n++] = meta->repos;
	out[n++] = meta->repo_ids;
	out[n++] = meta->redirects;
	for (int i = 0; i < META_KV_COUNT; i++)
		out[n++] = meta->kv[i];
	return n;
}

int meta_db_by_name(const struct meta *meta, const char *name, size_t len,
		    MDB_dbi *out)
{
	MDB_dbi all[3 + META_KV_COUNT];
	size_t n = meta_db_all(meta, all, 3 + META_KV_COUNT);

	for (size_t i = 0; i < n; i++) {
		const char *have = meta_db_name(meta, all[i]);
		if (strlen(have) == len && !memcmp(have, name, len)) {
			*out = all[i];
			return 0;
		}
	}
	return -1;
}

static int mdb_fail(struct err *err, int rc, const char *what)
{
	int code = ERR_FAIL;

	if (rc == MDB_NOTFOUND)
		code = ERR_NOTFOUND;
	else if (rc == MDB_KEYEXIST)
		code = ERR_EXISTS;
	else if (rc == MDB_MAP_FULL)
		code = ERR_TOOBIG;
	return err_set(err, code, "%s: %s", what, mdb_strerror(rc));
}

static int open_dbs(struct meta *meta, struct err *err)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(meta->env, NULL, 0, &txn)))
		return mdb_fail(err, rc, "cannot begin metadata transaction");
	if ((rc = mdb_dbi_open(txn, META_DB_REPOS, MDB_CREATE, &meta->repos)) ||
	    (rc = mdb_dbi_open(txn, META_DB_REPO_IDS, MDB_CREATE, &meta->repo_ids)) ||
	    (rc = mdb_dbi_open(txn, META_DB_LISTINGS, MDB_CREATE, &meta->listings)) ||
	    (rc = mdb_dbi_open(txn, META_DB_REDIRECTS, MDB_CREATE, &meta->redirects))) {
		mdb_txn_abort(txn);
		return mdb_fail(err, rc, "cannot open metadata databases");
	}
	for (int i = 0; i < META_KV_COUNT; i++) {
		if ((rc = mdb_dbi_open(txn, kv_names[i], MDB_CREATE, &meta->kv[i]))) {
			mdb_txn_abort(txn);
			return mdb_fail(err, rc, "cannot open account databases");
		}
	}
	if ((rc = changes_open(meta, txn, err)) < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)))
		return mdb_fail(err, rc, "cannot commit metadata databases");
	return 0;
}

int meta_open(struct meta **out, const char *data_dir, size_t map_size,
	      struct err *err)
{
	struct meta *meta = calloc(1, sizeof(*meta));
	char path[4096];
	int rc;

	if (!meta)
		return err_set(err, ERR_FAIL, "out of memory");
	snprintf(path, sizeof(path), "%s/meta", data_dir);
	if (mkdir_p(path) < 0) {
		free(meta);
		return err_set(err, ERR_FAIL, "cannot create '%s': %s", path,
			       strerror(errno));
	}
	if ((rc = mdb_env_create(&meta->env)) ||
	    (rc = mdb_env_set_maxdbs(meta->env, 64)) ||
	    (rc = mdb_env_set_mapsize(meta->env, map_size)) ||
	    (rc = mdb_env_set_maxreaders(meta->env, 512)) ||
	    (rc = mdb_env_open(meta->env, path, MDB_NOTLS, 0644))) {
		err_set(err, ERR_FAIL, "cannot open metadata store '%s': %s",
			path, mdb_strerror(rc));
		mdb_env_close(meta->env);
		free(meta);
		return ERR_FAIL;
	}
	if ((rc = open_dbs(meta, err)) < 0) {
		meta_free(meta);
		return rc;
	}
	*out = meta;
	return 0;
}

void meta_free(struct meta *meta)
{
	if (!meta)
		return;
	mdb_env_close(meta->env);
	free(meta);
}

int meta_txn_begin(struct meta_txn **out, struct meta *meta, bool write,
		   struct err *err)
{
	struct meta_txn *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return err_set(err, ERR_FAIL, "out of memory");
	t->meta = meta;
	t->write = write;
	if ((rc = mdb_txn_begin(meta->env, NULL, write ? 0 : MDB_RDONLY,
				&t->txn))) {
		free(t);
		return mdb_fail(err, rc, "cannot begin metadata transaction");
	}
	*out = t;
	return 0;
}

int meta_txn_commit(struct meta_txn *txn, struct err *err)
{
	int rc;

	/* The log entry joins the transaction it describes: a replica never
	 * sees a change that was not committed, nor misses one that was. */
	if ((rc = changes_append(txn, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	rc = mdb_txn_commit(txn->txn);
	free(txn->ops.data);
	free(txn);
	return rc ? mdb_fail(err, rc, "cannot commit metadata") : 0;
}

void meta_txn_abort(struct meta_txn *txn)
{
	if (!txn)
		return;
	mdb_txn_abort(txn->txn);
	free(txn->ops.data);
	free(txn);
}

void meta_txn_unlogged(struct meta_txn *txn)
{
	txn->unlogged = true;
}

/* Room for V1 <type> '/' <name> and its terminator. */
#define REPO_KEY_MAX (REPO_NAME_MAX + 16)

/* Builds V1 <type> '/' <lower(name)>; returns its length or ERR_INVALID. */
static int repo_key(char *out, size_t size, const char *type, const char *name)
{
	char lower[REPO_NAME_MAX];
	int n;

	if (str_lower(lower, sizeof(lower), name) < 0)
		return ERR_INVALID;
	n = snprintf(out, size, "%c%s/%s", META_KEY_V1, type, lower);
	return (n < 0 || (size_t)n >= size) ? ERR_INVALID : n;
}

static int put_text(struct meta_txn *txn, MDB_dbi dbi, MDB_val *key,
		    const char *text, unsigned flags, struct err *err)
{
	size_t len = strlen(text);
	MDB_val val = { .mv_size = len + 1, .mv_data = NULL };
	int rc;

	if ((rc = mdb_put(txn->txn, dbi, key, &val, flags | MDB_RESERVE)))
		return mdb_fail(err, rc, "cannot write metadata");
	((char *)val.mv_data)[0] = META_VAL_V1;
	memcpy((char *)val.mv_data + 1, text, len);
	changes_note(txn, dbi, 'P', key, val.mv_data, val.mv_size);
	return 0;
}

/* Copies the string value at *p (just after its opening quote) into out;
 * -1 when it has an escape or does not fit (jansson then reads it). */
static int scan_string(const char **p, const char *end, char *out,
		       size_t size)
{
	const char *s = *p, *q = s;

	while (q < end && *q != '"' && *q != '\\')
		q++;
	if (q >= end || *q != '"' || (size_t)(q - s) >= size)
		return -1;
	memcpy(out, s, (size_t)(q - s));
	out[q - s] = '\0';
	*p = q + 1;
	return 0;
}

/* Reads a record as record_json writes it (a flat object of plain
 * strings, one integer and a boolean) without building a JSON tree:
 * listings and lineage walks read one per repository. -1 for anything
 * else, which record_from_json then hands to jansson. */
static int record_scan(struct repo_record *rec, const char *p, size_t len)
{
	const char *end = p + len;
	unsigned seen = 0;

	memset(rec, 0, sizeof(*rec));
	if (p >= end || *p++ != '{')
		return -1;
	while (p < end && *p == '"') {
		const char *key = ++p;
		size_t klen;

		while (p < end && *p != '"' && *p != '\\')
			p++;
		if (p + 2 >= end || *p != '"' || p[1] != ':')
			return -1;
		klen = (size_t)(p - key);
		p += 2;
#define KEY_IS(k) (klen == sizeof(k) - 1 && !memcmp(key, k, klen))
		if (*p == '"') {
			char *out;
			size_t size;
			p++;
			if (KEY_IS("id")) {
				out = rec->id, size = sizeof(rec->id), seen |= 1;
			} else if (KEY_IS("type")) {
				out = rec->type, size = sizeof(rec->type), seen |= 2;
			} else if (KEY_IS("name")) {
				out = rec->name, size = sizeof(rec->name), seen |= 4;
			} else if (KEY_IS("gated")) {
				out = rec->gated, size = sizeof(rec->gated);
			} else {
				return -1;
			}
			if (scan_string(&p, end, out, size) < 0)
				return -1;
		} else if (KEY_IS("created")) {
			char num[24], *num_end;
			size_t n = 0;
			while (p + n < end && n < sizeof(num) - 1 &&
			       (p[n] == '-' || (p[n] >= '0' && p[n] <= '9')))
				n++;
			memcpy(num, p, n);
			num[n] = '\0';
			rec->created = strtoll(num, &num_end, 10);
			if (!n || num_end != num + n)
				return -1;
			p += n;
			seen |= 8;
		} else if (KEY_IS("private") && end - p >= 4 && !memcmp(p, "true", 4)) {
			rec->private = true;
			p += 4;
		} else if (KEY_IS("private") && end - p >= 5 && !memcmp(p, "false", 5)) {
			p += 5;
		} else {
			return -1;
		}
#undef KEY_IS
		if (p < end && *p == ',')
			p++;
		else
			break;
	}
	return (seen == 15 && p + 1 == end && *p == '}') ? 0 : -1;
}

static int record_from_json(struct repo_record *rec, const char *text,
			    size_t len, struct err *err)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, 0, &jerr);
	const char *id = NULL, *type = NULL, *name = NULL, *gated = NULL;
	json_int_t created = 0;
	int priv = 0;

	if (!doc || json_unpack(doc, "{s:s, s:s, s:s, s:I, s?b, s?s}", "id", &id,
				"type", &type, "name", &name, "created",
				&created, "private", &priv, "gated", &gated)) {
		json_decref(doc);
		return err_set(err, ERR_CORRUPT, "malformed repository record");
	}
	memset(rec, 0, sizeof(*rec));
	str_copy(rec->id, id, sizeof(rec->id));
	str_copy(rec->type, type, sizeof(rec->type));
	str_copy(rec->name, name, sizeof(rec->name));
	str_copy(rec->gated, gated ? gated : "", sizeof(rec->gated));
	rec->created = created;
	rec->private = priv;
	json_decref(doc);
	return 0;
}

static int record_from_val(struct repo_record *rec, MDB_val *val,
			   struct err *err)
{
	if (val->mv_size < 1 || ((char *)val->mv_data)[0] != META_VAL_V1)
		return err_set(err, ERR_CORRUPT,
			       "repository record has an unknown version");
	if (record_scan(rec, (char *)val->mv_data + 1, val->mv_size - 1) == 0)
		return 0;
	return record_from_json(rec, (char *)val->mv_data + 1,
				val->mv_size - 1, err);
}

/* The JSON text of a record, malloc'd, or NULL when out of memory. */
static char *record_json(const struct repo_record *rec)
{
	json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:b, s:s}", "id", rec->id,
				"type", rec->type, "name", rec->name, "created",
				(json_int_t)rec->created, "private", rec->private,
				"gated", rec->gated);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	return text;
}

/* Finds the stored record of type/name: its key (in kbuf) and value.
 * ERR_NOREPO when there is none. */
static int record_find(struct meta_txn *txn, const char *type,
		       const char *name, char kbuf[REPO_KEY_MAX], MDB_val *key,
		       MDB_val *val, struct err *err)
{
	int n = repo_key(kbuf, REPO_KEY_MAX, type, name);
	int rc;

	if (n < 0)
		return err_set(err, ERR_NOREPO, "Repository not found");
	key->mv_data = kbuf;
	key->mv_size = (size_t)n;
	rc = mdb_get(txn->txn, txn->meta->repos, key, val);
	if (rc == MDB_NOTFOUND)
		return err_set(err, ERR_NOREPO, "Repository not found");
	if (rc)
		return mdb_fail(err, rc, "cannot read repository");
	return 0;
}

int meta_repo_get(struct meta_txn *txn, const char *type, const char *name,
		  struct repo_record *out, struct err *err)
{
	char kbuf[REPO_KEY_MAX];
	MDB_val key, val;
	int rc;

	if ((rc = record_find(txn, type, name, kbuf, &key, &val, err)) < 0)
		return rc;
	return record_from_val(out, &val, err);
}

int meta_repo_get_by_id(struct meta_txn *txn, const char *id,
			struct repo_record *out, struct err *err)
{
	char kbuf[REPO_ID_LEN + 2];
	MDB_val key, val;
	int rc;

	snprintf(kbuf, sizeof(kbuf), "%c%s", META_KEY_V1, id);
	key.mv_data = kbuf;
	key.mv_size = strlen(kbuf);
	rc = mdb_get(txn->txn, txn->meta->repo_ids, &key, &val);
	if (rc == MDB_NOTFOUND)
		return err_set(err, ERR_NOREPO, "Repository not found");
	if (rc)
		return mdb_fail(err, rc, "cannot read repository id");
	key.mv_data = (char *)val.mv_data + 1;
	key.mv_size = val.mv_size - 1; /* after the version byte */
	rc = mdb_get(txn->txn, txn->meta->repos, &key, &val);
	if (rc)
		return err_set(err, ERR_CORRUPT,
			       "repository id '%s' points at a missing record",
			       id);
	return record_from_val(out, &val, err);
}

int meta_repo_insert(struct meta_txn *txn, const struct repo_record *rec,
		     struct err *err)
{
	char kbuf[REPO_KEY_MAX], idbuf[REPO_ID_LEN + 2];
	int n = repo_key(kbuf, sizeof(kbuf), rec->type, rec->name);
	char *text;
	MDB_val key, idkey;
	int rc;

	if (n < 0)
		return err_set(err, ERR_INVALID, "repository name too long");
	key.mv_data = kbuf;
	key.mv_size = (size_t)n;
	if (!(text = record_json(rec)))
		return err_set(err, ERR_FAIL, "out of memory");
	rc = put_text(txn, txn->meta->repos, &key, text, MDB_NOOVERWRITE,
		      err);
	free(text);
	if (rc == ERR_EXISTS)
		return err_set(err, ERR_EXISTS, "repository '%s' already exists",
			       rec->name);
	if (rc < 0)
		return rc;
	snprintf(idbuf, sizeof(idbuf), "%c%s", META_KEY_V1, rec->id);
	idkey.mv_data = idbuf;
	idkey.mv_size = strlen(idbuf);
	kbuf[n] = '\0';
	return put_text(txn, txn->meta->repo_ids, &idkey, kbuf + 0,
			MDB_NOOVERWRITE, err);
}

int meta_repo_foreach(struct meta_txn *txn, const char *type,
		      meta_repo_fn fn, void *arg, struct err *err)
{
	MDB_cursor *cur;
	MDB_val key, val;
	char prefix[16];
	size_t plen;
	int rc, op = MDB_SET_RANGE;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%c%s/", META_KEY_V1,
				type ? type : "");
	if (!type)
		plen = 1;
	if ((rc = mdb_cursor_open(txn->txn, txn->meta->repos, &cur)))
		return mdb_fail(err, rc, "cannot open cursor");
	key.mv_data = prefix;
	key.mv_size = plen;
	while ((rc = mdb_cursor_get(cur, &key, &val, (MDB_cursor_op)op)) == 0) {
		struct repo_record rec;
		op = MDB_NEXT;
		if (key.mv_size < plen || memcmp(key.mv_data, prefix, plen))
			break;
		if ((rc = record_from_val(&rec, &val, err)) < 0)
			break;
		if ((rc = fn(&rec, arg)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc;
}

int meta_listing_get(struct meta_txn *txn, const char *commit_hex,
		     char **json_out, struct err *err)
{
	char kbuf[48];
	MDB_val key, val;
	char *copy;
	int rc;

	snprintf(kbuf, sizeof(kbuf), "%c%s", META_KEY_V1, commit_hex);
	key.mv_data = kbuf;
	key.mv_size = strlen(kbuf);
	rc = mdb_get(txn->txn, txn->meta->listings, &key, &val);
	if (rc == MDB_NOTFOUND)
		return ERR_NOTFOUND;
	if (rc)
		return mdb_fail(err, rc, "cannot read listing");
	if (val.mv_size < 2 || ((char *)val.mv_data)[0] != META_VAL_V1)
		return ERR_NOTFOUND; /* unknown version: rebuild it */
	copy = malloc(val.mv_size);
	if (!copy)
		return err_set(err, ERR_FAIL, "out of memory");
	memcpy(copy, (char *)val.mv_data + 1, val.mv_size - 1);
	copy[val.mv_size - 1] = '\0';
	*json_out = copy;
	return 0;
}

int meta_listing_put(struct meta_txn *txn, const char *commit_hex,
		     const char *json, struct err *err)
{
	char kbuf[48];
	MDB_val key;

	snprintf(kbuf, sizeof(kbuf), "%c%s", META_KEY_V1, commit_hex);
	key.mv_data = kbuf;
	key.mv_size = strlen(kbuf);
	return put_text(txn, txn->meta->listings, &key, json, 0, err);
}

int meta_stat(struct meta *meta, size_t *map_size, size_t *used_bytes,
	      struct err *err)
{
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	if ((rc = mdb_env_info(meta->env, &info)) ||
	    (rc = mdb_env_stat(meta->env, &st)))
		return mdb_fail(err, rc, "cannot read metadata statistics");
	*map_size = info.me_mapsize;
	*used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
	return 0;
}

int meta_repo_update(struct meta_txn *txn, const struct repo_record *rec,
		     struct err *err)
{
	char kbuf[REPO_KEY_MAX];
	MDB_val key, val;
	char *text;
	int rc;

	if ((rc = record_find(txn, rec->type, rec->name, kbuf, &key, &val,
			      err)) < 0)
		return rc;
	if (!(text = record_json(rec)))
		return err_set(err, ERR_FAIL, "out of memory");
	rc = put_text(txn, txn->meta->repos, &key, text, 0, err);
	free(text);
	return rc;
}

/* Builds V1 <key> for the account databases; ERR_INVALID when too long. */
static int kv_key(char *out, size_t size, const char *key, MDB_val *val)
{
	int n = snprintf(out, size, "%c%s", META_KEY_V1, key);

	if (n < 0 || (size_t)n >= size || n > 511) /* LMDB's default key limit */
		return ERR_INVALID;
	val->mv_data = out;
	val->mv_size = (size_t)n;
	return 0;
}

/* Copies a V1 value into a malloc'd string; ERR_CORRUPT for another
 * version. */
static int kv_copy(char **out, const MDB_val *val, struct err *err)
{
	if (val->mv_size < 1 || ((char *)val->mv_data)[0] != META_VAL_V1)
		return err_set(err, ERR_CORRUPT, "account record has an unknown "
			       "version");
	if (!(*out = malloc(val->mv_size)))
		return err_set(err, ERR_FAIL, "out of memory");
	memcpy(*out, (char *)val->mv_data + 1, val->mv_size - 1);
	(*out)[val->mv_size - 1] = '\0';
	return 0;
}

int meta_kv_get(struct meta_txn *txn, enum meta_kv db, const char *key,
		char **json_out, struct err *err)
{
	char kbuf[520];
	MDB_val k, val;
	int rc;

	*json_out = NULL;
	if (kv_key(kbuf, sizeof(kbuf), key, &k) < 0)
		return err_set(err, ERR_NOTFOUND, "no such record");
	rc = mdb_get(txn->txn, txn->meta->kv[db], &k, &val);
	if (rc == MDB_NOTFOUND)
		return err_set(err, ERR_NOTFOUND, "no such record");
	if (rc)
		return mdb_fail(err, rc, "cannot read account data");
	return kv_copy(json_out, &val, err);
}

int meta_kv_put(struct meta_txn *txn, enum meta_kv db, const char *key,
		const char *json, bool create_only, struct err *err)
{
	char kbuf[520];
	MDB_val k;

	if (kv_key(kbuf, sizeof(kbuf), key, &k) < 0)
		return err_set(err, ERR_INVALID, "key too long");
	return put_text(txn, txn->meta->kv[db], &k, json,
			create_only ? MDB_NOOVERWRITE : 0, err);
}

int meta_kv_foreach(struct meta_txn *txn, enum meta_kv db, const char *prefix,
		    meta_kv_fn fn, void *arg, struct err *err)
{
	char kbuf[520], name[520];
	MDB_cursor *cur;
	MDB_val key, val;
	size_t plen;
	int rc, op = MDB_SET_RANGE;

	if (kv_key(kbuf, sizeof(kbuf), prefix, &key) < 0)
		return err_set(err, ERR_INVALID, "key too long");
	plen = key.mv_size;
	if ((rc = mdb_cursor_open(txn->txn, txn->meta->kv[db], &cur)))
		return mdb_fail(err, rc, "cannot open cursor");
	while ((rc = mdb_cursor_get(cur, &key, &val, (MDB_cursor_op)op)) == 0) {
		char *json = NULL;
		op = MDB_NEXT;
		if (key.mv_size < plen || memcmp(key.mv_data, kbuf, plen))
			break;
		if (key.mv_size >= sizeof(name))
			continue;
		memcpy(name, (char *)key.mv_data + 1, key.mv_size - 1);
		name[key.mv_size - 1] = '\0';
		if ((rc = kv_copy(&json, &val, err)) < 0)
			break;
		rc = fn(name, json, arg);
		free(json);
		if (rc != 0) {
			mdb_cursor_close(cur);
			return rc;
		}
	}
	mdb_cursor_close(cur);
	if (rc > 0 && rc != MDB_NOTFOUND)
		return mdb_fail(err, rc, "cannot read account data");
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* --- repository delete, rename, and the redirects a rename leaves --- */

static int del_key(struct meta_txn *txn, MDB_dbi dbi, void *data, size_t len,
		   struct err *err)
{
	MDB_val key = { .mv_size = len, .mv_data = data };
	int rc = mdb_del(txn->txn, dbi, &key, NULL);

	if (rc && rc != MDB_NOTFOUND)
		return mdb_fail(err, rc, "cannot delete metadata");
	if (!rc)
		changes_note(txn, dbi, 'D', &key, NULL, 0);
	return 0;
}

int meta_kv_del(struct meta_txn *txn, enum meta_kv db, const char *key,
		struct err *err)
{
	char kbuf[520];
	MDB_val k;

	if (kv_key(kbuf, sizeof(kbuf), key, &k) < 0)
		return 0;	/* too long to have been stored */
	return del_key(txn, txn->meta->kv[db], k.mv_data, k.mv_size, err);
}

/* Deletes every redirect that leads to repository id. */
static int del_redirects_to(struct meta_txn *txn, const char *id,
			    struct err *err)
{
	MDB_cursor *cur;
	MDB_val key, val;
	size_t idlen = strlen(id);
	int rc;

	if ((rc = mdb_cursor_open(txn->txn, txn->meta->redirects, &cur)))
		return mdb_fail(err, rc, "cannot open cursor");
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
		if (val.mv_size != idlen + 1 ||
		    memcmp((char *)val.mv_data + 1, id, idlen))
			continue;
		changes_note(txn, txn->meta->redirects, 'D', &key, NULL, 0);
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return mdb_fail(err, rc, "cannot delete redirects");
	return 0;
}

int meta_repo_delete(struct meta_txn *txn, const struct repo_record *rec,
		     struct err *err)
{
	char kbuf[REPO_KEY_MAX], idbuf[REPO_ID_LEN + 2];
	int n = repo_key(kbuf, sizeof(kbuf), rec->type, rec->name);
	int rc;

	if (n < 0)
		return err_set(err, ERR_NOREPO, "Repository not found");
	snprintf(idbuf, sizeof(idbuf), "%c%s", META_KEY_V1, rec->id);
	if ((rc = del_key(txn, txn->meta->repos, kbuf, (size_t)n, err)) < 0 ||
	    (rc = del_key(txn, txn->meta->repo_ids, idbuf, strlen(idbuf),
			  err)) < 0)
		return rc;
	return del_redirects_to(txn, rec->id, err);
}

int meta_repo_rename(struct meta_txn *txn, const struct repo_record *rec,
		     const char *new_name, struct err *err)
{
	char oldk[REPO_KEY_MAX], newk[REPO_KEY_MAX];
	char idbuf[REPO_ID_LEN + 2];
	struct repo_record moved = *rec;
	int on = repo_key(oldk, sizeof(oldk), rec->type, rec->name);
	int nn = repo_key(newk, sizeof(newk), rec->type, new_name);
	MDB_val okey = { .mv_size = (size_t)on, .mv_data = oldk };
	int rc;

	if (on < 0 || nn < 0 || strlen(new_name) >= sizeof(moved.name))
		return err_set(err, ERR_INVALID, "repository name too long");
	str_copy(moved.name, new_name, sizeof(moved.name));
	/* Only the case changes: the key stays, the record is rewritten. */
	if (on == nn && !memcmp(oldk, newk, (size_t)on))
		return meta_repo_update(txn, &moved, err);
	/* The id keeps its git directory; repo_ids points at the new key,
	 * and the old key redirects to the id. */
	snprintf(idbuf, sizeof(idbuf), "%c%s", META_KEY_V1, rec->id);
	if ((rc = del_key(txn, txn->meta->repos, oldk, (size_t)on, err)) < 0 ||
	    (rc = del_key(txn, txn->meta->repo_ids, idbuf, strlen(idbuf),
			  err)) < 0 ||
	    (rc = meta_repo_insert(txn, &moved, err)) < 0 ||
	    (rc = del_key(txn, txn->meta->redirects, newk, (size_t)nn,
			  err)) < 0)
		return rc;
	return put_text(txn, txn->meta->redirects, &okey, rec->id, 0, err);
}

int meta_redirect_get(struct meta_txn *txn, const char *type,
		      const char *name, struct repo_record *out,
		      struct err *err)
{
	char kbuf[REPO_KEY_MAX], id[REPO_ID_LEN + 1];
	int n = repo_key(kbuf, sizeof(kbuf), type, name);
	MDB_val key, val;
	int rc;

	if (n < 0)
		return err_set(err, ERR_NOREPO, "Repository not found");
	key.mv_data = kbuf;
	key.mv_size = (size_t)n;
	rc = mdb_get(txn->txn, txn->meta->redirects, &key, &val);
	if (rc == MDB_NOTFOUND || (!rc && val.mv_size != REPO_ID_LEN + 1))
		return err_set(err, ERR_NOREPO, "Repository not found");
	if (rc)
		return mdb_fail(err, rc, "cannot read redirect");
	memcpy(id, (char *)val.mv_data + 1, REPO_ID_LEN);
	id[REPO_ID_LEN] = '\0';
	return meta_repo_get_by_id(txn, id, out, err);
}
