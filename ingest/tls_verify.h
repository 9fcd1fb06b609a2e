/*
 * tls_verify.h: certificate checks libgit2 1.5 gets wrong. Its TLS check
 * compares a host given as an IP address with the certificate's common
 * name only, so an upstream such as https://10.0.0.5 with a proper IP
 * subjectAltName is refused. The mirror's git fetch asks this module
 * instead for such hosts: OpenSSL checks the chain against the CA bundle
 * (or the system's) and the address against the certificate.
 */
#ifndef HAVEN_TLS_VERIFY_H
#define HAVEN_TLS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

/* True when host is an IPv4 or IPv6 literal. */
bool tls_host_is_ip(const char *host);

/* True when the DER certificate chains to a trusted CA and names ip. */
bool tls_verify_ip_cert(const unsigned char *der, size_t len, const char *ip,
			const char *ca_bundle);

#endif
