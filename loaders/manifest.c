/*
 * manifest.c: the manifest text format, its name expansion, and the check
 * of a checkpoint's tensors against it (manifest.h).
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "loaders/manifest.h"

#define MAX_LINE 4096

struct parse {
	struct manifest *m;
	size_t cap;
	const char *source;
	int line;
	struct err *err;
};

static int perr(struct parse *p, const char *what, const char *arg)
{
	return err_set(p->err, ERR_INVALID, "%s:%d: %s%s%s%s", p->source, p->line,
		       what, arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
}

static int strv_add(char ***v, size_t *n, const char *s)
{
	void *p = realloc(*v, (*n + 1) * sizeof(**v));

	if (!p)
		return ERR_FAIL;
	*v = p;
	if (!((*v)[*n] = strdup(s)))
		return ERR_FAIL;
	(*n)++;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int add_tensor(struct parse *p, const char *name,
		      const struct manifest_tensor *proto)
{
	struct manifest *m = p->m;

	if (m->count >= MANIFEST_MAX_TENSORS)
		return perr(p, "too many tensors", NULL);
	if (m->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		void *q = realloc(m->t, cap * sizeof(*m->t));
		if (!q)
			return err_set(p->err, ERR_FAIL, "out of memory");
		m->t = q;
		p->cap = cap;
	}
	m->t[m->count] = *proto;
	if (!(m->t[m->count].name = strdup(name)))
		return err_set(p->err, ERR_FAIL, "out of memory");
	m->count++;
	return 0;
}

/* Expands the first {..} group of pat (recursively the rest) into names. */
static int expand(struct parse *p, const char *pat,
		  const struct manifest_tensor *proto, int depth)
{
	const char *open = strchr(pat, '{'), *close;
	char buf[MAX_LINE], item[256];
	size_t pre;
	uint64_t a, b;
	int rc;

	if (!open)
		return add_tensor(p, pat, proto);
	if (depth > 8)
		return perr(p, "too many {} groups", NULL);
	close = strchr(open, '}');
	if (!close || (size_t)(close - open - 1) >= sizeof(item))
		return perr(p, "unbalanced {} in", pat);
	pre = (size_t)(open - pat);
	memcpy(item, open + 1, (size_t)(close - open - 1));
	item[close - open - 1] = '\0';
	char *dots = strstr(item, "..");
	if (dots) {
		*dots = '\0';
		if (parse_u64(item, &a) < 0 || parse_u64(dots + 2, &b) < 0 || b < a ||
		    b - a > MANIFEST_MAX_TENSORS)
			return perr(p, "bad range in", pat);
		for (uint64_t i = a; i <= b; i++) {
			if ((size_t)snprintf(buf, sizeof(buf), "%.*s%llu%s", (int)pre, pat,
					     (unsigned long long)i, close + 1) >= sizeof(buf))
				return perr(p, "name too long", NULL);
			if ((rc = expand(p, buf, proto, depth + 1)) < 0)
				return rc;
		}
		return 0;
	}
	char *save = NULL;
	for (char *tok = strtok_r(item, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if ((size_t)snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, pat, tok,
				     close + 1) >= sizeof(buf))
			return perr(p, "name too long", NULL);
		if ((rc = expand(p, buf, proto, depth + 1)) < 0)
			return rc;
	}
	return 0;
}

static int parse_tensor(struct parse *p, char **tok, int ntok, bool optional)
{
	struct manifest_tensor t = { .optional = optional };

	if (ntok < 3)
		return perr(p, "tensor needs a name and a dtype", NULL);
	t.dtype = dtype_from_name(tok[2]);
	if (t.dtype < 0)
		return perr(p, "unknown dtype", tok[2]);
	t.ndim = ntok - 3;
	if (t.ndim > TENSOR_MAX_DIMS)
		return perr(p, "too many dimensions for", tok[1]);
	for (int i = 0; i < t.ndim; i++) {
		if (!strcmp(tok[3 + i], "*"))
			t.shape[i] = MANIFEST_ANY_DIM;
		else if (parse_u64(tok[3 + i], &t.shape[i]) < 0 ||
			 t.shape[i] >= TENSOR_INT_MAX)
			return perr(p, "bad dimension", tok[3 + i]);
	}
	return expand(p, tok[1], &t, 0);
}

