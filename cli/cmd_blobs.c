/*
 * cmd_blobs.c: `haven blobs status` (where the blobs are, how many) and
 * `haven blobs migrate --to s3://BUCKET[/PREFIX] | local | DIR` (moves
 * them while the server runs; storage/blob_migrate.h). S3 keys come from
 * the environment and the endpoint and region from the flags, the config
 * file or the environment, as `haven serve` takes them.
 */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/util.h"
#include "server/config.h"
#include "storage/blob_migrate.h"

#define DEFAULT_WAIT_S 60

struct blobs_args {
	const char *data, *to, *endpoint, *region, *config;
	bool json, create_bucket;
	int wait_s;
};

static void blobs_usage(FILE *out)
{
	fprintf(out, "usage: haven blobs status [--data DIR] [--json]\n"
		"       haven blobs migrate --to s3://BUCKET[/PREFIX] "
		"[--s3-endpoint URL] [--s3-region R]\n"
		"                           [--create-bucket] [--config FILE] "
		"[--data DIR] [--json]\n"
		"       haven blobs migrate --to local|DATA/blobs [--data DIR] "
		"[--json]\n\n"
		"migrate copies every LFS object to the new store, checking each "
		"sha256 and size\nthere, and switches a running server over "
		"without a restart. A second run\nresumes or does nothing. The "
		"old store keeps its objects. S3 keys come from\n"
		"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never from the "
		"command line.\n");
}

