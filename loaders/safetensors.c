/*
 * safetensors.c: the strict safetensors reader, the index parser and the
 * writer used by `haven convert` (safetensors.h). The JSON is parsed by
 * jansson with duplicate keys rejected; jansson also refuses invalid UTF-8
 * and embedded NULs, which covers the reference's "header not UTF-8" rule.
 */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "loaders/safetensors.h"

int safetensors_header_len(uint64_t *hlen, const unsigned char prefix[8],
			   uint64_t file_size, struct err *err)
{
	uint64_t n = 0;

	if (file_size < 8)
		return err_set(err, ERR_INVALID,
			       "file of %llu bytes is shorter than the 8-byte header length",
			       (unsigned long long)file_size);
	for (int i = 7; i >= 0; i--)
		n = n << 8 | prefix[i];
	if (n > SAFETENSORS_MAX_HEADER)
		return err_set(err, ERR_INVALID,
			       "header length %llu is over the %d-byte limit",
			       (unsigned long long)n, SAFETENSORS_MAX_HEADER);
	if (n < 2 || n > file_size - 8)
		return err_set(err, ERR_INVALID,
			       "header length %llu does not fit a file of %llu bytes",
			       (unsigned long long)n, (unsigned long long)file_size);
	*hlen = n;
	return 0;
}

/* A JSON integer in [0, 2^48). */
static int get_uint(uint64_t *out, json_t *v, const char *name,
		    const char *what, struct err *err)
{
	json_int_t i;

	if (!json_is_integer(v))
		return err_set(err, ERR_INVALID, "tensor '%s': %s is not an integer",
			       name, what);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i >= TENSOR_INT_MAX)
		return err_set(err, ERR_INVALID,
			       "tensor '%s': %s %lld is out of range", name, what,
			       (long long)i);
	*out = (uint64_t)i;
	return 0;
}

static int parse_entry(struct tensor_desc *d, const char *name, json_t *e,
		       struct err *err)
{
	json_t *dt = json_object_get(e, "dtype");
	json_t *shape = json_object_get(e, "shape");
	json_t *offs = json_object_get(e, "data_offsets");
	uint64_t b, end, nb;
	struct err e2 = { 0 };
	const char *key;
	json_t *v;
	size_t i;
	int rc;

	if (!json_is_object(e))
		return err_set(err, ERR_INVALID, "tensor '%s' is not an object", name);
	json_object_foreach(e, key, v)
		if (strcmp(key, "dtype") && strcmp(key, "shape") &&
		    strcmp(key, "data_offsets"))
			return err_set(err, ERR_INVALID,
				       "tensor '%s' has an unknown key '%s'", name, key);
	if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs))
		return err_set(err, ERR_INVALID,
			       "tensor '%s' needs dtype, shape and data_offsets", name);
	d->dtype = dtype_from_name(json_string_value(dt));
	if (d->dtype < 0)
		return err_set(err, ERR_INVALID, "tensor '%s' has unknown dtype '%s'",
			       name, json_string_value(dt));
	if (json_array_size(shape) > TENSOR_MAX_DIMS)
		return err_set(err, ERR_INVALID, "tensor '%s' has %zu dimensions",
			       name, json_array_size(shape));
	d->ndim = (int)json_array_size(shape);
	json_array_foreach(shape, i, v)
		if ((rc = get_uint(&d->shape[i], v, name, "a shape entry", err)) < 0)
			return rc;
	if (json_array_size(offs) != 2)
		return err_set(err, ERR_INVALID,
			       "tensor '%s': data_offsets needs two integers", name);
	if ((rc = get_uint(&b, json_array_get(offs, 0), name, "data_offsets", err)) < 0 ||
	    (rc = get_uint(&end, json_array_get(offs, 1), name, "data_offsets", err)) < 0)
		return rc;
	if (end < b)
		return err_set(err, ERR_INVALID,
			       "tensor '%s': data_offsets end before they begin", name);
	if ((rc = tensor_nbytes(&nb, NULL, d->dtype, d->ndim, d->shape, &e2)) < 0)
		return err_set(err, rc, "tensor '%s': %s", name, e2.msg);
	if (nb != end - b)
		return err_set(err, ERR_INVALID,
			       "tensor '%s': shape and dtype make %llu bytes, data_offsets %llu",
			       name, (unsigned long long)nb,
			       (unsigned long long)(end - b));
	d->nbytes = nb;
	d->offset = b;	/* relative for now */
	return 0;
}

static int check_metadata(json_t *m, struct err *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(m))
		return err_set(err, ERR_INVALID, "__metadata__ is not an object");
	json_object_foreach(m, key, v)
		if (!json_is_string(v))
			return err_set(err, ERR_INVALID,
				       "__metadata__ value '%s' is not a string", key);
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct tensor_desc *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->nbytes != y->nbytes)
		return x->nbytes < y->nbytes ? -1 : 1;
	return 0;
}