static int parse_line(struct parse *p, char *line)
{
	struct manifest *m = p->m;
	char *tok[TENSOR_MAX_DIMS + 4], *save = NULL;
	int n = 0;
	uint64_t v;

	for (char *t = strtok_r(line, " \t\r", &save); t;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (t[0] == '#')
			break;
		if (n == (int)ARRAY_SIZE(tok))
			return perr(p, "too many fields", NULL);
		tok[n++] = t;
	}
	if (!n)
		return 0;
	if (!strcmp(tok[0], "tensor") || !strcmp(tok[0], "opt"))
		return parse_tensor(p, tok, n, tok[0][0] == 'o');
	if (n < 2)
		return perr(p, "missing value for", tok[0]);
	if (!strcmp(tok[0], "name")) {
		if (str_copy(m->name, tok[1], sizeof(m->name)) >= sizeof(m->name))
			return perr(p, "name too long", NULL);
	} else if (!strcmp(tok[0], "repo") || !strcmp(tok[0], "files") ||
		   !strcmp(tok[0], "allow")) {
		for (int i = 1; i < n; i++)
			if (strv_add(tok[0][0] == 'r' ? &m->repos :
				     tok[0][0] == 'f' ? &m->files : &m->allow,
				     tok[0][0] == 'r' ? &m->nrepos :
				     tok[0][0] == 'f' ? &m->nfiles : &m->nallow,
				     tok[i]) < 0)
				return err_set(p->err, ERR_FAIL, "out of memory");
	} else if (!strcmp(tok[0], "block")) {
		if (n != 3 || !strstr(tok[1], "{i}") || parse_u64(tok[2], &v) < 0 ||
		    v == 0 || v > 100000 ||
		    str_copy(m->block_prefix, tok[1], sizeof(m->block_prefix)) >=
			    sizeof(m->block_prefix))
			return perr(p, "block needs PREFIX-with-{i} COUNT", NULL);
		m->nblocks = (int)v;
	} else if (!strcmp(tok[0], "reserve")) {
		if (parse_u64(tok[1], &m->reserve) < 0)
			return perr(p, "bad reserve", tok[1]);
	} else if (!strcmp(tok[0], "params")) {
		char *end;
		if (parse_u64(tok[1], &m->params) < 0)
			return perr(p, "bad params", tok[1]);
		m->params_tol = n > 2 ? strtod(tok[2], &end) : 0;
		if (n > 2 && (*end || m->params_tol < 0 || m->params_tol > 1))
			return perr(p, "bad params tolerance", tok[2]);
	} else if (!strcmp(tok[0], "dtype")) {
		if ((m->all_dtype = dtype_from_name(tok[1])) < 0)
			return perr(p, "unknown dtype", tok[1]);
	} else {
		return perr(p, "unknown keyword", tok[0]);
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct manifest_tensor *)a)->name,
		      ((const struct manifest_tensor *)b)->name);
}

int manifest_parse(struct manifest **out, const char *text, size_t len,
		   const char *source, struct err *err)
{
	struct parse p = { .source = source, .err = err };
	char line[MAX_LINE];
	size_t pos = 0;
	int rc = 0;

	*out = NULL;
	p.m = calloc(1, sizeof(*p.m));
	if (!p.m)
		return err_set(err, ERR_FAIL, "out of memory");
	p.m->all_dtype = -1;
	str_copy(p.m->source, source, sizeof(p.m->source));
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - text - pos) : len - pos;
		p.line++;
		if (n >= sizeof(line)) {
			rc = perr(&p, "line too long", NULL);
			goto out;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		if (memchr(line, '\0', n)) {
			rc = perr(&p, "NUL byte", NULL);
			goto out;
		}
		pos += n + (nl ? 1 : 0);
		if ((rc = parse_line(&p, line)) < 0)
			goto out;
	}
	if (!p.m->name[0] || !p.m->nfiles) {
		rc = err_set(err, ERR_INVALID, "%s: a manifest needs name and files",
			     source);
		goto out;
	}
	if (p.m->count)
		qsort(p.m->t, p.m->count, sizeof(*p.m->t), by_name);
	for (size_t i = 1; i < p.m->count; i++)
		if (!strcmp(p.m->t[i].name, p.m->t[i - 1].name)) {
			rc = err_set(err, ERR_INVALID, "%s: tensor '%s' listed twice",
				     source, p.m->t[i].name);
			goto out;
		}
	*out = p.m;
	p.m = NULL;
