/*
 * config.c: the settings table; see config.h.
 */
#include "common/compat.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/config.h"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_LEVEL, OPT_SECRET,
		OPT_DURATION };

static const struct option_def {
	const char *name;
	enum opt_type type;
	size_t offset;
	size_t size;		/* OPT_STR: buffer size */
	long min, max;		/* OPT_INT */
	const char *help;
} options[] = {
	{ "data", OPT_STR, offsetof(struct serve_config, data), 4096, 0, 0,
	  "data directory (default $HAVEN_DATA or ./haven-data)" },
	{ "listen", OPT_STR, offsetof(struct serve_config, listen), 256, 0, 0,
	  "address and port to listen on (default 127.0.0.1:8080)" },
	{ "public_url", OPT_STR, offsetof(struct serve_config, public_url), 1024,
	  0, 0, "URL clients use to reach this server, for absolute links "
	  "(default http://<listen>)" },
	{ "threads", OPT_INT, offsetof(struct serve_config, threads), 0, 1, 256,
	  "worker threads (default: one per CPU)" },
	{ "log_level", OPT_LEVEL, offsetof(struct serve_config, log_level), 16,
	  0, 0, "debug, info, warn or error (default info)" },
	{ "header_timeout", OPT_INT, offsetof(struct serve_config, header_timeout),
	  0, 1, 3600, "seconds a client has to send a request head (default 10)" },
	{ "io_timeout", OPT_INT, offsetof(struct serve_config, io_timeout), 0, 1,
	  3600, "seconds without progress before a transfer is cut (default 60)" },
	{ "idle_timeout", OPT_INT, offsetof(struct serve_config, idle_timeout), 0,
	  1, 86400, "seconds an idle keep-alive connection is kept (default 60)" },
	{ "port_file", OPT_STR, offsetof(struct serve_config, port_file), 4096, 0,
	  0, "write the bound port to this file (useful with port 0)" },
	{ "require_auth", OPT_BOOL, offsetof(struct serve_config, require_auth),
	  0, 0, 0, "refuse requests that carry no token" },
	{ "tls_cert", OPT_STR, offsetof(struct serve_config, tls_cert), 4096, 0,
	  0, "serve HTTPS with this PEM certificate chain" },
	{ "tls_key", OPT_STR, offsetof(struct serve_config, tls_key), 4096, 0, 0,
	  "the PEM private key of tls_cert" },
	{ "demo", OPT_BOOL, offsetof(struct serve_config, demo), 0, 0, 0,
	  "seed the data directory with a small demo model if it lacks it" },
	{ "upstream", OPT_STR, offsetof(struct serve_config, upstream), 512, 0,
	  0, "pull-through: fetch what is missing from this Hub on demand "
	  "(e.g. https://huggingface.co)" },
	{ "upstream_token", OPT_SECRET, offsetof(struct serve_config,
	  upstream_token), 512, 0, 0, "deployment token for public upstream "
	  "repos (config file only; default $HAVEN_UPSTREAM_TOKEN or $HF_TOKEN)" },
	{ "upstream_ca_bundle", OPT_STR, offsetof(struct serve_config,
	  upstream_ca_bundle), 4096, 0, 0, "PEM CA bundle for the upstream's "
	  "TLS (default: the system's)" },
	{ "sync_interval", OPT_DURATION, offsetof(struct serve_config,
	  sync_interval), 0, 1, 366L * 86400, "keep mirrored repos current: "
	  "sync them this often (e.g. 30m, 6h, 1d; default off)" },
	{ "upstream_threads", OPT_INT, offsetof(struct serve_config,
	  upstream_threads), 0, 1, 256, "upstream transfers at once (default 8)" },
	{ "upstream_refresh", OPT_INT, offsetof(struct serve_config,
	  upstream_refresh), 0, 0, 86400, "seconds before a pulled-through "
	  "repo's history is asked for again (default 10)" },
	{ "blobs", OPT_STR, offsetof(struct serve_config, blobs), 600, 0, 0,
	  "keep LFS objects in an S3 bucket: s3://BUCKET[/PREFIX] (recorded "
	  "in <data>/blobs.conf; keys from AWS_ACCESS_KEY_ID and "
	  "AWS_SECRET_ACCESS_KEY)" },
	{ "s3_endpoint", OPT_STR, offsetof(struct serve_config, s3_endpoint),
	  1024, 0, 0, "the S3 store's URL, e.g. http://127.0.0.1:7480 "
	  "(default $HAVEN_S3_ENDPOINT)" },
	{ "s3_region", OPT_STR, offsetof(struct serve_config, s3_region), 64, 0,
	  0, "the S3 region to sign for (default $AWS_REGION or us-east-1)" },
	{ "blob_redirect", OPT_BOOL, offsetof(struct serve_config,
	  blob_redirect), 0, 0, 0, "S3 blobs: answer /resolve of LFS files "
	  "with a redirect to a presigned URL instead of streaming them" },
	{ "replica_of", OPT_STR, offsetof(struct serve_config, replica_of),
	  512, 0, 0, "run as a read replica of the primary at this URL: "
	  "follow its changes, serve reads, forward writes (needs "
	  "replication_token and the primary's S3 blobs)" },
	{ "replication_token", OPT_SECRET, offsetof(struct serve_config,
	  replication_token), 512, 0, 0, "shared by a primary and its "
	  "replicas; on a primary it opens the change feed (config file "
	  "only; default $HAVEN_REPLICATION_TOKEN)" },
	{ "replica_ca_bundle", OPT_STR, offsetof(struct serve_config,
	  replica_ca_bundle), 4096, 0, 0, "PEM CA bundle for an https "
	  "primary (default: the system's)" },
};

