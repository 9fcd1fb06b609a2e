/*
 * config.h: the server's settings. One table (config.c) drives the config
 * file parser ("key value" lines, '#' comments), the command-line flags
 * (--key value, with '_' written as '-'), validation, --help and the
 * example file in deploy/. Flags override the file.
 */
#ifndef HAVEN_CONFIG_H
#define HAVEN_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"

struct serve_config {
	char data[4096];
	char listen[256];
	char public_url[1024];
	char port_file[4096];
	char log_level[16];
	char tls_cert[4096];
	char tls_key[4096];
	long threads;
	long header_timeout;
	long io_timeout;
	long idle_timeout;
	bool demo;
	bool require_auth;
	char upstream[512];		/* pull-through from this Hub; "" off */
	char upstream_token[512];	/* secret: file or environment only */
	char upstream_ca_bundle[4096];
	long upstream_threads;
	long upstream_refresh;		/* seconds between history refreshes */
	long sync_interval;		/* seconds; 0: no background sync */
	char blobs[600];		/* "s3://BUCKET[/PREFIX]"; "" as recorded */
	char s3_endpoint[1024];
	char s3_region[64];
	bool blob_redirect;		/* S3: /resolve answers 302 */
	char replica_of[512];		/* the primary's URL; "" on a primary */
	char replication_token[512];	/* secret: file or environment only */
	char replica_ca_bundle[4096];
};

/* Fills the defaults: data from $HAVEN_DATA or ./haven-data, listen
 * 127.0.0.1:8080, threads = online CPUs. */
void config_defaults(struct serve_config *cfg);

/* Applies one setting by name; ERR_INVALID with a one-line message for an
 * unknown name or a bad value. */
int config_set(struct serve_config *cfg, const char *name, const char *value,
	       struct err *err);

/* True when name is a setting that takes no value (a flag). */
bool config_is_flag(const char *name);

/* True when name is a secret: accepted from the config file and the
 * environment, never as a command-line flag (others can read those). */
bool config_is_secret(const char *name);

/* Reads a config file; errors name the file and line. */
int config_load_file(struct serve_config *cfg, const char *path,
		     struct err *err);

/* Prints the settings as help text (flags) or as a config file. */
void config_print_help(FILE *out);
void config_print_file(FILE *out, const struct serve_config *cfg);

/* Splits "host:port" ("[v6]:port" too); ERR_INVALID when malformed. */
int config_parse_listen(const char *listen, char *host, size_t host_size,
			int *port, struct err *err);

#endif