out:
	manifest_free(p.m);
	return rc;
}

int manifest_load_file(struct manifest **out, const char *path,
		       struct err *err)
{
	char *text = NULL;
	size_t len;
	const char *base = strrchr(path, '/');
	int rc;

	*out = NULL;
	if (file_read_all(&text, &len, path, 16 << 20) < 0)
		return err_set(err, ERR_NOTFOUND, "cannot read manifest '%s'", path);
	rc = manifest_parse(out, text, len, base ? base + 1 : path, err);
	free(text);
	return rc;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->count; i++)
		free(m->t[i].name);
	free(m->t);
	strv_free(m->repos, m->nrepos);
	strv_free(m->files, m->nfiles);
	strv_free(m->allow, m->nallow);
	free(m);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int manifest_find(struct manifest ***out, size_t *count, const char *dir,
		  const char *repo, struct err *err)
{
	char **names = NULL, path[4096];
	size_t nnames = 0;
	struct manifest **list = NULL;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*out = NULL;
	*count = 0;
	d = opendir(dir);
	if (!d)
		return err_set(err, ERR_NOTFOUND, "no manifest folder '%s'", dir);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 9 && !strcmp(de->d_name + n - 9, ".manifest") &&
		    strv_add(&names, &nnames, de->d_name) < 0) {
			rc = err_set(err, ERR_FAIL, "out of memory");
			break;
		}
	}
	closedir(d);
	if (nnames)
		qsort(names, nnames, sizeof(*names), cmp_str);
	for (size_t i = 0; rc == 0 && i < nnames; i++) {
		struct manifest *m;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((rc = manifest_load_file(&m, path, err)) < 0)
			break;
		bool hit = false;
		for (size_t r = 0; r < m->nrepos; r++)
			hit |= !strcasecmp(m->repos[r], repo);
		if (!hit) {
			manifest_free(m);
			continue;
		}
		void *q = realloc(list, (*count + 1) * sizeof(*list));
		if (!q) {
			manifest_free(m);
			rc = err_set(err, ERR_FAIL, "out of memory");
			break;
		}
		list = q;
		list[(*count)++] = m;
	}
	strv_free(names, nnames);
	if (rc < 0) {
		manifest_list_free(list, *count);
		*count = 0;
		return rc;
	}
	*out = list;
	return 0;
}

void manifest_list_free(struct manifest **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		manifest_free(list[i]);
	free(list);
}

bool manifest_wants_file(const struct manifest *m, const char *path)
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (!fnmatch(m->files[i], path, 0))
			return true;
	return false;
}

int manifest_block_of(const struct manifest *m, const char *name)
{
	const char *at = strstr(m->block_prefix, "{i}");
	size_t pre, post_len;
	const char *post;
	char *end;
	unsigned long v;

	if (!m->nblocks || !at)
		return -1;
	pre = (size_t)(at - m->block_prefix);
	post = at + 3;
	post_len = strlen(post);
	if (strncmp(name, m->block_prefix, pre) || name[pre] < '0' || name[pre] > '9')
		return -1;
	v = strtoul(name + pre, &end, 10);
	if (strncmp(end, post, post_len) || v >= (unsigned long)m->nblocks)
		return -1;
	return (int)v;
}

static int add_line(struct manifest_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int add_line(struct manifest_report *r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return strv_add(&r->lines, &r->nlines, buf);
}

static bool allowed(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->nallow; i++)
		if (!fnmatch(m->allow[i], name, 0))
			return true;
	return false;
}

