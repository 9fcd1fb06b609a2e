/*
 * test_safetensors.c: the strict safetensors reader on good and hostile
 * headers, the writer's round trip, and the sharded index parser.
 */
#include "common/compat.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loaders/checksum.h"
#include "loaders/pipeline.h"
#include "loaders/safetensors.h"
#include "tests/unit/test.h"
#include "storage/hash.h"
#include "tests/unit/test_tmp.h"

/* Parses header h for a buffer of data_len bytes; returns the code and
 * leaves the message in e. */
static int parse(const char *h, uint64_t data_len, struct tensor_list *l,
		 struct err *e)
{
	size_t n = strlen(h);

	err_clear(e);
	return safetensors_parse(l, 0, h, n, 8 + n + data_len, e);
}

static int expect_bad(const char *h, uint64_t data_len, const char *needle)
{
	struct tensor_list l = { 0 };
	struct err e;
	int rc = parse(h, data_len, &l, &e), ok = 0;

	if (rc != ERR_INVALID || !strstr(e.msg, needle)) {
		fprintf(stderr, "  header %s: rc %d msg '%s' (wanted '%s')\n", h, rc,
			e.msg, needle);
		ok = -1;
	}
	tensor_list_release(&l);
	return ok;
}

static int test_good_header(void)
{
	struct tensor_list l = { 0 };
	struct err e;
	const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
		"\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]},"
		"\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]},"
		"\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]},"
		"\"z\":{\"dtype\":\"F16\",\"shape\":[0,7],\"data_offsets\":[40,40]}}   ";
	size_t n = strlen(h);
	int rc = -1;

	CHECK(safetensors_parse(&l, 3, h, n, 8 + n + 40, &e) == 0);
	CHECK(l.count == 4);
	CHECK(tensor_list_sort_unique(&l, &e) == 0);
	const struct tensor_desc *a = tensor_list_find(&l, "a"),
				 *b = tensor_list_find(&l, "b"),
				 *s = tensor_list_find(&l, "s"),
				 *z = tensor_list_find(&l, "z");
	CHECK(a && b && s && z);
	CHECK(a->dtype == DT_BF16 && a->nbytes == 8 && a->offset == 8 + n);
	CHECK(b->ndim == 2 && b->shape[1] == 3 && b->offset == 8 + n + 8);
	CHECK(s->ndim == 0 && s->nbytes == 8);
	CHECK(z->nbytes == 0 && a->file == 3);
	rc = 0;
out:
	tensor_list_release(&l);
	return rc;
}

static int test_hostile_headers(void)
{
	int rc = -1;

	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
			 16, "duplicate") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}",
			 8, "unknown dtype") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}",
			 8, "unknown key") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
			 12, "overlap") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
			 20, "gap") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
			 9, "byte buffer holds 9") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
			 4, "byte buffer holds 4") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
			 8, "make 12 bytes") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
			 8, "end before") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F64\",\"shape\":[281474976710655,281474976710655],"
			 "\"data_offsets\":[0,8]}}", 8, "overflow") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[281474976710656],"
			 "\"data_offsets\":[0,8]}}", 8, "out of range") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
			 8, "out of range") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
			 8, "not an integer") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}",
			 2, "whole bytes") == 0);
	CHECK(expect_bad("{\"__metadata__\":{\"n\":1}}", 0, "not a string") == 0);
	CHECK(expect_bad(" {}", 0, "start with") == 0);
	CHECK(expect_bad("{}\n", 0, "after its closing") == 0);
	CHECK(expect_bad("[1]", 0, "start with") == 0);
	CHECK(expect_bad("{\"a\":\"\xff\xfe\"}", 0, "not valid JSON") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, "needs dtype") == 0);
	CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
			 "\"data_offsets\":[0,4]}}", 4, "dimensions") == 0);
	rc = 0;
out:
	return rc;
}

static int test_header_length(void)
{
	unsigned char p[8] = { 0 };
	uint64_t n;
	struct err e;
	int rc = -1;

	CHECK(safetensors_header_len(&n, p, 4, &e) == ERR_INVALID);
	p[3] = 0x10;	/* 256 MiB: over the cap */
	CHECK(safetensors_header_len(&n, p, (uint64_t)1 << 40, &e) == ERR_INVALID &&
	      strstr(e.msg, "limit"));
	memset(p, 0xff, 8);
	CHECK(safetensors_header_len(&n, p, 100, &e) == ERR_INVALID);
	memset(p, 0, 8);
	p[0] = 200;	/* longer than the file */
	CHECK(safetensors_header_len(&n, p, 100, &e) == ERR_INVALID &&
	      strstr(e.msg, "does not fit"));
	p[0] = 50;
	CHECK(safetensors_header_len(&n, p, 100, &e) == 0 && n == 50);
	rc = 0;
out:
	return rc;
}

