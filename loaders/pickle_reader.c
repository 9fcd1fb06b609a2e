/*
 * pickle_reader.c: the restricted, non-executing pickle reader
 * (pickle_reader.h). Objects are plain C values kept in one arena that is
 * freed as a whole; nothing the pickle names is ever called.
 */
#include "common/compat.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/pickle_reader.h"

enum kind {
	K_MARK, K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE,
	K_LIST, K_DICT, K_GLOBAL, K_STORAGE, K_TENSOR
};

enum global_id { G_ODICT, G_REBUILD_V2, G_REBUILD_PARAM, G_STORAGE };

struct obj {
	enum kind k;
	int64_t i;		/* int, bool; global id */
	char *s;		/* str, bytes; storage key */
	size_t slen;
	struct obj **items;	/* tuple, list; dict: key, value, key, ... */
	size_t n, cap;
	int dtype;		/* storage type global, storage, tensor */
	struct pickle_tensor t;	/* tensor (name unused) */
};

struct reader {
	const unsigned char *p, *end, *start;
	struct obj **arena;
	size_t narena, carena;
	struct obj **stack;
	size_t depth, cstack;
	struct obj **memo;
	size_t nmemo, memo_len;
	struct obj mark;
	struct err *err;
};

#define MAX_STACK ((size_t)1 << 20)
#define MAX_MEMO ((size_t)1 << 22)
#define MAX_NEST 64

static const struct {
	const char *name;
	int dtype;
} storages[] = {
	{ "FloatStorage", DT_F32 }, { "DoubleStorage", DT_F64 },
	{ "HalfStorage", DT_F16 }, { "BFloat16Storage", DT_BF16 },
	{ "LongStorage", DT_I64 }, { "IntStorage", DT_I32 },
	{ "ShortStorage", DT_I16 }, { "CharStorage", DT_I8 },
	{ "ByteStorage", DT_U8 }, { "BoolStorage", DT_BOOL },
	{ "ComplexFloatStorage", DT_C64 },
	{ "Float8_e4m3fnStorage", DT_F8_E4M3 },
	{ "Float8_e5m2Storage", DT_F8_E5M2 },
};

