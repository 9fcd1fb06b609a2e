/*
 * safetensors.h: a strict reader and a writer for the safetensors format
 *   [u64 LE N][N bytes of UTF-8 JSON header][byte buffer]
 * with every rule of the reference reader (huggingface/safetensors) plus
 * the stricter ones a registry wants: a 25 MB header cap, duplicate keys
 * refused, unknown keys in a tensor entry refused, only spaces after the
 * closing brace, integers in [0, 2^48), and a byte buffer covered exactly
 * (no gap, no overlap, nothing after the last tensor). Also the sharded
 * index (model.safetensors.index.json).
 */
#ifndef HAVEN_SAFETENSORS_H
#define HAVEN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "loaders/tensor.h"

#define SAFETENSORS_MAX_HEADER 25000000

/* Validates the 8-byte prefix against the file size; *hlen = N. */
int safetensors_header_len(uint64_t *hlen, const unsigned char prefix[8],
			   uint64_t file_size, struct err *err);

/* Parses the N-byte header of a file of file_size bytes and appends its
 * tensors to out with absolute offsets and out->v[i].file = file_idx.
 * ERR_INVALID (naming the rule and the tensor) for anything malformed. */
int safetensors_parse(struct tensor_list *out, int file_idx,
		      const char *header, size_t hlen, uint64_t file_size,
		      struct err *err);

/* Reads and parses the header of an open file. */
int safetensors_read_fd(struct tensor_list *out, int file_idx, int fd,
			uint64_t file_size, struct err *err);

/* A sharded checkpoint's index: tensor name -> shard file name. */
struct safetensors_index {
	char **names, **shards;	/* parallel, sorted by name */
	size_t count;
	char **files;		/* distinct shard names, sorted */
	size_t nfiles;
	uint64_t total_size;	/* metadata.total_size, 0 when absent */
};

/* Parses an index JSON; refuses shard names with '/' or "..", and
 * duplicate tensor names. */
int safetensors_index_parse(struct safetensors_index *out, const char *json,
			    size_t len, struct err *err);
/* The shard an index names for a tensor, or NULL. */
const char *safetensors_index_shard(const struct safetensors_index *ix,
				    const char *name);
void safetensors_index_release(struct safetensors_index *ix);

/* Writes tensors (bytes copied from src_fd at each tensor's offset) as a
 * safetensors file at path, the reference writer's way: sorted by dtype
 * alignment, then name; header padded with spaces to a multiple of 8.
 * Written to path.tmp, fsynced, renamed. */
int safetensors_write(const char *path, const struct tensor_list *tensors,
		      int src_fd, struct err *err);

#endif
