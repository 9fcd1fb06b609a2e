/*
 * serve.h: `haven serve`: opens the store, binds, runs the workers until
 * SIGTERM or SIGINT, then frees everything and returns 0.
 */
#ifndef HAVEN_SERVE_H
#define HAVEN_SERVE_H

#include "common/err.h"
#include "server/config.h"

int serve_run(const struct serve_config *cfg, struct err *err);

#endif
