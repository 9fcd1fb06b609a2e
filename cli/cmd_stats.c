/*
 * cmd_stats.c: `haven stats [--top N] [--author NS] [--since YYYY-MM-DD]
 * [--by day|repo|author] [--json]`: download totals read from the
 * counters the server flushes to LMDB (storage/stats.h). It reads the
 * data folder directly, so it is for the operator, who sees every repo,
 * private ones included. Counters of deleted repositories are skipped.
 */
#include "common/compat.h"

#include <getopt.h>
#include <inttypes.h>
#include <strings.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/util.h"
#include "storage/stats.h"

enum stats_by { BY_DAY, BY_REPO, BY_AUTHOR };

struct row {
	char key[REPO_NAME_MAX];
	uint64_t n;
};

struct stats_walk {
	struct meta_txn *txn;
	const char *author;
	const char *since;
	enum stats_by by;
	struct row *rows;
	size_t count, cap;
	uint64_t total;
	/* The records come in repo id order: one lookup per repo. */
	char last_id[REPO_ID_LEN + 1];
	bool last_ok;
	struct repo_record rec;
};

static bool author_matches(const char *name, const char *author)
{
	size_t n = strlen(author);

	return !author[0] || (!strncasecmp(name, author, n) && name[n] == '/');
}

static int add_row(struct stats_walk *w, const char *key, uint64_t n)
{
	if (w->count == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		void *p = realloc(w->rows, cap * sizeof(*w->rows));
		if (!p)
			return ERR_FAIL;
		w->rows = p;
		w->cap = cap;
	}
	str_copy(w->rows[w->count].key, key, sizeof(w->rows[0].key));
	w->rows[w->count++].n = n;
	return 0;
}

static int visit(const char *repo_id, const char *day, uint64_t n, void *arg)
{
	struct stats_walk *w = arg;
	char ns[REPO_NAME_MAX];
	const char *key;

	if (strcmp(day, w->since) < 0)
		return 0;
	if (strcmp(repo_id, w->last_id)) {
		str_copy(w->last_id, repo_id, sizeof(w->last_id));
		w->last_ok = meta_repo_get_by_id(w->txn, repo_id, &w->rec,
						 NULL) == 0 &&
			     author_matches(w->rec.name, w->author);
	}
	if (!w->last_ok)
		return 0;
	w->total += n;
	if (w->by == BY_DAY) {
		key = day;
	} else if (w->by == BY_REPO) {
		key = w->rec.name;
	} else {
		str_copy(ns, w->rec.name, sizeof(ns));
		if (strchr(ns, '/'))
			*strchr(ns, '/') = '\0';
		key = ns;
	}
	return add_row(w, key, n);
}

static int cmp_key(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;

	return strcmp(a->key, b->key);
}

static int cmp_count(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;

	if (a->n != b->n)
		return a->n > b->n ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* Sums the rows of equal keys; then orders days by date and the others
 * by count, most first. */
static void merge_rows(struct stats_walk *w)
{
	size_t o = 0;

	if (!w->count)
		return;
	qsort(w->rows, w->count, sizeof(*w->rows), cmp_key);
	for (size_t i = 0; i < w->count; i++) {
		if (o && !strcmp(w->rows[o - 1].key, w->rows[i].key))
			w->rows[o - 1].n += w->rows[i].n;
		else
			w->rows[o++] = w->rows[i];
	}
	w->count = o;
	if (w->by != BY_DAY)
		qsort(w->rows, w->count, sizeof(*w->rows), cmp_count);
}

static void print_rows(const struct stats_walk *w, size_t first, bool json,
		       const char *by_name)
{
	static const char *const heads[] = { "day", "repo", "author" };

	if (json) {
		json_t *rows = json_array(), *doc;
		for (size_t i = first; i < w->count; i++)
			json_array_append_new(rows, json_pack(
				"{s:s, s:I}", heads[w->by], w->rows[i].key,
				"downloads", (json_int_t)w->rows[i].n));
		doc = json_pack("{s:I, s:s, s:s?, s:o}", "total",
				(json_int_t)w->total, "by", by_name, "since",
				w->since[0] ? w->since : NULL, "rows", rows);
		cli_print_json(doc);
		return;
	}
	printf("%" PRIu64 " downloads%s%s\n\n", w->total,
	       w->since[0] ? " since " : "", w->since);
	printf("%-40s %12s\n", heads[w->by], "downloads");
	for (size_t i = first; i < w->count; i++)
		printf("%-40s %12" PRIu64 "\n", w->rows[i].key, w->rows[i].n);
}

static int usage(FILE *out)
{
	fprintf(out, "usage: haven stats [--top N] [--author NS] [--since "
		"YYYY-MM-DD]\n                   [--by day|repo|author] [--json] "
		"[--data DIR]\n\nDownload totals from the counters the server "
		"writes (every few seconds and\non shutdown). --by day (the default) "
		"prints one row per UTC day, oldest first\n(--top N: the last N "
		"days); --by repo and --by author the N largest.\n");
	return out == stdout ? 0 : EXIT_USAGE;
}

static bool is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool valid_day(const char *s)
{
	return strlen(s) == STATS_DAY_LEN && s[4] == '-' && s[7] == '-' &&
	       is_digits(s, 4) && is_digits(s + 5, 2) && is_digits(s + 8, 2);
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "top", required_argument, NULL, 't' },
		{ "author", required_argument, NULL, 'a' },
		{ "since", required_argument, NULL, 's' },
		{ "by", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stats_walk w = { .author = "", .since = "" };
	struct err err = { 0 };
	struct store *store;
	const char *data = NULL, *by = "day";
	long top = 0;
	bool json = false;
	char *end;
	size_t first = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'a': w.author = optarg; break;
		case 's': w.since = optarg; break;
		case 'b': by = optarg; break;
		case 'j': json = true; break;
		case 't':
			top = strtol(optarg, &end, 10);
			if (*end || end == optarg || top < 1) {
				fprintf(stderr, "haven: invalid --top '%s': a "
					"positive number\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': return usage(stdout);
		default: return usage(stderr);
		}
	}
	if (optind < argc)
		return usage(stderr);
	if (w.since[0] && !valid_day(w.since)) {
		fprintf(stderr, "haven: invalid --since '%s': YYYY-MM-DD\n", w.since);
		return EXIT_USAGE;
	}
	if (!strcmp(by, "day")) {
		w.by = BY_DAY;
	} else if (!strcmp(by, "repo")) {
		w.by = BY_REPO;
	} else if (!strcmp(by, "author")) {
		w.by = BY_AUTHOR;
	} else {
		fprintf(stderr, "haven: invalid --by '%s': day, repo or author\n", by);
		return EXIT_USAGE;
	}
	if (!(store = cli_open_store(cli_data_dir(data), false)))
		return 1;
	if ((rc = meta_txn_begin(&w.txn, store->meta, false, &err)) == 0) {
		rc = stats_foreach_day(w.txn, visit, &w, &err);
		if (rc < 0 && !err.msg[0])	/* add_row failed */
			rc = err_set(&err, ERR_FAIL, "out of memory");
		meta_txn_abort(w.txn);
	}
	store_free(store);
	if (rc < 0) {
		free(w.rows);
		return cli_fail(&err);
	}
	merge_rows(&w);
	if (top && (size_t)top < w.count) {
		if (w.by == BY_DAY)
			first = w.count - (size_t)top;
		else
			w.count = (size_t)top;
	}
	print_rows(&w, first, json, by);
	free(w.rows);
	return 0;
}
