/*
 * serve.c: the server's lifecycle. SIGTERM and SIGINT are blocked before
 * any thread starts, so every worker inherits the mask and only the main
 * thread receives them, through sigwait; it then stops the workers, which
 * cut what is in flight, and everything is freed before exit.
 */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/app.h"
#include "server/blob_send.h"
#include "server/download_count.h"
#include "server/git_backend.h"
#include "server/http.h"
#include "server/hub_repo.h"
#include "server/metrics.h"
#include "server/mirror_sync.h"
#include "server/lfs_sign.h"
#include "server/pull_through.h"
#include "server/replica.h"
#include "server/replication.h"
#include "server/router.h"
#include "server/serve.h"
#include "storage/gitrepo.h"

struct runner {
	struct http_server *http;
	struct err err;
	int rc;
};

static void *run_workers(void *arg)
{
	struct runner *r = arg;

	r->rc = http_server_run(r->http, &r->err);
	/* Wake the main thread if the workers end on their own. */
	if (r->rc < 0)
		kill(getpid(), SIGTERM);
	return NULL;
}

static int write_port_file(const char *path, int port, struct err *err)
{
	char tmp[4200], text[16];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(text, sizeof(text), "%d\n", port);
	if (!(f = fopen(tmp, "w")) || fputs(text, f) < 0 || fclose(f) != 0 ||
	    rename(tmp, path) < 0)
		return err_set(err, ERR_FAIL, "cannot write port file '%s': %s",
			       path, strerror(errno));
	return 0;
}

static void set_public_url(struct app *app, const struct serve_config *cfg,
			   const char *host, int port)
{
	size_t n;

	if (cfg->public_url[0]) {
		str_copy(app->public_url, cfg->public_url, sizeof(app->public_url));
	} else {
		bool any = !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
		bool v6 = strchr(host, ':') != NULL;
		const char *scheme = cfg->tls_cert[0] ? "https" : "http";

		snprintf(app->public_url, sizeof(app->public_url),
			 v6 && !any ? "%s://[%s]:%d" : "%s://%s:%d", scheme,
			 any ? "127.0.0.1" : host, port);
	}
	n = strlen(app->public_url);
	while (n && app->public_url[n - 1] == '/')
		app->public_url[--n] = '\0';
}

static int start_http(struct http_server **out, struct app *app,
		      const struct serve_config *cfg, struct err *err)
{
	struct http_server_config hc = { 0 };
	char host[256];
	int port, rc;

	if ((rc = config_parse_listen(cfg->listen, host, sizeof(host), &port,
				      err)) < 0)
		return rc;
	hc.host = host;
	hc.port = port;
	hc.threads = (int)cfg->threads;
	hc.header_timeout_s = (int)cfg->header_timeout;
	hc.io_timeout_s = (int)cfg->io_timeout;
	hc.idle_timeout_s = (int)cfg->idle_timeout;
	hc.tls_cert = cfg->tls_cert;
	hc.tls_key = cfg->tls_key;
	hc.observe = metrics_observe;
	if ((rc = http_server_new(out, &hc, router_handle, app, err)) < 0)
		return rc;
	set_public_url(app, cfg, host, http_server_port(*out));
	app->require_auth = cfg->require_auth;
	return 0;
}

static int start_pull_through(struct app *app, const struct serve_config *cfg,
			      struct err *err)
{
	struct pull_through_config pc = { 0 };
	int rc;

	if (!cfg->upstream[0])
		return 0;
	if (strncmp(cfg->upstream, "http://", 7) &&
	    strncmp(cfg->upstream, "https://", 8))
		return err_set(err, ERR_INVALID, "invalid upstream '%.200s': "
			       "expected an http:// or https:// URL",
			       cfg->upstream);
	pc.url = cfg->upstream;
	pc.token = cfg->upstream_token[0] ? cfg->upstream_token : NULL;
	pc.ca_bundle = cfg->upstream_ca_bundle[0] ? cfg->upstream_ca_bundle :
						    NULL;
	pc.threads = (int)cfg->upstream_threads;
	pc.refresh_s = cfg->upstream_refresh;
	if ((rc = pull_through_new(&app->pull, app->store, &pc, err)) < 0)
		return rc;
	log_msg(LOG_INFO, "event=pull_through upstream=%s deployment_token=%s",
		cfg->upstream, pc.token ? "yes" : "no");
	return 0;
}

/* A primary's change feed (with a replication token), or this node as a
 * read replica of one. */
static int start_replication(struct app *app, const struct serve_config *cfg,
			     struct err *err)
{
	if (!cfg->replica_of[0])
		return cfg->replication_token[0] ?
		       replication_new(&app->replication, app->store,
				       cfg->replication_token, err) : 0;
	if (!cfg->replication_token[0])
		return err_set(err, ERR_INVALID, "a replica needs the "
			       "primary's replication_token: set it in the "
			       "config file or $HAVEN_REPLICATION_TOKEN");
	if (blob_is_local(app->store->blobs))
		return err_set(err, ERR_INVALID, "a replica shares its "
			       "primary's blobs: start it with --blobs "
			       "s3://BUCKET (the primary's) and --s3-endpoint");
	if (cfg->upstream[0] || cfg->sync_interval > 0)
		return err_set(err, ERR_INVALID, "a replica takes everything "
			       "from its primary: --upstream and "
			       "--sync-interval belong on the primary");
	return replica_start(&app->replica, app, cfg, err);
}

