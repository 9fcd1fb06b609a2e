/*
 * test_blob_migrate.c: what a blob migration stands on, without an object
 * store: blobs.conf with a previous store and a serial, the server's side
 * of the switch (blob_store_follow, blob_store_refresh, blobs.seen) and
 * the migration's wait for it, and the refusals of blob_migrate_run that
 * come before any byte moves. The copy itself, to S3 and back while a
 * server runs, is tests/integration/t9103-blobs-migrate.sh.
 */
#include "common/compat.h"

#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "storage/blob.h"
#include "storage/blob_migrate.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

static void location(struct blob_location *loc, const char *url,
		     const char *endpoint)
{
	memset(loc, 0, sizeof(*loc));
	str_copy(loc->url, url, sizeof(loc->url));
	str_copy(loc->endpoint, endpoint, sizeof(loc->endpoint));
}

static int test_config_round_trip_keeps_previous_and_serial(void)
{
	char dir[SCRATCH_LEN] = "";
	struct blob_config in, out;
	struct err err = { 0 };
	int rc = -1;

	CHECK(scratch_dir(dir, "migconf") == 0);
	CHECK(blob_config_read(dir, &out, &err) == 0);
	CHECK(!strcmp(out.cur.url, "local") && !out.prev.url[0] &&
	      out.serial == 0);
	memset(&in, 0, sizeof(in));
	location(&in.cur, "s3://bkt/p", "http://127.0.0.1:1");
	location(&in.prev, "local", "");
	in.serial = 41;
	CHECK(blob_config_write(dir, &in, &err) == 0);
	CHECK(blob_config_read(dir, &out, &err) == 0);
	CHECK(!strcmp(out.cur.url, "s3://bkt/p") &&
	      !strcmp(out.cur.endpoint, "http://127.0.0.1:1") &&
	      !strcmp(out.prev.url, "local") && out.serial == 41);
	/* serve --blobs for the same store keeps the migration's lines. */
	CHECK(blob_config_record(dir, "s3://bkt/p", NULL, "eu-west-1",
				 &err) == 0);
	CHECK(blob_config_read(dir, &out, &err) == 0);
	CHECK(!strcmp(out.prev.url, "local") && out.serial == 41 &&
	      !strcmp(out.cur.region, "eu-west-1"));
	location(&in.prev, "ftp://x", "");
	CHECK(blob_config_write(dir, &in, &err) == 0);
	CHECK(blob_config_read(dir, &out, &err) == ERR_INVALID &&
	      strstr(err.msg, "'previous'"));
	rc = 0;
out:
	rm_rf(dir);
	return rc;
}

static int test_follow_acknowledges_each_serial(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "";
	struct blob_config bc;
	struct err err = { 0 };
	bool server = true;
	int rc = -1;

	CHECK(scratch_dir(dir, "migfollow") == 0);
	/* No server: the wait ends at once. */
	CHECK(blob_config_wait(dir, 1, 1, &server, &err) == 0 && !server);
	memset(&bc, 0, sizeof(bc));
	location(&bc.cur, "local", "");
	bc.serial = 5;
	CHECK(blob_config_write(dir, &bc, &err) == 0);
	CHECK(blob_store_open(&store, dir, &err) == 0);
	CHECK(blob_store_follow(store, &err) == 0);
	CHECK(!blob_migrating(store) && blob_is_local(store));
	CHECK(blob_config_wait(dir, 5, 1, &server, &err) == 0 && server);
	/* A serial the store has not taken up yet: the wait times out. */
	bc.serial = 6;
	CHECK(blob_config_write(dir, &bc, &err) == 0);
	CHECK(blob_config_wait(dir, 6, 1, &server, &err) == ERR_TIMEOUT &&
	      strstr(err.msg, "did not take up"));
	CHECK(blob_store_refresh(store, &err) == 0);
	CHECK(blob_config_wait(dir, 6, 1, &server, &err) == 0 && server);
	/* Unchanged blobs.conf: nothing to do. */
	CHECK(blob_store_refresh(store, &err) == 0);
	/* A broken blobs.conf keeps the store as it was, with the error. */
	bc.serial = 7;
	location(&bc.cur, "s3://AB", "http://127.0.0.1:1");
	CHECK(blob_config_write(dir, &bc, &err) == 0);
	CHECK(blob_store_refresh(store, &err) == ERR_INVALID);
	CHECK(blob_is_local(store));
	blob_store_free(store);
	store = NULL;
	/* The lock goes with the store. */
	CHECK(blob_config_wait(dir, 7, 1, &server, &err) == 0 && !server);
	rc = 0;
out:
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_migrate_refuses_before_copying(void)
{
	struct blob_migrate_report rep;
	struct blob_location to;
	struct blob_config bc;
	char dir[SCRATCH_LEN] = "", conf[SCRATCH_LEN + 16];
	struct err err = { 0 };
	int rc = -1;

	CHECK(scratch_dir(dir, "migrun") == 0);
	snprintf(conf, sizeof(conf), "%s/blobs.conf", dir);
	location(&to, "local", "");
	CHECK(blob_migrate_run(dir, &to, false, 1, NULL, &rep, &err) == 0);
	CHECK(rep.noop && rep.copied == 0);
	location(&to, "s3://AB", "http://127.0.0.1:1");
	CHECK(blob_migrate_run(dir, &to, false, 1, NULL, &rep, &err) ==
	      ERR_INVALID && strstr(err.msg, "invalid bucket"));
	location(&to, "s3://bucket", "ftp://127.0.0.1:1");
	CHECK(blob_migrate_run(dir, &to, false, 1, NULL, &rep, &err) < 0);
	CHECK(access(conf, F_OK) < 0);
	/* Mid-migration, only the same destination is taken. */
	memset(&bc, 0, sizeof(bc));
	location(&bc.cur, "s3://bucket/x", "http://127.0.0.1:1");
	location(&bc.prev, "local", "");
	CHECK(blob_config_write(dir, &bc, &err) == 0);
	location(&to, "local", "");
	CHECK(blob_migrate_run(dir, &to, false, 1, NULL, &rep, &err) ==
	      ERR_CONFLICT && strstr(err.msg, "finish it first"));
	rc = 0;
out:
	rm_rf(dir);
	return rc;
}

int main(void)
{
	RUN(test_config_round_trip_keeps_previous_and_serial);
	RUN(test_follow_acknowledges_each_serial);
	RUN(test_migrate_refuses_before_copying);
	return TEST_REPORT();
}
