/*
 * torch_zip.h: the zip container of a torch.save checkpoint, read without
 * any unpickling: the central directory (zip64 included), each entry's
 * local header, and where each entry's bytes lie. torch.save writes every
 * entry uncompressed (STORED); anything else (DEFLATE and the like, the
 * shape of a zip bomb), encryption, entries that overlap each other or the
 * directory, or sizes past the end of the file are refused.
 *
 * Layout: <prefix>/data.pkl (the pickle), <prefix>/data/<key> (raw tensor
 * storages), <prefix>/version, <prefix>/byteorder (optional).
 */
#ifndef HAVEN_TORCH_ZIP_H
#define HAVEN_TORCH_ZIP_H

#include <stdint.h>

#include "common/err.h"

#define TORCH_ZIP_MAX_ENTRIES 200000

/* Reads len bytes at off into buf; a source may be a file or a download. */
typedef int (*torch_zip_read_fn)(void *arg, void *buf, size_t len,
				 uint64_t off, struct err *err);

struct zip_entry {
	char *name;
	uint64_t data_off;	/* absolute offset of the entry's bytes */
	uint64_t size;
};

struct torch_zip {
	struct zip_entry *entries;	/* sorted by name */
	size_t count;
	char prefix[256];		/* "archive" in "archive/data.pkl" */
};

int torch_zip_open(struct torch_zip **out, torch_zip_read_fn read, void *arg,
		   uint64_t file_size, struct err *err);
/* The entry named exactly name, or NULL. */
const struct zip_entry *torch_zip_find(const struct torch_zip *z,
				       const char *name);
/* The entry <prefix>/<rel>, or NULL. */
const struct zip_entry *torch_zip_member(const struct torch_zip *z,
					 const char *rel);
void torch_zip_free(struct torch_zip *z);

/* A torch_zip_read_fn over a file descriptor (arg: int *). */
int torch_zip_read_fd(void *arg, void *buf, size_t len, uint64_t off,
		      struct err *err);

#endif
