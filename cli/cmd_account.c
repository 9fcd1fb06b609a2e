/*
 * cmd_account.c: the account admin commands, working on the data
 * directory directly (also while a server runs on it):
 *   haven user create NAME [--admin]
 *   haven org create NS | org add NS USER --role admin|write|read
 *   haven token create --user NAME --role R [--name LABEL] | list | revoke
 *   haven access list|approve|reject NS/NAME [USER] [--type T]
 * `token create` prints the token alone on stdout so scripts can capture
 * it; it is never shown again.
 */
#include "common/compat.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "common/util.h"
#include "storage/accounts.h"

#define MAX_ARGS 3

struct account_args {
	const char *data, *role, *user, *name, *type;
	bool admin, json;
	int nargs;
	char *args[MAX_ARGS];
};

static const char user_usage_text[] =
	"usage: haven user create NAME [--admin] [--data DIR]\n";
static const char org_usage_text[] =
	"usage: haven org create NS [--data DIR]\n"
	"       haven org add NS USER --role admin|write|read [--data DIR]\n";
static const char token_usage_text[] =
	"usage: haven token create --user NAME --role read|write|admin "
	"[--name LABEL] [--data DIR]\n"
	"       haven token list [--user NAME] [--json] [--data DIR]\n"
	"       haven token revoke ID [--data DIR]\n";
static const char access_usage_text[] =
	"usage: haven access list NS/NAME [--type model|dataset|space] [--data DIR]\n"
	"       haven access approve|reject NS/NAME USER [--type T] [--data DIR]\n";

/* 0 to go on, 1 after --help, EXIT_USAGE on bad flags. */
static int parse_args(struct account_args *a, int argc, char **argv,
		      const char *usage)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "role", required_argument, NULL, 'r' },
		{ "user", required_argument, NULL, 'u' },
		{ "name", required_argument, NULL, 'n' },
		{ "type", required_argument, NULL, 't' },
		{ "admin", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
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
		case 'r': a->role = optarg; break;
		case 'u': a->user = optarg; break;
		case 'n': a->name = optarg; break;
		case 't': a->type = optarg; break;
		case 'a': a->admin = true; break;
		case 'j': a->json = true; break;
		case 'h': fputs(usage, stdout); return 1;
		default: fputs(usage, stderr); return EXIT_USAGE;
		}
	}
	for (; optind < argc; optind++) {
		if (a->nargs == MAX_ARGS) {
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
		a->args[a->nargs++] = argv[optind];
	}
	return 0;
}

/* Parses, checks the verb and the count of operands, opens the store.
 * Returns NULL with *rc set when the command should end. */
static struct store *command_start(struct account_args *a, int argc,
				   char **argv, const char *usage,
				   int min_args, int max_args, bool create,
				   int *rc)
{
	struct store *store;

	if ((*rc = parse_args(a, argc, argv, usage))) {
		*rc = *rc == 1 ? 0 : *rc;
		return NULL;
	}
	if (a->nargs < min_args || a->nargs > max_args) {
		fputs(usage, stderr);
		*rc = EXIT_USAGE;
		return NULL;
	}
	if (!(store = cli_open_store(cli_data_dir(a->data), create)))
		*rc = 1;
	return store;
}

/* A role flag: one of the names, or a usage error. */
static int role_arg(enum role *out, const char *name, const char *usage)
{
	*out = name ? role_parse(name) : ROLE_NONE;
	if (*out != ROLE_NONE)
		return 0;
	fprintf(stderr, "haven: --role must be read, write or admin\n");
	fputs(usage, stderr);
	return EXIT_USAGE;
}

int cmd_user(int argc, char **argv)
{
	struct account_args a;
	struct err err = { 0 };
	struct store *store;
	int rc;

	if (!(store = command_start(&a, argc, argv, user_usage_text, 2, 2, true,
				    &rc)))
		return rc;
	if (strcmp(a.args[0], "create")) {
		fputs(user_usage_text, stderr);
		rc = EXIT_USAGE;
	} else if (account_user_create(store->meta, a.args[1], a.admin, &err) < 0) {
		rc = cli_fail(&err);
	} else {
		printf("created user %s%s\n", a.args[1],
		       a.admin ? " (site administrator)" : "");
	}
	store_free(store);
	return rc;
}

int cmd_org(int argc, char **argv)
{
	struct account_args a;
	struct err err = { 0 };
	struct store *store;
	enum role role;
	int rc;

	if (!(store = command_start(&a, argc, argv, org_usage_text, 2, 3, true,
				    &rc)))
		return rc;
	if (!strcmp(a.args[0], "create") && a.nargs == 2) {
		if (account_org_create(store->meta, a.args[1], &err) < 0)
			rc = cli_fail(&err);
		else
			printf("created organisation %s\n", a.args[1]);
	} else if (!strcmp(a.args[0], "add") && a.nargs == 3) {
		if ((rc = role_arg(&role, a.role, org_usage_text)) == 0) {
			if (account_org_set_member(store->meta, a.args[1],
						   a.args[2], role, &err) < 0)
				rc = cli_fail(&err);
			else
				printf("%s is %s in %s\n", a.args[2],
				       role_name(role), a.args[1]);
		}
	} else {
		fputs(org_usage_text, stderr);
		rc = EXIT_USAGE;
	}
	store_free(store);
	return rc;
}

