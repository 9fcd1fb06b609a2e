/*
 * pickle_reader.h: a restricted reader for the data.pkl of a torch.save
 * checkpoint. It executes nothing. It knows the opcodes a plain state dict
 * uses (protocols 2 to 5: containers, numbers, strings, memo, GLOBAL /
 * STACK_GLOBAL, REDUCE, BUILD, BINPERSID) and a short allowlist of globals:
 *
 *   collections.OrderedDict             -> a dict
 *   torch._utils._rebuild_tensor_v2     -> a tensor (storage, offset, size,
 *                                          stride, ...), contiguous only
 *   torch._utils._rebuild_parameter     -> its tensor
 *   torch.<Type>Storage (Float, BFloat16, Half, ...) -> a storage dtype,
 *                                          only inside a persistent id
 *                                          ('storage', type, key, loc, n)
 *
 * Any other opcode or global (os.system, builtins.eval, ...) is refused,
 * and the error names it. REDUCE on anything but an allowlisted callable,
 * and BUILD on anything but a dict, are refused too.
 *
 * The tensors found under nested dicts are named by their dotted key path
 * ("model.layer.weight"); a checkpoint whose root is a single tensor gives
 * one tensor named "" (the caller names it).
 */
#ifndef HAVEN_PICKLE_READER_H
#define HAVEN_PICKLE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "loaders/tensor.h"

/* One tensor's place in the checkpoint: its storage key (the zip entry
 * <prefix>/data/<key>) and the byte offset inside that storage. */
struct pickle_tensor {
	char *name;
	char *storage_key;
	int dtype;
	int ndim;
	uint64_t shape[TENSOR_MAX_DIMS];
	uint64_t nbytes;
	uint64_t storage_offset;	/* bytes */
	uint64_t storage_bytes;		/* size the storage declares */
};

struct pickle_result {
	struct pickle_tensor *v;
	size_t count;
};

#define PICKLE_MAX_BYTES ((size_t)64 << 20)

int pickle_read(struct pickle_result *out, const unsigned char *data,
		size_t len, struct err *err);
void pickle_result_release(struct pickle_result *r);

#endif
