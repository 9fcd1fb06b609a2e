/*
 * s3_sigv4.c: AWS Signature Version 4 as S3 uses it, with OpenSSL's
 * HMAC-SHA256 and SHA-256.
 *
 * A signature is HMAC-SHA256 of a "string to sign" under a key derived
 * from the secret, the date, the region and the service. The string to
 * sign names the algorithm, the time, the scope and the SHA-256 of the
 * canonical request: the method, the encoded path, the sorted encoded
 * query, the sorted lower-case headers, their names, and the payload's
 * hash. S3 encodes the path once (unlike other AWS services, which encode
 * it twice), keeping '/'.
 */
#include "common/compat.h"

#include <stdarg.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/util.h"
#include "storage/hash.h"
#include "storage/s3_sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* --- Strings --------------------------------------------------------------- */

static int str_grow(struct s3_str *s, size_t more)
{
	size_t want, cap;
	char *p;

	if (s->failed)
		return -1;
	if (more > SIZE_MAX / 2 - s->len) {
		s->failed = 1;
		return -1;
	}
	want = s->len + more + 1;
	if (want <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 64;
	while (cap < want)
		cap *= 2;
	p = realloc(s->ptr, cap);
	if (!p) {
		s->failed = 1;
		return -1;
	}
	s->ptr = p;
	s->cap = cap;
	return 0;
}

void s3_str_add(struct s3_str *s, const char *data, size_t len)
{
	if (str_grow(s, len) < 0)
		return;
	memcpy(s->ptr + s->len, data, len);
	s->len += len;
	s->ptr[s->len] = '\0';
}

void s3_str_adds(struct s3_str *s, const char *str)
{
	s3_str_add(s, str, strlen(str));
}

void s3_str_addf(struct s3_str *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->failed = 1;
		return;
	}
	if (str_grow(s, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(s->ptr + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

void s3_str_add_uri(struct s3_str *s, const char *in, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char esc[3];

	for (p = (const unsigned char *)in; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
			s3_str_add(s, (const char *)p, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[*p >> 4];
		esc[2] = hex[*p & 15];
		s3_str_add(s, esc, 3);
	}
}

const char *s3_str_get(const struct s3_str *s)
{
	return s->ptr ? s->ptr : "";
}

void s3_str_release(struct s3_str *s)
{
	free(s->ptr);
	s->ptr = NULL;
	s->len = s->cap = 0;
	s->failed = 0;
}

void s3_amz_date(char out[S3_AMZ_DATE_LEN], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, S3_AMZ_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm);
}

/* --- Canonical request ---------------------------------------------------- */

struct enc_pair {
	char *name;
	char *value;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static void pairs_free(struct enc_pair *p, size_t n)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

static char *uri_encoded(const char *in)
{
	struct s3_str s = S3_STR_INIT;

	s3_str_add_uri(&s, in, 0);
	s3_str_add(&s, "", 0); /* "" for an empty input */
	if (s.failed) {
		s3_str_release(&s);
		return NULL;
	}
	return s.ptr;
}

/* Appends the canonical query string: encoded name=value pairs sorted by
 * name then value, joined by '&'. extra (n_extra) are added to q. */
static int add_canonical_query(struct s3_str *out, const struct s3_pair *q,
			       size_t nq, const struct s3_pair *extra,
			       size_t n_extra)
{
	struct enc_pair *p = NULL;
	size_t i, n = nq + n_extra;
	int error = ERR_FAIL;

	if (n == 0)
		return 0;
	p = calloc(n, sizeof(*p));
	if (!p)
		goto out;
	for (i = 0; i < n; i++) {
		const struct s3_pair *src = i < nq ? &q[i] : &extra[i - nq];

		p[i].name = uri_encoded(src->name);
		p[i].value = uri_encoded(src->value ? src->value : "");
		if (!p[i].name || !p[i].value)
			goto out;
	}
	qsort(p, n, sizeof(*p), pair_cmp);
	for (i = 0; i < n; i++)
		s3_str_addf(out, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
	error = 0;
out:
	pairs_free(p, n);
	return error;
}

/* A header value as signed: leading and trailing blanks removed, runs of
 * blanks inside collapsed to one space. */
static char *trimmed(const char *v)
{
	struct s3_str s = S3_STR_INIT;
	int space = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') {
			space = 1;
			continue;
		}
		if (space && s.len)
			s3_str_add(&s, " ", 1);
		space = 0;
		s3_str_add(&s, v, 1);
	}
	s3_str_add(&s, "", 0);
	if (s.failed) {
		s3_str_release(&s);
		return NULL;
	}
	return s.ptr;
}

/* Appends "name:value\n" for each header (sorted, lower-case, duplicates
 * joined by ',') to canon, and "name;name" to signed_names. */
static int add_canonical_headers(struct s3_str *canon,
				 struct s3_str *signed_names,
				 const struct s3_sigv4_request *req,
				 struct err *err)
{
	struct enc_pair *h = NULL;
	size_t i, n = req->nheaders;
	int error = ERR_FAIL;

	h = calloc(n ? n : 1, sizeof(*h));
	if (!h) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *name = req->headers[i].name;
		size_t len = name ? strlen(name) : 0;

		if (len == 0) {
			error = err_set(err, ERR_INVALID, "a header to sign has no name");
			goto out;
		}
		h[i].name = malloc(len + 1);
		h[i].value = trimmed(req->headers[i].value ? req->headers[i].value : "");
		if (!h[i].name || !h[i].value) {
			error = err_set(err, ERR_FAIL, "out of memory");
			goto out;
		}
		str_lower(h[i].name, len + 1, name);
	}
	/* A stable sort by name only keeps duplicates in the given order. */
	for (i = 1; i < n; i++) {
		struct enc_pair t = h[i];
		size_t j = i;

		while (j > 0 && strcmp(h[j - 1].name, t.name) > 0) {
			h[j] = h[j - 1];
			j--;
		}
		h[j] = t;
	}
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(h[i - 1].name, h[i].name) == 0) {
			s3_str_addf(canon, ",%s", h[i].value);
			continue;
		}
		if (i > 0)
			s3_str_add(canon, "\n", 1);
		s3_str_addf(canon, "%s:%s", h[i].name, h[i].value);
		s3_str_addf(signed_names, "%s%s", signed_names->len ? ";" : "", h[i].name);
	}
	s3_str_add(canon, "\n", 1);
	error = 0;
out:
	pairs_free(h, n);
	return error;
}

static int valid_date(const char *d)
{
	size_t i;

	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return 0;
	return 1;
}

/* The canonical request for req, with extra query parameters. */
static int canonical_request(struct s3_str *canon, struct s3_str *signed_names,
			     const struct s3_sigv4_request *req,
			     const struct s3_pair *extra, size_t n_extra,
			     struct err *err)
{
	int error;

	s3_str_addf(canon, "%s\n", req->method);
	s3_str_add_uri(canon, req->path && req->path[0] ? req->path : "/", 1);
	s3_str_add(canon, "\n", 1);
	if ((error = add_canonical_query(canon, req->query, req->nquery, extra,
					 n_extra)) < 0)
		return err_set(err, error, "out of memory");
	s3_str_add(canon, "\n", 1);
	if ((error = add_canonical_headers(canon, signed_names, req, err)) < 0)
		return error;
	s3_str_addf(canon, "\n%s\n%s", s3_str_get(signed_names),
		    req->payload_hash ? req->payload_hash : S3_EMPTY_SHA256);
	if (canon->failed || signed_names->failed)
		return err_set(err, ERR_FAIL, "out of memory");
	return 0;
}

/* --- Signature -------------------------------------------------------------- */

static int hmac(unsigned char out[32], const void *key, size_t key_len,
		const char *data)
{
	unsigned int len = 32;

	return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data,
		    strlen(data), out, &len) && len == 32 ? 0 : -1;
}

