/*
 * cmd_mirror.c: `haven mirror`: copies repositories from an upstream Hub
 * with their exact commit ids (ingest/mirror.c does the work), and
 * `haven mirror --status` shows how each mirrored repository last synced.
 */
#include "common/compat.h"

#include <getopt.h>
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ingest/mirror.h"
#include "storage/mirror_state.h"

#define MAX_LIST 64

static void mirror_usage(FILE *out)
{
	fprintf(out,
		"usage: haven mirror NS/NAME... [--type model|dataset|space]\n"
		"                    [--revision REV]... [--include GLOB]... [--exclude GLOB]...\n"
		"                    [--from URL] [--token TOKEN] [--ca-bundle FILE]\n"
		"                    [--list FILE] [--author NS] [--parallel N]\n"
		"                    [--retries N] [--limit-rate BYTES] [--json] [--data DIR]\n"
		"       haven mirror --status [--json] [--data DIR]\n\n"
		"Copies repositories from an upstream Hub (default %s):\n"
		"the git history with the upstream's exact commit ids, then the LFS\n"
		"files of the wanted revisions (every branch and tag unless --revision\n"
		"is given), each checked by size and sha256. Running it again fetches\n"
		"only what is new; an interrupted run resumes. --include/--exclude\n"
		"choose which LFS files are fetched (the history is always whole).\n"
		"The token comes from --token or $HF_TOKEN; proxies from\n"
		"$HTTPS_PROXY and $NO_PROXY. --list FILE names one repository per\n"
		"line (datasets/NS/NAME for a dataset); --author NS mirrors every\n"
		"public repository of a namespace. Failed requests are retried N\n"
		"times (default 5) with backoff that honours Retry-After.\n"
		"--limit-rate caps each transfer (e.g. 50M bytes per second).\n",
		UPSTREAM_DEFAULT_URL);
}

struct target {
	char type[8];
	char name[REPO_NAME_MAX];
};

struct targets {
	struct target *v;
	size_t n, cap;
};

static int targets_add(struct targets *t, const char *type, const char *name)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct target *p = realloc(t->v, cap * sizeof(*p));
		if (!p)
			return -1;
		t->v = p;
		t->cap = cap;
	}
	str_copy(t->v[t->n].type, type, sizeof(t->v[t->n].type));
	str_copy(t->v[t->n].name, name, sizeof(t->v[t->n].name));
	t->n++;
	return 0;
}

/* "datasets/ns/name", "models/ns/name" or "ns/name" */
static int targets_add_spec(struct targets *t, const char *deftype,
			    const char *spec)
{
	if (!strncmp(spec, "datasets/", 9))
		return targets_add(t, "dataset", spec + 9);
	if (!strncmp(spec, "spaces/", 7))
		return targets_add(t, "space", spec + 7);
	if (!strncmp(spec, "models/", 7))
		return targets_add(t, "model", spec + 7);
	return targets_add(t, deftype, spec);
}

static int read_list_file(struct targets *t, const char *deftype,
			  const char *path, struct err *err)
{
	char *text = NULL, *line, *save = NULL;
	size_t len;

	if (file_read_all(&text, &len, path, 64 << 20) < 0)
		return err_set(err, ERR_INVALID, "cannot read list '%s'", path);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		while (*line == ' ' || *line == '\t')
			line++;
		end = line + strlen(line);
		while (end > line && (end[-1] == ' ' || end[-1] == '\r' ||
				      end[-1] == '\t'))
			*--end = '\0';
		if (!*line || *line == '#')
			continue;
		if (targets_add_spec(t, deftype, line) < 0) {
			free(text);
			return err_set(err, ERR_FAIL, "out of memory");
		}
	}
	free(text);
	return 0;
}

/* Every public repository of a namespace, following the Link pages. */
static int read_author(struct targets *t, const char *type,
		       const struct upstream_config *cfg, const char *author,
		       struct err *err)
{
	char path[1024];
	struct upstream *up = NULL;
	int rc;

