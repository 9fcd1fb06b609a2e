/*
 * metrics.c: see metrics.h. Exposed series:
 *   haven_http_requests_total{family,code}  answers by route family and
 *                                           status class (2xx ...)
 *   haven_http_request_duration_seconds     histogram, first byte of the
 *                                           request to its answer's head
 *   haven_http_response_bytes_total         body bytes declared by answers
 *                                           with a Content-Length (chunked
 *                                           JSON answers are not counted)
 *   haven_http_connections_active           client connections open now
 *   haven_downloads_counted_total           downloads counted since start
 *   haven_blob_store_bytes, _objects        the LFS blob store; a walk of
 *                                           the store, cached for a minute
 *   haven_lmdb_map_size_bytes, _used_bytes  the metadata environment
 *   haven_upstream_transfers_total          pull-through LFS transfers
 *   haven_upstream_bytes_total              bytes they received
 *   haven_upstream_failures_total           transfers that failed
 * The blob walk costs one stat per object: cheap for thousands, and at
 * most once a minute however often the endpoint is scraped.
 */
#include "common/compat.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/buffer.h>

#include "server/replica.h"
#include "server/replication.h"
#include "server/download_count.h"
#include "server/hub_error.h"
#include "server/metrics.h"
#include "server/upstream_fill.h"
#include "storage/blob.h"

static const char *const families[] = {
	"api", "resolve", "raw", "lfs", "git", "metrics", "other",
};
#define NFAMILIES ARRAY_SIZE(families)
#define NCLASSES 5	/* 1xx .. 5xx */

static const double buckets[] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBUCKETS ARRAY_SIZE(buckets)

static atomic_uint_fast64_t requests[NFAMILIES][NCLASSES];
static atomic_uint_fast64_t bucket_counts[NBUCKETS + 1];	/* + Inf */
static atomic_uint_fast64_t duration_us_sum;
static atomic_uint_fast64_t response_bytes;

#define BLOB_CACHE_S 60
static pthread_mutex_t blob_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t blob_walked;	/* 0: never */
static uint64_t blob_bytes, blob_objects;

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

const char *metrics_family(const char *path)
{
	if (!path)
		return "other";
	if (!strncmp(path, "/api/lfs/", 9) || strstr(path, "/info/lfs/"))
		return "lfs";
	if (!strncmp(path, "/api/", 5))
		return "api";
	if (!strcmp(path, "/metrics"))
		return "metrics";
	if (strstr(path, "/resolve/"))
		return "resolve";
	if (strstr(path, "/raw/"))
		return "raw";
	if (has_suffix(path, "/info/refs") || has_suffix(path, "/git-upload-pack") ||
	    has_suffix(path, "/git-receive-pack"))
		return "git";
	return "other";
}

static size_t family_index(const char *name)
{
	for (size_t i = 0; i < NFAMILIES; i++)
		if (!strcmp(families[i], name))
			return i;
	return NFAMILIES - 1;
}

void metrics_observe(struct http_request *req, int status,
		     int64_t body_length, double seconds, void *app)
{
	size_t f = family_index(metrics_family(http_request_path(req)));
	int cls = status / 100 - 1;
	size_t b = 0;

	(void)app;
	if (cls >= 0 && cls < NCLASSES)
		atomic_fetch_add(&requests[f][cls], 1);
	while (b < NBUCKETS && seconds > buckets[b])
		b++;
	atomic_fetch_add(&bucket_counts[b], 1);
	if (seconds > 0)
		atomic_fetch_add(&duration_us_sum, (uint64_t)(seconds * 1e6));
	if (body_length > 0)
		atomic_fetch_add(&response_bytes, (uint64_t)body_length);
}

static int add_blob(const char *sha, const struct blob_info *info, void *arg)
{
	uint64_t *sums = arg;

	(void)sha;
	sums[0] += info->size;
	sums[1]++;
	return 0;
}

/* The blob store's size, walked at most once per BLOB_CACHE_S. */
static void blob_totals(struct blob_store *blobs, uint64_t *bytes,
			uint64_t *objects)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&blob_lock);
	if (!blob_walked || now - blob_walked >= BLOB_CACHE_S) {
		uint64_t sums[2] = { 0, 0 };
		if (blob_foreach(blobs, add_blob, sums, NULL) == 0) {
			blob_bytes = sums[0];
			blob_objects = sums[1];
			blob_walked = now;
		}
	}
	*bytes = blob_bytes;
	*objects = blob_objects;
	pthread_mutex_unlock(&blob_lock);
}

