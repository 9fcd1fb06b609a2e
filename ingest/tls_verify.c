/*
 * tls_verify.c: OpenSSL checks of a server certificate for an IP host; see
 * tls_verify.h.
 */
#include "common/compat.h"

#include <arpa/inet.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ingest/tls_verify.h"

bool tls_host_is_ip(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 ||
	       inet_pton(AF_INET6, host, addr) == 1;
}

static X509_STORE *trust_store(const char *ca_bundle)
{
	X509_STORE *store = X509_STORE_new();
	int ok;

	if (!store)
		return NULL;
	ok = ca_bundle && ca_bundle[0] ?
	     X509_STORE_load_file(store, ca_bundle) :
	     X509_STORE_set_default_paths(store);
	if (ok != 1) {
		X509_STORE_free(store);
		return NULL;
	}
	return store;
}

bool tls_verify_ip_cert(const unsigned char *der, size_t len, const char *ip,
			const char *ca_bundle)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	X509_STORE *store = cert ? trust_store(ca_bundle) : NULL;
	X509_STORE_CTX *ctx = store ? X509_STORE_CTX_new() : NULL;
	bool ok = false;

	if (ctx && X509_STORE_CTX_init(ctx, store, cert, NULL) == 1) {
		X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
		ok = X509_verify_cert(ctx) == 1 &&
		     X509_check_ip_asc(cert, ip, 0) == 1;
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(cert);
	return ok;
}
