/*
 * tensor.h: what the loaders know about one tensor (name, dtype, shape,
 * where its bytes lie in which file) and a growable list of them. The
 * dtype table is the safetensors one; byte sizes are computed with checked
 * 64-bit arithmetic so a hostile shape cannot wrap around.
 */
#ifndef HAVEN_TENSOR_H
#define HAVEN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum dtype {
	DT_BOOL, DT_F4, DT_F6_E2M3, DT_F6_E3M2, DT_U8, DT_I8, DT_F8_E5M2,
	DT_F8_E4M3, DT_F8_E8M0, DT_F8_E4M3FNUZ, DT_F8_E5M2FNUZ, DT_I16,
	DT_U16, DT_F16, DT_BF16, DT_I32, DT_U32, DT_F32, DT_C64, DT_F64,
	DT_I64, DT_U64, DT_COUNT
};

#define TENSOR_MAX_DIMS 8
/* The safetensors schema bounds every shape entry and offset to 2^48-1. */
#define TENSOR_INT_MAX ((uint64_t)1 << 48)

struct tensor_desc {
	char *name;		/* owned */
	int dtype;		/* enum dtype */
	int ndim;
	uint64_t shape[TENSOR_MAX_DIMS];
	uint64_t nbytes;
	uint64_t offset;	/* absolute byte offset in its file */
	int file;		/* index into the caller's file list */
	uint64_t host_sum;	/* checksum.h value, once computed */
};

struct tensor_list {
	struct tensor_desc *v;
	size_t count, cap;
};

/* "BF16" -> DT_BF16; -1 when unknown (case-sensitive, as the format). */
int dtype_from_name(const char *name);
const char *dtype_name(int dtype);
/* Bits per element (4, 6, 8, ... 64). */
unsigned dtype_bits(int dtype);

/* Element count and byte size of a shape, with overflow and sub-byte
 * checks: ERR_INVALID names what is wrong. */
int tensor_nbytes(uint64_t *nbytes, uint64_t *numel, int dtype, int ndim,
		  const uint64_t *shape, struct err *err);

/* Appends a copy of d (its name is duplicated). */
int tensor_list_add(struct tensor_list *l, const struct tensor_desc *d,
		    struct err *err);
/* Sorts by name and refuses a name that appears twice. */
int tensor_list_sort_unique(struct tensor_list *l, struct err *err);
/* Binary search in a list sorted by tensor_list_sort_unique; NULL if
 * absent. */
const struct tensor_desc *tensor_list_find(const struct tensor_list *l,
					   const char *name);
void tensor_list_release(struct tensor_list *l);

/* "[131072, 3072]" into out. */
void tensor_shape_str(char *out, size_t size, const struct tensor_desc *d);

#endif
