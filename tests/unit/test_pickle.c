/*
 * test_pickle.c: the restricted pickle reader (plain state dicts in,
 * os.system and friends refused by name) and the torch zip reader on good
 * and hostile archives.
 */
#include "common/compat.h"

#include <stdlib.h>
#include <string.h>

#include "loaders/pickle_reader.h"
#include "loaders/torch_zip.h"
#include "tests/unit/test.h"

/* --- a tiny pickle writer -------------------------------------------------- */

struct pk {
	unsigned char b[4096];
	size_t n;
};

static void raw(struct pk *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void op(struct pk *p, unsigned char o)
{
	p->b[p->n++] = o;
}

static void str(struct pk *p, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);
	unsigned char le[4] = { (unsigned char)n, (unsigned char)(n >> 8),
				(unsigned char)(n >> 16), (unsigned char)(n >> 24) };

	op(p, 'X');
	raw(p, le, 4);
	raw(p, s, n);
}

static void global(struct pk *p, const char *mod, const char *name)
{
	op(p, 'c');
	raw(p, mod, strlen(mod));
	op(p, '\n');
	raw(p, name, strlen(name));
	op(p, '\n');
}

static void i1(struct pk *p, unsigned v)
{
	op(p, 'K');
	op(p, (unsigned char)v);
}

/* torch._utils._rebuild_tensor_v2(('storage', torch.<st>, key, 'cpu',
 * numel), offset, (d0, d1), (s0, s1), False, OrderedDict()) */
static void tensor2(struct pk *p, const char *st, const char *key,
		    unsigned numel, unsigned off, unsigned d0, unsigned d1,
		    unsigned s0, unsigned s1)
{
	global(p, "torch._utils", "_rebuild_tensor_v2");
	op(p, '(');
	op(p, '(');
	str(p, "storage");
	global(p, "torch", st);
	str(p, key);
	str(p, "cpu");
	i1(p, numel);
	op(p, 't');
	op(p, 'Q');
	i1(p, off);
	i1(p, d0);
	i1(p, d1);
	op(p, 0x86);
	i1(p, s0);
	i1(p, s1);
	op(p, 0x86);
	op(p, 0x89);
	global(p, "collections", "OrderedDict");
	op(p, ')');
	op(p, 'R');
	op(p, 't');
	op(p, 'R');
}

/* An OrderedDict state dict as torch.save writes it: "layer.w" F32 [2, 3]
 * at element 2 of storage "0", "layer.b" BF16 [1, 4] in storage "1", and
 * the _metadata attribute set by BUILD. */
static void state_dict(struct pk *p)
{
	op(p, 0x80);
	op(p, 2);
	global(p, "collections", "OrderedDict");
	op(p, 'q');
	op(p, 0);
	op(p, ')');
	op(p, 'R');
	op(p, '(');
	str(p, "layer.w");
	tensor2(p, "FloatStorage", "0", 10, 2, 2, 3, 3, 1);
	str(p, "layer.b");
	tensor2(p, "BFloat16Storage", "1", 4, 0, 1, 4, 4, 1);
	op(p, 'u');
	op(p, '}');
	str(p, "_metadata");
	op(p, '}');
	op(p, 's');
	op(p, 'b');
	op(p, '.');
}

static int test_state_dict(void)
{
	struct pk p = { .n = 0 };
	struct pickle_result r;
	struct err e;
	int rc = -1;

	state_dict(&p);
	CHECK(pickle_read(&r, p.b, p.n, &e) == 0);
	CHECK(r.count == 2);
	CHECK(!strcmp(r.v[0].name, "layer.w") && r.v[0].dtype == DT_F32);
	CHECK(r.v[0].ndim == 2 && r.v[0].shape[0] == 2 && r.v[0].shape[1] == 3);
	CHECK(r.v[0].nbytes == 24 && r.v[0].storage_offset == 8);
	CHECK(!strcmp(r.v[0].storage_key, "0") && r.v[0].storage_bytes == 40);
	CHECK(!strcmp(r.v[1].name, "layer.b") && r.v[1].dtype == DT_BF16 &&
	      r.v[1].nbytes == 8);
	rc = 0;
out:
	pickle_result_release(&r);
	return rc;
}