static void gauge(struct evbuffer *b, const char *name, const char *help,
		  uint64_t value)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n",
			    name, help, name, name, value);
}

static void write_requests(struct evbuffer *b)
{
	evbuffer_add_printf(b, "# HELP haven_http_requests_total HTTP answers "
			    "by route family and status class.\n"
			    "# TYPE haven_http_requests_total counter\n");
	for (size_t f = 0; f < NFAMILIES; f++)
		for (int c = 0; c < NCLASSES; c++)
			evbuffer_add_printf(b, "haven_http_requests_total{family="
					    "\"%s\",code=\"%dxx\"} %" PRIu64 "\n",
					    families[f], c + 1,
					    (uint64_t)atomic_load(&requests[f][c]));
}

static void write_histogram(struct evbuffer *b)
{
	const char *h = "haven_http_request_duration_seconds";
	uint64_t cum = 0;

	evbuffer_add_printf(b, "# HELP %s Time from a request's first byte to "
			    "its answer's head.\n# TYPE %s histogram\n", h, h);
	for (size_t i = 0; i <= NBUCKETS; i++) {
		cum += atomic_load(&bucket_counts[i]);
		if (i < NBUCKETS)
			evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n",
					    h, buckets[i], cum);
		else
			evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64
					    "\n", h, cum);
	}
	evbuffer_add_printf(b, "%s_sum %.6f\n%s_count %" PRIu64 "\n", h,
			    (double)atomic_load(&duration_us_sum) / 1e6, h, cum);
}

static void counter(struct evbuffer *b, const char *name, const char *help,
		    uint64_t value)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64
			    "\n", name, help, name, name, value);
}

static void write_upstream(struct evbuffer *b)
{
	counter(b, "haven_upstream_transfers_total", "LFS objects transferred "
		"from the upstream Hub (pull-through).", upstream_fill_transfers());
	counter(b, "haven_upstream_bytes_total", "Bytes received from the "
		"upstream Hub for those transfers.", upstream_fill_bytes());
	counter(b, "haven_upstream_failures_total", "Upstream transfers that "
		"failed (unreachable, short or wrong bytes).",
		upstream_fill_failures());
}

void route_metrics(struct hub_call *call)
{
	struct evbuffer *b = evbuffer_new();
	struct app *app = call->app;
	uint64_t bytes, objects;
	size_t map_size = 0, used = 0;

	write_requests(b);
	write_histogram(b);
	evbuffer_add_printf(b, "# HELP haven_http_response_bytes_total Body "
			    "bytes of answers with a Content-Length.\n"
			    "# TYPE haven_http_response_bytes_total counter\n"
			    "haven_http_response_bytes_total %" PRIu64 "\n",
			    (uint64_t)atomic_load(&response_bytes));
	gauge(b, "haven_http_connections_active", "Client connections open now.",
	      (uint64_t)http_connections_active());
	evbuffer_add_printf(b, "# HELP haven_downloads_counted_total Downloads "
			    "counted since the server started.\n"
			    "# TYPE haven_downloads_counted_total counter\n"
			    "haven_downloads_counted_total %" PRIu64 "\n",
			    download_count_counted(app->downloads));
	blob_totals(app->store->blobs, &bytes, &objects);
	gauge(b, "haven_blob_store_bytes", "Bytes of stored LFS objects "
	      "(walked at most once a minute).", bytes);
	gauge(b, "haven_blob_store_objects", "Stored LFS objects (walked at "
	      "most once a minute).", objects);
	meta_stat(app->store->meta, &map_size, &used, NULL);
	gauge(b, "haven_lmdb_map_size_bytes", "Size of the LMDB map.",
	      (uint64_t)map_size);
	gauge(b, "haven_lmdb_used_bytes", "LMDB pages in use, in bytes.",
	      (uint64_t)used);
	write_upstream(b);
	if (app->replication)
		replication_metrics(app->replication, b);
	if (app->replica)
		replica_metrics(app->replica, b);
	hub_common_headers(call->req);
	http_response_header(call->req, "Content-Type",
			     "text/plain; version=0.0.4; charset=utf-8");
	http_response_send(call->req, 200, b);
	evbuffer_free(b);
}
