/*
 * checksum.c: the host side of the per-tensor checksum (checksum.h).
 */
#include "common/compat.h"

#include <string.h>

#include "loaders/checksum.h"

uint64_t checksum_piece(const unsigned char *p, size_t len, uint64_t pos)
{
	uint64_t sum = 0;

	/* Leading bytes up to a word boundary of the tensor. */
	while (len && (pos & 3)) {
		sum += ((uint64_t)*p << (8 * (pos & 3))) * (2 * (pos >> 2) + 1);
		p++, pos++, len--;
	}
	uint64_t i = pos >> 2;
	/* Four independent sums keep the multiplier busy (the reader threads
	 * run this over every byte they load). */
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = 2 * i + 1;
	while (len >= 16) {
		uint32_t w[4];
		memcpy(w, p, 16);
		s0 += (uint64_t)w[0] * k;
		s1 += (uint64_t)w[1] * (k + 2);
		s2 += (uint64_t)w[2] * (k + 4);
		s3 += (uint64_t)w[3] * (k + 6);
		k += 8, p += 16, len -= 16, i += 4;
	}
	sum += s0 + s1 + s2 + s3;
	while (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		sum += (uint64_t)w * (2 * i + 1);
		p += 4, len -= 4, i++;
	}
	for (unsigned b = 0; b < len; b++)
		sum += ((uint64_t)p[b] << (8 * b)) * (2 * i + 1);
	return sum;
}