	if ((rc = upstream_new(&up, cfg, err)) < 0)
		return rc;
	snprintf(path, sizeof(path), "/api/%s?author=%s&limit=1000",
		 !strcmp(type, "dataset") ? "datasets" :
		 !strcmp(type, "space") ? "spaces" : "models", author);
	while (rc == 0 && path[0]) {
		struct upstream_reply reply;
		json_t *list = NULL, *item;
		size_t i;
		if ((rc = upstream_get_json(up, path, NULL, &list, &reply, err)) < 0)
			break;
		json_array_foreach(list, i, item) {
			const char *id = json_string_value(json_object_get(item, "id"));
			if (id && targets_add(t, type, id) < 0)
				rc = err_set(err, ERR_FAIL, "out of memory");
		}
		json_decref(list);
		str_copy(path, reply.link_next, sizeof(path));
	}
	upstream_free(up);
	return rc;
}

/* ---- progress ---- */

struct progress_view {
	bool tty;
	double started, last_print;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void human_bytes(char *out, size_t size, double b)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (b >= 1024 && u + 1 < ARRAY_SIZE(units))
		b /= 1024, u++;
	snprintf(out, size, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static void on_progress(const struct mirror_progress *p, void *arg)
{
	struct progress_view *v = arg;
	double t = now_s(), elapsed = t - v->started;
	double rate = elapsed > 0 ? p->bytes_done / elapsed : 0;
	char done[32], total[32], speed[32], eta[32] = "--:--";
	bool finished = p->bytes_done >= p->bytes_total;

	if (t - v->last_print < (v->tty ? 0.2 : 5.0) && !finished)
		return;
	v->last_print = t;
	human_bytes(done, sizeof(done), (double)p->bytes_done);
	human_bytes(total, sizeof(total), (double)p->bytes_total);
	human_bytes(speed, sizeof(speed), rate);
	if (rate > 0 && !finished) {
		long s = (long)((p->bytes_total - p->bytes_done) / rate);
		snprintf(eta, sizeof(eta), "%ld:%02ld", s / 60, s % 60);
	}
	fprintf(stderr, "%s%s: files %llu/%llu  %s / %s  %s/s  ETA %s%s",
		v->tty ? "\r\033[K" : "", p->repo,
		(unsigned long long)p->files_done,
		(unsigned long long)p->files_total, done, total, speed, eta,
		v->tty ? "" : "\n");
}

/* ---- --status ---- */

static void time_or_never(char out[32], int64_t t)
{
	if (t)
		time_iso8601(out, (time_t)t);
	else
		str_copy(out, "never", 32);
}

static int print_state(const struct mirror_state *st, void *arg)
{
	json_t *list = arg;
	char last[32];

	time_or_never(last, st->last_success);
	if (list) {
		json_array_append_new(list, json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
			"type", st->type, "id", st->name, "upstream", st->upstream,
			"mode", st->mode == MIRROR_MODE_PULL_THROUGH ?
				"pull-through" : "mirror",
			"status", st->status, "lastSync", last,
			"error", st->error, "bytes", (json_int_t)st->bytes_total));
		return 0;
	}
	printf("%-8s %-40s %-12s %-7s %-20s %s\n", st->type, st->name,
	       st->mode == MIRROR_MODE_PULL_THROUGH ? "pull-through" : "mirror",
	       st->status, last, st->error[0] ? st->error : st->upstream);
	return 0;
}

static int show_status(const char *data, bool json)
{
	struct store *store = cli_open_store(data, false);
	json_t *list = json ? json_array() : NULL;
	struct err err = { 0 };
	int rc;

	if (!store)
		return 1;
	if (!json)
		printf("%-8s %-40s %-12s %-7s %-20s %s\n", "TYPE", "REPO", "MODE",
		       "STATUS", "LAST SYNC", "UPSTREAM OR ERROR");
	rc = mirror_state_foreach(store->meta, print_state, list, &err);
	store_free(store);
	if (json) {
		cli_print_json(list);
	}
	return rc < 0 ? cli_fail(&err) : 0;
}

/* ---- the run ---- */

struct run_totals {
	size_t repos, failed;
	uint64_t files, present, bytes;
};

static void report_repo(json_t *out, const struct target *t,
			const struct mirror_result *res, int rc,
			const struct err *err)
{
	if (out) {
		json_array_append_new(out, json_pack(
			"{s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I}",
			"type", t->type, "id", t->name, "ok", rc == 0,
			"error", rc < 0 ? err->msg : "",
			"refsUpdated", (json_int_t)res->refs_updated,
			"filesFetched", (json_int_t)res->lfs_fetched,
			"filesPresent", (json_int_t)res->lfs_present,
			"bytesFetched", (json_int_t)res->bytes_fetched));
		return;
	}
	if (rc < 0)
		fprintf(stderr, "haven: %s: %s\n", t->name, err->msg);
	else
		fprintf(stderr, "%s: %llu refs updated, %llu files fetched, "
			"%llu already here\n", t->name,
			(unsigned long long)res->refs_updated,
			(unsigned long long)res->lfs_fetched,
			(unsigned long long)res->lfs_present);
}

static void report_summary(json_t *repos, const struct run_totals *tot,
			   double secs)
{
	char bytes[32], rate[32];

	if (repos) {
		json_t *o = json_pack("{s:o, s:I, s:I, s:I, s:I, s:f}",
				      "repos", repos, "failed", (json_int_t)tot->failed,
				      "filesFetched", (json_int_t)tot->files,
				      "filesPresent", (json_int_t)tot->present,
				      "bytesFetched", (json_int_t)tot->bytes,
				      "seconds", secs);
		cli_print_json(o);
		return;
	}
	human_bytes(bytes, sizeof(bytes), (double)tot->bytes);
	human_bytes(rate, sizeof(rate), secs > 0 ? tot->bytes / secs : 0);
	printf("mirrored %zu of %zu repositories: %llu files fetched (%llu "
	       "already here), %s in %.1f s (%s/s)\n", tot->repos - tot->failed,
	       tot->repos, (unsigned long long)tot->files,
	       (unsigned long long)tot->present, bytes, secs, rate);
}

struct mirror_args {
	struct upstream_config cfg;
	struct mirror_options opt;
	const char *revisions[MAX_LIST], *include[MAX_LIST], *exclude[MAX_LIST];
	const char *type, *list_file, *author, *data;
	bool json, status;
	struct targets targets;
};

static int add_arg(const char **v, size_t *n, const char *value)
{
	if (*n >= MAX_LIST) {
		fprintf(stderr, "haven: at most %d of each option\n", MAX_LIST);
		return -1;
	}
	v[(*n)++] = value;
	return 0;
}

static int parse_count(const char *s, long min, long max, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* "100M" -> 104857600; K, M, G are powers of 1024. */
static int parse_rate(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;

	if (end == s)
		return -1;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	default: break;
	}
	if (*end || v == 0 || v > (1ULL << (63 - shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_args(struct mirror_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "type", required_argument, NULL, 't' },
		{ "revision", required_argument, NULL, 'r' },
		{ "include", required_argument, NULL, 'i' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "from", required_argument, NULL, 'f' },
		{ "token", required_argument, NULL, 'k' },
		{ "ca-bundle", required_argument, NULL, 'c' },
		{ "list", required_argument, NULL, 'l' },
		{ "author", required_argument, NULL, 'a' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "retries", required_argument, NULL, 'R' },
		{ "limit-rate", required_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },
		{ "status", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 't': a->type = optarg; break;
		case 'r': if (add_arg(a->revisions, &a->opt.nrevisions, optarg)) return -1; break;
		case 'i': if (add_arg(a->include, &a->opt.ninclude, optarg)) return -1; break;
		case 'x': if (add_arg(a->exclude, &a->opt.nexclude, optarg)) return -1; break;
		case 'f': a->cfg.url = optarg; break;
		case 'k': a->cfg.token = optarg; break;
		case 'c': a->cfg.ca_bundle = optarg; break;
		case 'l': a->list_file = optarg; break;
		case 'a': a->author = optarg; break;
		case 'p':
			if (parse_count(optarg, 1, 32, &a->opt.parallel) < 0) {
				fprintf(stderr, "haven: --parallel takes 1 to 32\n");
				return -1;
			}
			break;
		case 'R': /* 0 in the config means the default */
			if (parse_count(optarg, 0, 100, &a->cfg.max_retries) < 0) {
				fprintf(stderr, "haven: --retries takes 0 to 100\n");
				return -1;
			}
			if (a->cfg.max_retries == 0)
				a->cfg.max_retries = -1;
			break;
		case 'L':
			if (parse_rate(optarg, &a->cfg.max_rate) < 0) {
				fprintf(stderr, "haven: --limit-rate takes bytes per "
					"second, e.g. 50M\n");
				return -1;
			}
			break;
		case 'j': a->json = true; break;
		case 's': a->status = true; break;
		case 'h': mirror_usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!a->type)
		a->type = "model";
	if (!repo_type_valid(a->type)) {
		fprintf(stderr, "haven: invalid type '%s'\n", a->type);
		return -1;
	}
	if (!a->cfg.token && getenv("HF_TOKEN") && getenv("HF_TOKEN")[0])
		a->cfg.token = getenv("HF_TOKEN");
	a->opt.revisions = a->revisions;
	a->opt.include = a->include;
	a->opt.exclude = a->exclude;
	return 0;
}

static int collect_targets(struct mirror_args *a, int argc, char **argv,
			   struct err *err)
{
	for (int i = optind; i < argc; i++) {
		if (targets_add_spec(&a->targets, a->type, argv[i]) < 0)
			return err_set(err, ERR_FAIL, "out of memory");
	}
	if (a->list_file &&
	    read_list_file(&a->targets, a->type, a->list_file, err) < 0)
		return ERR_INVALID;
	if (a->author && read_author(&a->targets, a->type, &a->cfg, a->author,
				     err) < 0)
		return ERR_FAIL;
	return 0;
}

int cmd_mirror(int argc, char **argv)
{
	struct mirror_args a = { 0 };
	struct progress_view view = { .tty = isatty(2) == 1 };
	struct run_totals tot = { 0 };
	struct err err = { 0 };
	struct store *store;
	json_t *out = NULL;
	double started;

	if (parse_args(&a, argc, argv) < 0) {
		mirror_usage(stderr);
		return EXIT_USAGE;
	}
	if (a.status)
		return show_status(cli_data_dir(a.data), a.json);
	if (collect_targets(&a, argc, argv, &err) < 0) {
		free(a.targets.v);
		return cli_fail(&err);
	}
	if (a.targets.n == 0) {
		free(a.targets.v);
		mirror_usage(stderr);
		return EXIT_USAGE;
	}
	if (!(store = cli_open_store(cli_data_dir(a.data), true))) {
		free(a.targets.v);
		return 1;
	}
	out = a.json ? json_array() : NULL;
	started = now_s();
	for (size_t i = 0; i < a.targets.n; i++) {
		struct mirror_options opt = a.opt;
		struct mirror_result res;
		int rc;

		opt.type = a.targets.v[i].type;
		opt.name = a.targets.v[i].name;
		if (!a.json) {
			opt.progress = on_progress;
			opt.progress_arg = &view;
		}
		view.started = now_s();
		view.last_print = 0;
		memset(&err, 0, sizeof(err));
		rc = mirror_repo(store, &a.cfg, &opt, &res, &err);
		if (view.tty && !a.json)
			fprintf(stderr, "\r\033[K");
		report_repo(out, &a.targets.v[i], &res, rc, &err);
		tot.repos++;
		tot.failed += rc < 0;
		tot.files += res.lfs_fetched;
		tot.present += res.lfs_present;
		tot.bytes += res.bytes_fetched;
	}
	report_summary(out, &tot, now_s() - started);
	store_free(store);
	free(a.targets.v);
	return tot.failed ? 1 : 0;
}
