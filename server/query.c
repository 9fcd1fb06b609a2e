/*
 * query.c: see query.h.
 */
#include "common/compat.h"

#include <strings.h>

#include "common/util.h"
#include "server/query.h"

/* Decodes one form component: '+' is a space, then %XX escapes. */
static char *decode_part(const char *s, size_t len)
{
	char *plus = malloc(len + 1), *out = malloc(len + 1);

	if (!plus || !out)
		goto fail;
	for (size_t i = 0; i < len; i++)
		plus[i] = s[i] == '+' ? ' ' : s[i];
	if (url_decode(out, plus, len) < 0)
		goto fail;
	free(plus);
	return out;
fail:
	free(plus);
	free(out);
	return NULL;
}

static int add_pair(struct query *q, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	size_t klen = eq ? (size_t)(eq - s) : len;
	struct query_pair *p;
	char *key, *value;

	if (len == 0)
		return 0;
	key = decode_part(s, klen);
	value = eq ? decode_part(eq + 1, len - klen - 1) : strdup("");
	if (!key || !value) {
		free(key);
		free(value);
		return -1;
	}
	klen = strlen(key);
	if (klen > 2 && !strcmp(key + klen - 2, "[]"))
		key[klen - 2] = '\0';
	p = realloc(q->pairs, (q->count + 1) * sizeof(*p));
	if (!p) {
		free(key);
		free(value);
		return -1;
	}
	q->pairs = p;
	p[q->count].key = key;
	p[q->count].value = value;
	q->count++;
	return 0;
}

int query_parse(struct query *q, const char *raw, size_t len)
{
	const char *end;

	q->pairs = NULL;
	q->count = 0;
	if (!raw)
		return 0;
	end = raw + len;
	while (raw < end) {
		const char *amp = memchr(raw, '&', (size_t)(end - raw));
		size_t n = amp ? (size_t)(amp - raw) : (size_t)(end - raw);
		if (q->count >= 1000 || add_pair(q, raw, n) < 0) {
			query_release(q);
			return -1;
		}
		raw += n + (amp ? 1 : 0);
	}
	return 0;
}

void query_release(struct query *q)
{
	for (size_t i = 0; i < q->count; i++) {
		free(q->pairs[i].key);
		free(q->pairs[i].value);
	}
	free(q->pairs);
	q->pairs = NULL;
	q->count = 0;
}

const char *query_get(const struct query *q, const char *key)
{
	return query_nth(q, key, 0);
}

size_t query_count(const struct query *q, const char *key)
{
	size_t n = 0;

	for (size_t i = 0; i < q->count; i++)
		n += !strcmp(q->pairs[i].key, key);
	return n;
}

const char *query_nth(const struct query *q, const char *key, size_t nth)
{
	for (size_t i = 0; i < q->count; i++) {
		if (!strcmp(q->pairs[i].key, key) && nth-- == 0)
			return q->pairs[i].value;
	}
	return NULL;
}

bool query_bool(const struct query *q, const char *key, bool dflt)
{
	const char *v = query_get(q, key);

	if (!v)
		return dflt;
	return !strcasecmp(v, "true") || !strcmp(v, "1") || !v[0];
}