static int test_nested_and_root(void)
{
	struct pk p = { .n = 0 };
	struct pickle_result r;
	struct err e;
	int rc = -1;

	/* {"model": {"x": tensor}, "step": 7} */
	op(&p, 0x80), op(&p, 2), op(&p, '}'), op(&p, '(');
	str(&p, "model");
	op(&p, '}');
	str(&p, "x");
	tensor2(&p, "HalfStorage", "0", 6, 0, 2, 3, 3, 1);
	op(&p, 's');
	str(&p, "step");
	i1(&p, 7);
	op(&p, 'u'), op(&p, '.');
	CHECK(pickle_read(&r, p.b, p.n, &e) == 0);
	CHECK(r.count == 1 && !strcmp(r.v[0].name, "model.x") && r.v[0].dtype == DT_F16);
	pickle_result_release(&r);
	/* A bare tensor (a voice embedding file). */
	p.n = 0;
	op(&p, 0x80), op(&p, 2);
	tensor2(&p, "BFloat16Storage", "0", 12, 0, 4, 3, 3, 1);
	op(&p, '.');
	CHECK(pickle_read(&r, p.b, p.n, &e) == 0);
	CHECK(r.count == 1 && r.v[0].name[0] == '\0' && r.v[0].nbytes == 24);
	rc = 0;
out:
	pickle_result_release(&r);
	return rc;
}

static int refused(struct pk *p, const char *needle)
{
	struct pickle_result r;
	struct err e;
	int rc = pickle_read(&r, p->b, p->n, &e);

	if (rc != ERR_INVALID || !strstr(e.msg, needle)) {
		fprintf(stderr, "  rc %d msg '%s' (wanted '%s')\n", rc, e.msg, needle);
		pickle_result_release(&r);
		return -1;
	}
	return 0;
}

