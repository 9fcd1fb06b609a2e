/*
 * util.h: small string, hex, time and file helpers shared by every layer.
 */
#ifndef HAVEN_UTIL_H
#define HAVEN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <time.h>

/* Copies src into dst (size bytes), always NUL-terminating. Returns the
 * length of src, so a result >= size means it was truncated. */
size_t str_copy(char *dst, const char *src, size_t size);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(char *out, const unsigned char *in, size_t len);
/* The len/2 bytes that len hex digits spell; -1 for anything else. */
int hex_decode(unsigned char *out, const char *in, size_t len);

/* True if s is exactly n lower-case hex digits. */
bool is_hex(const char *s, size_t n);

/* Formats t as the Hub's date form "2024-01-31T12:00:00.000Z" (25 bytes). */
void time_iso8601(char out[32], time_t t);

/* ASCII lower-casing into out (size bytes); returns 0 or ERR_TOOBIG. */
int str_lower(char *out, size_t size, const char *in);

/* Decodes %XX escapes of the n bytes at in into out (n+1 bytes). Returns
 * the decoded length, or -1 for a malformed escape or an encoded NUL. */
long url_decode(char *out, const char *in, size_t n);

/* Writes the whole buffer, retrying on EINTR and short writes. */
int write_full(int fd, const void *buf, size_t len);

/* fsyncs a directory so a rename or create inside it is durable. */
int fsync_dir(const char *path);

/* mkdir -p with mode 0755; succeeds if it already exists. */
int mkdir_p(const char *path);

/* Reads a whole small file into a malloc'd NUL-terminated buffer. */
int file_read_all(char **out, size_t *len, const char *path, size_t max);

#endif