void config_defaults(struct serve_config *cfg)
{
	const char *data = getenv("HAVEN_DATA");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	str_copy(cfg->data, data && data[0] ? data : "./haven-data", sizeof(cfg->data));
	str_copy(cfg->listen, "127.0.0.1:8080", sizeof(cfg->listen));
	str_copy(cfg->log_level, "info", sizeof(cfg->log_level));
	cfg->threads = cpus > 0 ? cpus : 1;
	cfg->header_timeout = 10;
	cfg->io_timeout = 60;
	cfg->idle_timeout = 60;
	cfg->upstream_threads = 8;
	cfg->upstream_refresh = 10;
	if ((data = getenv("HAVEN_REPLICATION_TOKEN")) && data[0])
		str_copy(cfg->replication_token, data,
			 sizeof(cfg->replication_token));
	if ((data = getenv("HAVEN_UPSTREAM_TOKEN")) && data[0])
		str_copy(cfg->upstream_token, data, sizeof(cfg->upstream_token));
	else if ((data = getenv("HF_TOKEN")) && data[0])
		str_copy(cfg->upstream_token, data, sizeof(cfg->upstream_token));
}

static const struct option_def *find_option(const char *name)
{
	char norm[64];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(norm); i++)
		norm[i] = name[i] == '-' ? '_' : name[i];
	norm[i] = '\0';
	for (i = 0; i < ARRAY_SIZE(options); i++) {
		if (!strcmp(options[i].name, norm))
			return &options[i];
	}
	return NULL;
}

bool config_is_secret(const char *name)
{
	const struct option_def *o = find_option(name);

	return o && o->type == OPT_SECRET;
}

bool config_is_flag(const char *name)
{
	const struct option_def *o = find_option(name);

	return o && o->type == OPT_BOOL;
}

static int set_int(long *field, const struct option_def *o, const char *value,
		   struct err *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < o->min || v > o->max)
		return err_set(err, ERR_INVALID, "invalid value '%.100s' for %s: "
			       "expected a whole number from %ld to %ld", value,
			       o->name, o->min, o->max);
	*field = v;
	return 0;
}

/* "90", "90s", "30m", "6h", "1d" -> seconds. */
static int set_duration(long *field, const struct option_def *o,
			const char *value, struct err *err)
{
	char *end;
	long v, unit = 1;

	errno = 0;
	v = strtol(value, &end, 10);
	switch (*end) {
	case 's': unit = 1; end++; break;
	case 'm': unit = 60; end++; break;
	case 'h': unit = 3600; end++; break;
	case 'd': unit = 86400; end++; break;
	default: break;
	}
	if (errno || end == value || *end || v < 0 || v > o->max / unit ||
	    v * unit < o->min)
		return err_set(err, ERR_INVALID, "invalid value '%.100s' for %s: "
			       "expected a duration such as 90s, 30m, 6h or 1d",
			       value, o->name);
	*field = v * unit;
	return 0;
}

static int set_bool(bool *field, const char *value, const char *name,
		    struct err *err)
{
	if (!value || !strcmp(value, "true") || !strcmp(value, "yes") ||
	    !strcmp(value, "1") || !strcmp(value, "on")) {
		*field = true;
		return 0;
	}
	if (!strcmp(value, "false") || !strcmp(value, "no") ||
	    !strcmp(value, "0") || !strcmp(value, "off")) {
		*field = false;
		return 0;
	}
	return err_set(err, ERR_INVALID, "invalid value '%.100s' for %s: "
		       "expected true or false", value, name);
}

