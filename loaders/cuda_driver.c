/*
 * cuda_driver.c: the dlopen'd CUDA driver API (cuda_driver.h). The driver
 * types are declared here (CUresult is an int, device pointers are 64-bit,
 * handles are opaque pointers) and the versioned entry points are resolved
 * by name, the way a binary built against the toolkit would bind them.
 */
#include "common/compat.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loaders/cuda_driver.h"

typedef int CUresult;
typedef int CUdevice;
typedef uint64_t CUdeviceptr;
typedef void *CUcontext, *CUstream, *CUevent, *CUmodule, *CUfunction;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_STUB_LIBRARY 34
#define CUDA_ERROR_INSUFFICIENT_DRIVER 35
#define CUDA_ERROR_NO_DEVICE 100
#define CU_MEMHOSTALLOC_PORTABLE 0x1
#define CU_STREAM_NON_BLOCKING 0x1
#define CU_EVENT_DISABLE_TIMING 0x2
#define CU_ATTR_CC_MAJOR 75
#define CU_ATTR_CC_MINOR 76
#define CU_JIT_ERROR_LOG_BUFFER 5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6
#define NEVENTS 64

/* The checksum of checksum.h over the whole 32-bit words; the host adds
 * the 1-3 tail bytes. Grid-stride loop, one atomic add per thread. */
static const char ptx_src[] =
	".version 6.4\n"
	".target sm_70\n"
	".address_size 64\n"
	"\n"
	".visible .entry tsum(.param .u64 p_data, .param .u64 p_words, .param .u64 p_out)\n"
	"{\n"
	"  .reg .pred %p<2>;\n"
	"  .reg .b32 %r<6>;\n"
	"  .reg .b64 %rd<14>;\n"
	"  ld.param.u64 %rd1, [p_data];\n"
	"  ld.param.u64 %rd2, [p_words];\n"
	"  ld.param.u64 %rd3, [p_out];\n"
	"  cvta.to.global.u64 %rd1, %rd1;\n"
	"  cvta.to.global.u64 %rd3, %rd3;\n"
	"  mov.u32 %r1, %ctaid.x;\n"
	"  mov.u32 %r2, %ntid.x;\n"
	"  mov.u32 %r3, %tid.x;\n"
	"  mov.u32 %r4, %nctaid.x;\n"
	"  mul.wide.u32 %rd4, %r1, %r2;\n"
	"  cvt.u64.u32 %rd5, %r3;\n"
	"  add.u64 %rd4, %rd4, %rd5;\n"
	"  mul.wide.u32 %rd6, %r4, %r2;\n"
	"  mov.u64 %rd7, 0;\n"
	"LOOP:\n"
	"  setp.ge.u64 %p1, %rd4, %rd2;\n"
	"  @%p1 bra DONE;\n"
	"  shl.b64 %rd8, %rd4, 2;\n"
	"  add.u64 %rd9, %rd1, %rd8;\n"
	"  ld.global.nc.u32 %r5, [%rd9];\n"
	"  cvt.u64.u32 %rd10, %r5;\n"
	"  shl.b64 %rd11, %rd4, 1;\n"
	"  add.u64 %rd11, %rd11, 1;\n"
	"  mad.lo.u64 %rd7, %rd10, %rd11, %rd7;\n"
	"  add.u64 %rd4, %rd4, %rd6;\n"
	"  bra LOOP;\n"
	"DONE:\n"
	"  red.global.add.u64 [%rd3], %rd7;\n"
	"  ret;\n"
	"}\n"
	"\n"
	".visible .entry gemv_bf16(.param .u64 p_w, .param .u64 p_x, .param .u64 p_y,\n"
	"                          .param .u32 p_rows, .param .u32 p_cols)\n"
	"{\n"
	"  .reg .pred %p<3>;\n"
	"  .reg .b16 %h<2>;\n"
	"  .reg .b32 %r<10>;\n"
	"  .reg .f32 %f<5>;\n"
	"  .reg .b64 %rd<10>;\n"
	"  ld.param.u64 %rd1, [p_w];\n"
	"  ld.param.u64 %rd2, [p_x];\n"
	"  ld.param.u64 %rd3, [p_y];\n"
	"  ld.param.u32 %r1, [p_rows];\n"
	"  ld.param.u32 %r2, [p_cols];\n"
	"  cvta.to.global.u64 %rd1, %rd1;\n"
	"  cvta.to.global.u64 %rd2, %rd2;\n"
	"  cvta.to.global.u64 %rd3, %rd3;\n"
	"  mov.u32 %r3, %ctaid.x;\n"
	"  mov.u32 %r4, %ntid.x;\n"
	"  mov.u32 %r5, %tid.x;\n"
	"  mad.lo.u32 %r6, %r3, %r4, %r5;\n"
	"  setp.ge.u32 %p1, %r6, %r1;\n"
	"  @%p1 bra END;\n"
	"  mul.wide.u32 %rd4, %r6, %r2;\n"
	"  shl.b64 %rd4, %rd4, 1;\n"
	"  add.u64 %rd4, %rd1, %rd4;\n"
	"  mov.u64 %rd5, %rd2;\n"
	"  mov.f32 %f1, 0f00000000;\n"
	"  mov.u32 %r7, 0;\n"
	"GLOOP:\n"
	"  setp.ge.u32 %p2, %r7, %r2;\n"
	"  @%p2 bra STORE;\n"
	"  ld.global.u16 %h1, [%rd4];\n"
	"  cvt.u32.u16 %r8, %h1;\n"
	"  shl.b32 %r8, %r8, 16;\n"
	"  mov.b32 %f2, %r8;\n"
	"  ld.global.f32 %f3, [%rd5];\n"
	"  fma.rn.f32 %f1, %f2, %f3, %f1;\n"
	"  add.u64 %rd4, %rd4, 2;\n"
	"  add.u64 %rd5, %rd5, 4;\n"
	"  add.u32 %r7, %r7, 1;\n"
	"  bra GLOOP;\n"
	"STORE:\n"
	"  mul.wide.u32 %rd6, %r6, 4;\n"
	"  add.u64 %rd6, %rd3, %rd6;\n"
	"  st.global.f32 [%rd6], %f1;\n"
	"END:\n"
	"  ret;\n"
	"}\n";