/* The hex signature of canon under key at amz_date. */
static int signature(char sig[65], const struct s3_sigv4_key *key,
		     const char *amz_date, const char *canon, struct err *err)
{
	struct s3_str secret = S3_STR_INIT, sts = S3_STR_INIT;
	unsigned char k[32], mac[32];
	char date[9], canon_hash[SHA256_HEX_LEN + 1];
	int error = ERR_FAIL;

	memcpy(date, amz_date, 8);
	date[8] = '\0';
	sha256_hex(canon_hash, canon, strlen(canon));
	s3_str_addf(&sts, ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date,
		    date, key->region, key->service, canon_hash);
	s3_str_addf(&secret, "AWS4%s", key->secret_key);
	if (sts.failed || secret.failed) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	if (hmac(k, secret.ptr, secret.len, date) < 0 ||
	    hmac(k, k, 32, key->region) < 0 ||
	    hmac(k, k, 32, key->service) < 0 ||
	    hmac(k, k, 32, "aws4_request") < 0 ||
	    hmac(mac, k, 32, sts.ptr) < 0) {
		error = err_set(err, ERR_FAIL, "HMAC-SHA256 failed in OpenSSL");
		goto out;
	}
	hex_encode(sig, mac, 32);
	error = 0;
out:
	OPENSSL_cleanse(k, sizeof(k));
	if (secret.ptr)
		OPENSSL_cleanse(secret.ptr, secret.len);
	s3_str_release(&secret);
	s3_str_release(&sts);
	return error;
}

