/* test_util.c: common/ helpers. */
#include "common/compat.h"

#include "common/err.h"
#include "common/util.h"
#include "tests/unit/test.h"

static int test_url_decode_refuses_bad_escapes(void)
{
	char out[64];
	int rc = -1;

	CHECK(url_decode(out, "a%2Fb", 5) == 3 && !strcmp(out, "a/b"));
	CHECK(url_decode(out, "%2e%2E", 6) == 2 && !strcmp(out, ".."));
	CHECK(url_decode(out, "a%00b", 5) < 0);
	CHECK(url_decode(out, "a%4", 3) < 0);
	CHECK(url_decode(out, "a%zz", 4) < 0);
	CHECK(url_decode(out, "%", 1) < 0);
	rc = 0;
out:
	return rc;
}

static int test_str_copy_truncates(void)
{
	char small[4];
	int rc = -1;

	CHECK(str_copy(small, "abcdef", sizeof(small)) == 6);
	CHECK(!strcmp(small, "abc"));
	rc = 0;
out:
	return rc;
}

static int test_hex_and_time(void)
{
	unsigned char raw[3] = { 0x00, 0xab, 0xff };
	char hex[7], date[32];
	int rc = -1;

	hex_encode(hex, raw, 3);
	CHECK(!strcmp(hex, "00abff"));
	CHECK(is_hex(hex, 6) && !is_hex("00ABff", 6) && !is_hex("00abf", 6));
	time_iso8601(date, 0);
	CHECK(!strcmp(date, "1970-01-01T00:00:00.000Z"));
	rc = 0;
out:
	return rc;
}

static int test_err_set_keeps_first_message(void)
{
	struct err e = { 0 };
	int rc = -1;

	CHECK(err_set(&e, ERR_NOREPO, "no repo '%s'", "a/b") == ERR_NOREPO);
	CHECK(e.code == ERR_NOREPO && !strcmp(e.msg, "no repo 'a/b'"));
	CHECK(err_set(NULL, ERR_INVALID, "ignored") == ERR_INVALID);
	rc = 0;
out:
	return rc;
}

int main(void)
{
	RUN(test_url_decode_refuses_bad_escapes);
	RUN(test_str_copy_truncates);
	RUN(test_hex_and_time);
	RUN(test_err_set_keeps_first_message);
	return TEST_REPORT();
}
