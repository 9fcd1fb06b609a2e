/*
 * lfs_claims.c: see lfs_claims.h. One short transaction per call.
 */
#include "common/compat.h"

#include <stdio.h>
#include <time.h>

#include "storage/lfs_claims.h"

static void claim_key(char *out, size_t size, const char *repo_id,
		      const char *sha256)
{
	snprintf(out, size, "%s/%s", repo_id, sha256);
}

int lfs_claim_add(struct meta *meta, const char *repo_id, const char *sha256,
		  struct err *err)
{
	struct meta_txn *txn = NULL;
	char key[128], val[64];
	int rc;

	if (lfs_claim_has(meta, repo_id, sha256))
		return 0;
	claim_key(key, sizeof(key), repo_id, sha256);
	snprintf(val, sizeof(val), "{\"time\":%lld}", (long long)time(NULL));
	if ((rc = meta_txn_begin(&txn, meta, true, err)) < 0)
		return rc;
	if ((rc = meta_kv_put(txn, META_KV_LFS_CLAIMS, key, val, false, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	return meta_txn_commit(txn, err);
}

bool lfs_claim_has(struct meta *meta, const char *repo_id, const char *sha256)
{
	struct meta_txn *txn = NULL;
	char key[128], *json = NULL;
	bool found;

	claim_key(key, sizeof(key), repo_id, sha256);
	if (meta_txn_begin(&txn, meta, false, NULL) < 0)
		return false;
	found = meta_kv_get(txn, META_KV_LFS_CLAIMS, key, &json, NULL) == 0;
	meta_txn_abort(txn);
	free(json);
	return found;
}