static int check_inputs(const struct s3_sigv4_key *key, const char *amz_date,
			const struct s3_sigv4_request *req, struct err *err)
{
	if (!key->access_key || !key->access_key[0] || !key->secret_key ||
	    !key->secret_key[0])
		return err_set(err, ERR_AUTH, "no S3 access key or secret key");
	if (!key->region || !key->region[0] || !key->service || !key->service[0])
		return err_set(err, ERR_INVALID, "no S3 region or service to sign for");
	if (!valid_date(amz_date))
		return err_set(err, ERR_INVALID, "malformed X-Amz-Date '%s'",
			       amz_date ? amz_date : "");
	if (!req->method || !req->method[0])
		return err_set(err, ERR_INVALID, "no method to sign");
	return 0;
}

int s3_sigv4_authorization(char **out, char **canonical,
			   const struct s3_sigv4_key *key, const char *amz_date,
			   const struct s3_sigv4_request *req, struct err *err)
{
	struct s3_str canon = S3_STR_INIT, names = S3_STR_INIT, auth = S3_STR_INIT;
	char sig[65];
	int error;

	*out = NULL;
	if (canonical)
		*canonical = NULL;
	if ((error = check_inputs(key, amz_date, req, err)) < 0 ||
	    (error = canonical_request(&canon, &names, req, NULL, 0, err)) < 0 ||
	    (error = signature(sig, key, amz_date, canon.ptr, err)) < 0)
		goto out;
	s3_str_addf(&auth, ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, "
		    "SignedHeaders=%s, Signature=%s", key->access_key, amz_date,
		    key->region, key->service, names.ptr, sig);
	if (auth.failed) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	*out = auth.ptr;
	auth.ptr = NULL;
	if (canonical) {
		*canonical = canon.ptr;
		canon.ptr = NULL;
	}
out:
	s3_str_release(&canon);
	s3_str_release(&names);
	s3_str_release(&auth);
	return error;
}

int s3_sigv4_presign(char **out, const struct s3_sigv4_key *key,
		     const char *amz_date, long expires_s,
		     const struct s3_sigv4_request *req, struct err *err)
{
	struct s3_str canon = S3_STR_INIT, names = S3_STR_INIT,
		      cred = S3_STR_INIT, query = S3_STR_INIT,
		      header_names = S3_STR_INIT, scratch = S3_STR_INIT;
	struct s3_pair extra[5];
	char expires[24], sig[65];
	int error;

	*out = NULL;
	if ((error = check_inputs(key, amz_date, req, err)) < 0)
		goto out;
	if (expires_s < 1 || expires_s > 604800) {
		error = err_set(err, ERR_INVALID,
				"presigned URL lifetime %ld s is not within 1 s to 7 days",
				expires_s);
		goto out;
	}
	/* The signed header names go into the query, which is itself signed:
	 * work them out first from the headers alone. */
	if ((error = add_canonical_headers(&scratch, &header_names, req, err)) < 0)
		goto out;
	snprintf(expires, sizeof(expires), "%ld", expires_s);
	s3_str_addf(&cred, "%s/%.8s/%s/%s/aws4_request", key->access_key,
		    amz_date, key->region, key->service);
	if (cred.failed || header_names.failed) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	extra[0] = (struct s3_pair){ "X-Amz-Algorithm", ALGORITHM };
	extra[1] = (struct s3_pair){ "X-Amz-Credential", cred.ptr };
	extra[2] = (struct s3_pair){ "X-Amz-Date", amz_date };
	extra[3] = (struct s3_pair){ "X-Amz-Expires", expires };
	extra[4] = (struct s3_pair){ "X-Amz-SignedHeaders", s3_str_get(&header_names) };
	if ((error = canonical_request(&canon, &names, req, extra, 5, err)) < 0 ||
	    (error = signature(sig, key, amz_date, canon.ptr, err)) < 0)
		goto out;
	if (add_canonical_query(&query, req->query, req->nquery, extra, 5) < 0)
		query.failed = 1;
	s3_str_addf(&query, "&X-Amz-Signature=%s", sig);
	if (query.failed) {
		error = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	*out = query.ptr;
	query.ptr = NULL;
out:
	s3_str_release(&canon);
	s3_str_release(&names);
	s3_str_release(&cred);
	s3_str_release(&query);
	s3_str_release(&header_names);
	s3_str_release(&scratch);
	return error;
}
