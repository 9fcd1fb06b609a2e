/*
 * test_download_rules.c: which file requests count as downloads
 * (stats_counts_download) and the LMDB counters and likes behind them
 * (storage/stats.h).
 */
#include "common/compat.h"

#include "common/err.h"
#include "storage/stats.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

static const char repo_id[] = "0123456789abcdef0123456789abcdef";

static int test_model_query_files(void)
{
	CHECK(stats_counts_download("model", "config.json", false));
	CHECK(stats_counts_download("model", "config.yaml", false));
	CHECK(stats_counts_download("model", "hyperparams.yaml", false));
	CHECK(stats_counts_download("model", "params.json", false));
	CHECK(stats_counts_download("model", "meta.yaml", false));
	CHECK(!stats_counts_download("model", "sub/config.json", false));
	CHECK(!stats_counts_download("model", "model.safetensors", false));
	CHECK(!stats_counts_download("model", "model-00001-of-00002.safetensors", false));
	CHECK(!stats_counts_download("model", "README.md", false));
	CHECK(!stats_counts_download("model", "tokenizer.json", false));
	CHECK(!stats_counts_download("model", "model_index.json", false));
	return 0;
out:
	return 1;
}

static int test_model_gguf(void)
{
	CHECK(stats_counts_download("model", "q4.gguf", false));
	CHECK(stats_counts_download("model", "deep/dir/Q8_0.GGUF", false));
	CHECK(!stats_counts_download("model", "gguf", false));
	return 0;
out:
	return 1;
}

static int test_diffusers(void)
{
	CHECK(stats_counts_download("model", "model_index.json", true));
	CHECK(stats_counts_download("model", "modular_model_index.json", true));
	CHECK(stats_counts_download("model", "v1.safetensors", true));
	CHECK(stats_counts_download("model", "v1.ckpt", true));
	CHECK(stats_counts_download("model", "v1.bin", true));
	CHECK(!stats_counts_download("model", "unet/diffusion.safetensors", true));
	CHECK(!stats_counts_download("model", "unet/config.json", true));
	CHECK(stats_counts_download("model", "config.json", true));
	return 0;
out:
	return 1;
}

static int test_other_types(void)
{
	CHECK(stats_counts_download("dataset", "data/train-0000.parquet", false));
	CHECK(stats_counts_download("dataset", "README.md", false));
	CHECK(!stats_counts_download("space", "config.json", false));
	CHECK(!stats_counts_download("space", "app.py", false));
	return 0;
out:
	return 1;
}

static int test_day(void)
{
	char day[STATS_DAY_LEN + 1];

	stats_day(day, 0);
	CHECK(!strcmp(day, "1970-01-01"));
	stats_day(day, 1700000000);
	CHECK(!strcmp(day, "2023-11-14"));
	return 0;
out:
	return 1;
}

static int test_counters(void)
{
	char dir[SCRATCH_LEN] = "";
	struct meta *meta = NULL;
	struct meta_txn *txn = NULL;
	struct err err = { 0 };
	uint64_t recent = 9, total = 9, likes = 9, recent_likes = 9;
	time_t now = 1700000000;
	char today[STATS_DAY_LEN + 1], old[STATS_DAY_LEN + 1];
	int ok = 1;

	stats_day(today, now);
	stats_day(old, now - 40 * 86400);
	CHECK(scratch_meta(&meta, dir, "stats") == 0);
	CHECK(meta_txn_begin(&txn, meta, true, &err) == 0);
	CHECK(stats_add(txn, repo_id, today, 3, &err) == 0);
	CHECK(stats_add(txn, repo_id, today, 2, &err) == 0);
	CHECK(stats_add(txn, repo_id, old, 7, &err) == 0);
	CHECK(stats_like_set(txn, repo_id, "Alice", true, &err) == 0);
	CHECK(stats_like_set(txn, repo_id, "alice", true, &err) == 0);
	CHECK(stats_like_set(txn, repo_id, "bob", true, &err) == 0);
	CHECK(stats_like_set(txn, repo_id, "bob", false, &err) == 0);
	CHECK(stats_like_set(txn, repo_id, "carol", false, &err) == 0);
	CHECK(meta_txn_commit(txn, &err) == 0);
	txn = NULL;
	CHECK(meta_txn_begin(&txn, meta, false, &err) == 0);
	CHECK(stats_downloads(txn, repo_id, now, 30, &recent, &total, &err) == 0);
	CHECK(recent == 5);
	CHECK(total == 12);
	CHECK(stats_downloads(txn, "ffffffffffffffffffffffffffffffff", now, 30,
			      &recent, &total, &err) == 0);
	CHECK(recent == 0 && total == 0);
	CHECK(stats_likes(txn, repo_id, 0, &likes, &recent_likes, &err) == 0);
	CHECK(likes == 1 && recent_likes == 1);
	ok = 0;
out:
	meta_txn_abort(txn);
	meta_free(meta);
	rm_rf(dir);
	return ok;
}

int main(void)
{
	RUN(test_model_query_files);
	RUN(test_model_gguf);
	RUN(test_diffusers);
	RUN(test_other_types);
	RUN(test_day);
	RUN(test_counters);
	return TEST_REPORT();
}
