/*
 * torch_zip.c: the zip reader for torch.save checkpoints (torch_zip.h).
 * It trusts nothing in the file: every count, size and offset is checked
 * against the file size with 64-bit arithmetic before it is used.
 */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "loaders/torch_zip.h"

#define EOCD_SIG 0x06054b50u
#define EOCD64_SIG 0x06064b50u
#define LOC64_SIG 0x07064b50u
#define CDIR_SIG 0x02014b50u
#define LOCAL_SIG 0x04034b50u
#define MAX_CDIR ((uint64_t)256 << 20)

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int torch_zip_read_fd(void *arg, void *buf, size_t len, uint64_t off,
		      struct err *err)
{
	int fd = *(int *)arg;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, ERR_FAIL, "read: %s", strerror(errno));
		if (n == 0)
			return err_set(err, ERR_INVALID, "zip: file is truncated");
		done += (size_t)n;
	}
	return 0;
}

/* Finds the end-of-central-directory record in the last 64 KiB + 22. */
static int find_eocd(uint64_t *cd_off, uint64_t *cd_size, uint64_t *count,
		     uint64_t *eocd_pos, torch_zip_read_fn rd, void *arg,
		     uint64_t fsize, struct err *err)
{
	size_t tail = fsize < 65557 ? (size_t)fsize : 65557;
	unsigned char *buf = malloc(tail ? tail : 1), l[20], e64[56];
	uint64_t base = fsize - tail;
	long i;
	int rc;

	if (!buf)
		return err_set(err, ERR_FAIL, "out of memory");
	if ((rc = rd(arg, buf, tail, base, err)) < 0)
		goto out;
	for (i = (long)tail - 22; i >= 0; i--)
		if (le32(buf + i) == EOCD_SIG &&
		    (uint64_t)i + 22 + le16(buf + i + 20) == tail)
			break;
	if (i < 0) {
		rc = err_set(err, ERR_INVALID,
			     "not a zip file (no end of central directory)");
		goto out;
	}
	*eocd_pos = base + (uint64_t)i;
	if (le16(buf + i + 4) || le16(buf + i + 6)) {
		rc = err_set(err, ERR_INVALID, "zip: multi-disk archives are refused");
		goto out;
	}
	*count = le16(buf + i + 10);
	*cd_size = le32(buf + i + 12);
	*cd_off = le32(buf + i + 16);
	if (*count == 0xffff || *cd_size == 0xffffffff || *cd_off == 0xffffffff) {
		uint64_t e64pos;
		if (*eocd_pos < 20) {
			rc = err_set(err, ERR_INVALID, "zip: zip64 locator missing");
			goto out;
		}
		if ((rc = rd(arg, l, 20, *eocd_pos - 20, err)) < 0)
			goto out;
		e64pos = le64(l + 8);
		if (le32(l) != LOC64_SIG || e64pos > *eocd_pos - 20 ||
		    *eocd_pos - 20 - e64pos < 56) {
			rc = err_set(err, ERR_INVALID, "zip: bad zip64 locator");
			goto out;
		}
		if ((rc = rd(arg, e64, 56, e64pos, err)) < 0)
			goto out;
		if (le32(e64) != EOCD64_SIG) {
			rc = err_set(err, ERR_INVALID, "zip: bad zip64 end record");
			goto out;
		}
		*count = le64(e64 + 32);
		*cd_size = le64(e64 + 40);
		*cd_off = le64(e64 + 48);
		*eocd_pos = e64pos;
	}
	if (*cd_off > *eocd_pos || *cd_size > *eocd_pos - *cd_off ||
	    *cd_size > MAX_CDIR || *count > TORCH_ZIP_MAX_ENTRIES) {
		rc = err_set(err, ERR_INVALID,
			     "zip: central directory (%llu entries, %llu bytes at %llu) does not fit",
			     (unsigned long long)*count,
			     (unsigned long long)*cd_size,
			     (unsigned long long)*cd_off);
		goto out;
	}
out:
	free(buf);
	return rc;
}