int safetensors_parse(struct tensor_list *out, int file_idx,
		      const char *header, size_t hlen, uint64_t file_size,
		      struct err *err)
{
	struct tensor_list l = { 0 };
	json_error_t jerr;
	json_t *root = NULL, *v;
	const char *key;
	size_t n = hlen;
	uint64_t pos = 0, base = 8 + (uint64_t)hlen;
	int rc = 0;

	if (!hlen || header[0] != '{')
		return err_set(err, ERR_INVALID, "header does not start with '{'");
	while (n > 1 && header[n - 1] == ' ')
		n--;
	if (header[n - 1] != '}')
		return err_set(err, ERR_INVALID,
			       "header has bytes other than spaces after its closing brace");
	root = json_loadb(header, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = err_set(err, ERR_INVALID, "header is not valid JSON: %s",
			     jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = err_set(err, ERR_INVALID, "header is not a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v) {
		struct tensor_desc d = { 0 };

		if (!strcmp(key, "__metadata__")) {
			if ((rc = check_metadata(v, err)) < 0)
				goto out;
			continue;
		}
		d.name = (char *)key;
		d.file = file_idx;
		if ((rc = parse_entry(&d, key, v, err)) < 0 ||
		    (rc = tensor_list_add(&l, &d, err)) < 0)
			goto out;
	}
	if (l.count)
		qsort(l.v, l.count, sizeof(*l.v), by_offset);
	for (size_t i = 0; i < l.count; i++) {
		if (l.v[i].offset != pos) {
			rc = err_set(err, ERR_INVALID,
				     "tensor '%s' starts at %llu, not at %llu: %s",
				     l.v[i].name, (unsigned long long)l.v[i].offset,
				     (unsigned long long)pos,
				     l.v[i].offset < pos ? "offsets overlap" :
				     "gap in the byte buffer");
			goto out;
		}
		pos += l.v[i].nbytes;
		l.v[i].offset += base;
	}
	if (base + pos != file_size) {
		rc = err_set(err, ERR_INVALID,
			     "tensors cover %llu bytes but the byte buffer holds %llu",
			     (unsigned long long)pos,
			     (unsigned long long)(file_size - base));
		goto out;
	}
	for (size_t i = 0; i < l.count; i++)
		if ((rc = tensor_list_add(out, &l.v[i], err)) < 0)
			goto out;
out:
	json_decref(root);
	tensor_list_release(&l);
	return rc;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off,
		      struct err *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, ERR_FAIL, "read: %s", strerror(errno));
		if (n == 0)
			return err_set(err, ERR_INVALID, "file is truncated");
		done += (size_t)n;
	}
	return 0;
}

int safetensors_read_fd(struct tensor_list *out, int file_idx, int fd,
			uint64_t file_size, struct err *err)
{
	unsigned char prefix[8] = { 0 };
	uint64_t hlen;
	char *h = NULL;
	int rc;

	if (file_size < 8)
		return safetensors_header_len(&hlen, prefix, file_size, err);
	if ((rc = pread_full(fd, prefix, 8, 0, err)) < 0 ||
	    (rc = safetensors_header_len(&hlen, prefix, file_size, err)) < 0)
		return rc;
	h = malloc(hlen);
	if (!h)
		return err_set(err, ERR_FAIL, "out of memory");
	if ((rc = pread_full(fd, h, hlen, 8, err)) == 0)
		rc = safetensors_parse(out, file_idx, h, hlen, file_size, err);
	free(h);
	return rc;
}