/* Writer round trip: tensors read from a source file come back equal. */
static int test_write_roundtrip(void)
{
	char dir[SCRATCH_LEN], src[512], dst[512];
	struct tensor_list in = { 0 }, back = { 0 };
	struct err e;
	unsigned char data[64];
	int fd = -1, fd2 = -1, rc = -1;

	CHECK(scratch_dir(dir, "st") == 0);
	snprintf(src, sizeof(src), "%s/src.bin", dir);
	snprintf(dst, sizeof(dst), "%s/out.safetensors", dir);
	for (int i = 0; i < 64; i++)
		data[i] = (unsigned char)(i * 7 + 1);
	fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, data, 64) == 64);
	struct tensor_desc t1 = { .name = (char *)"w", .dtype = DT_F32, .ndim = 2,
				  .shape = { 2, 4 }, .nbytes = 32, .offset = 0 };
	struct tensor_desc t2 = { .name = (char *)"b", .dtype = DT_BF16, .ndim = 1,
				  .shape = { 8 }, .nbytes = 16, .offset = 40 };
	CHECK(tensor_list_add(&in, &t1, &e) == 0 && tensor_list_add(&in, &t2, &e) == 0);
	CHECK(safetensors_write(dst, &in, fd, &e) == 0);
	fd2 = open(dst, O_RDONLY);
	CHECK(fd2 >= 0);
	off_t size = lseek(fd2, 0, SEEK_END);
	CHECK(safetensors_read_fd(&back, 0, fd2, (uint64_t)size, &e) == 0);
	CHECK(tensor_list_sort_unique(&back, &e) == 0 && back.count == 2);
	const struct tensor_desc *w = tensor_list_find(&back, "w"),
				 *b = tensor_list_find(&back, "b");
	CHECK(w && b && w->nbytes == 32 && b->nbytes == 16);
	/* F32 sorts before BF16 (alignment first); the header is padded. */
	CHECK(w->offset < b->offset && w->offset % 8 == 0);
	unsigned char got[32];
	CHECK(pread(fd2, got, 32, (off_t)w->offset) == 32 && !memcmp(got, data, 32));
	CHECK(pread(fd2, got, 16, (off_t)b->offset) == 16 && !memcmp(got, data + 40, 16));
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (fd2 >= 0)
		close(fd2);
	tensor_list_release(&in);
	tensor_list_release(&back);
	rm_rf(dir);
	return rc;
}

static int test_index(void)
{
	struct safetensors_index ix;
	struct err e;
	const char *good = "{\"metadata\":{\"total_size\":100},\"weight_map\":"
		"{\"b\":\"m-00002-of-00002.safetensors\",\"a\":\"m-00001-of-00002.safetensors\","
		"\"c\":\"m-00001-of-00002.safetensors\"}}";
	int rc = -1;

	CHECK(safetensors_index_parse(&ix, good, strlen(good), &e) == 0);
	CHECK(ix.count == 3 && ix.nfiles == 2 && ix.total_size == 100);
	CHECK(!strcmp(safetensors_index_shard(&ix, "b"), "m-00002-of-00002.safetensors"));
	CHECK(safetensors_index_shard(&ix, "x") == NULL);
	safetensors_index_release(&ix);
	const char *bad1 = "{\"weight_map\":{\"a\":\"../x.safetensors\"}}";
	CHECK(safetensors_index_parse(&ix, bad1, strlen(bad1), &e) == ERR_INVALID);
	const char *bad2 = "{\"weight_map\":{\"a\":\"x\",\"a\":\"y\"}}";
	CHECK(safetensors_index_parse(&ix, bad2, strlen(bad2), &e) == ERR_INVALID);
	const char *bad3 = "{\"weight_map\":[]}";
	CHECK(safetensors_index_parse(&ix, bad3, strlen(bad3), &e) == ERR_INVALID);
	rc = 0;
out:
	return rc;
}

/* The checksum is linear: pieces at any split add up to the whole. */
static int test_checksum_pieces(void)
{
	unsigned char b[103];
	uint64_t whole, parts;
	int rc = -1;

	for (int i = 0; i < 103; i++)
		b[i] = (unsigned char)(i * 31 + 7);
	whole = checksum_piece(b, 103, 0);
	for (size_t cut = 0; cut <= 103; cut += 5) {
		parts = checksum_piece(b, cut, 0) + checksum_piece(b + cut, 103 - cut, cut);
		CHECK(parts == whole);
	}
	b[50] ^= 1;
	CHECK(checksum_piece(b, 103, 0) != whole);
	rc = 0;
out:
	return rc;
}

/* The read pass with many more chunks than staging slots: the file's
 * sha256 and every tensor's checksum come out as computed in one piece,
 * and host copies land intact. */
static int test_pipeline_many_chunks(void)
{
	char dir[SCRATCH_LEN], path[512], want[65];
	size_t size = (1 << 20) + 123;
	unsigned char *data = malloc(size), *copy = malloc(size);
	struct tensor_desc t[3] = {
		{ .name = (char *)"a", .offset = 0, .nbytes = 1000 },
		{ .name = (char *)"b", .offset = 1000, .nbytes = 600001 },
		{ .name = (char *)"c", .offset = 601001, .nbytes = (1 << 20) + 123 - 601001 },
	};
	unsigned char *host[3] = { NULL, copy, NULL };
	struct pipeline_dest dest = { .host = host };
	struct pipeline_opts po = { .readers = 3, .slots = 4, .chunk = 4096, .sha = true };
	struct pipeline_stats st;
	struct err e;
	int fd = -1, rc = -1;

	CHECK(data && copy && scratch_dir(dir, "pipe") == 0);
	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)((i * 2654435761u) >> 13);
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size);
	CHECK(pipeline_run(&st, fd, size, t, 3, &dest, &po, &e) == 0);
	sha256_hex(want, data, size);
	CHECK(!strcmp(st.sha256, want) && st.bytes == size);
	for (int i = 0; i < 3; i++)
		CHECK(t[i].host_sum == checksum_piece(data + t[i].offset, t[i].nbytes, 0));
	CHECK(!memcmp(copy, data + 1000, 600001));
	/* A file shorter than listed fails cleanly, no hang. */
	CHECK(pipeline_run(&st, fd, size + 9000, t, 3, NULL, &po, &e) == ERR_CORRUPT);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(data);
	free(copy);
	rm_rf(dir);
	return rc;
}

int main(void)
{
	RUN(test_good_header);
	RUN(test_hostile_headers);
	RUN(test_header_length);
	RUN(test_write_roundtrip);
	RUN(test_index);
	RUN(test_checksum_pieces);
	RUN(test_pipeline_many_chunks);
	return TEST_REPORT();
}