struct cuda {
	void *lib;
	CUdevice dev;
	CUcontext ctx;
	CUstream streams[CUDA_MAX_STREAMS];
	int nstreams;
	CUevent events[NEVENTS];
	CUmodule mod;
	CUfunction f_sum, f_gemv;
	CUdeviceptr scratch;	/* 8 bytes for a checksum */
	char desc[256];

	CUresult (*Init)(unsigned);
	CUresult (*DriverGetVersion)(int *);
	CUresult (*DeviceGetCount)(int *);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*DeviceGetName)(char *, int, CUdevice);
	CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
	CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*DevicePrimaryCtxRelease)(CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*CtxSynchronize)(void);
	CUresult (*MemGetInfo)(size_t *, size_t *);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemFree)(CUdeviceptr);
	CUresult (*MemHostAlloc)(void **, size_t, unsigned);
	CUresult (*MemFreeHost)(void *);
	CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
	CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
	CUresult (*MemsetD8)(CUdeviceptr, unsigned char, size_t);
	CUresult (*StreamCreate)(CUstream *, unsigned);
	CUresult (*StreamDestroy)(CUstream);
	CUresult (*StreamSynchronize)(CUstream);
	CUresult (*EventCreate)(CUevent *, unsigned);
	CUresult (*EventDestroy)(CUevent);
	CUresult (*EventRecord)(CUevent, CUstream);
	CUresult (*EventSynchronize)(CUevent);
	CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*ModuleUnload)(CUmodule);
	CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned,
				 unsigned, unsigned, unsigned, unsigned,
				 CUstream, void **, void **);
	CUresult (*GetErrorName)(CUresult, const char **);
};

