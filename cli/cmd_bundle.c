/*
 * cmd_bundle.c: air-gap bundles. `haven keygen` makes the Ed25519 key pair
 * that signs them, `haven export` writes one, `haven import-bundle` checks
 * and reads one (ingest/bundle.h, docs/bundles.md).
 */
#include "common/compat.h"

#include <getopt.h>
#include <jansson.h>
#include <time.h>

#include "cli/cli.h"
#include "ingest/bundle.h"
#include "ingest/bundle_key.h"

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- keygen ------------------------------------------------------------- */

static void keygen_usage(FILE *out)
{
	fprintf(out, "usage: haven keygen --out KEY\n\n"
		"Writes a new Ed25519 key pair for signing bundles: the private\n"
		"key to KEY (PEM, mode 0600; keep it secret) and the public key to\n"
		"KEY.pub (give it to the Havens that import your bundles).\n");
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bundle_key *key = NULL;
	struct err err = { 0 };
	const char *out = NULL;
	char pub[4200];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'h': keygen_usage(stdout); return 0;
		default: keygen_usage(stderr); return EXIT_USAGE;
		}
	}
	if (!out || optind != argc) {
		keygen_usage(stderr);
		return EXIT_USAGE;
	}
	snprintf(pub, sizeof(pub), "%s.pub", out);
	if (bundle_key_generate(out, pub, &err) < 0 ||
	    bundle_key_load_public(&key, pub, &err) < 0)
		return cli_fail(&err);
	printf("wrote %s (private key, mode 0600) and %s (public key)\n"
	       "fingerprint %s\n", out, pub, bundle_key_fingerprint(key));
	bundle_key_free(key);
	return 0;
}

/* --- export --------------------------------------------------------------- */

static void export_usage(FILE *out)
{
	fprintf(out, "usage: haven export REPO[@REV]... --to PATH --key KEY\n"
		"                    [--type model|dataset|space] [--since MANIFEST]\n"
		"                    [--json] [--data DIR]\n\n"
		"Writes a signed bundle of the repositories: their git history, the\n"
		"LFS objects it names, and a manifest of every object with its size\n"
		"and sha256. PATH is a new folder, or a tar file when it ends in\n"
		".tar. REV is a branch or tag (repeatable); without it every branch\n"
		"and tag travels. With --since (the manifest.json of an earlier\n"
		"bundle) only what that bundle did not carry is written.\n");
}

static void print_export(const struct bundle_result *res, const char *to,
			 double secs, bool json)
{
	if (json) {
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
				      "path", to, "key", res->key,
				      "repos", (json_int_t)res->repos,
				      "refs", (json_int_t)res->refs,
				      "packs", (json_int_t)res->packs,
				      "git_objects", (json_int_t)res->git_objects,
				      "lfs_objects", (json_int_t)res->lfs_objects,
				      "bytes", (json_int_t)res->bytes,
				      "seconds", secs);
		cli_print_json(j);
		return;
	}
	printf("exported %zu repositories (%zu refs) to %s\n"
	       "objects: %zu pack(s) holding %zu git objects, %zu LFS objects, "
	       "%llu bytes\n"
	       "signed with %s in %.2fs\n", res->repos, res->refs, to,
	       res->packs, res->git_objects, res->lfs_objects,
	       (unsigned long long)res->bytes, res->key, secs);
}

int cmd_export(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "to", required_argument, NULL, 'o' },
		{ "type", required_argument, NULL, 't' },
		{ "since", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bundle_export_options opt = { 0 };
	struct bundle_result res;
	struct err err = { 0 };
	struct store *store;
	const char *data = NULL;
	bool json = false;
	double t0 = now_seconds();
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'o': opt.to = optarg; break;
		case 't': opt.type = optarg; break;
		case 's': opt.since = optarg; break;
		case 'k': opt.key = optarg; break;
		case 'j': json = true; break;
		case 'h': export_usage(stdout); return 0;
		default: export_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc || !opt.to || !opt.key) {
		export_usage(stderr);
		return EXIT_USAGE;
	}
	opt.repos = (const char *const *)argv + optind;
	opt.nrepos = (size_t)(argc - optind);
	if (!(store = cli_open_store(cli_data_dir(data), false)))
		return 1;
	rc = bundle_export(store, &opt, &res, &err);
	store_free(store);
	if (rc < 0)
		return cli_fail(&err);
	print_export(&res, opt.to, now_seconds() - t0, json);
	return 0;
}

/* --- import-bundle ------------------------------------------------------------ */

static void import_usage(FILE *out)
{
	fprintf(out, "usage: haven import-bundle PATH --trust KEY.pub [--trust KEY.pub]...\n"
		"                           [--force] [--json] [--data DIR]\n\n"
		"Reads a bundle written by haven export. The signature must verify\n"
		"with one of the trusted public keys, and every object must match\n"
		"the manifest's size and sha256, before anything is stored. Refs\n"
		"are created or moved forward; --force also moves them backwards or\n"
		"sideways. Running it again after an interruption completes it.\n");
}

static void print_import(const struct bundle_result *res, const char *path,
			 double secs, bool json)
{
	if (json) {
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
				      "s:I, s:I, s:I, s:f}",
				      "path", path, "key", res->key,
				      "repos", (json_int_t)res->repos,
				      "repos_created", (json_int_t)res->repos_created,
				      "refs", (json_int_t)res->refs,
				      "refs_updated", (json_int_t)res->refs_updated,
				      "packs", (json_int_t)res->packs,
				      "git_objects", (json_int_t)res->git_objects,
				      "lfs_objects", (json_int_t)res->lfs_objects,
				      "lfs_stored", (json_int_t)res->lfs_stored,
				      "lfs_present", (json_int_t)res->lfs_present,
				      "bytes", (json_int_t)res->bytes,
				      "seconds", secs);
		cli_print_json(j);
		return;
	}
	printf("imported %zu repositories (%zu created), %zu of %zu refs updated\n"
	       "objects: %zu git objects, %zu LFS objects (%zu stored, %zu "
	       "already held), %llu bytes verified\n"
	       "signed by %s, %.2fs\n", res->repos, res->repos_created,
	       res->refs_updated, res->refs, res->git_objects, res->lfs_objects,
	       res->lfs_stored, res->lfs_present, (unsigned long long)res->bytes,
	       res->key, secs);
}

int cmd_import_bundle(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "trust", required_argument, NULL, 'T' },
		{ "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bundle_import_options opt = { 0 };
	struct bundle_result res;
	struct err err = { 0 };
	struct store *store;
	const char *data = NULL, **trust;
	bool json = false;
	double t0 = now_seconds();
	int c, rc;

	if (!(trust = calloc((size_t)argc, sizeof(*trust))))
		return 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'T': trust[opt.ntrust++] = optarg; break;
		case 'f': opt.force = true; break;
		case 'j': json = true; break;
		case 'h': import_usage(stdout); free(trust); return 0;
		default: import_usage(stderr); free(trust); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || opt.ntrust == 0) {
		import_usage(stderr);
		free(trust);
		return EXIT_USAGE;
	}
	opt.path = argv[optind];
	opt.trust = trust;
	if (!(store = cli_open_store(cli_data_dir(data), true))) {
		free(trust);
		return 1;
	}
	rc = bundle_import(store, &opt, &res, &err);
	store_free(store);
	free(trust);
	if (rc < 0)
		return cli_fail(&err);
	print_import(&res, opt.path, now_seconds() - t0, json);
	return 0;
}
