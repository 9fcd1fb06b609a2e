/*
 * tensor.c: the dtype table and the tensor list shared by every loader
 * module (safetensors, torch zip, manifests, planner).
 */
#include "common/compat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "loaders/tensor.h"

static const struct {
	const char *name;
	unsigned bits;
} dtypes[DT_COUNT] = {
	[DT_BOOL] = { "BOOL", 8 }, [DT_F4] = { "F4", 4 },
	[DT_F6_E2M3] = { "F6_E2M3", 6 }, [DT_F6_E3M2] = { "F6_E3M2", 6 },
	[DT_U8] = { "U8", 8 }, [DT_I8] = { "I8", 8 },
	[DT_F8_E5M2] = { "F8_E5M2", 8 }, [DT_F8_E4M3] = { "F8_E4M3", 8 },
	[DT_F8_E8M0] = { "F8_E8M0", 8 },
	[DT_F8_E4M3FNUZ] = { "F8_E4M3FNUZ", 8 },
	[DT_F8_E5M2FNUZ] = { "F8_E5M2FNUZ", 8 },
	[DT_I16] = { "I16", 16 }, [DT_U16] = { "U16", 16 },
	[DT_F16] = { "F16", 16 }, [DT_BF16] = { "BF16", 16 },
	[DT_I32] = { "I32", 32 }, [DT_U32] = { "U32", 32 },
	[DT_F32] = { "F32", 32 }, [DT_C64] = { "C64", 64 },
	[DT_F64] = { "F64", 64 }, [DT_I64] = { "I64", 64 },
	[DT_U64] = { "U64", 64 },
};

int dtype_from_name(const char *name)
{
	for (int i = 0; i < DT_COUNT; i++)
		if (!strcmp(dtypes[i].name, name))
			return i;
	return -1;
}

const char *dtype_name(int dtype)
{
	return dtype >= 0 && dtype < DT_COUNT ? dtypes[dtype].name : "?";
}

unsigned dtype_bits(int dtype)
{
	return dtype >= 0 && dtype < DT_COUNT ? dtypes[dtype].bits : 0;
}

int tensor_nbytes(uint64_t *nbytes, uint64_t *numel, int dtype, int ndim,
		  const uint64_t *shape, struct err *err)
{
	uint64_t n = 1, bits;

	if (dtype < 0 || dtype >= DT_COUNT)
		return err_set(err, ERR_INVALID, "unknown dtype");
	if (ndim < 0 || ndim > TENSOR_MAX_DIMS)
		return err_set(err, ERR_INVALID, "%d dimensions (at most %d)",
			       ndim, TENSOR_MAX_DIMS);
	for (int i = 0; i < ndim; i++)
		if (__builtin_mul_overflow(n, shape[i], &n))
			return err_set(err, ERR_INVALID,
				       "shape overflows 64 bits");
	if (__builtin_mul_overflow(n, (uint64_t)dtypes[dtype].bits, &bits))
		return err_set(err, ERR_INVALID,
			       "shape x dtype overflows 64 bits");
	if (bits % 8)
		return err_set(err, ERR_INVALID,
			       "%s tensor of %llu elements is not whole bytes",
			       dtypes[dtype].name, (unsigned long long)n);
	if (numel)
		*numel = n;
	*nbytes = bits / 8;
	return 0;
}

int tensor_list_add(struct tensor_list *l, const struct tensor_desc *d,
		    struct err *err)
{
	struct tensor_desc *t;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return err_set(err, ERR_FAIL, "out of memory");
		l->v = p;
		l->cap = cap;
	}
	t = &l->v[l->count];
	*t = *d;
	t->name = strdup(d->name);
	if (!t->name)
		return err_set(err, ERR_FAIL, "out of memory");
	l->count++;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct tensor_desc *)a)->name,
		      ((const struct tensor_desc *)b)->name);
}

int tensor_list_sort_unique(struct tensor_list *l, struct err *err)
{
	if (l->count)
		qsort(l->v, l->count, sizeof(*l->v), by_name);
	for (size_t i = 1; i < l->count; i++)
		if (!strcmp(l->v[i - 1].name, l->v[i].name))
			return err_set(err, ERR_INVALID,
				       "tensor '%s' appears twice", l->v[i].name);
	return 0;
}

const struct tensor_desc *tensor_list_find(const struct tensor_list *l,
					   const char *name)
{
	size_t lo = 0, hi = l->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid].name, name);
		if (!c)
			return &l->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void tensor_list_release(struct tensor_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->count = l->cap = 0;
}

void tensor_shape_str(char *out, size_t size, const struct tensor_desc *d)
{
	size_t n = 0;

	n += (size_t)snprintf(out, size, "[");
	for (int i = 0; i < d->ndim && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%llu", i ? ", " : "",
				      (unsigned long long)d->shape[i]);
	if (n < size)
		snprintf(out + n, size - n, "]");
}