static const struct {
	const char *name;
	size_t off;
} syms[] = {
#define SYM(field, name) { name, offsetof(struct cuda, field) }
	SYM(Init, "cuInit"), SYM(DriverGetVersion, "cuDriverGetVersion"),
	SYM(DeviceGetCount, "cuDeviceGetCount"), SYM(DeviceGet, "cuDeviceGet"),
	SYM(DeviceGetName, "cuDeviceGetName"),
	SYM(DeviceGetAttribute, "cuDeviceGetAttribute"),
	SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
	SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
	SYM(CtxSetCurrent, "cuCtxSetCurrent"),
	SYM(CtxSynchronize, "cuCtxSynchronize"),
	SYM(MemGetInfo, "cuMemGetInfo_v2"), SYM(MemAlloc, "cuMemAlloc_v2"),
	SYM(MemFree, "cuMemFree_v2"), SYM(MemHostAlloc, "cuMemHostAlloc"),
	SYM(MemFreeHost, "cuMemFreeHost"),
	SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
	SYM(MemcpyDtoH, "cuMemcpyDtoH_v2"), SYM(MemcpyHtoD, "cuMemcpyHtoD_v2"),
	SYM(MemsetD8, "cuMemsetD8_v2"),
	SYM(StreamCreate, "cuStreamCreate"),
	SYM(StreamDestroy, "cuStreamDestroy_v2"),
	SYM(StreamSynchronize, "cuStreamSynchronize"),
	SYM(EventCreate, "cuEventCreate"), SYM(EventDestroy, "cuEventDestroy_v2"),
	SYM(EventRecord, "cuEventRecord"),
	SYM(EventSynchronize, "cuEventSynchronize"),
	SYM(ModuleLoadDataEx, "cuModuleLoadDataEx"),
	SYM(ModuleGetFunction, "cuModuleGetFunction"),
	SYM(ModuleUnload, "cuModuleUnload"), SYM(LaunchKernel, "cuLaunchKernel"),
	SYM(GetErrorName, "cuGetErrorName"),
#undef SYM
};

static int cu_fail(struct cuda *c, struct err *err, CUresult r, const char *what)
{
	const char *name = NULL;

	if (c->GetErrorName)
		c->GetErrorName(r, &name);
	return err_set(err, ERR_FAIL, "cuda: %s failed: %s (%d)", what,
		       name ? name : "unknown error", r);
}

#define CU(c, call, what) do { \
	CUresult r_ = (call); \
	if (r_ != CUDA_SUCCESS) \
		return cu_fail((c), err, r_, (what)); \
} while (0)

static int current(struct cuda *c, struct err *err)
{
	CU(c, c->CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
	return 0;
}

int cuda_open(struct cuda **out, int dev, int nstreams, struct err *err)
{
	struct cuda *c;
	char name[128], log[4096] = "";
	int count = 0, ver = 0, major = 0, minor = 0, rc;
	int opt[2] = { CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES };
	void *val[2] = { log, (void *)(uintptr_t)sizeof(log) };
	CUresult r;

	*out = NULL;
	if (nstreams < 1 || nstreams > CUDA_MAX_STREAMS)
		return err_set(err, ERR_INVALID, "streams must be 1..%d",
			       CUDA_MAX_STREAMS);
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(err, ERR_FAIL, "out of memory");
	/* The soname first: an unversioned libcuda.so may be the toolkit's
	 * link stub. */
	c->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!c->lib) {
		rc = err_set(err, ERR_UNAVAILABLE,
			     "no CUDA driver (libcuda.so.1 not found): GPU steps skipped");
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(syms); i++) {
		void *f = dlsym(c->lib, syms[i].name);
		if (!f) {
			rc = err_set(err, ERR_UNAVAILABLE,
				     "CUDA driver lacks %s (too old?)", syms[i].name);
			goto fail;
		}
		memcpy((char *)c + syms[i].off, &f, sizeof(f));
	}
	r = c->Init(0);
	if (r == CUDA_ERROR_STUB_LIBRARY || r == CUDA_ERROR_NO_DEVICE) {
		rc = err_set(err, ERR_UNAVAILABLE, "no CUDA device (%s)",
			     r == CUDA_ERROR_NO_DEVICE ? "the driver sees none" :
			     "libcuda.so.1 is a stub library");
		goto fail;
	}
	if (r == CUDA_ERROR_INSUFFICIENT_DRIVER) {
		rc = err_set(err, ERR_UNAVAILABLE, "CUDA driver too old");
		goto fail;
	}
	if (r != CUDA_SUCCESS) {
		rc = cu_fail(c, err, r, "cuInit");
		if (rc == ERR_FAIL)
			rc = err ? (err->code = ERR_UNAVAILABLE) : ERR_UNAVAILABLE;
		goto fail;
	}
	c->DriverGetVersion(&ver);
	if ((r = c->DeviceGetCount(&count)) != CUDA_SUCCESS || dev < 0 ||
	    dev >= count) {
		rc = err_set(err, ERR_UNAVAILABLE, "no CUDA device %d (%d present)",
			     dev, count);
		goto fail;
	}
#define TRY(call, what) do { \
	if ((r = (call)) != CUDA_SUCCESS) { \
		rc = cu_fail(c, err, r, (what)); \
		goto fail; \
	} \
} while (0)
	TRY(c->DeviceGet(&c->dev, dev), "cuDeviceGet");
	TRY(c->DeviceGetName(name, sizeof(name), c->dev), "cuDeviceGetName");
	c->DeviceGetAttribute(&major, CU_ATTR_CC_MAJOR, c->dev);
	c->DeviceGetAttribute(&minor, CU_ATTR_CC_MINOR, c->dev);
	snprintf(c->desc, sizeof(c->desc), "%s, sm_%d%d, driver %d", name, major,
		 minor, ver);
	TRY(c->DevicePrimaryCtxRetain(&c->ctx, c->dev), "cuDevicePrimaryCtxRetain");
	TRY(c->CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
	for (int i = 0; i < nstreams; i++) {
		TRY(c->StreamCreate(&c->streams[i], CU_STREAM_NON_BLOCKING),
		    "cuStreamCreate");
		c->nstreams++;
	}
	for (int i = 0; i < NEVENTS; i++)
		TRY(c->EventCreate(&c->events[i], CU_EVENT_DISABLE_TIMING),
		    "cuEventCreate");
	r = c->ModuleLoadDataEx(&c->mod, ptx_src, 2, opt, val);
	if (r != CUDA_SUCCESS) {
		rc = err_set(err, ERR_FAIL, "cuda: the PTX kernels did not compile (%d): %.180s",
			     r, log);
		goto fail;
	}
	TRY(c->ModuleGetFunction(&c->f_sum, c->mod, "tsum"), "cuModuleGetFunction");
	TRY(c->ModuleGetFunction(&c->f_gemv, c->mod, "gemv_bf16"),
	    "cuModuleGetFunction");
	TRY(c->MemAlloc(&c->scratch, 8), "cuMemAlloc");
#undef TRY
	*out = c;
	return 0;
fail:
	cuda_free(c);
	return rc;
}