/* S3 blobs: the readers that stream them, and the redirect setting.
 * The readers start on a local store too: `haven blobs migrate` may move
 * it to S3 while the server runs (blob_store_refresh). */
static int start_blob_send(struct app *app, const struct serve_config *cfg,
			   struct err *err)
{
	int rc;

	if (blob_is_local(app->store->blobs) && cfg->blob_redirect)
		return err_set(err, ERR_INVALID, "--blob-redirect needs "
			       "blobs in an S3 store (--blobs s3://...)");
	if ((rc = blob_send_new(&app->blob_send, app->store->blobs, 8,
				err)) < 0)
		return rc;
	app->blob_redirect = cfg->blob_redirect;
	if (!blob_is_local(app->store->blobs))
		log_msg(LOG_INFO, "event=blob_store location=%s redirect=%s",
			blob_store_location(app->store->blobs),
			cfg->blob_redirect ? "yes" : "no");
	return 0;
}

/* The main thread waits for the signal and, once a second meanwhile,
 * follows changes of <data>/blobs.conf (blob.h: a blob migration). */
static void wait_for_signal(const sigset_t *set, struct blob_store *blobs)
{
	struct timespec tick = { 1, 0 };
	char last[ERR_MSG_LEN] = "";
	int sig;

	while ((sig = sigtimedwait(set, NULL, &tick)) < 0) {
		struct err err = { 0 };
		if (blob_store_refresh(blobs, &err) == 0)
			last[0] = '\0';
		else if (strcmp(last, err.msg)) {	/* retried each second */
			log_msg(LOG_ERROR, "event=blob_store_switch_failed "
				"error=\"%s\"", err.msg);
			str_copy(last, err.msg, sizeof(last));
		}
	}
	log_msg(LOG_INFO, "event=stopping signal=%d", sig);
}

/* The background sync of mirrors, with the upstream token and CA bundle
 * of the settings; NULL when sync_interval is off. */
static int start_mirror_sync(struct mirror_sync **out, struct store *store,
			     const struct serve_config *cfg, struct err *err)
{
	struct upstream_config base = { 0 };

	*out = NULL;
	if (cfg->sync_interval <= 0)
		return 0;
	base.token = cfg->upstream_token[0] ? cfg->upstream_token : NULL;
	base.ca_bundle = cfg->upstream_ca_bundle[0] ? cfg->upstream_ca_bundle :
			 NULL;
	return mirror_sync_start(out, store, cfg->sync_interval, &base, err);
}

int serve_run(const struct serve_config *cfg, struct err *err)
{
	struct mirror_sync *sync = NULL;
	struct app app = { 0 };
	struct runner runner = { 0 };
	pthread_t thread;
	sigset_t set;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* libgit2 keeps decoded objects in memory; bound it for the RSS. */
	git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)(16 << 20));
	if ((rc = blob_config_record(cfg->data, cfg->blobs, cfg->s3_endpoint,
				     cfg->s3_region, err)) < 0 ||
	    (rc = store_open(&app.store, cfg->data, true, err)) < 0 ||
	    (rc = blob_store_follow(app.store->blobs, err)) < 0 ||
	    (rc = start_blob_send(&app, cfg, err)) < 0 ||
	    (cfg->replica_of[0] && cfg->replication_token[0] &&
	     (rc = replica_take_secret(cfg, err)) < 0) ||
	    (rc = lfs_secret_load(app.secret, cfg->data, err)) < 0 ||
	    (rc = git_backend_setup(cfg->data, err)) < 0 ||
	    (rc = download_count_start(&app.downloads, app.store->meta,
				       err)) < 0 ||
	    (rc = start_pull_through(&app, cfg, err)) < 0 ||
	    (rc = start_replication(&app, cfg, err)) < 0 ||
	    (rc = start_http(&runner.http, &app, cfg, err)) < 0 ||
	    (cfg->port_file[0] &&
	     (rc = write_port_file(cfg->port_file, http_server_port(runner.http),
				   err)) < 0))
		goto out;
	log_msg(LOG_INFO, "event=listening listen=%s port=%d public_url=%s "
		"data=%s threads=%ld", cfg->listen, http_server_port(runner.http),
		app.public_url, cfg->data, cfg->threads);
	if (pthread_create(&thread, NULL, run_workers, &runner) != 0) {
		rc = err_set(err, ERR_FAIL, "cannot start worker threads");
		goto out;
	}
	if ((rc = start_mirror_sync(&sync, app.store, cfg, err)) < 0) {
		http_server_stop(runner.http);
		pthread_join(thread, NULL);
		goto out;
	}
	wait_for_signal(&set, app.store->blobs);
	mirror_sync_stop(sync);
	http_server_stop(runner.http);
	pthread_join(thread, NULL);
	replica_stop(app.replica);
	pull_through_stop(app.pull);
	blob_send_stop(app.blob_send);
	git_backend_shutdown();
	if (runner.rc < 0) {
		rc = runner.rc;
		*err = runner.err;
	}
out:
	/* Before the HTTP server: parked requests hold events on its
	 * workers' bases. */
	pull_through_free(app.pull);
	/* After the workers, before the replica that may carry them: the
	 * last counts are written (or sent to the primary) before exit. */
	download_count_stop(app.downloads);
	replica_free(app.replica);
	replication_free(app.replication);
	blob_send_stop(app.blob_send);
	blob_send_free(app.blob_send);
	http_server_free(runner.http);
	hub_repo_cache_flush();
	store_free(app.store);
	return rc;
}
