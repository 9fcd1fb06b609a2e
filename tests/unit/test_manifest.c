/*
 * test_manifest.c: the manifest format (expansion, errors with line
 * numbers), the check against a tensor list, and the shipped manifests of
 * the featured models (tensor counts and parameter totals derived from
 * their published configurations).
 */
#include "common/compat.h"

#include <stdlib.h>
#include <string.h>

#include "loaders/manifest.h"
#include "tests/unit/test.h"

static int add(struct tensor_list *l, const char *name, int dt, int nd,
	       uint64_t d0, uint64_t d1)
{
	struct tensor_desc t = { .name = (char *)name, .dtype = dt, .ndim = nd,
				 .shape = { d0, d1 } };
	return tensor_list_add(l, &t, NULL);
}

static int test_parse_and_check(void)
{
	const char *text =
		"# a model\n"
		"name  tiny\n"
		"repo  Org/Tiny\n"
		"files *.safetensors\n"
		"block layers.{i}. 2\n"
		"tensor layers.{0..1}.{q,k}.weight BF16 4 4\n"
		"tensor emb BF16 * 4\n"
		"opt    head.weight BF16 4 4\n"
		"allow  extra.*\n";
	struct manifest *m = NULL;
	struct manifest_report r = { 0 };
	struct tensor_list l = { 0 };
	struct err e;
	int rc = -1;

	CHECK(manifest_parse(&m, text, strlen(text), "tiny.manifest", &e) == 0);
	CHECK(m->count == 6 && m->nblocks == 2 && !strcmp(m->name, "tiny"));
	CHECK(manifest_wants_file(m, "sub/model.safetensors"));
	CHECK(!manifest_wants_file(m, "model.bin"));
	CHECK(manifest_block_of(m, "layers.1.q.weight") == 1);
	CHECK(manifest_block_of(m, "layers.2.q.weight") == -1);
	CHECK(manifest_block_of(m, "layers.x.q.weight") == -1);
	CHECK(manifest_block_of(m, "emb") == -1);
	add(&l, "layers.0.q.weight", DT_BF16, 2, 4, 4);
	add(&l, "layers.0.k.weight", DT_BF16, 2, 4, 4);
	add(&l, "layers.1.q.weight", DT_F32, 2, 4, 4);	/* different */
	add(&l, "emb", DT_BF16, 2, 1000, 4);		/* any first dim */
	add(&l, "extra.thing", DT_U8, 1, 3, 0);		/* allowed */
	add(&l, "stray", DT_U8, 1, 3, 0);		/* extra */
	CHECK(tensor_list_sort_unique(&l, &e) == 0);
	CHECK(manifest_check(&r, m, &l, &e) == 0);
	CHECK(r.matched == 3 && r.missing == 1 && r.different == 1 &&
	      r.extra == 1 && r.allowed == 1);
	CHECK(!manifest_report_ok(&r));
	bool saw_missing = false, saw_diff = false;
	for (size_t i = 0; i < r.nlines; i++) {
		saw_missing |= !strcmp(r.lines[i], "missing layers.1.k.weight BF16 [4, 4]");
		saw_diff |= strstr(r.lines[i], "different layers.1.q.weight: F32") != NULL;
	}
	CHECK(saw_missing && saw_diff);
	rc = 0;
out:
	manifest_report_release(&r);
	tensor_list_release(&l);
	manifest_free(m);
	return rc;
}

static int bad(const char *text, const char *needle)
{
	struct manifest *m = NULL;
	struct err e;
	int rc = manifest_parse(&m, text, strlen(text), "x.manifest", &e);

	manifest_free(m);
	if (rc != ERR_INVALID || !strstr(e.msg, needle)) {
		fprintf(stderr, "  rc %d '%s' (wanted '%s')\n", rc, e.msg, needle);
		return -1;
	}
	return 0;
}

static int test_parse_errors(void)
{
	int rc = -1;

	CHECK(bad("name a\nfiles x\ntensor t F33 1\n", "x.manifest:3: unknown dtype") == 0);
	CHECK(bad("name a\nfiles x\nwhat 1\n", ":3: unknown keyword") == 0);
	CHECK(bad("name a\nfiles x\ntensor t{0..} F32 1\n", "bad range") == 0);
	CHECK(bad("name a\nfiles x\ntensor t{0..3 F32 1\n", "unbalanced") == 0);
	CHECK(bad("name a\nfiles x\ntensor t F32 -1\n", "bad dimension") == 0);
	CHECK(bad("name a\nfiles x\ntensor t F32 1\ntensor t F32 1\n", "listed twice") == 0);
	CHECK(bad("name a\n", "needs name and files") == 0);
	CHECK(bad("name a\nfiles x\nblock blocks. 4\n", "block needs") == 0);
	rc = 0;
out:
	return rc;
}

static uint64_t params_of(const struct manifest *m)
{
	uint64_t total = 0;

	for (size_t i = 0; i < m->count; i++) {
		uint64_t n = 1;
		if (m->t[i].optional)
			continue;
		for (int d = 0; d < m->t[i].ndim; d++)
			n *= m->t[i].shape[d] == MANIFEST_ANY_DIM ? 0 : m->t[i].shape[d];
		total += n;
	}
	return total;
}

static int test_shipped_manifests(void)
{
	struct manifest **list = NULL;
	size_t n = 0;
	struct err e;
	int rc = -1;

	/* Helios: two components, transformer 1,101 tensors, 14.31 B. */
	CHECK(manifest_find(&list, &n, MANIFEST_SRC_DIR, "bestwishysh/helios-distilled",
			    &e) == 0);
	CHECK(n == 2);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(list[i]->name, "helios-transformer")) {
			CHECK(list[i]->count == 1101 && list[i]->nblocks == 40);
			CHECK(params_of(list[i]) == 14312427584ull);
			CHECK(manifest_block_of(list[i], "blocks.39.ffn.net.2.bias") == 39);
		} else {
			CHECK(!strcmp(list[i]->name, "helios-text-encoder"));
			CHECK(params_of(list[i]) == 5680910336ull);
		}
	}
	manifest_list_free(list, n);
	list = NULL;
	/* Voxtral: backbone 3.4 B in 26 x 9 + 3 tensors, 3 acoustic layers,
	 * 20 voices. */
	CHECK(manifest_find(&list, &n, MANIFEST_SRC_DIR, "mistralai/Voxtral-4B-TTS-2603",
			    &e) == 0 && n == 1);
	CHECK(list[0]->count == 26 * 9 + 3 + 3 * 9 + 20);
	CHECK(params_of(list[0]) == 26ull * 116398080 + 3ull * 116398080 +
	      402653184 + 9088ull * 3072 + 3072);
	manifest_list_free(list, n);
	list = NULL;
	CHECK(manifest_find(&list, &n, MANIFEST_SRC_DIR, "nvidia/NitroGen", &e) == 0 &&
	      n == 1 && list[0]->all_dtype == DT_F32 && list[0]->params == 493600000);
	manifest_list_free(list, n);
	list = NULL;
	CHECK(manifest_find(&list, &n, MANIFEST_SRC_DIR, "nobody/nothing", &e) == 0 &&
	      n == 0);
	rc = 0;
out:
	manifest_list_free(list, n);
	return rc;
}

int main(void)
{
	RUN(test_parse_and_check);
	RUN(test_parse_errors);
	RUN(test_shipped_manifests);
	return TEST_REPORT();
}
