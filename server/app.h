/*
 * app.h: what every request handler shares: the store and the settings
 * the server was started with. Read-only after start, so every worker
 * thread may use it without locks.
 */
#ifndef HAVEN_APP_H
#define HAVEN_APP_H

#include "storage/store.h"

struct app {
	struct store *store;
	char public_url[1024];	/* no trailing slash */
};

#endif
