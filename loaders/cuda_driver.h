/*
 * cuda_driver.h: the few CUDA driver calls the loader needs, opened at run
 * time with dlopen("libcuda.so.1"): no CUDA toolkit is needed to build or
 * run Haven, and a machine without a driver gets ERR_UNAVAILABLE with a
 * readable reason instead of a link error. Kernels ship as PTX text that
 * the driver compiles when the module is loaded.
 *
 * One struct cuda = the device's primary context (the one the CUDA runtime
 * and PyTorch use, so device pointers can be handed over in-process), a few
 * non-blocking streams, and the checksum and GEMV kernels. Every call makes
 * the context current on the calling thread first.
 */
#ifndef HAVEN_CUDA_DRIVER_H
#define HAVEN_CUDA_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CUDA_MAX_STREAMS 8

struct cuda;

/* Opens the driver and device ordinal dev. ERR_UNAVAILABLE when there is
 * no driver, no device, or only a stub library; the message says which. */
int cuda_open(struct cuda **out, int dev, int nstreams, struct err *err);
void cuda_free(struct cuda *c);

/* "NVIDIA H100 80GB HBM3, sm_90, driver 13000". */
const char *cuda_describe(const struct cuda *c);
int cuda_mem_info(struct cuda *c, uint64_t *free_b, uint64_t *total_b,
		  struct err *err);

int cuda_alloc(struct cuda *c, uint64_t *dptr, uint64_t bytes,
	       struct err *err);
void cuda_dev_free(struct cuda *c, uint64_t dptr);
/* Pinned, portable, not write-combined host memory. */
int cuda_host_alloc(struct cuda *c, void **p, size_t bytes, struct err *err);
void cuda_host_free(struct cuda *c, void *p);

/* Asynchronous host-to-device copy on stream s (0..nstreams-1). */
int cuda_copy_htod(struct cuda *c, uint64_t dst, const void *src, size_t n,
		   int s, struct err *err);
int cuda_copy_dtoh(struct cuda *c, void *dst, uint64_t src, size_t n,
		   struct err *err);
/* Records event e (0..nevents-1, one per staging slot) on stream s, and
 * waits for it. */
int cuda_event_record(struct cuda *c, int e, int s, struct err *err);
int cuda_event_wait(struct cuda *c, int e, struct err *err);
int cuda_sync(struct cuda *c, struct err *err);

/* The checksum.h sum of n bytes at dptr, computed on the device. */
int cuda_checksum(struct cuda *c, uint64_t dptr, uint64_t n, uint64_t *sum,
		  struct err *err);
/* y = W x for a BF16 row-major W (rows x cols) on the device, x and y
 * float on the host; for the smoke check against the CPU. */
int cuda_gemv_bf16(struct cuda *c, uint64_t w, unsigned rows, unsigned cols,
		   const float *x, float *y, struct err *err);
/* Pinned host-to-device bandwidth: best of five copies of bytes, GB/s. */
int cuda_h2d_ceiling(struct cuda *c, size_t bytes, double *gbps,
		     struct err *err);

#endif
