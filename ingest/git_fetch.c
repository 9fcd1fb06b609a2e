/*
 * git_fetch.c: see git_fetch.h.
 */
#include "common/compat.h"

#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/git_fetch.h"
#include "ingest/tls_verify.h"
#include "storage/gitrepo.h"

const char *git_fetch_url_prefix(const char *type)
{
	if (!strcmp(type, "dataset"))
		return "datasets/";
	if (!strcmp(type, "space"))
		return "spaces/";
	return "";
}

/* A fetch that failed on the network or with a 5xx/429 may pass on a
 * retry; a refused credential or a missing repository will not. */
static bool fetch_error_transient(const char *msg)
{
	static const char *const final[] = { "401", "403", "404",
		"authentication", "not found", "credentials" };

	for (size_t i = 0; i < ARRAY_SIZE(final); i++) {
		if (strstr(msg, final[i]))
			return false;
	}
	return true;
}

struct cred_state {
	const char *token;
	const char *ca_bundle;
	int tries;
};

/* libgit2 1.5 refuses a good certificate for an IP-address host (it
 * checks the common name only); OpenSSL decides for those. */
static int on_certificate(git_cert *cert, int valid, const char *host,
			  void *arg)
{
	const struct cred_state *cs = arg;
	const git_cert_x509 *x509 = (const git_cert_x509 *)cert;

	if (valid)
		return 0;
	if (cert->cert_type != GIT_CERT_X509 || !tls_host_is_ip(host))
		return GIT_PASSTHROUGH;
	return tls_verify_ip_cert(x509->data, x509->len, host, cs->ca_bundle) ?
	       0 : GIT_ECERTIFICATE;
}

/* The Hub and Haven take a token as the password of Basic credentials. */
static int on_credentials(git_credential **out, const char *url,
			  const char *user, unsigned int allowed, void *arg)
{
	struct cred_state *cs = arg;

	(void)url;
	(void)user;
	if (!cs->token || !cs->token[0] || cs->tries++ > 0 ||
	    !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
		return GIT_PASSTHROUGH;
	return git_credential_userpass_plaintext_new(out, "haven", cs->token);
}

int git_fetch_refs(git_repository *repo, const char *url,
		   char *const *refspecs, size_t nspecs,
		   const struct git_fetch_options *opt, struct err *err)
{
	git_strarray specs = { (char **)refspecs, nspecs };
	struct cred_state cs = { opt->token, opt->ca_bundle, 0 };
	git_fetch_options fo;
	git_remote_create_options ro;
	git_remote *remote = NULL;
	int rc = 0;

	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	/* libgit2 keeps one CA setting per process */
	if (opt->ca_bundle && opt->ca_bundle[0] &&
	    git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, opt->ca_bundle,
			     NULL) < 0)
		return gitrepo_fail(err, ERR_INVALID, "cannot use the CA bundle");
	fo.callbacks.credentials = on_credentials;
	fo.callbacks.certificate_check = on_certificate;
	fo.callbacks.payload = &cs;
	fo.proxy_opts.type = GIT_PROXY_AUTO;
	fo.prune = opt->prune ? GIT_FETCH_PRUNE : GIT_FETCH_NO_PRUNE;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	/* No url.*.insteadOf rewriting: the fetch goes to the URL it was
	 * given (and libgit2 1.5 leaks in that lookup). */
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF |
		   GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(&remote, url, &ro) < 0)
		return gitrepo_fail(err, ERR_INVALID, "bad git URL");
	for (int attempt = 0;; attempt++) {
		const git_error *e;
		if (git_remote_fetch(remote, &specs, &fo, NULL) == 0)
			break;
		e = git_error_last();
		rc = err_set(err, ERR_UPSTREAM, "git fetch of %s failed: %s", url,
			     e && e->message ? e->message : "unknown error");
		if (attempt >= opt->max_retries || !fetch_error_transient(err->msg))
			break;
		log_msg(LOG_WARN, "%s; retry %d of %d", err->msg, attempt + 1,
			opt->max_retries);
		sleep(1u << (attempt < 5 ? attempt : 5));
		cs.tries = 0;
		rc = 0;
	}
	git_remote_free(remote);
	return rc;
}
