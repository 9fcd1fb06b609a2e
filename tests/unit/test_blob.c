/*
 * test_blob.c: the content-addressed blob store (storage/blob.h).
 *
 * Each test opens a store in its own scratch folder and removes it at
 * the end. Besides the blobs themselves, the tests check the store's
 * invariants: a blob lives at blobs/sha256/<2>/<2>/<64 hex>, and no
 * temporary file stays in tmp/ once a writer has ended, whether it was
 * committed, refused or aborted.
 */
#include "common/compat.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "storage/blob.h"
#include "tests/unit/test.h"
#include "tests/unit/test_tmp.h"

/* sha256("abc") and sha256(""), the FIPS 180-2 test vectors. */
static const char abc_sha[] =
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char empty_sha[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* Makes a scratch folder in dir and opens a blob store in it. */
static int scratch_store(struct blob_store **out, char dir[SCRATCH_LEN])
{
	if (scratch_dir(dir, "blob") < 0)
		return -1;
	return blob_store_open(out, dir, NULL);
}

/* Number of entries (other than . and ..) in dir/sub; -1 if unreadable. */
static int count_entries(const char *dir, const char *sub)
{
	char path[SCRATCH_LEN + 64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* Writes data through a writer in two pieces, so the hash has to be
 * carried across writes. */
static int put(struct blob_store *store, const void *data, size_t len,
	       const char *expect, char sha[SHA256_HEX_LEN + 1],
	       uint64_t *size, struct err *err)
{
	struct blob_writer *w = NULL;
	size_t half = len / 2;
	int rc;

	if ((rc = blob_writer_begin(&w, store, err)) < 0)
		return rc;
	if ((rc = blob_writer_write(w, data, half, err)) < 0 ||
	    (rc = blob_writer_write(w, (const char *)data + half, len - half,
				    err)) < 0) {
		blob_writer_abort(w);
		return rc;
	}
	return blob_writer_commit(w, expect, sha, size, err);
}

static int test_blob_sha256_matches_known_vectors(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1];
	uint64_t size = 99;
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, "abc", 3, NULL, sha, &size, NULL) == 0);
	CHECK(!strcmp(sha, abc_sha));
	CHECK(size == 3);
	CHECK(blob_exists(store, abc_sha));
	CHECK(put(store, "", 0, NULL, sha, &size, NULL) == 0);
	CHECK(!strcmp(sha, empty_sha));
	CHECK(size == 0);
	CHECK(blob_exists(store, empty_sha));
	rc = 0;
out:
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_path_uses_fanout(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1];
	char path[SCRATCH_LEN + 128], want[SCRATCH_LEN + 128], *text = NULL;
	size_t len = 0;
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, "abc", 3, NULL, sha, NULL, NULL) == 0);
	CHECK(blob_path(store, abc_sha, path, sizeof(path)) == 0);
	snprintf(want, sizeof(want), "%s/blobs/sha256/ba/78/%s", dir, abc_sha);
	CHECK(!strcmp(path, want));
	CHECK(file_read_all(&text, &len, path, 1024) == 0);
	CHECK(len == 3 && !memcmp(text, "abc", 3));
	rc = 0;
out:
	free(text);
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_second_write_keeps_one_file(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, "abc", 3, NULL, sha, NULL, NULL) == 0);
	CHECK(put(store, "abc", 3, abc_sha, sha, &size, NULL) == 0);
	CHECK(!strcmp(sha, abc_sha) && size == 3);
	CHECK(count_entries(dir, "blobs/sha256") == 1);
	CHECK(count_entries(dir, "blobs/sha256/ba") == 1);
	CHECK(count_entries(dir, "blobs/sha256/ba/78") == 1);
	CHECK(count_entries(dir, "tmp") == 0);
	rc = 0;
out:
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_expect_mismatch_discards_bytes(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1];
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, "abc", 3, empty_sha, sha, NULL, &e) == ERR_INVALID);
	CHECK(e.code == ERR_INVALID);
	CHECK(strstr(e.msg, abc_sha) != NULL);
	CHECK(!blob_exists(store, abc_sha));
	CHECK(!blob_exists(store, empty_sha));
	CHECK(count_entries(dir, "blobs/sha256") == 0);
	CHECK(count_entries(dir, "tmp") == 0);
	rc = 0;