static int token_create(struct store *store, const struct account_args *a)
{
	struct token_record rec;
	struct err err = { 0 };
	char token[TOKEN_MAX];
	enum role role;
	int rc;

	if (!a->user) {
		fprintf(stderr, "haven: token create needs --user NAME\n");
		return EXIT_USAGE;
	}
	if ((rc = role_arg(&role, a->role, token_usage_text)))
		return rc;
	if (account_token_create(store->meta, a->user, role, a->name, token,
				 &rec, &err) < 0)
		return cli_fail(&err);
	printf("%s\n", token);
	fflush(stdout);
	OPENSSL_cleanse(token, sizeof(token));
	fprintf(stderr, "haven: token %s (%s, %s) for %s: it is shown only "
		"once\n", rec.id, rec.name, role_name(rec.role), rec.user);
	return 0;
}

static int token_print(const struct token_record *rec, void *arg)
{
	char when[32];

	time_iso8601(when, (time_t)rec->created);
	if (arg) {
		json_array_append_new(arg, json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:b}", "id", rec->id, "user",
			rec->user, "role", role_name(rec->role), "name", rec->name,
			"createdAt", when, "revoked", rec->revoked));
		return 0;
	}
	printf("%-16s  %-20s  %-5s  %-8s  %s  %s\n", rec->id, rec->user,
	       role_name(rec->role), rec->revoked ? "revoked" : "active", when,
	       rec->name);
	return 0;
}

static int token_list(struct store *store, const struct account_args *a)
{
	json_t *arr = a->json ? json_array() : NULL;
	struct err err = { 0 };
	int rc = 0;

	if (a->json && !arr)
		return cli_fail(&err);
	if (!a->json)
		printf("%-16s  %-20s  %-5s  %-8s  %-24s  %s\n", "ID", "USER",
		       "ROLE", "STATUS", "CREATED", "NAME");
	if (account_token_list(store->meta, a->user, token_print, arr, &err) < 0) {
		rc = cli_fail(&err);
	} else if (arr) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(arr);
	return rc;
}

int cmd_token(int argc, char **argv)
{
	struct account_args a;
	struct err err = { 0 };
	struct store *store;
	int rc;

	if (!(store = command_start(&a, argc, argv, token_usage_text, 1, 2,
				    false, &rc)))
		return rc;
	if (!strcmp(a.args[0], "create") && a.nargs == 1) {
		rc = token_create(store, &a);
	} else if (!strcmp(a.args[0], "list") && a.nargs == 1) {
		rc = token_list(store, &a);
	} else if (!strcmp(a.args[0], "revoke") && a.nargs == 2) {
		if (account_token_revoke(store->meta, a.args[1], &err) < 0)
			rc = cli_fail(&err);
		else
			printf("revoked token %s\n", a.args[1]);
	} else {
		fputs(token_usage_text, stderr);
		rc = EXIT_USAGE;
	}
	store_free(store);
	return rc;
}

static int access_print(const char *user, enum access_status status,
			int64_t time, void *arg)
{
	char when[32];

	(void)arg;
	time_iso8601(when, (time_t)time);
	printf("%-20s  %-8s  %s\n", user, access_status_name(status), when);
	return 0;
}

int cmd_access(int argc, char **argv)
{
	struct account_args a;
	struct repo_record rec;
	struct err err = { 0 };
	struct store *store;
	bool list;
	int rc;

	if (!(store = command_start(&a, argc, argv, access_usage_text, 2, 3,
				    false, &rc)))
		return rc;
	list = !strcmp(a.args[0], "list");
	if ((list && a.nargs != 2) ||
	    (!list && (a.nargs != 3 || (strcmp(a.args[0], "approve") &&
					strcmp(a.args[0], "reject"))))) {
		fputs(access_usage_text, stderr);
		rc = EXIT_USAGE;
	} else if (repo_lookup(store, a.type, a.args[1], &rec, &err) < 0) {
		err_set(&err, err.code, "no %s repository '%s'", a.type, a.args[1]);
		rc = cli_fail(&err);
	} else if (list) {
		if (account_access_list(store->meta, rec.id, access_print, NULL,
					&err) < 0)
			rc = cli_fail(&err);
	} else {
		enum access_status st = strcmp(a.args[0], "approve") ?
					ACCESS_REJECTED : ACCESS_ACCEPTED;
		if (!rec.gated[0])
			fprintf(stderr, "haven: note: %s is not gated\n", rec.name);
		if (account_access_set(store->meta, rec.id, a.args[2], st, &err) < 0)
			rc = cli_fail(&err);
		else
			printf("%s: %s is %s\n", rec.name, a.args[2],
			       access_status_name(st));
	}
	store_free(store);
	return rc;
}