static void want_str(char *out, size_t size, const struct manifest_tensor *t)
{
	size_t n = (size_t)snprintf(out, size, "%s [", dtype_name(t->dtype));

	for (int i = 0; i < t->ndim && n < size; i++) {
		if (t->shape[i] == MANIFEST_ANY_DIM)
			n += (size_t)snprintf(out + n, size - n, "%s*", i ? ", " : "");
		else
			n += (size_t)snprintf(out + n, size - n, "%s%llu", i ? ", " : "",
					      (unsigned long long)t->shape[i]);
	}
	if (n < size)
		snprintf(out + n, size - n, "]");
}

static bool same(const struct manifest_tensor *w, const struct tensor_desc *t)
{
	if (w->dtype != t->dtype || w->ndim != t->ndim)
		return false;
	for (int i = 0; i < w->ndim; i++)
		if (w->shape[i] != MANIFEST_ANY_DIM && w->shape[i] != t->shape[i])
			return false;
	return true;
}

int manifest_check(struct manifest_report *r, const struct manifest *m,
		   const struct tensor_list *tl, struct err *err)
{
	size_t i = 0, j = 0;
	char want[256], have[256];
	int rc = 0;

	memset(r, 0, sizeof(*r));
	r->dtype_ok = true;
	for (size_t k = 0; k < tl->count; k++) {
		uint64_t numel = 1;
		for (int d = 0; d < tl->v[k].ndim; d++)
			numel *= tl->v[k].shape[d];
		r->params += numel;
		if (m->all_dtype >= 0 && tl->v[k].dtype != m->all_dtype && r->dtype_ok) {
			r->dtype_ok = false;
			rc |= add_line(r, "dtype %s is %s, every tensor should be %s",
				       tl->v[k].name, dtype_name(tl->v[k].dtype),
				       dtype_name(m->all_dtype));
		}
	}
	/* Merge walk over two name-sorted lists. */
	while (i < m->count || j < tl->count) {
		int c = i == m->count ? 1 : j == tl->count ? -1 :
			strcmp(m->t[i].name, tl->v[j].name);
		if (c < 0) {
			if (!m->t[i].optional) {
				r->missing++;
				want_str(want, sizeof(want), &m->t[i]);
				rc |= add_line(r, "missing %s %s", m->t[i].name, want);
			}
			i++;
		} else if (c > 0) {
			if (allowed(m, tl->v[j].name)) {
				r->allowed++;
			} else {
				r->extra++;
				tensor_shape_str(have, sizeof(have), &tl->v[j]);
				rc |= add_line(r, "extra %s %s %s", tl->v[j].name,
					       dtype_name(tl->v[j].dtype), have);
			}
			j++;
		} else {
			if (same(&m->t[i], &tl->v[j])) {
				r->matched++;
			} else {
				r->different++;
				want_str(want, sizeof(want), &m->t[i]);
				tensor_shape_str(have, sizeof(have), &tl->v[j]);
				rc |= add_line(r, "different %s: %s %s, expected %s",
					       tl->v[j].name, dtype_name(tl->v[j].dtype),
					       have, want);
			}
			i++, j++;
		}
	}
	r->params_ok = true;
	if (m->params) {
		double d = fabs((double)r->params - (double)m->params);
		r->params_ok = d <= m->params_tol * (double)m->params;
		if (!r->params_ok)
			rc |= add_line(r, "params %llu, expected %llu (within %g)",
				       (unsigned long long)r->params,
				       (unsigned long long)m->params, m->params_tol);
	}
	if (rc)
		return err_set(err, ERR_FAIL, "out of memory");
	return 0;
}

bool manifest_report_ok(const struct manifest_report *r)
{
	return !r->missing && !r->extra && !r->different && r->params_ok &&
	       r->dtype_ok;
}

void manifest_report_release(struct manifest_report *r)
{
	strv_free(r->lines, r->nlines);
	memset(r, 0, sizeof(*r));
}
