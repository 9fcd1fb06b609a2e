/*
 * checksum.h: the per-tensor checksum the loader computes on the host as
 * the bytes pass and again on the device after the copy (the PTX kernel in
 * cuda_driver.c computes the very same sum).
 *
 *   sum = SUM over i of w[i] * (2*i + 1)   (mod 2^64)
 *
 * where w[i] is the i-th little-endian 32-bit word of the tensor's bytes,
 * the last one zero-padded. It is linear in the bytes, so any piece of a
 * tensor can be summed on its own (by any reader thread, in any order) and
 * the pieces added; the odd weights make a changed word always change the
 * sum, and a moved word almost always.
 */
#ifndef HAVEN_CHECKSUM_H
#define HAVEN_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* The contribution of len bytes found at byte offset pos of a tensor. */
uint64_t checksum_piece(const unsigned char *p, size_t len, uint64_t pos);

#endif
