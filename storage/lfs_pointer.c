/*
 * lfs_pointer.c: see lfs_pointer.h. Parsing accepts what git-lfs writes:
 * "version" first, then keys in order, each line "key value\n", and an oid
 * of 64 lower-case hex digits.
 */
#include "common/compat.h"

#include <inttypes.h>

#include "common/util.h"
#include "storage/lfs_pointer.h"

static const char version_line[] = "version https://git-lfs.github.com/spec/v1\n";

size_t lfs_pointer_format(char *out, size_t out_size, const char *sha256,
			  uint64_t size)
{
	int n = snprintf(out, out_size, "%soid sha256:%s\nsize %" PRIu64 "\n",
			 version_line, sha256, size);

	return n < 0 ? 0 : (size_t)n;
}

bool lfs_pointer_parse(const char *data, size_t len,
		       char sha_out[SHA256_HEX_LEN + 1], uint64_t *size_out)
{
	char text[LFS_POINTER_MAX + 1], *oid, *size, *end;
	size_t vlen = sizeof(version_line) - 1;
	unsigned long long n;

	if (len >= LFS_POINTER_MAX || len < vlen || memcmp(data, version_line, vlen))
		return false;
	memcpy(text, data, len);
	text[len] = '\0';
	oid = strstr(text + vlen, "oid sha256:");
	size = strstr(text + vlen, "\nsize ");
	if (!oid || !size || oid != text + vlen)
		return false;
	oid += strlen("oid sha256:");
	if (oid[SHA256_HEX_LEN] != '\n')
		return false;
	oid[SHA256_HEX_LEN] = '\0';
	if (!is_hex(oid, SHA256_HEX_LEN))
		return false;
	size += strlen("\nsize ");
	if (*size < '0' || *size > '9')
		return false;
	n = strtoull(size, &end, 10);
	if (*end != '\n')
		return false;
	memcpy(sha_out, oid, SHA256_HEX_LEN + 1);
	*size_out = n;
	return true;
}
