/*
 * test_query.c: query strings and form bodies (server/query.h), in the
 * shapes the Hub's clients send them.
 */
#include "common/compat.h"

#include "server/query.h"
#include "tests/unit/test.h"

static int parse(struct query *q, const char *raw)
{
	return query_parse(q, raw, raw ? strlen(raw) : 0);
}

static int test_query_parse_pairs(void)
{
	struct query q = { 0 };
	int rc = -1;

	CHECK(parse(&q, "a=1&b=2&a=3") == 0);
	CHECK(q.count == 3);
	CHECK(!strcmp(q.pairs[0].key, "a") && !strcmp(q.pairs[0].value, "1"));
	CHECK(!strcmp(q.pairs[1].key, "b") && !strcmp(q.pairs[1].value, "2"));
	CHECK(!strcmp(q.pairs[2].key, "a") && !strcmp(q.pairs[2].value, "3"));
	CHECK(!strcmp(query_get(&q, "a"), "1"));
	CHECK(!strcmp(query_get(&q, "b"), "2"));
	CHECK(query_get(&q, "c") == NULL);
	CHECK(query_get(&q, "A") == NULL);
	rc = 0;
out:
	query_release(&q);
	return rc;
}

static int test_query_repeated_keys(void)
{
	struct query q = { 0 };
	int rc = -1;

	CHECK(parse(&q, "a=1&b=2&a=3") == 0);
	CHECK(query_count(&q, "a") == 2);
	CHECK(query_count(&q, "b") == 1);
	CHECK(query_count(&q, "c") == 0);
	CHECK(!strcmp(query_nth(&q, "a", 0), "1"));
	CHECK(!strcmp(query_nth(&q, "a", 1), "3"));
	CHECK(query_nth(&q, "a", 2) == NULL);
	CHECK(!strcmp(query_nth(&q, "b", 0), "2"));
	CHECK(query_nth(&q, "b", 1) == NULL);
	rc = 0;
out:
	query_release(&q);
	return rc;
}

static int test_query_brackets_name_a_list(void)
{
	struct query q = { 0 };
	int rc = -1;

	CHECK(parse(&q, "expand%5B%5D=x&expand[]=y&expand=z") == 0);
	CHECK(q.count == 3);
	CHECK(query_count(&q, "expand") == 3);
	CHECK(query_count(&q, "expand[]") == 0);
	CHECK(!strcmp(query_nth(&q, "expand", 0), "x"));
	CHECK(!strcmp(query_nth(&q, "expand", 1), "y"));
	CHECK(!strcmp(query_nth(&q, "expand", 2), "z"));
	rc = 0;
out:
	query_release(&q);
	return rc;
}

static int test_query_decodes_escapes(void)
{
	struct query q = { 0 };
	int rc = -1;

	CHECK(parse(&q, "search=hello+world&path=a%2Fb%20c&plus=%2B&k+y=v") ==
	      0);
	CHECK(!strcmp(query_get(&q, "search"), "hello world"));
	CHECK(!strcmp(query_get(&q, "path"), "a/b c"));
	CHECK(!strcmp(query_get(&q, "plus"), "+"));
	CHECK(!strcmp(query_get(&q, "k y"), "v"));
	rc = 0;
out:
	query_release(&q);
	return rc;
}

static int test_query_empty_parts(void)
{
	struct query q = { 0 };
	int rc = -1;

	CHECK(parse(&q, "flag&&x=&y=1&") == 0);
	CHECK(q.count == 3);
	CHECK(!strcmp(query_get(&q, "flag"), ""));
	CHECK(!strcmp(query_get(&q, "x"), ""));
	CHECK(!strcmp(query_get(&q, "y"), "1"));
	query_release(&q);
	CHECK(parse(&q, "") == 0 && q.count == 0);
	rc = 0;
out:
	query_release(&q);
	return rc;
}

static int test_query_booleans(void)
{
	struct query q = { 0 };
	int rc = -1;

	CHECK(parse(&q, "t1=true&t2=True&t3=1&f1=false&f2=False&f3=0"
		       "&bad=maybe") == 0);
	CHECK(query_bool(&q, "t1", false));
	CHECK(query_bool(&q, "t2", false));
	CHECK(query_bool(&q, "t3", false));
	CHECK(!query_bool(&q, "f1", true));
	CHECK(!query_bool(&q, "f2", true));
	CHECK(!query_bool(&q, "f3", true));
	CHECK(!query_bool(&q, "bad", true));
	CHECK(query_bool(&q, "absent", true));
	CHECK(!query_bool(&q, "absent", false));
	rc = 0;
out:
	query_release(&q);
	return rc;
}

static int test_query_malformed_escape(void)
{
	static const char *const bad[] = {
		"a=%zz", "%zz=1", "a=1&b=%2", "a=%", "a=%00",
	};
	struct query q = { 0 };
	int rc = -1;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(parse(&q, bad[i]) == -1);
		/* Nothing is left to release after a failure. */
		CHECK(q.count == 0 && q.pairs == NULL);
	}
	rc = 0;
out:
	query_release(&q);
	return rc;
}

static int test_query_null_is_empty(void)
{
	struct query q = { 0 };
	int rc = -1;

	CHECK(query_parse(&q, NULL, 0) == 0);
	CHECK(q.count == 0);
	CHECK(query_get(&q, "a") == NULL && query_count(&q, "a") == 0);
	CHECK(query_bool(&q, "a", true));
	query_release(&q);
	CHECK(q.count == 0 && q.pairs == NULL);
	rc = 0;
out:
	query_release(&q);
	return rc;
}

int main(void)
{
	RUN(test_query_parse_pairs);
	RUN(test_query_repeated_keys);
	RUN(test_query_brackets_name_a_list);
	RUN(test_query_decodes_escapes);
	RUN(test_query_empty_parts);
	RUN(test_query_booleans);
	RUN(test_query_malformed_escape);
	RUN(test_query_null_is_empty);
	return TEST_REPORT();
}
