/*
 * cmd_import.c: `haven import DIR --repo NS/NAME`: prints the commit id.
 */
#include "common/compat.h"

#include <getopt.h>

#include "cli/cli.h"
#include "ingest/import.h"

static void import_usage(FILE *out)
{
	fprintf(out, "usage: haven import DIR --repo NS/NAME [--type model|dataset|space]\n"
		"                    [--revision BRANCH] [-m MESSAGE] [--data DIR]\n\n"
		"Makes the folder the content of one new commit on the branch\n"
		"(creating the repository and the branch if needed) and prints the\n"
		"commit id. Files matching an LFS pattern of .gitattributes, or of\n"
		"10 MiB or more, are stored as LFS objects.\n");
}

int cmd_import(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "repo", required_argument, NULL, 'r' },
		{ "type", required_argument, NULL, 't' },
		{ "revision", required_argument, NULL, 'b' },
		{ "message", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct import_options opt = { 0 };
	struct import_result res;
	struct err err = { 0 };
	struct store *store;
	const char *data = NULL;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hm:", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'r': opt.repo = optarg; break;
		case 't': opt.type = optarg; break;
		case 'b': opt.branch = optarg; break;
		case 'm': opt.message = optarg; break;
		case 'h': import_usage(stdout); return 0;
		default: import_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !opt.repo) {
		import_usage(stderr);
		return EXIT_USAGE;
	}
	if (!(store = cli_open_store(cli_data_dir(data), true)))
		return 1;
	rc = import_folder(store, argv[optind], &opt, &res, &err);
	store_free(store);
	if (rc < 0)
		return cli_fail(&err);
	fprintf(stderr, "%s %s: %zu files (%zu LFS), %llu bytes%s\n",
		res.created_repo ? "created" : "updated", opt.repo, res.files,
		res.lfs_files, (unsigned long long)res.bytes,
		res.changed ? "" : ", nothing changed");
	printf("%s\n", res.commit);
	return 0;
}
