/*
 * metrics.h: GET /metrics, the Prometheus text format (version 0.0.4).
 * The HTTP layer reports every answer to metrics_observe (an
 * http_observe_fn); counters are process-wide atomics, so any worker
 * thread may add to them without a lock.
 */
#ifndef HAVEN_METRICS_H
#define HAVEN_METRICS_H

#include <stdint.h>

#include "server/http.h"
#include "server/router.h"

/* The route family of a request path: "api", "resolve", "raw", "lfs",
 * "git", "metrics" or "other". */
const char *metrics_family(const char *path);

/* The http_observe_fn the server registers. */
void metrics_observe(struct http_request *req, int status,
		     int64_t body_length, double seconds, void *app);

/* The handler of GET /metrics. */
void route_metrics(struct hub_call *call);

#endif