static const char *opname(unsigned char op)
{
	static const struct {
		unsigned char op;
		const char *name;
	} t[] = {
		{ 'i', "INST" }, { 'o', "OBJ" }, { 0x81, "NEWOBJ" },
		{ 0x92, "NEWOBJ_EX" }, { 'P', "PERSID" }, { 0x82, "EXT1" },
		{ 0x83, "EXT2" }, { 0x84, "EXT4" }, { 'S', "STRING" },
		{ 'V', "UNICODE" }, { 'I', "INT" }, { 'L', "LONG" },
		{ 'F', "FLOAT" }, { 'p', "PUT" }, { 'g', "GET" },
		{ 'd', "DICT" }, { 'l', "LIST" }, { 0x8f, "EMPTY_SET" },
		{ 0x90, "ADDITEMS" }, { 0x91, "FROZENSET" },
		{ 0x96, "BYTEARRAY8" }, { 0x97, "NEXT_BUFFER" },
		{ 0x98, "READONLY_BUFFER" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (t[i].op == op)
			return t[i].name;
	return "unknown";
}

static struct obj *obj_new(struct reader *r, enum kind k)
{
	struct obj *o = NULL;

	if (r->narena == r->carena) {
		size_t cap = r->carena ? r->carena * 2 : 256;
		void *p = realloc(r->arena, cap * sizeof(*r->arena));
		if (!p)
			return NULL;
		r->arena = p;
		r->carena = cap;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->k = k;
	r->arena[r->narena++] = o;
	return o;
}

static void obj_release(struct obj *o)
{
	free(o->s);
	free(o->items);
	free(o->t.storage_key);
	free(o);
}

static int oom(struct reader *r)
{
	return err_set(r->err, ERR_FAIL, "out of memory");
}

static int push(struct reader *r, struct obj *o)
{
	if (!o)
		return oom(r);
	if (r->depth == r->cstack) {
		size_t cap = r->cstack ? r->cstack * 2 : 64;
		void *p;
		if (cap > MAX_STACK)
			return err_set(r->err, ERR_INVALID, "pickle: stack too deep");
		p = realloc(r->stack, cap * sizeof(*r->stack));
		if (!p)
			return oom(r);
		r->stack = p;
		r->cstack = cap;
	}
	r->stack[r->depth++] = o;
	return 0;
}

static int pop(struct reader *r, struct obj **out)
{
	if (!r->depth || r->stack[r->depth - 1] == &r->mark)
		return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
	*out = r->stack[--r->depth];
	return 0;
}

static int top(struct reader *r, struct obj **out)
{
	if (!r->depth || r->stack[r->depth - 1] == &r->mark)
		return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
	*out = r->stack[r->depth - 1];
	return 0;
}

/* Index of the topmost mark. */
static int find_mark(struct reader *r, size_t *at)
{
	for (size_t i = r->depth; i > 0; i--)
		if (r->stack[i - 1] == &r->mark) {
			*at = i - 1;
			return 0;
		}
	return err_set(r->err, ERR_INVALID, "pickle: no mark on the stack");
}

static int add_item(struct reader *r, struct obj *c, struct obj *v)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		void *p = realloc(c->items, cap * sizeof(*c->items));
		if (!p)
			return oom(r);
		c->items = p;
		c->cap = cap;
	}
	c->items[c->n++] = v;
	return 0;
}

static int need(struct reader *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return err_set(r->err, ERR_INVALID, "pickle: truncated");
	return 0;
}

static uint64_t rd_le(struct reader *r, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static int push_str(struct reader *r, enum kind k, size_t lenbytes)
{
	struct obj *o = NULL;
	uint64_t n;
	int rc;

	if ((rc = need(r, lenbytes)) < 0)
		return rc;
	n = rd_le(r, lenbytes);
	if (n > (uint64_t)(r->end - r->p))
		return err_set(r->err, ERR_INVALID, "pickle: string runs past the end");
	o = obj_new(r, k);
	if (!o || !(o->s = malloc((size_t)n + 1)))
		return oom(r);
	memcpy(o->s, r->p, (size_t)n);
	o->s[n] = '\0';
	o->slen = (size_t)n;
	r->p += n;
	return push(r, o);
}

static int push_int(struct reader *r, int64_t v)
{
	struct obj *o = obj_new(r, K_INT);

	if (o)
		o->i = v;
	return push(r, o);
}

static int resolve_global(struct reader *r, const char *mod, const char *name)
{
	struct obj *o = obj_new(r, K_GLOBAL);

	if (!o)
		return oom(r);
	if (!strcmp(mod, "collections") && !strcmp(name, "OrderedDict"))
		o->i = G_ODICT;
	else if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_tensor_v2"))
		o->i = G_REBUILD_V2;
	else if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_parameter"))
		o->i = G_REBUILD_PARAM;
	else {
		o->i = -1;
		if (!strcmp(mod, "torch"))
			for (size_t i = 0; i < ARRAY_SIZE(storages); i++)
				if (!strcmp(name, storages[i].name)) {
					o->i = G_STORAGE;
					o->dtype = storages[i].dtype;
				}
		if (o->i < 0)
			return err_set(r->err, ERR_INVALID,
				       "pickle: refused global '%s.%s' (not part of a plain state dict)",
				       mod, name);
	}
	return push(r, o);
}

static int op_global(struct reader *r)
{
	const unsigned char *nl1, *nl2;
	char mod[128], name[128];
	size_t ml, nl;

	nl1 = memchr(r->p, '\n', (size_t)(r->end - r->p));
	if (!nl1)
		return err_set(r->err, ERR_INVALID, "pickle: truncated GLOBAL");
	nl2 = memchr(nl1 + 1, '\n', (size_t)(r->end - nl1 - 1));
	if (!nl2)
		return err_set(r->err, ERR_INVALID, "pickle: truncated GLOBAL");
	ml = (size_t)(nl1 - r->p);
	nl = (size_t)(nl2 - nl1 - 1);
	if (ml >= sizeof(mod) || nl >= sizeof(name))
		return err_set(r->err, ERR_INVALID, "pickle: GLOBAL name too long");
	memcpy(mod, r->p, ml);
	mod[ml] = '\0';
	memcpy(name, nl1 + 1, nl);
	name[nl] = '\0';
	r->p = nl2 + 1;
	return resolve_global(r, mod, name);
}

static int op_stack_global(struct reader *r)
{
	struct obj *m, *n;
	int rc;

	if ((rc = pop(r, &n)) < 0 || (rc = pop(r, &m)) < 0)
		return rc;
	if (m->k != K_STR || n->k != K_STR)
		return err_set(r->err, ERR_INVALID,
			       "pickle: STACK_GLOBAL needs two strings");
	return resolve_global(r, m->s, n->s);
}

static bool is_int(const struct obj *o)
{
	return o->k == K_INT && o->i >= 0;
}

/* torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...). */
static int rebuild_tensor(struct reader *r, struct obj *args)
{
	struct obj *st, *off, *size, *stride, *t;
	uint64_t numel, nbytes, elt, expect = 1, start;
	struct err e = { 0 };
	int rc;

	if (args->n < 4)
		return err_set(r->err, ERR_INVALID,
			       "pickle: _rebuild_tensor_v2 needs at least 4 arguments");
	st = args->items[0], off = args->items[1];
	size = args->items[2], stride = args->items[3];
	if (st->k != K_STORAGE || !is_int(off) || size->k != K_TUPLE ||
	    stride->k != K_TUPLE || size->n != stride->n)
		return err_set(r->err, ERR_INVALID,
			       "pickle: _rebuild_tensor_v2 has malformed arguments");
	if (size->n > TENSOR_MAX_DIMS)
		return err_set(r->err, ERR_INVALID, "pickle: tensor has %zu dimensions",
			       size->n);
	t = obj_new(r, K_TENSOR);
	if (!t)
		return oom(r);
	t->t.dtype = st->dtype;
	t->t.ndim = (int)size->n;
	for (size_t i = 0; i < size->n; i++) {
		if (!is_int(size->items[i]) || !is_int(stride->items[i]))
			return err_set(r->err, ERR_INVALID,
				       "pickle: tensor size or stride is not a non-negative integer");
		t->t.shape[i] = (uint64_t)size->items[i]->i;
	}
	if ((rc = tensor_nbytes(&nbytes, &numel, st->dtype, t->t.ndim, t->t.shape,
				&e)) < 0)
		return err_set(r->err, rc, "pickle: %s", e.msg);
	/* Row-major contiguity; dimensions of size 1 may carry any stride. */
	for (size_t i = size->n; i > 0; i--) {
		uint64_t dim = t->t.shape[i - 1];
		if (dim != 1 && (uint64_t)stride->items[i - 1]->i != expect)
			return err_set(r->err, ERR_INVALID,
				       "pickle: a tensor is not contiguous (stride %lld in dimension %zu)",
				       (long long)stride->items[i - 1]->i, i - 1);
		if (__builtin_mul_overflow(expect, dim, &expect))
			return err_set(r->err, ERR_INVALID, "pickle: stride overflow");
	}
	elt = dtype_bits(st->dtype) / 8;
	if (__builtin_mul_overflow((uint64_t)off->i, elt, &start) ||
	    start > st->t.storage_bytes || nbytes > st->t.storage_bytes - start)
		return err_set(r->err, ERR_INVALID,
			       "pickle: a tensor lies outside its storage '%s'",
			       st->s);
	t->t.nbytes = nbytes;
	t->t.storage_offset = start;
	t->t.storage_bytes = st->t.storage_bytes;
	t->t.storage_key = strdup(st->s);
	if (!t->t.storage_key)
		return oom(r);
	return push(r, t);
}

static int op_reduce(struct reader *r)
{
	struct obj *f, *args;
	int rc;

	if ((rc = pop(r, &args)) < 0 || (rc = pop(r, &f)) < 0)
		return rc;
	if (f->k != K_GLOBAL || args->k != K_TUPLE)
		return err_set(r->err, ERR_INVALID,
			       "pickle: refused REDUCE on something that is not an allowlisted callable");
	switch (f->i) {
	case G_ODICT:
		if (args->n)
			return err_set(r->err, ERR_INVALID,
				       "pickle: OrderedDict with arguments is refused");
		return push(r, obj_new(r, K_DICT));
	case G_REBUILD_V2:
		return rebuild_tensor(r, args);
	case G_REBUILD_PARAM:
		if (!args->n || args->items[0]->k != K_TENSOR)
			return err_set(r->err, ERR_INVALID,
				       "pickle: _rebuild_parameter without a tensor");
		return push(r, args->items[0]);
	default:
		return err_set(r->err, ERR_INVALID,
			       "pickle: refused REDUCE on a storage type");
	}
}

/* ('storage', <torch.XStorage>, key, location, numel) */
static int op_binpersid(struct reader *r)
{
	struct obj *pid, *st;
	uint64_t bytes;
	int rc;

	if ((rc = pop(r, &pid)) < 0)
		return rc;
	if (pid->k != K_TUPLE || pid->n != 5 || pid->items[0]->k != K_STR ||
	    strcmp(pid->items[0]->s, "storage") || pid->items[1]->k != K_GLOBAL ||
	    pid->items[1]->i != G_STORAGE || pid->items[2]->k != K_STR ||
	    !is_int(pid->items[4]))
		return err_set(r->err, ERR_INVALID,
			       "pickle: refused a persistent id that is not a torch storage reference");
	if (__builtin_mul_overflow((uint64_t)pid->items[4]->i,
				   (uint64_t)dtype_bits(pid->items[1]->dtype) / 8,
				   &bytes))
		return err_set(r->err, ERR_INVALID, "pickle: storage size overflow");
	st = obj_new(r, K_STORAGE);
	if (!st || !(st->s = strdup(pid->items[2]->s)))
		return oom(r);
	st->dtype = pid->items[1]->dtype;
	st->t.storage_bytes = bytes;
	return push(r, st);
}

static int memo_put(struct reader *r, uint64_t idx)
{
	struct obj *o = NULL;
	int rc;

	if ((rc = top(r, &o)) < 0)
		return rc;
	if (idx >= MAX_MEMO)
		return err_set(r->err, ERR_INVALID, "pickle: memo index too large");
	if (idx >= r->nmemo) {
		size_t n = (size_t)idx + 1 > r->nmemo * 2 ? (size_t)idx + 1 : r->nmemo * 2;
		void *p = realloc(r->memo, n * sizeof(*r->memo));
		if (!p)
			return oom(r);
		r->memo = p;
		memset(r->memo + r->nmemo, 0, (n - r->nmemo) * sizeof(*r->memo));
		r->nmemo = n;
	}
	if (!r->memo[idx])
		r->memo_len++;
	r->memo[idx] = o;
	return 0;
}

static int memo_get(struct reader *r, uint64_t idx)
{
	if (idx >= r->nmemo || !r->memo[idx])
		return err_set(r->err, ERR_INVALID, "pickle: memo %llu is empty",
			       (unsigned long long)idx);
	return push(r, r->memo[idx]);
}

/* Pops everything above the topmost mark into a new tuple or list. */
static int collect(struct reader *r, struct obj *into)
{
	size_t at = 0;
	int rc;

	if (!into)
		return oom(r);
	if ((rc = find_mark(r, &at)) < 0)
		return rc;
	for (size_t i = at + 1; i < r->depth; i++)
		if ((rc = add_item(r, into, r->stack[i])) < 0)
			return rc;
	r->depth = at;
	return 0;
}

static int tuple_n(struct reader *r, size_t n)
{
	struct obj *t = obj_new(r, K_TUPLE);
	int rc;

	if (!t)
		return oom(r);
	if (r->depth < n)
		return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
	for (size_t i = r->depth - n; i < r->depth; i++) {
		if (r->stack[i] == &r->mark)
			return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
		if ((rc = add_item(r, t, r->stack[i])) < 0)
			return rc;
	}
	r->depth -= n;
	return push(r, t);
}

/* SETITEM: [dict, key, value]; SETITEMS: [dict, MARK, k, v, ...]. */
static int setitems(struct reader *r, bool one)
{
	size_t at = 0;
	struct obj *d;
	int rc;

	if (one) {
		if (r->depth < 3 || r->stack[r->depth - 1] == &r->mark ||
		    r->stack[r->depth - 2] == &r->mark)
			return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
		at = r->depth - 2;
	} else {
		if ((rc = find_mark(r, &at)) < 0)
			return rc;
		at++;
	}
	if (at < 2 && !one)
		return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
	d = r->stack[one ? at - 1 : at - 2];
	if (d == &r->mark || d->k != K_DICT)
		return err_set(r->err, ERR_INVALID,
			       "pickle: SETITEM(S) on something that is not a dict");
	if ((r->depth - at) % 2)
		return err_set(r->err, ERR_INVALID, "pickle: malformed SETITEMS");
	for (size_t i = at; i < r->depth; i++) {
		if (r->stack[i] == &r->mark)
			return err_set(r->err, ERR_INVALID, "pickle: malformed SETITEMS");
		if ((rc = add_item(r, d, r->stack[i])) < 0)
			return rc;
	}
	r->depth = one ? at : at - 1;
	return 0;
}

/* APPEND: [list, value]; APPENDS: [list, MARK, values...]. */
static int appends(struct reader *r, bool one)
{
	size_t at = 0;
	struct obj *l;
	int rc;

	if (one) {
		if (r->depth < 2 || r->stack[r->depth - 1] == &r->mark)
			return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
		at = r->depth - 1;
	} else {
		if ((rc = find_mark(r, &at)) < 0)
			return rc;
		at++;
	}
	if (at < 2 && !one)
		return err_set(r->err, ERR_INVALID, "pickle: stack underflow");
	l = r->stack[one ? at - 1 : at - 2];
	if (l == &r->mark || l->k != K_LIST)
		return err_set(r->err, ERR_INVALID,
			       "pickle: APPEND on something that is not a list");
	for (size_t i = at; i < r->depth; i++) {
		if (r->stack[i] == &r->mark)
			return err_set(r->err, ERR_INVALID, "pickle: malformed APPENDS");
		if ((rc = add_item(r, l, r->stack[i])) < 0)
			return rc;
	}
	r->depth = one ? at : at - 1;
	return 0;
}

/* One opcode; *done is set by STOP. */
static int step(struct reader *r, bool *done)
{
	unsigned char op = *r->p++;
	struct obj *o = NULL, *a = NULL;
	int rc = 0;

	switch (op) {
	case 0x80: /* PROTO */
		if ((rc = need(r, 1)) < 0)
			return rc;
		if (*r->p < 2 || *r->p > 5)
			return err_set(r->err, ERR_INVALID,
				       "pickle: protocol %u is not read", *r->p);
		r->p++;
		return 0;
	case 0x95: /* FRAME: a length hint, the opcodes follow inline */
		if ((rc = need(r, 8)) < 0)
			return rc;
		r->p += 8;
		return 0;
	case '.': /* STOP */
		*done = true;
		return 0;
	case '(':
		return push(r, &r->mark);
	case 'N':
		return push(r, obj_new(r, K_NONE));
	case 0x88: case 0x89:
		o = obj_new(r, K_BOOL);
		if (o)
			o->i = op == 0x88;
		return push(r, o);
	case 'J':
		if ((rc = need(r, 4)) < 0)
			return rc;
		return push_int(r, (int32_t)(uint32_t)rd_le(r, 4));
	case 'K':
		if ((rc = need(r, 1)) < 0)
			return rc;
		return push_int(r, (int64_t)rd_le(r, 1));
	case 'M':
		if ((rc = need(r, 2)) < 0)
			return rc;
		return push_int(r, (int64_t)rd_le(r, 2));
	case 0x8a: case 0x8b: { /* LONG1, LONG4 */
		uint64_t n, v;
		if ((rc = need(r, op == 0x8a ? 1 : 4)) < 0)
			return rc;
		n = rd_le(r, op == 0x8a ? 1 : 4);
		if (n > 8)
			return err_set(r->err, ERR_INVALID,
				       "pickle: integer wider than 64 bits");
		if ((rc = need(r, (size_t)n)) < 0)
			return rc;
		v = rd_le(r, (size_t)n);
		if (n && n < 8 && (v >> (8 * n - 1)) & 1)
			v |= ~(uint64_t)0 << (8 * n);
		return push_int(r, (int64_t)v);
	}
	case 'G': {
		uint64_t bits = 0;
		if ((rc = need(r, 8)) < 0)
			return rc;
		for (int i = 0; i < 8; i++)
			bits = bits << 8 | r->p[i];
		r->p += 8;
		o = obj_new(r, K_FLOAT);
		if (o)
			o->i = (int64_t)bits;
		return push(r, o);
	}
	case 0x8c: return push_str(r, K_STR, 1);	/* SHORT_BINUNICODE */
	case 'X': return push_str(r, K_STR, 4);		/* BINUNICODE */
	case 0x8d: return push_str(r, K_STR, 8);	/* BINUNICODE8 */
	case 'U': return push_str(r, K_STR, 1);		/* SHORT_BINSTRING */
	case 'T': return push_str(r, K_STR, 4);		/* BINSTRING */
	case 'C': return push_str(r, K_BYTES, 1);	/* SHORT_BINBYTES */
	case 'B': return push_str(r, K_BYTES, 4);	/* BINBYTES */
	case 0x8e: return push_str(r, K_BYTES, 8);	/* BINBYTES8 */
	case '}':
		return push(r, obj_new(r, K_DICT));
	case ']':
		return push(r, obj_new(r, K_LIST));
	case ')':
		return push(r, obj_new(r, K_TUPLE));
	case 't':
		if ((rc = collect(r, o = obj_new(r, K_TUPLE))) < 0)
			return rc;
		return push(r, o);
	case 'l':
		if ((rc = collect(r, o = obj_new(r, K_LIST))) < 0)
			return rc;
		return push(r, o);
	case 0x85: return tuple_n(r, 1);
	case 0x86: return tuple_n(r, 2);
	case 0x87: return tuple_n(r, 3);
	case 'q':
		if ((rc = need(r, 1)) < 0)
			return rc;
		return memo_put(r, rd_le(r, 1));
	case 'r':
		if ((rc = need(r, 4)) < 0)
			return rc;
		return memo_put(r, rd_le(r, 4));
	case 0x94: /* MEMOIZE */
		return memo_put(r, r->memo_len);
	case 'h':
		if ((rc = need(r, 1)) < 0)
			return rc;
		return memo_get(r, rd_le(r, 1));
	case 'j':
		if ((rc = need(r, 4)) < 0)
			return rc;
		return memo_get(r, rd_le(r, 4));
	case 's':
		return setitems(r, true);
	case 'u':
		return setitems(r, false);
	case 'a':
		return appends(r, true);
	case 'e':
		return appends(r, false);
	case 'c':
		return op_global(r);
	case 0x93:
		return op_stack_global(r);
	case 'R':
		return op_reduce(r);
	case 'Q':
		return op_binpersid(r);
	case 'b': /* BUILD: only the attribute dict of an OrderedDict */
		if ((rc = pop(r, &a)) < 0 || (rc = top(r, &o)) < 0)
			return rc;
		if (o->k != K_DICT || (a->k != K_DICT && a->k != K_NONE))
			return err_set(r->err, ERR_INVALID,
				       "pickle: refused BUILD on something that is not a dict");
		return 0;
	case '0': /* POP */
		if (r->depth && r->stack[r->depth - 1] == &r->mark) {
			r->depth--;
			return 0;
		}
		return pop(r, &o);
	case '1': { /* POP_MARK */
		size_t at = 0;
		if ((rc = find_mark(r, &at)) < 0)
			return rc;
		r->depth = at;
		return 0;
	}
	case '2': /* DUP */
		if ((rc = top(r, &o)) < 0)
			return rc;
		return push(r, o);
	default:
		return err_set(r->err, ERR_INVALID,
			       "pickle: refused opcode 0x%02x (%s) at byte %zu", op,
			       opname(op), (size_t)(r->p - 1 - r->start));
	}
}

static int add_tensor(struct pickle_result *out, const struct obj *t,
		      const char *name, struct err *err)
{
	struct pickle_tensor *pt;
	void *p;

	p = realloc(out->v, (out->count + 1) * sizeof(*out->v));
	if (!p)
		return err_set(err, ERR_FAIL, "out of memory");
	out->v = p;
	pt = &out->v[out->count];
	*pt = t->t;
	pt->name = strdup(name);
	pt->storage_key = strdup(t->t.storage_key);
	if (!pt->name || !pt->storage_key) {
		free(pt->name);
		free(pt->storage_key);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	out->count++;
	return 0;
}

static int walk(struct pickle_result *out, const struct obj *o,
		const char *prefix, int nest, struct err *err)
{
	char name[1024];
	int rc;

	if (o->k == K_TENSOR)
		return add_tensor(out, o, prefix, err);
	if (o->k != K_DICT)
		return 0;
	if (nest > MAX_NEST)
		return err_set(err, ERR_INVALID, "pickle: dicts nested too deep");
	for (size_t i = 0; i + 1 < o->n; i += 2) {
		const struct obj *k = o->items[i], *v = o->items[i + 1];
		char kbuf[32];
		const char *ks = kbuf;

		if (v->k != K_TENSOR && v->k != K_DICT)
			continue;
		if (k->k == K_STR)
			ks = k->s;
		else if (k->k == K_INT)
			snprintf(kbuf, sizeof(kbuf), "%lld", (long long)k->i);
		else
			continue;
		if ((size_t)snprintf(name, sizeof(name), "%s%s%s", prefix,
				     prefix[0] ? "." : "", ks) >= sizeof(name))
			return err_set(err, ERR_INVALID, "pickle: tensor name too long");
		if ((rc = walk(out, v, name, nest + 1, err)) < 0)
			return rc;
	}
	return 0;
}

int pickle_read(struct pickle_result *out, const unsigned char *data,
		size_t len, struct err *err)
{
	struct reader r = { .p = data, .end = data + len, .start = data, .err = err };
	bool done = false;
	struct obj *root;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	r.mark.k = K_MARK;
	if (len > PICKLE_MAX_BYTES) {
		rc = err_set(err, ERR_TOOBIG, "pickle: %zu bytes is over the limit", len);
		goto out;
	}
	while (!done) {
		if (r.p >= r.end) {
			rc = err_set(err, ERR_INVALID, "pickle: ends without STOP");
			goto out;
		}
		if ((rc = step(&r, &done)) < 0)
			goto out;
	}
	if (r.depth != 1 || r.stack[0] == &r.mark) {
		rc = err_set(err, ERR_INVALID,
			     "pickle: %zu values left on the stack at STOP", r.depth);
		goto out;
	}
	root = r.stack[0];
	rc = walk(out, root, "", 0, err);
out:
	for (size_t i = 0; i < r.narena; i++)
		obj_release(r.arena[i]);
	free(r.arena);
	free(r.stack);
	free(r.memo);
	if (rc < 0)
		pickle_result_release(out);
	return rc;
}

void pickle_result_release(struct pickle_result *res)
{
	for (size_t i = 0; i < res->count; i++) {
		free(res->v[i].name);
		free(res->v[i].storage_key);
	}
	free(res->v);
	res->v = NULL;
	res->count = 0;
}