out:
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_open_reports_size(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1], buf[8];
	struct err e = { 0 };
	uint64_t size = 0;
	int fd = -1, rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, "abc", 3, NULL, sha, NULL, NULL) == 0);
	CHECK(blob_open(store, abc_sha, &fd, &size, NULL) == 0);
	CHECK(fd >= 0 && size == 3);
	CHECK(read(fd, buf, sizeof(buf)) == 3 && !memcmp(buf, "abc", 3));
	close(fd);
	fd = -1;
	CHECK(blob_open(store, empty_sha, &fd, &size, &e) == ERR_NOTFOUND);
	CHECK(e.code == ERR_NOTFOUND);
	CHECK(blob_open(store, "abc", &fd, &size, &e) == ERR_INVALID);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_verify_detects_flipped_byte(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1];
	char path[SCRATCH_LEN + 128], data[4096], c;
	struct err e = { 0 };
	int fd = -1, rc = -1;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, data, sizeof(data), NULL, sha, NULL, NULL) == 0);
	CHECK(blob_verify(store, sha, NULL) == 0);
	CHECK(blob_path(store, sha, path, sizeof(path)) == 0);
	CHECK((fd = open(path, O_RDWR)) >= 0);
	c = (char)(data[1000] ^ 0x01);
	CHECK(pwrite(fd, &c, 1, 1000) == 1);
	close(fd);
	fd = -1;
	CHECK(blob_verify(store, sha, &e) == ERR_CORRUPT);
	CHECK(e.code == ERR_CORRUPT && strstr(e.msg, sha) != NULL);
	CHECK(blob_verify(store, empty_sha, NULL) == ERR_NOTFOUND);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

struct seen {
	char shas[4][SHA256_HEX_LEN + 1];
	size_t count;
	bool bad_path;
	const char *dir;
};

static int record_blob(const char *sha, const struct blob_info *info,
		       void *arg)
{
	struct seen *s = arg;
	char want[SCRATCH_LEN + 128];
	struct stat st;

	snprintf(want, sizeof(want), "%s/blobs/sha256/%.2s/%.2s/%s", s->dir,
		 sha, sha + 2, sha);
	if (stat(want, &st) < 0 || (uint64_t)st.st_size != info->size ||
	    st.st_mtime != info->mtime)
		s->bad_path = true;
	if (s->count < ARRAY_SIZE(s->shas))
		str_copy(s->shas[s->count], sha, sizeof(s->shas[0]));
	s->count++;
	return 0;
}

static int stop_at_first(const char *sha, const struct blob_info *info,
			 void *arg)
{
	(void)sha;
	(void)info;
	++*(int *)arg;
	return 7;
}

static bool seen_has(const struct seen *s, const char *sha)
{
	for (size_t i = 0; i < s->count && i < ARRAY_SIZE(s->shas); i++) {
		if (!strcmp(s->shas[i], sha))
			return true;
	}
	return false;
}

static int test_blob_foreach_visits_all(void)
{
	static const char *const bodies[] = { "abc", "", "hello" };
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", shas[3][SHA256_HEX_LEN + 1];
	struct seen s = { .dir = dir };
	int calls = 0, rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(blob_foreach(store, record_blob, &s, NULL) == 0 && s.count == 0);
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++)
		CHECK(put(store, bodies[i], strlen(bodies[i]), NULL, shas[i],
			  NULL, NULL) == 0);
	CHECK(blob_foreach(store, record_blob, &s, NULL) == 0);
	CHECK(s.count == 3 && !s.bad_path);
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++)
		CHECK(seen_has(&s, shas[i]));
	CHECK(blob_foreach(store, stop_at_first, &calls, NULL) == 7);
	CHECK(calls == 1);
	rc = 0;
out:
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_remove_deletes(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", sha[SHA256_HEX_LEN + 1];
	struct err e = { 0 };
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, "abc", 3, NULL, sha, NULL, NULL) == 0);
	CHECK(blob_remove(store, abc_sha, NULL) == 0);
	CHECK(!blob_exists(store, abc_sha));
	CHECK(blob_remove(store, abc_sha, &e) < 0);
	CHECK(blob_remove(store, "../../etc", &e) == ERR_INVALID);
	rc = 0;
out:
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_path_refuses_malformed_sha(void)
{
	static const char *const bad[] = {
		"",
		"abc",
		/* 63 and 65 digits */
		"ba7816bf8f01cfea414140de5dae2223"
		"b00361a396177a9cb410ff61f20015a",
		"ba7816bf8f01cfea414140de5dae2223"
		"b00361a396177a9cb410ff61f20015ad0",
		/* upper case */
		"BA7816BF8F01CFEA414140DE5DAE2223"
		"B00361A396177A9CB410FF61F20015AD",
		/* not hex */
		"ga7816bf8f01cfea414140de5dae2223"
		"b00361a396177a9cb410ff61f20015ad",
		"../../../../../../../../../../../"
		"../../../../../../../etc/passwd",
	};
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", path[SCRATCH_LEN + 128];
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(blob_path(store, bad[i], path, sizeof(path)) ==
		      ERR_INVALID);
		CHECK(!blob_exists(store, bad[i]));
	}
	CHECK(blob_path(store, abc_sha, path, sizeof(path)) == 0);
	rc = 0;