/* --- index ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct pair {
	const char *name, *shard;
};

static int cmp_pair(const void *a, const void *b)
{
	return strcmp(((const struct pair *)a)->name, ((const struct pair *)b)->name);
}

int safetensors_index_parse(struct safetensors_index *out, const char *json,
			    size_t len, struct err *err)
{
	json_error_t jerr;
	json_t *root, *map, *meta, *v;
	struct pair *pairs = NULL;
	const char *key;
	size_t n = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(err, ERR_INVALID, "index is not valid JSON: %s",
			       jerr.text);
	map = json_object_get(root, "weight_map");
	if (!json_is_object(map)) {
		rc = err_set(err, ERR_INVALID, "index has no weight_map object");
		goto out;
	}
	meta = json_object_get(root, "metadata");
	if (json_is_object(meta) &&
	    json_is_integer(json_object_get(meta, "total_size")) &&
	    json_integer_value(json_object_get(meta, "total_size")) > 0)
		out->total_size = (uint64_t)json_integer_value(
			json_object_get(meta, "total_size"));
	pairs = calloc(json_object_size(map) + 1, sizeof(*pairs));
	out->names = calloc(json_object_size(map) + 1, sizeof(char *));
	out->shards = calloc(json_object_size(map) + 1, sizeof(char *));
	out->files = calloc(json_object_size(map) + 1, sizeof(char *));
	if (!pairs || !out->names || !out->shards || !out->files) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	json_object_foreach(map, key, v) {
		const char *s = json_string_value(v);
		if (!s || !s[0] || strchr(s, '/') || strchr(s, '\\') ||
		    !strcmp(s, ".") || !strcmp(s, "..")) {
			rc = err_set(err, ERR_INVALID,
				     "index maps '%s' to a bad shard name", key);
			goto out;
		}
		pairs[n].name = key;
		pairs[n++].shard = s;
	}
	qsort(pairs, n, sizeof(*pairs), cmp_pair);
	for (size_t i = 0; i < n; i++) {
		out->names[i] = strdup(pairs[i].name);
		out->shards[i] = strdup(pairs[i].shard);
		out->count++;
		if (!out->names[i] || !out->shards[i]) {
			rc = err_set(err, ERR_FAIL, "out of memory");
			goto out;
		}
		out->files[out->nfiles++] = out->shards[i];
	}
	if (out->nfiles)
		qsort(out->files, out->nfiles, sizeof(char *), cmp_str);
	{
		size_t w = 0;
		for (size_t i = 0; i < out->nfiles; i++)
			if (!w || strcmp(out->files[w - 1], out->files[i]))
				out->files[w++] = out->files[i];
		out->nfiles = w;
	}
out:
	free(pairs);
	json_decref(root);
	if (rc < 0)
		safetensors_index_release(out);
	return rc;
}

const char *safetensors_index_shard(const struct safetensors_index *ix,
				    const char *name)
{
	size_t lo = 0, hi = ix->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->names[mid], name);
		if (!c)
			return ix->shards[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void safetensors_index_release(struct safetensors_index *ix)
{
	for (size_t i = 0; ix->names && i < ix->count; i++) {
		free(ix->names[i]);
		free(ix->shards[i]);
	}
	free(ix->names);
	free(ix->shards);
	free(ix->files);	/* borrowed from shards */
	memset(ix, 0, sizeof(*ix));
}

/* --- writer --------------------------------------------------------------- */

static int by_align_then_name(const void *a, const void *b)
{
	const struct tensor_desc *const *x = a, *const *y = b;
	unsigned bx = dtype_bits((*x)->dtype), by = dtype_bits((*y)->dtype);

	if (bx != by)
		return bx > by ? -1 : 1;
	return strcmp((*x)->name, (*y)->name);
}

static int copy_range(int dst, int src, uint64_t off, uint64_t len,
		      struct err *err)
{
	static const size_t chunk = 8 << 20;
	char *buf = malloc(chunk);
	int rc = 0;

	if (!buf)
		return err_set(err, ERR_FAIL, "out of memory");
	while (len) {
		size_t n = len < chunk ? (size_t)len : chunk;
		if ((rc = pread_full(src, buf, n, off, err)) < 0)
			break;
		if (write_full(dst, buf, n) < 0) {
			rc = err_set(err, ERR_FAIL, "write: %s", strerror(errno));
			break;
		}
		off += n;
		len -= n;
	}
	free(buf);
	return rc;
}

int safetensors_write(const char *path, const struct tensor_list *tensors,
		      int src_fd, struct err *err)
{
	const struct tensor_desc **order = NULL;
	json_t *root = json_object();
	char *text = NULL, tmp[4096];
	uint64_t pos = 0;
	size_t tlen, padded;
	unsigned char prefix[8];
	int fd = -1, rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return err_set(err, ERR_INVALID, "path too long");
	order = calloc(tensors->count + 1, sizeof(*order));
	if (!order || !root) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < tensors->count; i++)
		order[i] = &tensors->v[i];
	if (tensors->count)
		qsort(order, tensors->count, sizeof(*order), by_align_then_name);
	json_object_set_new(root, "__metadata__",
			    json_pack("{s:s}", "format", "pt"));
	for (size_t i = 0; i < tensors->count; i++) {
		const struct tensor_desc *t = order[i];
		json_t *shape = json_array();
		for (int d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
		json_object_set_new(root, t->name, json_pack("{s:s,s:o,s:[I,I]}",
			"dtype", dtype_name(t->dtype), "shape", shape,
			"data_offsets", (json_int_t)pos,
			(json_int_t)(pos + t->nbytes)));
		pos += t->nbytes;
	}
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		rc = err_set(err, ERR_FAIL, "cannot encode the header");
		goto out;
	}
	tlen = strlen(text);
	padded = (tlen + 7) & ~(size_t)7;
	for (int i = 0; i < 8; i++)
		prefix[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = err_set(err, ERR_FAIL, "cannot create '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (write_full(fd, prefix, 8) < 0 || write_full(fd, text, tlen) < 0 ||
	    write_full(fd, "        ", padded - tlen) < 0) {
		rc = err_set(err, ERR_FAIL, "write '%s': %s", tmp, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < tensors->count; i++)
		if ((rc = copy_range(fd, src_fd, order[i]->offset,
				     order[i]->nbytes, err)) < 0)
			goto out;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		rc = err_set(err, ERR_FAIL, "fsync '%s': %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = err_set(err, ERR_FAIL, "rename to '%s': %s", path,
			     strerror(errno));
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(text);
	free(order);
	json_decref(root);
	return rc;
}