void cuda_free(struct cuda *c)
{
	if (!c)
		return;
	if (c->ctx) {
		c->CtxSetCurrent(c->ctx);
		c->CtxSynchronize();
		if (c->scratch)
			c->MemFree(c->scratch);
		if (c->mod)
			c->ModuleUnload(c->mod);
		for (int i = 0; i < NEVENTS; i++)
			if (c->events[i])
				c->EventDestroy(c->events[i]);
		for (int i = 0; i < c->nstreams; i++)
			c->StreamDestroy(c->streams[i]);
		c->DevicePrimaryCtxRelease(c->dev);
	}
	if (c->lib)
		dlclose(c->lib);
	free(c);
}

const char *cuda_describe(const struct cuda *c)
{
	return c->desc;
}

int cuda_mem_info(struct cuda *c, uint64_t *free_b, uint64_t *total_b,
		  struct err *err)
{
	size_t f = 0, t = 0;

	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->MemGetInfo(&f, &t), "cuMemGetInfo");
	*free_b = f;
	*total_b = t;
	return 0;
}

int cuda_alloc(struct cuda *c, uint64_t *dptr, uint64_t bytes, struct err *err)
{
	CUdeviceptr p = 0;

	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->MemAlloc(&p, bytes ? bytes : 1), "cuMemAlloc");
	*dptr = p;
	return 0;
}

void cuda_dev_free(struct cuda *c, uint64_t dptr)
{
	if (dptr && c->CtxSetCurrent(c->ctx) == CUDA_SUCCESS)
		c->MemFree(dptr);
}

int cuda_host_alloc(struct cuda *c, void **p, size_t bytes, struct err *err)
{
	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->MemHostAlloc(p, bytes, CU_MEMHOSTALLOC_PORTABLE),
	   "cuMemHostAlloc");
	return 0;
}

void cuda_host_free(struct cuda *c, void *p)
{
	if (p)
		c->MemFreeHost(p);
}

int cuda_copy_htod(struct cuda *c, uint64_t dst, const void *src, size_t n,
		   int s, struct err *err)
{
	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->MemcpyHtoDAsync(dst, src, n, c->streams[s % c->nstreams]),
	   "cuMemcpyHtoDAsync");
	return 0;
}

int cuda_copy_dtoh(struct cuda *c, void *dst, uint64_t src, size_t n,
		   struct err *err)
{
	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->MemcpyDtoH(dst, src, n), "cuMemcpyDtoH");
	return 0;
}

