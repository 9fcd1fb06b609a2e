/*
 * load_api.h: the C entry points of libhavenload.so, the shared library
 * the Python binding (python/haven_loader.py) opens with ctypes. Plain C
 * types only; options come as a JSON object with the fields of `haven
 * load` ({"repo", "revision", "endpoint", "data", "device", "plan",
 * "vram_limit", "dry_run", "manifests", "manifest", "only", "cache",
 * "readers", "parallel", "keep"}), and the report goes back as JSON text.
 */
#ifndef HAVEN_LOAD_API_H
#define HAVEN_LOAD_API_H

#include <stddef.h>
#include <stdint.h>

#define HAVEN_API __attribute__((visibility("default")))

/* Runs a load. Returns 0 and a handle, or a negative err code with the
 * message in errbuf; *out is set in both cases when a report exists (the
 * caller closes it). */
HAVEN_API int haven_load_open(void **out, const char *opts_json, char *errbuf,
			      size_t errlen);
/* The report as JSON text, owned by the handle. */
HAVEN_API const char *haven_load_report(void *h);
HAVEN_API size_t haven_load_count(void *h);
/* Tensor i: name (owned by the handle), dtype name ("BF16"), rank, shape
 * (8 entries), byte size, device address (0 when not on the device). */
HAVEN_API int haven_load_tensor(void *h, size_t i, const char **name,
				const char **dtype, int *ndim, int64_t *shape,
				uint64_t *nbytes, uint64_t *dptr);
HAVEN_API void haven_load_close(void *h);

#endif
