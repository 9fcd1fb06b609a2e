/*
 * test_s3_sigv4.c: the SigV4 signer against the published AWS examples:
 * the general test suite ("get-vanilla" and friends, service "service")
 * and the S3 developer guide's header-signing and presigned-URL examples.
 * The expected values are AWS's; the inputs are spelled out here.
 */
#include "common/compat.h"

#include <stdlib.h>
#include <string.h>

#include "storage/hash.h"
#include "storage/s3_sigv4.h"
#include "test.h"

/* The AWS general test suite's credentials and time. */
static const struct s3_sigv4_key suite_key = {
	"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1",
	"service"
};
#define SUITE_DATE "20150830T123600Z"
#define SUITE_CRED "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

/* The S3 developer guide's examples. */
static const struct s3_sigv4_key s3_key = {
	"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"us-east-1", "s3"
};
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"

static int sign_ok(const struct s3_sigv4_key *key, const char *date,
		   const struct s3_sigv4_request *req, const char *want,
		   const char *want_canon)
{
	char *auth = NULL, *canon = NULL;
	struct err err;
	int rc = 1;

	CHECK(s3_sigv4_authorization(&auth, &canon, key, date, req, &err) == 0);
	if (strcmp(auth, want) != 0)
		fprintf(stderr, "  got  %s\n  want %s\n", auth, want);
	CHECK(strcmp(auth, want) == 0);
	if (want_canon) {
		if (strcmp(canon, want_canon) != 0)
			fprintf(stderr, "  canonical request:\n%s\n", canon);
		CHECK(strcmp(canon, want_canon) == 0);
	}
	rc = 0;
out:
	free(auth);
	free(canon);
	return rc;
}

static int test_get_vanilla(void)
{
	const struct s3_pair h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "X-Amz-Date", SUITE_DATE },
	};
	const struct s3_sigv4_request req = { "GET", "/", NULL, 0, h, 2,
					      S3_EMPTY_SHA256 };

	return sign_ok(&suite_key, SUITE_DATE, &req,
		       SUITE_CRED "SignedHeaders=host;x-amz-date, "
		       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
		       "host;x-amz-date\n" S3_EMPTY_SHA256);
}

static int test_get_vanilla_query_order_key_case(void)
{
	const struct s3_pair h[] = {
		{ "X-Amz-Date", SUITE_DATE },
		{ "Host", "example.amazonaws.com" },
	};
	const struct s3_pair q[] = {
		{ "Param2", "value2" },
		{ "Param1", "value1" },
	};
	const struct s3_sigv4_request req = { "GET", "/", q, 2, h, 2,
					      S3_EMPTY_SHA256 };

	return sign_ok(&suite_key, SUITE_DATE, &req,
		       SUITE_CRED "SignedHeaders=host;x-amz-date, "
		       "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
		       "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
		       "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" S3_EMPTY_SHA256);
}

