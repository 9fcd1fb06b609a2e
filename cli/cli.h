/*
 * cli.h: the `haven` subcommands. main.c holds the table; each command is
 * one cmd_*.c file. Commands print errors as one line "haven: ..." on
 * stderr and return the process exit code: 0 success, 1 failure, 2 usage.
 */
#ifndef HAVEN_CLI_H
#define HAVEN_CLI_H

#include <jansson.h>

#include "common/err.h"
#include "storage/store.h"

#define EXIT_USAGE 2

int cmd_serve(int argc, char **argv);
int cmd_repo(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_hook(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_org(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_access(int argc, char **argv);
int cmd_lineage(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import_bundle(int argc, char **argv);
int cmd_mirror(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_blobs(int argc, char **argv);

/* The data directory: the flag's value, else $HAVEN_DATA, else
 * ./haven-data. */
const char *cli_data_dir(const char *flag);

/* Opens the store for an admin command (creating it when create is set);
 * prints the error and returns NULL on failure. */
struct store *cli_open_store(const char *data, bool create);

/* Prints a JSON document on stdout, indented, keys in insertion order,
 * for --json; takes the reference (NULL prints null). */
void cli_print_json(json_t *doc);

/* Prints "haven: <msg>" to stderr and returns 1. */
int cli_fail(const struct err *err);

/* Seeds the demo model into the store if it is missing. */
int demo_seed(struct store *store, struct err *err);

#define DEMO_REPO "haven-demo/tiny-model"

#endif
