/*
 * manifest.h: what a model's tensors must look like, written down from its
 * published configuration, so a load can report what is missing, extra or
 * different before any byte reaches a GPU. The text format (docs/loaders.md
 * has the full description):
 *
 *   # comment
 *   name    helios-transformer          one word, names the component
 *   repo    BestWishYsh/Helios-Base     one or more; matched ignoring case
 *   files   transformer/d*.safetensors  fnmatch patterns of the files read
 *   block   blocks.{i}. 40              offload unit: prefix and count
 *   reserve 1073741824                  bytes kept free for the runtime
 *   params  493600000 0.002             expected element total, tolerance
 *   dtype   F32                         every tensor must have this dtype
 *   tensor  blocks.{0..39}.attn1.to_q.weight BF16 5120 5120
 *   opt     encoder.embed_tokens.weight F32 256384 4096
 *   allow   audio_tokenizer.*           present or not, never "extra"
 *
 * Names expand {a..b} ranges and {x,y} lists (cartesian product); a shape
 * entry "*" matches any size. A scalar has no shape entries.
 */
#ifndef HAVEN_MANIFEST_H
#define HAVEN_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "loaders/tensor.h"

#define MANIFEST_MAX_TENSORS 1000000
#define MANIFEST_ANY_DIM UINT64_MAX

struct manifest_tensor {
	char *name;
	int dtype;
	int ndim;
	uint64_t shape[TENSOR_MAX_DIMS];	/* MANIFEST_ANY_DIM = any */
	bool optional;
};

struct manifest {
	char name[64];
	char source[256];		/* file it came from, for messages */
	char **repos, **files, **allow;
	size_t nrepos, nfiles, nallow;
	char block_prefix[128];		/* "blocks.{i}." or "" */
	int nblocks;
	uint64_t reserve;
	uint64_t params;
	double params_tol;
	int all_dtype;			/* -1: not constrained */
	struct manifest_tensor *t;	/* sorted by name */
	size_t count;
};

/* Parses manifest text; source names it in error messages. ERR_INVALID
 * gives "source:line: what". */
int manifest_parse(struct manifest **out, const char *text, size_t len,
		   const char *source, struct err *err);
int manifest_load_file(struct manifest **out, const char *path,
		       struct err *err);
void manifest_free(struct manifest *m);

/* Every *.manifest file in dir whose repo lines name repo (ignoring case),
 * sorted by file name. *count may be 0. */
int manifest_find(struct manifest ***out, size_t *count, const char *dir,
		  const char *repo, struct err *err);
void manifest_list_free(struct manifest **list, size_t count);

/* True when path matches one of the component's file patterns. */
bool manifest_wants_file(const struct manifest *m, const char *path);

/* Block index of a tensor name (0..nblocks-1), or -1 for one outside every
 * block. */
int manifest_block_of(const struct manifest *m, const char *name);

struct manifest_report {
	size_t matched, missing, extra, different, allowed;
	uint64_t params;		/* elements seen */
	bool params_ok, dtype_ok;
	char **lines;			/* "missing NAME BF16 [..]" ... */
	size_t nlines;
};

/* Compares tensors (sorted by name, tensor_list_sort_unique) with the
 * manifest. The report is filled even when it finds differences; the
 * return value is 0 unless something failed (memory). */
int manifest_check(struct manifest_report *out, const struct manifest *m,
		   const struct tensor_list *tensors, struct err *err);
bool manifest_report_ok(const struct manifest_report *r);
void manifest_report_release(struct manifest_report *r);

#endif