out:
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_writer_abort_leaves_no_temp(void)
{
	struct blob_store *store = NULL;
	struct blob_writer *w = NULL;
	char dir[SCRATCH_LEN] = "";
	int rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	CHECK(blob_writer_begin(&w, store, NULL) == 0);
	CHECK(blob_writer_write(w, "abc", 3, NULL) == 0);
	CHECK(count_entries(dir, "tmp") == 1);
	blob_writer_abort(w);
	w = NULL;
	CHECK(count_entries(dir, "tmp") == 0);
	CHECK(count_entries(dir, "blobs/sha256") == 0);
	blob_writer_abort(NULL);
	rc = 0;
out:
	blob_writer_abort(w);
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

static int test_blob_put_file_streams_a_file(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", file[SCRATCH_LEN + 16];
	char sha[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	int fd = -1, rc = -1;

	CHECK(scratch_store(&store, dir) == 0);
	snprintf(file, sizeof(file), "%s/in", dir);
	CHECK((fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644)) >= 0);
	CHECK(write_full(fd, "abc", 3) == 0);
	close(fd);
	fd = -1;
	CHECK(blob_put_file(store, file, sha, &size, NULL) == 0);
	CHECK(!strcmp(sha, abc_sha) && size == 3);
	CHECK(blob_exists(store, abc_sha));
	CHECK(count_entries(dir, "tmp") == 0);
	snprintf(file, sizeof(file), "%s/missing", dir);
	CHECK(blob_put_file(store, file, sha, &size, NULL) < 0);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	blob_store_free(store);
	rm_rf(dir);
	return rc;
}

/* blobs.conf: recorded once; the same again is fine, another store or
 * S3 over local blobs is a conflict; a malformed file is refused. */
static int test_blob_config_record_and_conflicts(void)
{
	struct blob_store *store = NULL;
	char dir[SCRATCH_LEN] = "", conf[SCRATCH_LEN + 16], *text = NULL;
	char sha[SHA256_HEX_LEN + 1];
	struct err err = { 0 };
	size_t len;
	int fd = -1, rc = -1;

	CHECK(scratch_dir(dir, "blobconf") == 0);
	snprintf(conf, sizeof(conf), "%s/blobs.conf", dir);
	CHECK(blob_config_record(dir, NULL, NULL, NULL, &err) == 0);
	CHECK(blob_config_record(dir, "local", NULL, NULL, &err) == 0);
	CHECK(access(conf, F_OK) < 0);
	CHECK(blob_config_record(dir, "http://x", NULL, NULL, &err) == ERR_INVALID);
	CHECK(blob_config_record(dir, "s3://bkt/p", "http://127.0.0.1:1",
				 NULL, &err) == 0);
	CHECK(file_read_all(&text, &len, conf, 4096) == 0);
	CHECK(strstr(text, "blobs s3://bkt/p\n") &&
	      strstr(text, "s3_endpoint http://127.0.0.1:1\n"));
	CHECK(blob_config_record(dir, "s3://bkt/p", NULL, NULL, &err) == 0);
	CHECK(blob_config_record(dir, "s3://other", NULL, NULL, &err) ==
	      ERR_CONFLICT && strstr(err.msg, "s3://bkt/p"));
	CHECK(blob_config_record(dir, "local", NULL, NULL, &err) == ERR_CONFLICT);
	/* A malformed file stops the store from opening, clearly. */
	CHECK((fd = open(conf, O_WRONLY | O_TRUNC)) >= 0);
	CHECK(write_full(fd, "blobs\n", 6) == 0);
	close(fd);
	fd = -1;
	CHECK(blob_store_open(&store, dir, &err) == ERR_INVALID &&
	      strstr(err.msg, "blobs.conf"));
	rm_rf(dir);
	dir[0] = '\0';
	/* S3 for a folder that holds local blobs. */
	CHECK(scratch_store(&store, dir) == 0);
	CHECK(put(store, "abc", 3, NULL, sha, NULL, NULL) == 0);
	CHECK(blob_is_local(store));
	CHECK(blob_config_record(dir, "s3://bkt", NULL, NULL, &err) ==
	      ERR_CONFLICT);
	CHECK(blob_config_record(dir, "local", NULL, NULL, &err) == 0);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	blob_store_free(store);
	if (dir[0])
		rm_rf(dir);
	return rc;
}

int main(void)
{
	RUN(test_blob_sha256_matches_known_vectors);
	RUN(test_blob_path_uses_fanout);
	RUN(test_blob_second_write_keeps_one_file);
	RUN(test_blob_expect_mismatch_discards_bytes);
	RUN(test_blob_open_reports_size);
	RUN(test_blob_verify_detects_flipped_byte);
	RUN(test_blob_foreach_visits_all);
	RUN(test_blob_remove_deletes);
	RUN(test_blob_path_refuses_malformed_sha);
	RUN(test_blob_writer_abort_leaves_no_temp);
	RUN(test_blob_put_file_streams_a_file);
	RUN(test_blob_config_record_and_conflicts);
	return TEST_REPORT();
}