int config_set(struct serve_config *cfg, const char *name, const char *value,
	       struct err *err)
{
	const struct option_def *o = find_option(name);
	char *field;
	enum log_level level;

	if (!o)
		return err_set(err, ERR_INVALID, "unknown setting '%.100s'", name);
	field = (char *)cfg + o->offset;
	switch (o->type) {
	case OPT_BOOL:
		return set_bool((bool *)field, value, o->name, err);
	case OPT_INT:
		return set_int((long *)field, o, value ? value : "", err);
	case OPT_DURATION:
		return set_duration((long *)field, o, value ? value : "", err);
	case OPT_LEVEL:
		if (!value || log_level_parse(&level, value) < 0)
			return err_set(err, ERR_INVALID, "invalid value '%.100s' "
				       "for log_level: expected debug, info, "
				       "warn or error", value ? value : "");
		/* fall through */
	case OPT_SECRET:
	case OPT_STR:
		if (!value || !value[0] || str_copy(field, value, o->size) >= o->size)
			return err_set(err, ERR_INVALID, "invalid value for %s",
				       o->name);
		return 0;
	}
	return ERR_INVALID;
}

int config_load_file(struct serve_config *cfg, const char *path,
		     struct err *err)
{
	char *text = NULL, *line, *next;
	int lineno = 0, rc;

	if ((rc = file_read_all(&text, NULL, path, 1 << 20)) < 0)
		return err_set(err, ERR_INVALID, "cannot read config file '%s': %s",
			       path, strerror(errno));
	for (line = text; line && rc == 0; line = next) {
		char *key, *value, *end;
		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		key = line + strspn(line, " \t\r");
		if (!*key || *key == '#')
			continue;
		value = key + strcspn(key, " \t\r");
		if (*value)
			*value++ = '\0';
		value += strspn(value, " \t");
		end = value + strlen(value);
		while (end > value && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if ((rc = config_set(cfg, key, *value ? value : NULL, err)) < 0) {
			char msg[ERR_MSG_LEN];
			str_copy(msg, err ? err->msg : "", sizeof(msg));
			err_set(err, rc, "%s:%d: %s", path, lineno, msg);
		}
	}
	free(text);
	return rc;
}

void config_print_help(FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		char flag[64];
		size_t j;
		for (j = 0; options[i].name[j] && j + 1 < sizeof(flag); j++)
			flag[j] = options[i].name[j] == '_' ? '-' : options[i].name[j];
		flag[j] = '\0';
		fprintf(out, "  --%-16s %s%s\n", flag,
			options[i].type == OPT_BOOL ? "" : "VALUE  ",
			options[i].help);
	}
}

void config_print_file(FILE *out, const struct serve_config *cfg)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_def *o = &options[i];
		const char *field = (const char *)cfg + o->offset;
		fprintf(out, "# %s\n", o->help);
		switch (o->type) {
		case OPT_INT:
			fprintf(out, "#%s %ld\n\n", o->name, *(const long *)field);
			break;
		case OPT_BOOL:
			fprintf(out, "#%s %s\n\n", o->name,
				*(const bool *)field ? "true" : "false");
			break;
		case OPT_DURATION:
			if (*(const long *)field)
				fprintf(out, "#%s %lds\n\n", o->name,
					*(const long *)field);
			else
				fprintf(out, "#%s 6h\n\n", o->name);
			break;
		case OPT_SECRET:
			/* Never printed: the dump may end up anywhere. */
			fprintf(out, "#%s VALUE\n\n", o->name);
			break;
		default:
			fprintf(out, "#%s %s\n\n", o->name, field[0] ? field : "VALUE");
		}
	}
}

int config_parse_listen(const char *listen, char *host, size_t host_size,
			int *port, struct err *err)
{
	const char *colon = strrchr(listen, ':');
	const char *h = listen;
	size_t hlen;
	char *end;
	long p;

	if (!colon)
		return err_set(err, ERR_INVALID, "invalid listen address '%.100s': "
			       "expected HOST:PORT", listen);
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	p = strtol(colon + 1, &end, 10);
	if (!hlen || hlen >= host_size || *end || end == colon + 1 || p < 0 ||
	    p > 65535)
		return err_set(err, ERR_INVALID, "invalid listen address '%.100s': "
			       "expected HOST:PORT", listen);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}