int cuda_event_record(struct cuda *c, int e, int s, struct err *err)
{
	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->EventRecord(c->events[e % NEVENTS], c->streams[s % c->nstreams]),
	   "cuEventRecord");
	return 0;
}

int cuda_event_wait(struct cuda *c, int e, struct err *err)
{
	CU(c, c->EventSynchronize(c->events[e % NEVENTS]), "cuEventSynchronize");
	return 0;
}

int cuda_sync(struct cuda *c, struct err *err)
{
	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->CtxSynchronize(), "cuCtxSynchronize");
	return 0;
}

int cuda_checksum(struct cuda *c, uint64_t dptr, uint64_t n, uint64_t *sum,
		  struct err *err)
{
	uint64_t words = n / 4, acc = 0;
	unsigned char tail[4] = { 0 };
	unsigned blocks;
	void *args[3] = { &dptr, &words, &c->scratch };

	if (current(c, err) < 0)
		return ERR_FAIL;
	CU(c, c->MemsetD8(c->scratch, 0, 8), "cuMemsetD8");
	if (words) {
		uint64_t want = (words + 255) / 256;
		blocks = want > 2048 ? 2048 : (unsigned)want;
		CU(c, c->LaunchKernel(c->f_sum, blocks, 1, 1, 256, 1, 1, 0, NULL,
				      args, NULL), "cuLaunchKernel(tsum)");
	}
	CU(c, c->CtxSynchronize(), "cuCtxSynchronize");
	CU(c, c->MemcpyDtoH(&acc, c->scratch, 8), "cuMemcpyDtoH");
	if (n % 4) {
		/* The partial last word is read back and summed here. */
		CU(c, c->MemcpyDtoH(tail, dptr + words * 4, n % 4), "cuMemcpyDtoH");
		acc += (uint64_t)(tail[0] | tail[1] << 8 | tail[2] << 16) *
		       (2 * words + 1);
	}
	*sum = acc;
	return 0;
}

int cuda_gemv_bf16(struct cuda *c, uint64_t w, unsigned rows, unsigned cols,
		   const float *x, float *y, struct err *err)
{
	CUdeviceptr dx = 0, dy = 0;
	void *args[5] = { &w, &dx, &dy, &rows, &cols };
	CUresult r;
	int rc = 0;

	if (current(c, err) < 0)
		return ERR_FAIL;
	if ((r = c->MemAlloc(&dx, (size_t)cols * 4)) != CUDA_SUCCESS ||
	    (r = c->MemAlloc(&dy, (size_t)rows * 4)) != CUDA_SUCCESS ||
	    (r = c->MemcpyHtoD(dx, x, (size_t)cols * 4)) != CUDA_SUCCESS ||
	    (r = c->LaunchKernel(c->f_gemv, (rows + 63) / 64, 1, 1, 64, 1, 1, 0,
				 NULL, args, NULL)) != CUDA_SUCCESS ||
	    (r = c->CtxSynchronize()) != CUDA_SUCCESS ||
	    (r = c->MemcpyDtoH(y, dy, (size_t)rows * 4)) != CUDA_SUCCESS)
		rc = cu_fail(c, err, r, "gemv check");
	if (dx)
		c->MemFree(dx);
	if (dy)
		c->MemFree(dy);
	return rc;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cuda_h2d_ceiling(struct cuda *c, size_t bytes, double *gbps,
		     struct err *err)
{
	void *h = NULL;
	CUdeviceptr d = 0;
	double best = 0;
	int rc;

	*gbps = 0;
	if ((rc = cuda_host_alloc(c, &h, bytes, err)) < 0)
		return rc;
	memset(h, 0x5a, bytes);
	if ((rc = cuda_alloc(c, &d, bytes, err)) < 0)
		goto out;
	for (int i = 0; i < 6; i++) {
		double t0 = now_s(), dt;
		CUresult r = c->MemcpyHtoDAsync(d, h, bytes, c->streams[0]);
		if (r == CUDA_SUCCESS)
			r = c->StreamSynchronize(c->streams[0]);
		if (r != CUDA_SUCCESS) {
			rc = cu_fail(c, err, r, "bandwidth probe");
			goto out;
		}
		dt = now_s() - t0;
		/* The first copy warms the path up and is not counted. */
		if (i && dt > 0 && (double)bytes / dt / 1e9 > best)
			best = (double)bytes / dt / 1e9;
	}
	*gbps = best;
out:
	cuda_dev_free(c, d);
	cuda_host_free(c, h);
	return rc;
}
