/*
 * modelcard.h: the YAML front matter of a repository's README.md (the
 * model or dataset card), read with libyaml into JSON as the Hub exposes
 * it (`cardData`), and the tags the Hub derives from it.
 */
#ifndef HAVEN_MODELCARD_H
#define HAVEN_MODELCARD_H

#include <stddef.h>
#include <jansson.h>

#include "common/err.h"

/* Parses the front matter of README text: *out gets a JSON object, or
 * NULL when the README has none. A malformed front matter is ERR_INVALID
 * with the reason in err (and *out NULL): it never blocks a commit. */
int modelcard_parse(json_t **out, const char *text, size_t len,
		    struct err *err);

/* Hints about the files of the revision, for inferring a relation. */
struct modelcard_files {
	int has_adapter_config;	/* adapter_config.json */
	int has_gguf;		/* a *.gguf file */
};

/* The Hub's tags for a card: its own tags, the library name, language
 * codes, license:<id>, dataset:<id>, base_model:<id> and
 * base_model:<relation>:<id>. Returns a new array (empty for NULL card). */
json_t *modelcard_tags(const json_t *card, const struct modelcard_files *files);

#endif
