/*
 * cmd_serve.c: `haven serve [--config FILE] [--SETTING VALUE]...`. The
 * config file is read first and the flags override it.
 */
#include "common/compat.h"

#include "cli/cli.h"
#include "common/log.h"
#include "server/config.h"
#include "server/serve.h"

static void serve_usage(FILE *out)
{
	fprintf(out, "usage: haven serve [--config FILE] [options]\n\n"
		"Runs the registry. Options (also valid as \"name value\" lines "
		"in the config file):\n");
	config_print_help(out);
	fprintf(out, "  --config FILE      read settings from FILE first\n"
		"  --print-config     print the settings as a config file and exit\n");
}

/* Finds --config before anything else, so flags can override it. */
static int load_config_flag(struct serve_config *cfg, int argc, char **argv,
			    struct err *err)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config"))
			continue;
		if (i + 1 >= argc)
			return err_set(err, ERR_INVALID, "--config needs a file");
		return config_load_file(cfg, argv[i + 1], err);
	}
	return 0;
}

static int apply_flags(struct serve_config *cfg, int argc, char **argv,
		       struct err *err)
{
	for (int i = 1; i < argc; i++) {
		const char *name = argv[i], *value = NULL;
		int rc;
		if (!strcmp(name, "--config")) {
			i++;
			continue;
		}
		if (!strcmp(name, "--print-config"))
			continue;
		if (strncmp(name, "--", 2))
			return err_set(err, ERR_INVALID, "unexpected argument '%s'",
				       name);
		name += 2;
		if (config_is_secret(name))
			return err_set(err, ERR_INVALID, "--%s is not taken on "
				       "the command line, where other users can "
				       "read it: put it in the config file or "
				       "the environment", name);
		if (!config_is_flag(name)) {
			if (i + 1 >= argc)
				return err_set(err, ERR_INVALID, "--%s needs a value",
					       name);
			value = argv[++i];
		}
		if ((rc = config_set(cfg, name, value, err)) < 0)
			return rc;
	}
	return 0;
}

static bool has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], flag))
			return true;
	}
	return false;
}

static int seed_demo(const struct serve_config *cfg, struct err *err)
{
	struct store *store = NULL;
	int rc;

	if ((rc = store_open(&store, cfg->data, true, err)) < 0)
		return rc;
	rc = demo_seed(store, err);
	store_free(store);
	return rc;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_config cfg;
	struct err err = { 0 };
	enum log_level level;

	if (has_flag(argc, argv, "--help") || has_flag(argc, argv, "-h")) {
		serve_usage(stdout);
		return 0;
	}
	config_defaults(&cfg);
	if (load_config_flag(&cfg, argc, argv, &err) < 0 ||
	    apply_flags(&cfg, argc, argv, &err) < 0)
		return cli_fail(&err);
	if (has_flag(argc, argv, "--print-config")) {
		config_print_file(stdout, &cfg);
		return 0;
	}
	if (log_level_parse(&level, cfg.log_level) == 0)
		log_threshold = level;
	if (cfg.demo && seed_demo(&cfg, &err) < 0)
		return cli_fail(&err);
	if (serve_run(&cfg, &err) < 0)
		return cli_fail(&err);
	return 0;
}
