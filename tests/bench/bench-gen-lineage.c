/*
 * bench-gen-lineage.c: writes the data set of bench-lineage.sh into a
 * Haven data folder: TOTAL model repositories, each a real bare git
 * repository with the default .gitattributes commit and a second commit
 * adding README.md (a card naming its base) and config.json, with the
 * lineage edges derived from that card. It goes through the same calls
 * as the commit API (repo_create, commit_builder, card_lineage_sync), so
 * the server reads what it would have written itself.
 *
 *   bench-gen-lineage DATA [--total N] [--shape A,B,C] [--jobs J]
 *
 * The forest: bench/base has A children (bench/l1-I), each of those B
 * (bench/l2-I-J) and each of those C (bench/l3-I-J-K): A + A*B + A*B*C
 * descendants over three levels. The rest, up to TOTAL, are small trees
 * of ten under other namespaces (ns-N/root-M and nine children naming
 * it). A repository that exists already is skipped, so an interrupted
 * run can be resumed. J processes share the work (default 2).
 */
#include "common/compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "ingest/card_lineage.h"
#include "storage/commit_builder.h"
#include "storage/gitrepo.h"
#include "storage/store.h"

struct shape {
	long a, b, c;
};

static const char *const level2_relation[] = { "adapter", "quantized" };

/* Name and card of repository number i (0 is the base). */
static void repo_plan(long i, const struct shape *s, char *name, size_t nsize,
		      char *card, size_t csize)
{
	long tree = 1 + s->a + s->a * s->b + s->a * s->b * s->c;
	char base[REPO_NAME_MAX] = "";
	const char *relation = NULL;

	if (i == 0) {
		snprintf(name, nsize, "bench/base");
	} else if (i <= s->a) {
		long x = i - 1;
		snprintf(name, nsize, "bench/l1-%ld", x);
		snprintf(base, sizeof(base), "bench/base");
		relation = "finetune";
	} else if (i <= s->a + s->a * s->b) {
		long x = i - 1 - s->a;
		snprintf(name, nsize, "bench/l2-%ld-%ld", x / s->b, x % s->b);
		snprintf(base, sizeof(base), "bench/l1-%ld", x / s->b);
		relation = level2_relation[x % 2];
	} else if (i < tree) {
		long x = i - 1 - s->a - s->a * s->b;
		long p = x / s->c;
		snprintf(name, nsize, "bench/l3-%ld-%ld-%ld", p / s->b, p % s->b,
			 x % s->c);
		snprintf(base, sizeof(base), "bench/l2-%ld-%ld", p / s->b,
			 p % s->b);
		/* no relation: inferred (finetune) */
	} else {
		long x = i - tree, ns = x / 1000, root = x / 10;
		if (x % 10 == 0) {
			snprintf(name, nsize, "ns-%ld/root-%ld", ns, root);
		} else {
			snprintf(name, nsize, "ns-%ld/m-%ld", ns, x);
			snprintf(base, sizeof(base), "ns-%ld/root-%ld", ns, root);
		}
	}
	if (!base[0])
		snprintf(card, csize, "---\nlicense: apache-2.0\n"
			 "library_name: transformers\n---\n# %s\n", name);
	else if (relation)
		snprintf(card, csize, "---\nbase_model: %s\nbase_model_relation: "
			 "%s\nlicense: apache-2.0\nlibrary_name: transformers\n"
			 "---\n# %s\n", base, relation, name);
	else
		snprintf(card, csize, "---\nbase_model: %s\nlicense: apache-2.0\n"
			 "library_name: transformers\n---\n# %s\n", base, name);
}

/* The second commit: README.md and config.json on main. */
static int add_card(struct store *store, const struct repo_record *rec,
		    const char *card, struct err *err)
{
	static const char config[] = "{\"model_type\": \"bench\"}\n";
	struct commit_builder_info info = { "bench", "Add model card" };
	struct commit_builder *b = NULL;
	git_repository *git = NULL;
	git_oid head, readme, cfg, out;
	char ref[256];
	int rc;

	if ((rc = repo_open_git(&git, store, rec, err)) < 0)
		return rc;
	if ((rc = gitrepo_resolve(git, "main", &head, ref, sizeof(ref), err)) < 0)
		goto out;
	if (git_blob_create_from_buffer(&readme, git, card, strlen(card)) < 0 ||
	    git_blob_create_from_buffer(&cfg, git, config, strlen(config)) < 0) {
		rc = err_set(err, ERR_FAIL, "cannot write blobs in %s", rec->name);
		goto out;
	}
	if ((rc = commit_builder_new(&b, git, &head, err)) < 0 ||
	    (rc = commit_builder_add(b, "README.md", 0100644, &readme, err)) < 0 ||
	    (rc = commit_builder_add(b, "config.json", 0100644, &cfg, err)) < 0 ||
	    (rc = commit_builder_commit(b, "refs/heads/main", &head, &info, &out,
					err)) < 0)
		goto out;
out:
	commit_builder_free(b);
	git_repository_free(git);
	return rc;
}

