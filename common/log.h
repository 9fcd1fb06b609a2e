/*
 * log.h: one logging macro. Lines are "time level key=value ..." on stderr.
 * The level is checked before the arguments are evaluated. Never log a
 * token or an Authorization header.
 */
#ifndef HAVEN_LOG_H
#define HAVEN_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_QUIET };

extern enum log_level log_threshold;

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses "debug|info|warn|error|quiet"; returns 0 or ERR_INVALID. */
int log_level_parse(enum log_level *out, const char *name);

#define log_msg(level, ...) do { \
	if ((level) >= log_threshold) \
		log_write((level), __VA_ARGS__); \
} while (0)

#endif