static int test_hostile_pickles(void)
{
	struct pk p;
	int rc = -1;

	/* os.system('touch /tmp/pwned') */
	p.n = 0;
	op(&p, 0x80), op(&p, 2);
	global(&p, "os", "system");
	str(&p, "touch /tmp/haven-pwned");
	op(&p, 0x85), op(&p, 'R'), op(&p, '.');
	CHECK(refused(&p, "'os.system'") == 0);
	/* builtins.eval through STACK_GLOBAL */
	p.n = 0;
	op(&p, 0x80), op(&p, 4);
	str(&p, "builtins");
	str(&p, "eval");
	op(&p, 0x93);
	str(&p, "1+1");
	op(&p, 0x85), op(&p, 'R'), op(&p, '.');
	CHECK(refused(&p, "'builtins.eval'") == 0);
	/* posix.system, subprocess.Popen, torch.load itself */
	p.n = 0;
	global(&p, "posix", "system");
	CHECK(refused(&p, "'posix.system'") == 0);
	p.n = 0;
	global(&p, "torch", "load");
	CHECK(refused(&p, "'torch.load'") == 0);
	/* REDUCE on a storage type, on a string */
	p.n = 0;
	global(&p, "torch", "FloatStorage");
	op(&p, ')'), op(&p, 'R'), op(&p, '.');
	CHECK(refused(&p, "storage type") == 0);
	p.n = 0;
	str(&p, "x");
	op(&p, ')'), op(&p, 'R'), op(&p, '.');
	CHECK(refused(&p, "REDUCE") == 0);
	/* INST, OBJ, NEWOBJ, EXT1 are never read */
	p.n = 0;
	op(&p, 'i');
	CHECK(refused(&p, "INST") == 0);
	p.n = 0;
	op(&p, '('), op(&p, 'o');
	CHECK(refused(&p, "OBJ") == 0);
	p.n = 0;
	op(&p, ')'), op(&p, ')'), op(&p, 0x81);
	CHECK(refused(&p, "NEWOBJ") == 0);
	p.n = 0;
	op(&p, 0x82), op(&p, 1);
	CHECK(refused(&p, "EXT1") == 0);
	/* A non-contiguous tensor (stride (1, 2)), one past its storage */
	p.n = 0;
	tensor2(&p, "FloatStorage", "0", 6, 0, 2, 3, 1, 2);
	op(&p, '.');
	CHECK(refused(&p, "not contiguous") == 0);
	p.n = 0;
	tensor2(&p, "FloatStorage", "0", 6, 1, 2, 3, 3, 1);
	op(&p, '.');
	CHECK(refused(&p, "outside its storage") == 0);
	/* A persistent id that is not a storage reference */
	p.n = 0;
	str(&p, "x");
	op(&p, 'Q');
	CHECK(refused(&p, "persistent id") == 0);
	/* BUILD on a tensor (setting attributes on anything but a dict) */
	p.n = 0;
	tensor2(&p, "FloatStorage", "0", 6, 0, 2, 3, 3, 1);
	op(&p, '}'), op(&p, 'b'), op(&p, '.');
	CHECK(refused(&p, "BUILD") == 0);
	/* Malformed streams */
	p.n = 0;
	op(&p, '}');
	CHECK(refused(&p, "without STOP") == 0);
	p.n = 0;
	op(&p, 'X'), op(&p, 0xff), op(&p, 0xff), op(&p, 0), op(&p, 0);
	CHECK(refused(&p, "past the end") == 0);
	p.n = 0;
	op(&p, 's');
	CHECK(refused(&p, "underflow") == 0);
	p.n = 0;
	op(&p, 'h'), op(&p, 9);
	CHECK(refused(&p, "memo 9") == 0);
	p.n = 0;
	op(&p, '}'), op(&p, '}'), op(&p, '.');
	CHECK(refused(&p, "left on the stack") == 0);
	p.n = 0;
	op(&p, 0x80), op(&p, 9);
	CHECK(refused(&p, "protocol") == 0);
	rc = 0;
out:
	return rc;
}

/* --- a tiny zip writer ----------------------------------------------------- */

struct zip {
	unsigned char b[8192];
	size_t n;
	unsigned char cd[4096];
	size_t ncd;
	unsigned count;
};

static void le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Adds a STORED entry (method and flags may be overridden). */
static void zadd(struct zip *z, const char *name, const void *data, size_t len,
		 unsigned method, unsigned flags, uint64_t claim_size)
{
	unsigned char *h = z->b + z->n, *c = z->cd + z->ncd;
	size_t nl = strlen(name);
	uint64_t sz = claim_size ? claim_size : len;

	memset(h, 0, 30);
	le(h, 0x04034b50, 4);
	le(h + 6, flags, 2);
	le(h + 8, method, 2);
	le(h + 18, sz, 4);
	le(h + 22, sz, 4);
	le(h + 26, nl, 2);
	memcpy(h + 30, name, nl);
	memcpy(h + 30 + nl, data, len);
	memset(c, 0, 46);
	le(c, 0x02014b50, 4);
	le(c + 8, flags, 2);
	le(c + 10, method, 2);
	le(c + 20, sz, 4);
	le(c + 24, sz, 4);
	le(c + 28, nl, 2);
	le(c + 42, z->n, 4);
	memcpy(c + 46, name, nl);
	z->n += 30 + nl + len;
	z->ncd += 46 + nl;
	z->count++;
}

static void zfinish(struct zip *z)
{
	unsigned char *e;
	size_t cdoff = z->n;

	memcpy(z->b + z->n, z->cd, z->ncd);
	z->n += z->ncd;
	e = z->b + z->n;
	memset(e, 0, 22);
	le(e, 0x06054b50, 4);
	le(e + 8, z->count, 2);
	le(e + 10, z->count, 2);
	le(e + 12, z->ncd, 4);
	le(e + 16, cdoff, 4);
	z->n += 22;
}

