/*
 * lfs_pointer.h: the git-lfs pointer file (git-lfs docs/spec.md): the small
 * text blob kept in git in place of a large file's bytes.
 */
#ifndef HAVEN_LFS_POINTER_H
#define HAVEN_LFS_POINTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/hash.h"

#define LFS_POINTER_MAX 1024

/* Writes the canonical pointer text for (sha256, size) into out; returns
 * its length. */
size_t lfs_pointer_format(char *out, size_t out_size, const char *sha256,
			  uint64_t size);

/* Parses pointer text; true when data is a valid v1 sha256 pointer. */
bool lfs_pointer_parse(const char *data, size_t len,
		       char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out);

#endif
