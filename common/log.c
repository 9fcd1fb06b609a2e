/* log.c: the log sink; see log.h. Thread-safe: one fprintf per line. */
#include "common/compat.h"

#include <stdarg.h>
#include <sys/time.h>

#include "common/err.h"
#include "common/log.h"

enum log_level log_threshold = LOG_INFO;

static const char *level_names[] = { "debug", "info", "warn", "error", "quiet" };

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048], stamp[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03dZ %s %s\n", stamp, (int)(tv.tv_usec / 1000),
		level_names[level], line);
}

int log_level_parse(enum log_level *out, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (!strcmp(name, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return ERR_INVALID;
}