/* S3 guide: GET Object with a Range header. */
static int test_s3_get_object_range(void)
{
	const struct s3_pair h[] = {
		{ "Host", S3_HOST },
		{ "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
		{ "x-amz-date", S3_DATE },
	};
	const struct s3_sigv4_request req = { "GET", "/test.txt", NULL, 0, h, 4,
					      S3_EMPTY_SHA256 };

	return sign_ok(&s3_key, S3_DATE, &req,
		       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		       "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		       "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		       NULL);
}

/* S3 guide: PUT Object, a signed payload and a key that needs encoding. */
static int test_s3_put_object(void)
{
	char body_hash[SHA256_HEX_LEN + 1];
	const char *body = "Welcome to Amazon S3.";
	struct s3_pair h[] = {
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "Host", S3_HOST },
		{ "x-amz-date", S3_DATE },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
		{ "x-amz-content-sha256", NULL },
	};
	struct s3_sigv4_request req = { "PUT", "/test$file.text", NULL, 0, h, 5,
					NULL };
	int rc = 1;

	sha256_hex(body_hash, body, strlen(body));
	CHECK(strcmp(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072") == 0);
	h[4].value = body_hash;
	req.payload_hash = body_hash;
	rc = sign_ok(&s3_key, S3_DATE, &req,
		     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		     "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
		     "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
		     NULL);
out:
	return rc;
}

/* S3 guide: GET Bucket Lifecycle, a query parameter without a value. */
static int test_s3_get_lifecycle(void)
{
	const struct s3_pair h[] = {
		{ "Host", S3_HOST },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
		{ "x-amz-date", S3_DATE },
	};
	const struct s3_pair q[] = { { "lifecycle", "" } };
	const struct s3_sigv4_request req = { "GET", "/", q, 1, h, 3,
					      S3_EMPTY_SHA256 };

	return sign_ok(&s3_key, S3_DATE, &req,
		       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		       "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		       "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
		       NULL);
}

/* S3 guide: GET Bucket (list objects) with max-keys and prefix. */
static int test_s3_list_objects(void)
{
	const struct s3_pair h[] = {
		{ "Host", S3_HOST },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
		{ "x-amz-date", S3_DATE },
	};
	const struct s3_pair q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct s3_sigv4_request req = { "GET", "/", q, 2, h, 3,
					      S3_EMPTY_SHA256 };

	return sign_ok(&s3_key, S3_DATE, &req,
		       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		       "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		       "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
		       NULL);
}

/* S3 guide: a presigned GET valid for 86400 s. */
static int test_s3_presigned_url(void)
{
	const struct s3_pair h[] = { { "host", S3_HOST } };
	const struct s3_sigv4_request req = { "GET", "/test.txt", NULL, 0, h, 1,
					      S3_UNSIGNED_PAYLOAD };
	char *query = NULL;
	struct err err;
	int rc = 1;

	CHECK(s3_sigv4_presign(&query, &s3_key, S3_DATE, 86400, &req, &err) == 0);
	CHECK(strcmp(query,
		     "X-Amz-Algorithm=AWS4-HMAC-SHA256"
		     "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		     "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		     "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") == 0);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "  got %s\n", query ? query : "(null)");
	free(query);
	return rc;
}

/* Keys are encoded once, '/' kept, everything outside the unreserved set
 * as upper-case %XX; header values are trimmed and blanks collapsed. */
static int test_encoding_and_trimming(void)
{
	const struct s3_pair h[] = {
		{ "host", "127.0.0.1:7480" },
		{ "X-Amz-Meta-Note", "  two   words  " },
		{ "x-amz-date", "20260101T000000Z" },
	};
	const struct s3_pair q[] = { { "prefix", "a b/c+d" } };
	const struct s3_sigv4_request req = { "GET", "/bkt/dir/a b+c%\xc3\xa9~.txt",
					      q, 1, h, 3, S3_UNSIGNED_PAYLOAD };
	const struct s3_sigv4_key key = { "AK", "SK", "us-east-1", "s3" };
	char *auth = NULL, *canon = NULL;
	struct err err;
	int rc = 1;

	CHECK(s3_sigv4_authorization(&auth, &canon, &key, "20260101T000000Z",
				     &req, &err) == 0);
	CHECK(strcmp(canon,
		     "GET\n/bkt/dir/a%20b%2Bc%25%C3%A9~.txt\nprefix=a%20b%2Fc%2Bd\n"
		     "host:127.0.0.1:7480\nx-amz-date:20260101T000000Z\nx-amz-meta-note:two words\n\n"
		     "host;x-amz-date;x-amz-meta-note\nUNSIGNED-PAYLOAD") == 0);
	rc = 0;
out:
	if (rc && canon)
		fprintf(stderr, "  canonical request:\n%s\n", canon);
	free(auth);
	free(canon);
	return rc;
}

static int test_bad_inputs(void)
{
	const struct s3_pair h[] = { { "host", "h" } };
	const struct s3_sigv4_request req = { "GET", "/", NULL, 0, h, 1,
					      S3_UNSIGNED_PAYLOAD };
	const struct s3_sigv4_key nokey = { "", "", "us-east-1", "s3" };
	char *out = NULL;
	struct err err;
	int rc = 1;

	CHECK(s3_sigv4_authorization(&out, NULL, &s3_key, "2013-05-24", &req, &err) == ERR_INVALID);
	CHECK(out == NULL);
	CHECK(s3_sigv4_authorization(&out, NULL, &nokey, S3_DATE, &req, &err) == ERR_AUTH);
	CHECK(s3_sigv4_presign(&out, &s3_key, S3_DATE, 0, &req, &err) == ERR_INVALID);
	CHECK(s3_sigv4_presign(&out, &s3_key, S3_DATE, 604801, &req, &err) == ERR_INVALID);
	CHECK(strstr(err.msg, "7 days") != NULL);
	CHECK(out == NULL);
	rc = 0;
out:
	free(out);
	return rc;
}

static int test_amz_date(void)
{
	char d[S3_AMZ_DATE_LEN];
	int rc = 1;

	s3_amz_date(d, 1440938160); /* 2015-08-30 12:36:00 UTC */
	CHECK(strcmp(d, SUITE_DATE) == 0);
	rc = 0;
out:
	return rc;
}

int main(void)
{
	RUN(test_get_vanilla);
	RUN(test_get_vanilla_query_order_key_case);
	RUN(test_s3_get_object_range);
	RUN(test_s3_put_object);
	RUN(test_s3_get_lifecycle);
	RUN(test_s3_list_objects);
	RUN(test_s3_presigned_url);
	RUN(test_encoding_and_trimming);
	RUN(test_bad_inputs);
	RUN(test_amz_date);
	return TEST_REPORT();
}