/* Zip64 extra field: replaces the 0xffffffff fields in order. */
static int zip64_extra(const unsigned char *x, size_t xlen, uint64_t *usize,
		       uint64_t *csize, uint64_t *off, bool need_u,
		       bool need_c, bool need_o)
{
	while (xlen >= 4) {
		uint16_t id = le16(x), n = le16(x + 2);
		size_t k = 4;
		if ((size_t)n + 4 > xlen)
			return -1;
		if (id == 1) {
			if (need_u) {
				if (k + 8 > (size_t)n + 4)
					return -1;
				*usize = le64(x + k), k += 8;
			}
			if (need_c) {
				if (k + 8 > (size_t)n + 4)
					return -1;
				*csize = le64(x + k), k += 8;
			}
			if (need_o) {
				if (k + 8 > (size_t)n + 4)
					return -1;
				*off = le64(x + k);
			}
			return 0;
		}
		x += 4 + n;
		xlen -= 4 + (size_t)n;
	}
	return need_u || need_c || need_o ? -1 : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct zip_entry *)a)->name,
		      ((const struct zip_entry *)b)->name);
}

struct span {
	uint64_t start, end;
	const char *name;
};

static int by_start(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int read_local(struct zip_entry *e, uint64_t hdr_off, uint64_t limit,
		      torch_zip_read_fn rd, void *arg, struct err *err)
{
	unsigned char h[30];
	uint64_t start;
	int rc;

	if (hdr_off > limit || limit - hdr_off < 30)
		return err_set(err, ERR_INVALID,
			       "zip: entry '%s' has a bad offset", e->name);
	if ((rc = rd(arg, h, 30, hdr_off, err)) < 0)
		return rc;
	if (le32(h) != LOCAL_SIG)
		return err_set(err, ERR_INVALID,
			       "zip: entry '%s' has no local header", e->name);
	start = hdr_off + 30 + le16(h + 26) + le16(h + 28);
	if (start > limit || e->size > limit - start)
		return err_set(err, ERR_INVALID,
			       "zip: entry '%s' (%llu bytes) runs past its limit",
			       e->name, (unsigned long long)e->size);
	e->data_off = start;
	return 0;
}

int torch_zip_open(struct torch_zip **out, torch_zip_read_fn rd, void *arg,
		   uint64_t fsize, struct err *err)
{
	uint64_t cd_off = 0, cd_size = 0, count = 0, eocd = 0;
	struct torch_zip *z = NULL;
	struct span *spans = NULL;
	unsigned char *cd = NULL;
	size_t pos = 0;
	int rc;

	*out = NULL;
	if (fsize < 22)
		return err_set(err, ERR_INVALID, "not a zip file (too short)");
	if ((rc = find_eocd(&cd_off, &cd_size, &count, &eocd, rd, arg, fsize,
			    err)) < 0)
		return rc;
	z = calloc(1, sizeof(*z));
	cd = malloc(cd_size ? cd_size : 1);
	if (z)
		z->entries = calloc(count ? count : 1, sizeof(*z->entries));
	spans = calloc(count ? count : 1, sizeof(*spans));
	if (!z || !cd || !z->entries || !spans) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	if ((rc = rd(arg, cd, cd_size, cd_off, err)) < 0)
		goto out;
	for (uint64_t i = 0; i < count; i++) {
		struct zip_entry *e = &z->entries[z->count];
		uint16_t method, flags, nlen, xlen, clen;
		uint64_t usize, csize, loff;

		if (cd_size - pos < 46 || le32(cd + pos) != CDIR_SIG) {
			rc = err_set(err, ERR_INVALID,
				     "zip: central directory entry %llu is malformed",
				     (unsigned long long)i);
			goto out;
		}
		flags = le16(cd + pos + 8);
		method = le16(cd + pos + 10);
		csize = le32(cd + pos + 20);
		usize = le32(cd + pos + 24);
		nlen = le16(cd + pos + 28);
		xlen = le16(cd + pos + 30);
		clen = le16(cd + pos + 32);
		loff = le32(cd + pos + 42);
		if (cd_size - pos - 46 < (uint64_t)nlen + xlen + clen) {
			rc = err_set(err, ERR_INVALID,
				     "zip: central directory entry %llu is truncated",
				     (unsigned long long)i);
			goto out;
		}
		e->name = strndup((const char *)cd + pos + 46, nlen);
		if (!e->name) {
			rc = err_set(err, ERR_FAIL, "out of memory");
			goto out;
		}
		z->count++;
		if (strlen(e->name) != nlen) {
			rc = err_set(err, ERR_INVALID, "zip: entry name holds a NUL");
			goto out;
		}
		if (zip64_extra(cd + pos + 46 + nlen, xlen, &usize, &csize, &loff,
				usize == 0xffffffff, csize == 0xffffffff,
				loff == 0xffffffff) < 0) {
			rc = err_set(err, ERR_INVALID,
				     "zip: entry '%s' has a bad zip64 field", e->name);
			goto out;
		}
		if (flags & 1) {
			rc = err_set(err, ERR_INVALID,
				     "zip: entry '%s' is encrypted", e->name);
			goto out;
		}
		if (method != 0) {
			rc = err_set(err, ERR_INVALID,
				     "zip: entry '%s' uses compression method %u; only stored entries (what torch.save writes) are read",
				     e->name, method);
			goto out;
		}
		if (csize != usize) {
			rc = err_set(err, ERR_INVALID,
				     "zip: stored entry '%s' has sizes %llu and %llu",
				     e->name, (unsigned long long)csize,
				     (unsigned long long)usize);
			goto out;
		}
		e->size = usize;
		if ((rc = read_local(e, loff, cd_off, rd, arg, err)) < 0)
			goto out;
		spans[i].start = loff;
		spans[i].end = e->data_off + e->size;
		spans[i].name = e->name;
		pos += 46 + (size_t)nlen + xlen + clen;
	}
	qsort(spans, z->count, sizeof(*spans), by_start);
	for (size_t i = 1; i < z->count; i++)
		if (spans[i].start < spans[i - 1].end) {
			rc = err_set(err, ERR_INVALID,
				     "zip: entries '%s' and '%s' overlap",
				     spans[i - 1].name, spans[i].name);
			goto out;
		}
	qsort(z->entries, z->count, sizeof(*z->entries), by_name);
	for (size_t i = 1; i < z->count; i++)
		if (!strcmp(z->entries[i].name, z->entries[i - 1].name)) {
			rc = err_set(err, ERR_INVALID, "zip: entry '%s' appears twice",
				     z->entries[i].name);
			goto out;
		}
	/* The pickle names the layout: exactly one "<prefix>/data.pkl". */
	for (size_t i = 0; i < z->count; i++) {
		const char *n = z->entries[i].name, *s = strchr(n, '/');
		if (s && !strcmp(s, "/data.pkl") && (size_t)(s - n) < sizeof(z->prefix)) {
			if (z->prefix[0]) {
				rc = err_set(err, ERR_INVALID,
					     "zip: more than one data.pkl");
				goto out;
			}
			memcpy(z->prefix, n, (size_t)(s - n));
			z->prefix[s - n] = '\0';
		}
	}
	if (!z->prefix[0]) {
		rc = err_set(err, ERR_INVALID,
			     "zip: no <name>/data.pkl (not a torch.save checkpoint)");
		goto out;
	}
	*out = z;
	z = NULL;
out:
	free(spans);
	free(cd);
	torch_zip_free(z);
	return rc;
}

const struct zip_entry *torch_zip_find(const struct torch_zip *z,
				       const char *name)
{
	size_t lo = 0, hi = z->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(z->entries[mid].name, name);
		if (!c)
			return &z->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct zip_entry *torch_zip_member(const struct torch_zip *z,
					 const char *rel)
{
	char name[512];

	if ((size_t)snprintf(name, sizeof(name), "%s/%s", z->prefix, rel) >=
	    sizeof(name))
		return NULL;
	return torch_zip_find(z, name);
}

void torch_zip_free(struct torch_zip *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->count; i++)
		free(z->entries[i].name);
	free(z->entries);
	free(z);
}
