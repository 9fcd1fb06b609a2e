/*
 * cmd_repo.c: `haven repo create|branch|tag`.
 */
#include "common/compat.h"

#include <getopt.h>

#include "cli/cli.h"
#include "storage/gitrepo.h"
#include "storage/repo_refs.h"

static void repo_usage(FILE *out)
{
	fprintf(out,
		"usage: haven repo create NS/NAME [--type model|dataset|space] [--data DIR]\n"
		"       haven repo branch NS/NAME BRANCH [--from REV] [--type T] [--data DIR]\n"
		"       haven repo tag NS/NAME TAG [--from REV] [--type T] [--data DIR]\n");
}

struct repo_args {
	const char *data, *type, *from;
	int nargs;
	char *args[3];
};

static int parse_args(struct repo_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "type", required_argument, NULL, 't' },
		{ "from", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->type = "model";
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 't': a->type = optarg; break;
		case 'f': a->from = optarg; break;
		case 'h': repo_usage(stdout); return 1;
		default: repo_usage(stderr); return EXIT_USAGE;
		}
	}
	for (; optind < argc; optind++) {
		if (a->nargs == 3) {
			repo_usage(stderr);
			return EXIT_USAGE;
		}
		a->args[a->nargs++] = argv[optind];
	}
	return 0;
}

static int do_create(struct store *store, struct repo_args *a)
{
	struct repo_record rec;
	struct err err = { 0 };

	if (repo_create(store, a->type, a->args[1], &rec, &err) < 0)
		return cli_fail(&err);
	printf("created %s %s\n", rec.type, rec.name);
	return 0;
}

/* Creates refs/<kind>/<name> at --from (default: main). */
static int do_ref(struct store *store, struct repo_args *a, const char *kind)
{
	struct repo_record rec;
	git_repository *git = NULL;
	struct err err = { 0 };
	char ref[1024], hex[GIT_HEX_LEN + 1];
	git_oid target;
	int rc = 1;

	if (!gitrepo_ref_name_valid(kind, a->args[2])) {
		fprintf(stderr, "haven: invalid %s name '%s'\n",
			!strcmp(kind, "heads") ? "branch" : "tag", a->args[2]);
		return 1;
	}
	snprintf(ref, sizeof(ref), "refs/%s/%s", kind, a->args[2]);
	if (repo_lookup(store, a->type, a->args[1], &rec, &err) < 0 ||
	    repo_open_git(&git, store, &rec, &err) < 0 ||
	    gitrepo_resolve(git, a->from ? a->from : "main", &target, NULL, 0,
			    &err) < 0 ||
	    gitrepo_ref_create(git, ref, &target, &err) < 0 ||
	    repo_refs_record(store, &rec, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	gitrepo_oid_hex(hex, &target);
	printf("%s %s\n", ref, hex);
	rc = 0;
out:
	git_repository_free(git);
	return rc;
}

int cmd_repo(int argc, char **argv)
{
	struct repo_args a;
	struct store *store;
	int rc = parse_args(&a, argc, argv);

	if (rc)
		return rc == 1 ? 0 : rc;
	if (a.nargs < 2 || (strcmp(a.args[0], "create") && a.nargs < 3)) {
		repo_usage(stderr);
		return EXIT_USAGE;
	}
	if (!(store = cli_open_store(cli_data_dir(a.data), true)))
		return 1;
	if (!strcmp(a.args[0], "create"))
		rc = do_create(store, &a);
	else if (!strcmp(a.args[0], "branch"))
		rc = do_ref(store, &a, "heads");
	else if (!strcmp(a.args[0], "tag"))
		rc = do_ref(store, &a, "tags");
	else {
		repo_usage(stderr);
		rc = EXIT_USAGE;
	}
	store_free(store);
	return rc;
}
