/*
 * gitattributes.c: see gitattributes.h.
 */
#include "common/compat.h"

#include <fnmatch.h>

#include "common/err.h"
#include "ingest/gitattributes.h"

struct rule {
	char *pattern;
	int lfs;	/* 1 sets filter=lfs, 0 unsets it */
};

struct gitattributes {
	struct rule *rules;
	size_t count;
};

/* Finds the ']' that closes the class opened at p, stepping over
 * "[:name:]" parts; NULL when the class is not closed. */
static const char *class_end(const char *p)
{
	const char *q = p + 1;

	if (*q == '!' || *q == '^')
		q++;
	if (*q == ']')
		q++;
	for (; *q; q++) {
		if (q[0] == '[' && q[1] == ':') {
			const char *close = strstr(q + 2, ":]");
			if (!close)
				return NULL;
			q = close + 1;
		} else if (*q == ']') {
			return q;
		}
	}
	return NULL;
}

/* Matches one class "[...]" at p against c; returns the class length
 * consumed (0 when malformed), and sets *hit. */
static size_t match_class(const char *p, char c, bool *hit)
{
	const char *end = class_end(p);
	char cls[128], str[2] = { c, '\0' };
	size_t len;

	if (!end || (size_t)(end - p + 1) >= sizeof(cls))
		return 0;
	len = (size_t)(end - p + 1);
	memcpy(cls, p, len);
	cls[len] = '\0';
	*hit = c != '/' && fnmatch(cls, str, 0) == 0;
	return len;
}

static bool wildmatch(const char *p, const char *s)
{
	for (; *p; p++, s++) {
		if (p[0] == '*' && p[1] == '*' && (!p[2] || p[2] == '/')) {
			/* "**" at the end matches everything below; "**" + "/"
			 * matches zero or more whole folders. */
			if (!p[2])
				return true;
			for (;;) {
				if (wildmatch(p + 3, s))
					return true;
				if (!(s = strchr(s, '/')))
					return false;
				s++;
			}
		}
		if (*p == '*') {
			for (;; s++) {
				if (wildmatch(p + 1, s))
					return true;
				if (!*s || *s == '/')
					return false;
			}
		}
		if (!*s)
			return false;
		if (*p == '?') {
			if (*s == '/')
				return false;
		} else if (*p == '[') {
			bool hit = false;
			size_t len = match_class(p, *s, &hit);
			if (!len)
				return *s == '[' && wildmatch(p + 1, s + 1);
			if (!hit)
				return false;
			p += len - 1;
		} else if (*p == '\\' && p[1]) {
			if (*++p != *s)
				return false;
		} else if (*p != *s) {
			return false;
		}
	}
	return !*s;
}

bool gitattributes_match(const char *pattern, const char *path)
{
	const char *base;

	if (pattern[0] == '/')
		return wildmatch(pattern + 1, path);
	if (strchr(pattern, '/'))
		return wildmatch(pattern, path);
	base = strrchr(path, '/');
	return wildmatch(pattern, base ? base + 1 : path);
}

/* Reads the lfs setting of one attribute list; -1 when it says nothing. */
static int lfs_setting(char *attrs)
{
	int lfs = -1;

	for (char *a = attrs; *a;) {
		size_t len = strcspn(a, " \t");
		char save = a[len];
		a[len] = '\0';
		if (!strcmp(a, "filter=lfs"))
			lfs = 1;
		else if (!strcmp(a, "-filter") || !strcmp(a, "!filter") ||
			 (!strncmp(a, "filter=", 7) && strcmp(a, "filter=lfs")))
			lfs = 0;
		a[len] = save;
		a += len;
		a += strspn(a, " \t");
	}
	return lfs;
}

static int add_line(struct gitattributes *ga, char *line)
{
	char *attrs;
	struct rule *r;
	int lfs;

	line += strspn(line, " \t");
	if (!*line || *line == '#')
		return 0;
	attrs = line + strcspn(line, " \t");
	if (*attrs)
		*attrs++ = '\0';
	if ((lfs = lfs_setting(attrs)) < 0)
		return 0;
	r = realloc(ga->rules, (ga->count + 1) * sizeof(*r));
	if (!r)
		return -1;
	ga->rules = r;
	r[ga->count].pattern = strdup(line);
	r[ga->count].lfs = lfs;
	if (!r[ga->count].pattern)
		return -1;
	ga->count++;
	return 0;
}

struct gitattributes *gitattributes_parse(const char *text, size_t len)
{
	struct gitattributes *ga = calloc(1, sizeof(*ga));
	char *copy = malloc(len + 1), *line, *next;

	if (!ga || !copy) {
		free(copy);
		free(ga);
		return NULL;
	}
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = copy; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (add_line(ga, line) < 0) {
			free(copy);
			gitattributes_free(ga);
			return NULL;
		}
	}
	free(copy);
	return ga;
}

void gitattributes_free(struct gitattributes *ga)
{
	if (!ga)
		return;
	for (size_t i = 0; i < ga->count; i++)
		free(ga->rules[i].pattern);
	free(ga->rules);
	free(ga);
}

bool gitattributes_is_lfs(const struct gitattributes *ga, const char *path)
{
	for (size_t i = ga ? ga->count : 0; i-- > 0;) {
		if (gitattributes_match(ga->rules[i].pattern, path))
			return ga->rules[i].lfs == 1;
	}
	return false;
}

int gitattributes_track(char **text, size_t *len, const char *path)
{
	size_t need = *len + strlen(path) * 11 + 64;
	char *t = realloc(*text, need), *p;

	if (!t)
		return ERR_FAIL;
	*text = t;
	p = t + *len;
	if (*len && t[*len - 1] != '\n')
		*p++ = '\n';
	for (const char *s = path; *s; s++) {
		if (*s == ' ') {
			memcpy(p, "[[:space:]]", 11);
			p += 11;
		} else {
			*p++ = *s;
		}
	}
	p += snprintf(p, need - (size_t)(p - t),
		      " filter=lfs diff=lfs merge=lfs -text\n");
	*len = (size_t)(p - t);
	return 0;
}
