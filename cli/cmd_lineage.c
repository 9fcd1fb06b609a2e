/*
 * cmd_lineage.c: `haven lineage NS/NAME [--ancestors|--descendants]
 * [--depth N] [--json] [--data DIR]`, a model's place in the lineage
 * graph read straight from the data directory (an operator's view: every
 * repository is visible). The tree is printed one model a line, indented
 * by depth, with its relation to the line above; --json prints what the
 * lineage endpoint answers.
 */
#include "common/compat.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cli/cli.h"
#include "common/util.h"
#include "storage/lineage.h"
#include "storage/store.h"

struct printer {
	struct meta_txn *txn;
	json_t *seen;		/* names on the current path (cycle guard) */
	int depth, max;
	bool up;
};

static void print_tree(struct printer *p, const char *key, const char *id);

static void print_line(struct printer *p, const char *shown,
		       const struct lineage_edge *e, bool external)
{
	printf("%*s%s %s%s%s\n", 2 * p->depth, "", e->relation, shown,
	       external ? " (external)" : "", e->inferred ? " (inferred)" : "");
}

static void descend(struct printer *p, const char *key, const char *id)
{
	if (p->depth >= p->max || json_object_get(p->seen, key))
		return;
	json_object_set_new(p->seen, key, json_true());
	p->depth++;
	print_tree(p, key, id);
	p->depth--;
	json_object_del(p->seen, key);
}

static int up_line(const char *key, const struct lineage_edge *e, void *arg)
{
	struct printer *p = arg;
	struct repo_record rec;

	if (meta_repo_get(p->txn, "model", key, &rec, NULL) == 0) {
		print_line(p, rec.name, e, false);
		descend(p, key, rec.id);
	} else {
		print_line(p, e->base[0] ? e->base : key, e, true);
	}
	return 0;
}

static int down_line(const char *child_id, const struct lineage_edge *e,
		     void *arg)
{
	struct printer *p = arg;
	struct repo_record rec;
	char key[LINEAGE_BASE_MAX];

	if (meta_repo_get_by_id(p->txn, child_id, &rec, NULL) < 0)
		return 0;
	print_line(p, rec.name, e, false);
	lineage_key(key, sizeof(key), rec.name);
	descend(p, key, rec.id);
	return 0;
}

static void print_tree(struct printer *p, const char *key, const char *id)
{
	if (p->up)
		lineage_parents(p->txn, id, up_line, p, NULL);
	else
		lineage_children(p->txn, key, down_line, p, NULL);
}

static void print_side(struct meta_txn *txn, const struct repo_record *rec,
		       bool up, int depth)
{
	struct printer p = { .txn = txn, .seen = json_object(), .depth = 1,
			     .max = depth, .up = up };
	char key[LINEAGE_BASE_MAX];

	lineage_key(key, sizeof(key), rec->name);
	json_object_set_new(p.seen, key, json_true());
	printf("%s:\n", up ? "ancestors" : "descendants");
	print_tree(&p, key, rec->id);
	json_decref(p.seen);
}

static void lineage_usage(FILE *f)
{
	fprintf(f, "usage: haven lineage NS/NAME [--ancestors|--descendants] "
		"[--depth N] [--json] [--data DIR]\n\nPrints the models a model "
		"derives from (ancestors) and the models derived\nfrom it "
		"(descendants), as read from the cards of their default "
		"branches.\nDepth defaults to 3 (at most %d).\n",
		LINEAGE_DEPTH_MAX);
}

int cmd_lineage(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "ancestors", no_argument, NULL, 'a' },
		{ "descendants", no_argument, NULL, 'D' },
		{ "depth", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct meta_txn *txn = NULL;
	struct store *store = NULL;
	struct repo_record rec;
	struct err err = { 0 };
	const char *data = NULL;
	int dirs = 0, depth = 3, c, rc = 1;
	bool as_json = false;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'a': dirs |= LINEAGE_ANCESTORS; break;
		case 'D': dirs |= LINEAGE_DESCENDANTS; break;
		case 'j': as_json = true; break;
		case 'n':
			depth = (int)strtol(optarg, &end, 10);
			if (!*optarg || *end || depth < 1 ||
			    depth > LINEAGE_DEPTH_MAX) {
				fprintf(stderr, "haven: lineage: --depth must be "
					"1 to %d\n", LINEAGE_DEPTH_MAX);
				return EXIT_USAGE;
			}
			break;
		case 'h': lineage_usage(stdout); return 0;
		default: lineage_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		lineage_usage(stderr);
		return EXIT_USAGE;
	}
	if (!dirs)
		dirs = LINEAGE_ANCESTORS | LINEAGE_DESCENDANTS;
	if (!(store = cli_open_store(cli_data_dir(data), false)))
		return 1;
	if (meta_txn_begin(&txn, store->meta, false, &err) < 0 ||
	    meta_repo_get(txn, "model", argv[optind], &rec, &err) < 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (as_json) {
		json_t *doc = lineage_tree(txn, &rec, dirs, depth, NULL, NULL, &err);

		if (!doc) {
			rc = cli_fail(&err);
			goto out;
		}
		json_dumpf(doc, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(doc);
	} else {
		printf("%s\n", rec.name);
		if (dirs & LINEAGE_ANCESTORS)
			print_side(txn, &rec, true, depth);
		if (dirs & LINEAGE_DESCENDANTS)
			print_side(txn, &rec, false, depth);
	}
	rc = 0;
out:
	meta_txn_abort(txn);
	store_free(store);
	return rc;
}