static int mem_read(void *arg, void *buf, size_t len, uint64_t off,
		    struct err *err)
{
	struct zip *z = arg;

	if (off > z->n || len > z->n - off)
		return err_set(err, ERR_INVALID, "zip: file is truncated");
	memcpy(buf, z->b + off, len);
	return 0;
}

static int test_zip_good(void)
{
	struct zip z = { .n = 0 };
	struct torch_zip *tz = NULL;
	struct err e;
	const struct zip_entry *d;
	int rc = -1;

	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0);
	zadd(&z, "archive/data/0", "0123456789abcdef", 16, 0, 0, 0);
	zadd(&z, "archive/version", "3\n", 2, 0, 0, 0);
	zfinish(&z);
	CHECK(torch_zip_open(&tz, mem_read, &z, z.n, &e) == 0);
	CHECK(!strcmp(tz->prefix, "archive") && tz->count == 3);
	d = torch_zip_member(tz, "data/0");
	CHECK(d && d->size == 16 && !memcmp(z.b + d->data_off, "0123456789abcdef", 16));
	CHECK(torch_zip_member(tz, "data/1") == NULL);
	rc = 0;
out:
	torch_zip_free(tz);
	return rc;
}

static int zip_refused(struct zip *z, const char *needle)
{
	struct torch_zip *tz = NULL;
	struct err e;
	int rc = torch_zip_open(&tz, mem_read, z, z->n, &e);

	torch_zip_free(tz);
	if (rc != ERR_INVALID || !strstr(e.msg, needle)) {
		fprintf(stderr, "  rc %d msg '%s' (wanted '%s')\n", rc, e.msg, needle);
		return -1;
	}
	return 0;
}

static int test_zip_hostile(void)
{
	struct zip z;
	int rc = -1;

	/* A DEFLATE entry (the shape of a zip bomb) */
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0);
	zadd(&z, "archive/data/0", "xx", 2, 8, 0, 0);
	zfinish(&z);
	CHECK(zip_refused(&z, "compression method 8") == 0);
	/* A stored entry claiming a terabyte */
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0xfffffff0);
	zfinish(&z);
	CHECK(zip_refused(&z, "past its limit") == 0);
	/* Encrypted */
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 1, 0);
	zfinish(&z);
	CHECK(zip_refused(&z, "encrypted") == 0);
	/* No data.pkl */
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data/0", "xx", 2, 0, 0, 0);
	zfinish(&z);
	CHECK(zip_refused(&z, "data.pkl") == 0);
	/* Two entries over the same bytes */
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0);
	zadd(&z, "archive/data/0", "xx", 2, 0, 0, 0);
	le(z.cd + z.ncd - 46 - strlen("archive/data/0") + 42, 0, 4);
	zfinish(&z);
	CHECK(zip_refused(&z, "overlap") == 0);
	/* Central directory offset past the end */
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0);
	zfinish(&z);
	le(z.b + z.n - 6, 0x7fffffff, 4);
	CHECK(zip_refused(&z, "does not fit") == 0);
	/* Not a zip at all; truncated end record */
	memset(&z, 0, sizeof(z));
	memcpy(z.b, "this is not a zip file, just some text....", 42);
	z.n = 42;
	CHECK(zip_refused(&z, "not a zip") == 0);
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0);
	zfinish(&z);
	z.n -= 3;
	CHECK(zip_refused(&z, "not a zip") == 0);
	/* Duplicate names */
	memset(&z, 0, sizeof(z));
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0);
	zadd(&z, "archive/data.pkl", "\x80\x02}.", 4, 0, 0, 0);
	zfinish(&z);
	CHECK(zip_refused(&z, "twice") == 0);
	rc = 0;
out:
	return rc;
}

int main(void)
{
	RUN(test_state_dict);
	RUN(test_nested_and_root);
	RUN(test_hostile_pickles);
	RUN(test_zip_good);
	RUN(test_zip_hostile);
	return TEST_REPORT();
}
