/*
 * s3-tool.c: Haven's S3 client (storage/s3_client.h) driven from the
 * shell, for the S3 tests and benchmarks. Not installed.
 *
 *   s3-tool mb BUCKET | rb BUCKET
 *   s3-tool put BUCKET KEY [FILE]     FILE or stdin; prints
 *                                     "SHA256 SIZE ETAG PARTS"
 *   s3-tool get BUCKET KEY [OFFSET [LEN]]   to stdout
 *   s3-tool head BUCKET KEY           prints "SIZE ETAG"
 *   s3-tool rm BUCKET KEY
 *   s3-tool ls BUCKET [PREFIX]        prints "KEY SIZE ETAG" lines
 *   s3-tool presign BUCKET KEY SECONDS
 *
 * The endpoint and keys come from the environment (HAVEN_S3_ENDPOINT,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), never from argv.
 * HAVEN_S3_PART_MIB and HAVEN_S3_LIST_PAGE set the part size and the
 * listing page size; HAVEN_S3_FAIL_AFTER_MIB makes the upload source fail
 * after that much input (to test that a failed upload leaves nothing). On failure: "s3-tool: CODE-NAME: MESSAGE" on stderr,
 * exit status 1 (3 for "not found", 4 for auth failures).
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/s3_client.h"

struct source {
	int fd;
	uint64_t done;
	uint64_t fail_after; /* 0: never */
};

static ssize_t read_fd(void *arg, void *buf, size_t len, struct err *err)
{
	struct source *src = arg;
	ssize_t n;

	if (src->fail_after && src->done >= src->fail_after)
		return err_set(err, ERR_FAIL, "input failed after %" PRIu64 " bytes (test)",
			       src->done);
	do
		n = read(src->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_set(err, ERR_FAIL, "read: %s", strerror(errno));
	src->done += (uint64_t)n;
	return n;
}

static int write_stdout(void *arg, const void *data, size_t len, struct err *err)
{
	(void)arg;
	if (write_full(1, data, len) < 0)
		return err_set(err, ERR_FAIL, "write to stdout: %s", strerror(errno));
	return 0;
}

static int print_entry(void *arg, const char *key, uint64_t size,
		       const char *etag, struct err *err)
{
	(void)arg;
	(void)err;
	printf("%s %" PRIu64 " %s\n", key, size, etag);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: s3-tool mb|rb BUCKET | put BUCKET KEY [FILE] | "
		"get BUCKET KEY [OFFSET [LEN]] | head|rm BUCKET KEY | "
		"ls BUCKET [PREFIX] | presign BUCKET KEY SECONDS\n");
	return 2;
}

static int run(struct s3_client *c, int argc, char **argv, struct err *err)
{
	const char *cmd = argv[1];
	int error = 0;

	if (strcmp(cmd, "mb") == 0 && argc == 3)
		return s3_bucket_create(c, argv[2], err);
	if (strcmp(cmd, "rb") == 0 && argc == 3)
		return s3_bucket_delete(c, argv[2], err);
	if (strcmp(cmd, "rm") == 0 && argc == 4)
		return s3_object_delete(c, argv[2], argv[3], err);
	if (strcmp(cmd, "ls") == 0 && (argc == 3 || argc == 4))
		return s3_object_list(c, argv[2], argc == 4 ? argv[3] : NULL,
				      print_entry, NULL, err);
	if (strcmp(cmd, "head") == 0 && argc == 4) {
		struct s3_object_info info;

		if ((error = s3_object_head(c, argv[2], argv[3], &info, err)) == 0)
			printf("%" PRIu64 " %s\n", info.size, info.etag);
		return error;
	}
	if (strcmp(cmd, "put") == 0 && (argc == 4 || argc == 5)) {
		struct s3_put_result res;
		struct source src = { 0, 0, 0 };
		const char *fail = getenv("HAVEN_S3_FAIL_AFTER_MIB");

		if (fail)
			src.fail_after = (uint64_t)strtoull(fail, NULL, 10) << 20;
		if (argc == 5 && strcmp(argv[4], "-") != 0 &&
		    (src.fd = open(argv[4], O_RDONLY | O_CLOEXEC)) < 0)
			return err_set(err, ERR_NOTFOUND, "cannot open '%s': %s", argv[4],
				       strerror(errno));
		error = s3_object_put(c, argv[2], argv[3], read_fd, &src, &res, err);
		if (src.fd > 0)
			close(src.fd);
		if (error == 0)
			printf("%s %" PRIu64 " %s %u\n", res.sha256, res.info.size,
			       res.info.etag, res.parts);
		return error;
	}
	if (strcmp(cmd, "get") == 0 && argc >= 4 && argc <= 6) {
		uint64_t off = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
		uint64_t len = argc > 5 ? strtoull(argv[5], NULL, 10) : 0;

		return s3_object_get(c, argv[2], argv[3], off, len, write_stdout,
				     NULL, NULL, err);
	}
	if (strcmp(cmd, "presign") == 0 && argc == 5) {
		char *url = NULL;

		error = s3_presign_get(c, argv[2], argv[3], strtol(argv[4], NULL, 10),
				       &url, err);
		if (error == 0)
			printf("%s\n", url);
		free(url);
		return error;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct s3_config cfg = { 0 };
	struct s3_client *c = NULL;
	struct err err;
	const char *v;
	int error;

	err_clear(&err);
	if (argc < 3)
		return usage();
	if ((v = getenv("HAVEN_S3_PART_MIB")))
		cfg.part_size = (size_t)strtoul(v, NULL, 10) << 20;
	if ((v = getenv("HAVEN_S3_LIST_PAGE")))
		cfg.list_page = (unsigned)strtoul(v, NULL, 10);
	if ((error = s3_client_new(&c, &cfg, &err)) == 0) {
		error = run(c, argc, argv, &err);
		if (error == 1) {
			s3_client_free(c);
			return usage();
		}
	}
	s3_client_free(c);
	fflush(stdout);
	if (error < 0) {
		fprintf(stderr, "s3-tool: %s: %s\n", err_code_name(error), err.msg);
		return error == ERR_NOTFOUND ? 3 : error == ERR_AUTH ? 4 : 1;
	}
	return 0;
}
