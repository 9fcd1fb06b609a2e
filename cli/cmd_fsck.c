/*
 * cmd_fsck.c: `haven fsck [--deep]` and `haven gc [--grace SECONDS]`.
 */
#include "common/compat.h"

#include <getopt.h>

#include "cli/cli.h"
#include "storage/fsck.h"

#define GC_DEFAULT_GRACE (24 * 3600)

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "deep", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck_report rep;
	struct err err = { 0 };
	struct store *store;
	const char *data = NULL;
	bool deep = false;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'D': deep = true; break;
		case 'h':
			printf("usage: haven fsck [--deep] [--data DIR]\n\nChecks that "
			       "every repository, ref, commit, tree and LFS object\n"
			       "resolves; --deep also re-hashes every blob. Exits 1 on "
			       "any damage.\n");
			return 0;
		default: return EXIT_USAGE;
		}
	}
	if (!(store = cli_open_store(cli_data_dir(data), false)))
		return 1;
	rc = fsck_run(store, deep, stdout, &rep, &err);
	store_free(store);
	if (rc < 0)
		return cli_fail(&err);
	printf("%zu repositories, %zu refs, %zu LFS references, %zu blobs "
	       "re-hashed: %zu problems, %zu warnings\n", rep.repos, rep.refs,
	       rep.lfs_refs, rep.blobs_checked, rep.problems, rep.warnings);
	return rep.problems ? 1 : 0;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "grace", required_argument, NULL, 'g' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_report rep;
	struct err err = { 0 };
	struct store *store;
	const char *data = NULL;
	long long grace = GC_DEFAULT_GRACE;
	bool dry = false;
	char *end;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hn", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'n': dry = true; break;
		case 'g':
			grace = strtoll(optarg, &end, 10);
			if (*end || end == optarg || grace < 0) {
				fprintf(stderr, "haven: invalid --grace '%s': "
					"expected seconds\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			printf("usage: haven gc [--grace SECONDS] [--dry-run] [--data DIR]\n\n"
			       "Removes LFS objects that no commit of any repository "
			       "references and\nthat are older than the grace period "
			       "(default %d seconds).\n", GC_DEFAULT_GRACE);
			return 0;
		default: return EXIT_USAGE;
		}
	}
	if (!(store = cli_open_store(cli_data_dir(data), false)))
		return 1;
	rc = gc_run(store, grace, dry, stdout, &rep, &err);
	store_free(store);
	if (rc < 0)
		return cli_fail(&err);
	printf("%zu blobs kept, %zu removed (%llu bytes), %zu temporary files "
	       "removed\n", rep.blobs_kept, rep.blobs_removed,
	       (unsigned long long)rep.bytes_removed, rep.tmp_removed);
	return 0;
}
