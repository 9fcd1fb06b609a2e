/*
 * cmd_lineage.c: `haven lineage NS/NAME [--ancestors|--descendants]
 * [--depth N] [--json] [--data DIR]`, a model's place in the lineage
 * graph read straight from the data directory (an operator's view: every
 * repository is visible). The tree is printed one model a line, indented
 * by depth, with its relation to the line above; --json prints what the
 * lineage endpoint answers.
 *
 * `haven lineage --rebuild [NS/NAME]` reads the README card of the
 * default branch of every model (or of one) again and rewrites its
 * edges: for data written before lineage was kept, or left behind by a
 * crash between a git ref update and the LMDB transaction that follows
 * it. It prints each model whose edges changed, so a second run prints
 * none.
 */
#include "common/compat.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ingest/card_lineage.h"
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

/* --- --rebuild --- */

/* One line per edge of a model ("relation base [external] [inferred]")
 * and its card error: what --rebuild compares before and after. */
struct edge_text {
	struct meta_txn *txn;
	json_t *lines;
};

static int edge_line(const char *key, const struct lineage_edge *e, void *arg)
{
	struct edge_text *t = arg;
	struct repo_record rec;
	bool held = meta_repo_get(t->txn, "model", key, &rec, NULL) == 0;
	char *line = NULL;

	if (asprintf(&line, "%s %s%s%s", e->relation, held ? rec.name : e->base,
		     held ? "" : " (external)",
		     e->inferred ? " (inferred)" : "") < 0)
		return ERR_FAIL;
	json_array_append_new(t->lines, json_string(line));
	free(line);
	return 0;
}

/* "[relation base, ...]" or "card error: ..."; malloc'd. */
static char *edges_describe(struct store *store, const char *id,
			    struct err *err)
{
	struct edge_text t = { .lines = json_array() };
	char *why = NULL, *out = NULL;
	size_t i;
	json_t *v;

	if (!t.lines || meta_txn_begin(&t.txn, store->meta, false, err) < 0)
		goto out;
	if (lineage_parents(t.txn, id, edge_line, &t, err) != 0)
		goto out;
	if ((why = lineage_card_error(t.txn, id))) {
		if (asprintf(&out, "card error: %s", why) < 0)
			out = NULL;
		goto out;
	}
	if (!(out = strdup("[")))
		goto out;
	json_array_foreach(t.lines, i, v) {
		char *more = NULL;

		if (asprintf(&more, "%s%s%s", out, i ? ", " : "",
			     json_string_value(v)) < 0) {
			free(out);
			out = NULL;
			goto out;
		}
		free(out);
		out = more;
	}
	if (asprintf(&why, "%s]", out) < 0)
		why = NULL;
	free(out);
	out = why;
	why = NULL;
out:
	if (!out && err && !err->code)
		err_set(err, ERR_FAIL, "out of memory");
	meta_txn_abort(t.txn);
	json_decref(t.lines);
	free(why);
	return out;
}

struct model_list {
	struct repo_record *recs;
	size_t n, cap;
};

static int model_add(const struct repo_record *rec, void *arg)
{
	struct model_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct repo_record *r = realloc(l->recs, cap * sizeof(*r));

		if (!r)
			return ERR_FAIL;
		l->recs = r;
		l->cap = cap;
	}
	l->recs[l->n++] = *rec;
	return 0;
}

/* Re-derives one model's edges; prints them when they changed. */
static int rebuild_one(struct store *store, const struct repo_record *rec,
		       size_t *changed, struct err *err)
{
	char *before = NULL, *after = NULL;
	int rc = ERR_FAIL;

	if (!(before = edges_describe(store, rec->id, err)) ||
	    (rc = card_lineage_sync(store, rec, err)) < 0 ||
	    !(after = edges_describe(store, rec->id, err))) {
		if (rc == 0)
			rc = ERR_FAIL;
		goto out;
	}
	if (strcmp(before, after)) {
		printf("%s: %s -> %s\n", rec->name, before, after);
		(*changed)++;
	}
	rc = 0;
out:
	free(before);
	free(after);
	return rc;
}

static int rebuild(struct store *store, const char *name)
{
	struct model_list l = { 0 };
	struct meta_txn *txn = NULL;
	struct err err = { 0 };
	size_t changed = 0, failed = 0;
	int rc;

	if ((rc = meta_txn_begin(&txn, store->meta, false, &err)) == 0) {
		if (name) {
			struct repo_record rec;

			if ((rc = meta_repo_get(txn, "model", name, &rec,
						&err)) == 0)
				rc = model_add(&rec, &l);
		} else {
			rc = meta_repo_foreach(txn, "model", model_add, &l, &err);
		}
	}
	meta_txn_abort(txn);
	if (rc != 0) {
		if (!err.code)
			err_set(&err, ERR_FAIL, "out of memory");
		free(l.recs);
		return cli_fail(&err);
	}
	for (size_t i = 0; i < l.n; i++) {
		err_clear(&err);
		if (rebuild_one(store, &l.recs[i], &changed, &err) < 0) {
			fprintf(stderr, "haven: lineage: %s: %s\n",
				l.recs[i].name, err.msg);
			failed++;
		}
	}
	printf("lineage: %zu model%s read, %zu changed%s\n", l.n,
	       l.n == 1 ? "" : "s", changed,
	       failed ? ", some failed (see above)" : "");
	free(l.recs);
	return failed ? 1 : 0;
}

static void lineage_usage(FILE *f)
{
	fprintf(f, "usage: haven lineage NS/NAME [--ancestors|--descendants] "
		"[--depth N] [--json] [--data DIR]\n"
		"       haven lineage --rebuild [NS/NAME] [--data DIR]\n\n"
		"Prints the models a model "
		"derives from (ancestors) and the models derived\nfrom it "
		"(descendants), as read from the cards of their default "
		"branches.\nDepth defaults to 3 (at most %d).\n\n"
		"--rebuild reads the card of every model (or of NS/NAME) "
		"again and rewrites\nits edges, printing those that "
		"changed.\n", LINEAGE_DEPTH_MAX);
}

int cmd_lineage(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "ancestors", no_argument, NULL, 'a' },
		{ "descendants", no_argument, NULL, 'D' },
		{ "depth", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "rebuild", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct meta_txn *txn = NULL;
	struct store *store = NULL;
	struct repo_record rec;
	struct err err = { 0 };
	const char *data = NULL;
	int dirs = 0, depth = 3, c, rc = 1;
	bool as_json = false, do_rebuild = false;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'a': dirs |= LINEAGE_ANCESTORS; break;
		case 'D': dirs |= LINEAGE_DESCENDANTS; break;
		case 'j': as_json = true; break;
		case 'r': do_rebuild = true; break;
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
	if (do_rebuild) {
		if (optind + 1 < argc || dirs || as_json) {
			lineage_usage(stderr);
			return EXIT_USAGE;
		}
		if (!(store = cli_open_store(cli_data_dir(data), false)))
			return 1;
		rc = rebuild(store, optind < argc ? argv[optind] : NULL);
		store_free(store);
		return rc;
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
