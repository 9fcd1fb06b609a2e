/*
 * gitattributes.h: just enough of .gitattributes to answer "is this path
 * stored with LFS?": the lines whose attributes set filter=lfs, matched
 * the way git matches them (last matching line wins).
 */
#ifndef HAVEN_GITATTRIBUTES_H
#define HAVEN_GITATTRIBUTES_H

#include <stdbool.h>
#include <stddef.h>

struct gitattributes;

/* Parses text (may be NULL or empty). Returns NULL when out of memory. */
struct gitattributes *gitattributes_parse(const char *text, size_t len);
void gitattributes_free(struct gitattributes *ga);

/* True when the last line matching path sets filter=lfs. */
bool gitattributes_is_lfs(const struct gitattributes *ga, const char *path);

/* Appends to the malloc'd text *text of *len bytes (both updated; *text
 * may be NULL when *len is 0) the line that marks path as LFS, written as
 * `git lfs track` writes it: spaces as [[:space:]], then
 * " filter=lfs diff=lfs merge=lfs -text". A newline is added first when
 * the text does not end with one. ERR_FAIL when out of memory. */
int gitattributes_track(char **text, size_t *len, const char *path);

/* git's wildmatch subset: '*' and '?' stop at '/', "**" crosses folders,
 * "[...]" classes. A pattern without '/' matches the path's last part. */
bool gitattributes_match(const char *pattern, const char *path);

#endif