static int make_one(struct store *store, long i, const struct shape *s,
		    struct err *err)
{
	char name[REPO_NAME_MAX], card[1024];
	struct repo_record rec;
	int rc;

	repo_plan(i, s, name, sizeof(name), card, sizeof(card));
	if (repo_lookup(store, "model", name, &rec, NULL) == 0)
		return 0;	/* made by an earlier run */
	if ((rc = repo_create(store, "model", name, &rec, err)) < 0 ||
	    (rc = add_card(store, &rec, card, err)) < 0)
		return rc;
	return card_lineage_sync(store, &rec, err);
}

/* Worker k of jobs: repositories k, k + jobs, ... The base and the first
 * level go first (worker 0), so every edge is written to a held model. */
static int worker(const char *data, long total, const struct shape *s,
		  int k, int jobs)
{
	struct store *store = NULL;
	struct err err = { 0 };
	time_t t0 = time(NULL);
	long done = 0;

	if (store_open(&store, data, true, &err) < 0) {
		fprintf(stderr, "bench-gen-lineage: %s\n", err.msg);
		return 1;
	}
	for (long i = s->a + 1 + k; i < total; i += jobs) {
		if (make_one(store, i, s, &err) < 0) {
			fprintf(stderr, "bench-gen-lineage: repo %ld: %s\n", i,
				err.msg);
			store_free(store);
			return 1;
		}
		if (++done % 5000 == 0 && k == 0)
			fprintf(stderr, "# %ld of %ld written (%lds)\n",
				done * jobs + s->a + 1, total,
				(long)(time(NULL) - t0));
	}
	store_free(store);
	return 0;
}

static int parse_shape(const char *arg, struct shape *s)
{
	char *end;

	s->a = strtol(arg, &end, 10);
	if (*end != ',')
		return -1;
	s->b = strtol(end + 1, &end, 10);
	if (*end != ',')
		return -1;
	s->c = strtol(end + 1, &end, 10);
	return (*end || s->a < 1 || s->b < 1 || s->c < 1 ||
		s->a > 100000 || s->b > 1000 || s->c > 1000) ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct shape s = { 200, 20, 4 };
	struct store *store = NULL;
	struct err err = { 0 };
	long total = 100000;
	int jobs = 2, failed = 0;
	const char *data = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--total") && i + 1 < argc)
			total = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
			if (parse_shape(argv[++i], &s) < 0) {
				fprintf(stderr, "bench-gen-lineage: --shape A,B,C\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
			jobs = (int)strtol(argv[++i], NULL, 10);
		else if (argv[i][0] != '-' && !data)
			data = argv[i];
		else {
			fprintf(stderr, "usage: bench-gen-lineage DATA [--total N] "
				"[--shape A,B,C] [--jobs J]\n");
			return 2;
		}
	}
	if (!data || jobs < 1 || jobs > 64 ||
	    total < 1 + s.a + s.a * s.b + s.a * s.b * s.c) {
		fprintf(stderr, "bench-gen-lineage: need DATA, 1..64 jobs and a "
			"total of at least the tree (%ld)\n",
			1 + s.a + s.a * s.b + s.a * s.b * s.c);
		return 2;
	}
	/* No gitrepo_global_init: the objects need no fsync for a benchmark
	 * (the data are thrown away), and the run is far quicker without. */
	git_libgit2_init();
	if (store_open(&store, data, true, &err) < 0) {
		fprintf(stderr, "bench-gen-lineage: %s\n", err.msg);
		return 1;
	}
	for (long i = 0; i <= s.a && !failed; i++) {
		if (make_one(store, i, &s, &err) < 0) {
			fprintf(stderr, "bench-gen-lineage: repo %ld: %s\n", i,
				err.msg);
			failed = 1;
		}
	}
	store_free(store);
	if (failed)
		return 1;
	fflush(NULL);
	for (int k = 0; k < jobs; k++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("bench-gen-lineage: fork");
			return 1;
		}
		if (pid == 0)
			_exit(worker(data, total, &s, k, jobs));
	}
	for (int k = 0; k < jobs; k++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			failed = 1;
	}
	git_libgit2_shutdown();
	printf("%ld repositories in %s; bench/base has %ld descendants "
	       "(%ld, %ld, %ld per level)\n", total, data,
	       s.a + s.a * s.b + s.a * s.b * s.c, s.a, s.a * s.b,
	       s.a * s.b * s.c);
	return failed;
}
