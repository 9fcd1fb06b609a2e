/*
 * main.c: `haven`, one binary with subcommands, dispatched from a table.
 */
#include "common/compat.h"

#include <errno.h>

#include "cli/cli.h"
#include "common/log.h"
#include "storage/gitrepo.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "serve", cmd_serve, "run the registry server" },
	{ "repo", cmd_repo, "create repositories, branches and tags" },
	{ "import", cmd_import, "turn a local folder into a commit" },
	{ "fsck", cmd_fsck, "check that every reference resolves" },
	{ "gc", cmd_gc, "remove blobs nothing references" },
	{ "hook", cmd_hook, "git hooks run by the server (not by hand)" },
	{ "user", cmd_user, "create users" },
	{ "org", cmd_org, "create organisations and set their members" },
	{ "token", cmd_token, "create, list and revoke access tokens" },
	{ "access", cmd_access, "list, approve and reject gated access requests" },
	{ "lineage", cmd_lineage, "show the models a model derives from and its derivatives" },
	{ "stats", cmd_stats, "download totals per day, repository or author" },
	{ "keygen", cmd_keygen, "make an Ed25519 key pair for signing bundles" },
	{ "export", cmd_export, "write a signed bundle of repositories (air gap)" },
	{ "import-bundle", cmd_import_bundle, "verify a signed bundle and import it" },
	{ "mirror", cmd_mirror, "copy repositories from an upstream Hub, exact commits and every byte verified" },
	{ "load", cmd_load, "check a model revision and load it onto a GPU, verified" },
	{ "convert", cmd_convert, "write the safetensors twin of a torch.save checkpoint" },
	{ "blobs", cmd_blobs, "show where LFS objects are stored; move them to S3 and back" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: haven COMMAND [OPTIONS]\n\n"
		"Haven: a self-hosted registry and mirror that speaks the "
		"Hugging Face Hub's API.\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nEvery command takes --help, and --data DIR (default "
		"$HAVEN_DATA or ./haven-data).\n");
}

const char *cli_data_dir(const char *flag)
{
	const char *env = getenv("HAVEN_DATA");

	if (flag && flag[0])
		return flag;
	return env && env[0] ? env : "./haven-data";
}

void cli_print_json(json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
				      JSON_REAL_PRECISION(4)) : NULL;

	printf("%s\n", text ? text : "null");
	free(text);
	json_decref(doc);
}

int cli_fail(const struct err *err)
{
	fprintf(stderr, "haven: %s\n", err->msg[0] ? err->msg : "failed");
	return 1;
}

struct store *cli_open_store(const char *data, bool create)
{
	struct store *store = NULL;
	struct err err = { 0 };

	if (store_open(&store, data, create, &err) < 0) {
		cli_fail(&err);
		return NULL;
	}
	return store;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("haven %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		gitrepo_global_init();
		rc = commands[i].run(argc - 1, argv + 1);
		gitrepo_global_shutdown();
		return rc;
	}
	fprintf(stderr, "haven: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
