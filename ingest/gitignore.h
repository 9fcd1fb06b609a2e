/*
 * gitignore.h: the rules of a repository's root .gitignore, to answer the
 * preupload question "would git ignore this path?" (hub-api.md 2.10).
 *
 * Supported as git does it (gitignore(5)): blank lines and '#' comments,
 * "\#" and "\!" escapes, trailing spaces, '!' negation (last matching
 * rule wins), a trailing '/' for folders only, anchoring by a '/' at the
 * start or in the middle, and the wildcards of gitattributes_match().
 * A file below an ignored folder is ignored whatever later rules say, as
 * git cannot re-include it.
 */
#ifndef HAVEN_GITIGNORE_H
#define HAVEN_GITIGNORE_H

#include <stdbool.h>
#include <stddef.h>

struct gitignore;

/* Parses text (may be NULL or empty). Returns NULL when out of memory. */
struct gitignore *gitignore_parse(const char *text, size_t len);
void gitignore_free(struct gitignore *gi);

/* True when the file at path (repo-relative) is ignored. */
bool gitignore_ignored(const struct gitignore *gi, const char *path);

#endif
