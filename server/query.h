/*
 * query.h: query strings and form bodies (application/x-www-form-urlencoded)
 * as the Hub's clients send them: repeated keys for lists, "expand[]" the
 * same as "expand", booleans as true/false, True/False or 1/0.
 */
#ifndef HAVEN_QUERY_H
#define HAVEN_QUERY_H

#include <stdbool.h>
#include <stddef.h>

struct query_pair {
	char *key;
	char *value;
};

struct query {
	struct query_pair *pairs;
	size_t count;
};

/* Parses raw (may be NULL). Returns 0, or -1 for a malformed escape. */
int query_parse(struct query *q, const char *raw, size_t len);
void query_release(struct query *q);

/* The first value of key, or NULL. */
const char *query_get(const struct query *q, const char *key);
/* Boolean value of key; dflt when absent, false when unparseable. */
bool query_bool(const struct query *q, const char *key, bool dflt);
/* Number of pairs named key. */
size_t query_count(const struct query *q, const char *key);
/* The i-th value of key, or NULL. */
const char *query_nth(const struct query *q, const char *key, size_t i);

#endif