static int parse_args(struct blobs_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "to", required_argument, NULL, 't' },
		{ "s3-endpoint", required_argument, NULL, 'e' },
		{ "s3-region", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "create-bucket", no_argument, NULL, 'B' },
		{ "wait", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	a->wait_s = DEFAULT_WAIT_S;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 't': a->to = optarg; break;
		case 'e': a->endpoint = optarg; break;
		case 'r': a->region = optarg; break;
		case 'c': a->config = optarg; break;
		case 'B': a->create_bucket = true; break;
		case 'j': a->json = true; break;
		case 'w':
			a->wait_s = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || a->wait_s < 1) {
				fprintf(stderr, "haven: invalid --wait '%s': "
					"expected seconds\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': blobs_usage(stdout); return -1;
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "haven: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	return 0;
}

/* The config file's data, s3_endpoint and s3_region, under the flags. */
static int apply_config(struct blobs_args *a, struct serve_config *cfg,
			struct err *err)
{
	int rc;

	config_defaults(cfg);
	cfg->data[0] = '\0';
	if (a->config && (rc = config_load_file(cfg, a->config, err)) < 0)
		return rc;
	if (!a->data && cfg->data[0])
		a->data = cfg->data;
	if (!a->endpoint && cfg->s3_endpoint[0])
		a->endpoint = cfg->s3_endpoint;
	if (!a->region && cfg->s3_region[0])
		a->region = cfg->s3_region;
	return 0;
}

/* --to DIR: only the data folder's own blobs/ holds local blobs. */
static int local_target(const char *data, const char *to, struct err *err)
{
	char want[PATH_MAX + 8], a[PATH_MAX], b[PATH_MAX];

	if (!strcmp(to, "local"))
		return 0;
	snprintf(want, sizeof(want), "%s/blobs", data);
	if (!realpath(want, a) || !realpath(to, b) || strcmp(a, b))
		return err_set(err, ERR_INVALID, "invalid --to '%.200s': local "
			       "blobs live only in the data folder's blobs/ "
			       "(%s); expected local, that folder or "
			       "s3://BUCKET[/PREFIX]", to, want);
	return 0;
}

static int target_location(const struct blobs_args *a, const char *data,
			   struct blob_location *loc, struct err *err)
{
	const char *env = getenv("HAVEN_S3_ENDPOINT");

	memset(loc, 0, sizeof(*loc));
	if (!a->to)
		return err_set(err, ERR_INVALID, "migrate needs --to "
			       "s3://BUCKET[/PREFIX] or --to local");
	if (strncmp(a->to, "s3://", 5)) {
		if (a->endpoint || a->region)
			return err_set(err, ERR_INVALID, "--s3-endpoint and "
				       "--s3-region go with --to s3://...");
		str_copy(loc->url, "local", sizeof(loc->url));
		return local_target(data, a->to, err);
	}
	if (strlen(a->to) >= sizeof(loc->url))
		return err_set(err, ERR_INVALID, "--to is too long");
	str_copy(loc->url, a->to, sizeof(loc->url));
	/* Recorded in blobs.conf, so that the server need not have it in
	 * its environment. */
	if (!a->endpoint && !(env && env[0]))
		return err_set(err, ERR_INVALID, "no S3 endpoint: pass "
			       "--s3-endpoint URL (or s3_endpoint in --config, "
			       "or HAVEN_S3_ENDPOINT)");
	str_copy(loc->endpoint, a->endpoint ? a->endpoint : env,
		 sizeof(loc->endpoint));
	if (a->region)
		str_copy(loc->region, a->region, sizeof(loc->region));
	return 0;
}

static int data_exists(const char *data, struct err *err)
{
	struct stat st;

	errno = 0;
	if (stat(data, &st) < 0 || !S_ISDIR(st.st_mode))
		return err_set(err, ERR_NOTFOUND, "cannot use data directory "
			       "'%s': %s", data, errno ? strerror(errno) :
			       "not a directory");
	return 0;
}

static void print_report(const struct blob_migrate_report *rep, bool json)
{
	if (json) {
		cli_print_json(json_pack(
			"{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:b, s:f}",
			"from", rep->from, "to", rep->to, "noop", rep->noop,
			"objects", (json_int_t)rep->objects,
			"copied", (json_int_t)rep->copied,
			"copied_bytes", (json_int_t)rep->copied_bytes,
			"skipped", (json_int_t)rep->skipped,
			"skipped_bytes", (json_int_t)rep->skipped_bytes,
			"server_switched", rep->server, "seconds",
			rep->seconds));
		return;
	}
	if (rep->noop) {
		printf("blobs are already in %s: nothing to do\n", rep->to);
		return;
	}
	printf("moved blobs from %s to %s: %llu objects, %llu copied (%llu "
	       "bytes), %llu already there (%llu bytes), %.1f s%s\n",
	       rep->from, rep->to, (unsigned long long)rep->objects,
	       (unsigned long long)rep->copied,
	       (unsigned long long)rep->copied_bytes,
	       (unsigned long long)rep->skipped,
	       (unsigned long long)rep->skipped_bytes, rep->seconds,
	       rep->server ? "; the running server switched over" : "");
	printf("the objects in %s are left in place\n", rep->from);
}

static int blobs_migrate(struct blobs_args *a)
{
	struct serve_config cfg;
	struct blob_migrate_report rep;
	struct blob_location to;
	struct err err = { 0 };
	const char *data;

	if (apply_config(a, &cfg, &err) < 0)
		return cli_fail(&err);
	data = cli_data_dir(a->data);
	if (data_exists(data, &err) < 0 ||
	    target_location(a, data, &to, &err) < 0 ||
	    blob_migrate_run(data, &to, a->create_bucket, a->wait_s, stderr,
			     &rep, &err) < 0)
		return cli_fail(&err);
	print_report(&rep, a->json);
	return 0;
}

struct tally {
	uint64_t objects, bytes;
};

static int count_blob(const char *sha, const struct blob_info *info,
		      void *arg)
{
	struct tally *t = arg;

	(void)sha;
	t->objects++;
	t->bytes += info->size;
	return 0;
}

static int blobs_status(struct blobs_args *a)
{
	struct blob_store *blobs = NULL;
	struct blob_config bc;
	struct tally t = { 0 };
	struct err err = { 0 };
	const char *data = cli_data_dir(a->data);

	if (data_exists(data, &err) < 0 ||
	    blob_config_read(data, &bc, &err) < 0 ||
	    blob_store_open_at(&blobs, data, &bc.cur, &err) < 0 ||
	    blob_foreach(blobs, count_blob, &t, &err) < 0) {
		blob_store_free(blobs);
		return cli_fail(&err);
	}
	blob_store_free(blobs);
	if (a->json) {
		cli_print_json(json_pack("{s:s, s:s?, s:I, s:I}", "location",
					 bc.cur.url, "migrating_from",
					 bc.prev.url[0] ? bc.prev.url : NULL,
					 "objects", (json_int_t)t.objects,
					 "bytes", (json_int_t)t.bytes));
		return 0;
	}
	printf("location %s\n", bc.cur.url);
	if (bc.cur.endpoint[0])
		printf("s3_endpoint %s\n", bc.cur.endpoint);
	if (bc.prev.url[0])
		printf("migrating_from %s\n", bc.prev.url);
	printf("objects %llu\nbytes %llu\n", (unsigned long long)t.objects,
	       (unsigned long long)t.bytes);
	return 0;
}

int cmd_blobs(int argc, char **argv)
{
	struct blobs_args a;
	int rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		blobs_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if ((rc = parse_args(&a, argc - 1, argv + 1)) != 0)
		return rc < 0 ? 0 : rc;
	if (!strcmp(argv[1], "migrate"))
		return blobs_migrate(&a);
	if (!strcmp(argv[1], "status")) {
		if (a.to || a.endpoint || a.region || a.create_bucket) {
			fprintf(stderr, "haven: status takes --data and --json "
				"only\n");
			return EXIT_USAGE;
		}
		return blobs_status(&a);
	}
	fprintf(stderr, "haven: unknown blobs command '%s'\n\n", argv[1]);
	blobs_usage(stderr);
	return EXIT_USAGE;
}
