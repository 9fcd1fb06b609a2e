/*
 * gitignore.c: see gitignore.h. Rules keep git's order; a path is
 * checked folder by folder from the root, then as a file, each time
 * against the rules from last to first.
 */
#include "common/compat.h"

#include "ingest/gitattributes.h"
#include "ingest/gitignore.h"

struct ignore_rule {
	char *pattern;	/* without '!', the trailing '/' and escapes */
	bool negate;
	bool dir_only;
};

struct gitignore {
	struct ignore_rule *rules;
	size_t count;
};

/* Trims trailing spaces that are not escaped with a backslash. */
static void trim_trailing(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\t')) {
		if (s[n - 1] == ' ' && n >= 2 && s[n - 2] == '\\') {
			s[n - 2] = ' ';
			s[n - 1] = '\0';
			return;
		}
		s[--n] = '\0';
	}
}

/* Parses one line into a rule; false for blank lines and comments. */
static bool parse_line(char *line, struct ignore_rule *r)
{
	char *p = line;
	size_t n;

	trim_trailing(line);
	if (!p[0] || p[0] == '#')
		return false;
	r->negate = p[0] == '!';
	if (r->negate)
		p++;
	else if (p[0] == '\\' && (p[1] == '#' || p[1] == '!'))
		p++;
	n = strlen(p);
	r->dir_only = n && p[n - 1] == '/';
	while (n && p[n - 1] == '/')
		p[--n] = '\0';
	if (!n)
		return false;
	r->pattern = strdup(p);
	return r->pattern != NULL;
}

struct gitignore *gitignore_parse(const char *text, size_t len)
{
	struct gitignore *gi = calloc(1, sizeof(*gi));
	char *copy = malloc(len + 1), *line, *next;

	if (!gi || !copy)
		goto fail;
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = copy; line; line = next) {
		struct ignore_rule r = { 0 }, *grown;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!parse_line(line, &r))
			continue;
		grown = realloc(gi->rules, (gi->count + 1) * sizeof(*grown));
		if (!grown) {
			free(r.pattern);
			goto fail;
		}
		gi->rules = grown;
		gi->rules[gi->count++] = r;
	}
	free(copy);
	return gi;
fail:
	free(copy);
	gitignore_free(gi);
	return NULL;
}

void gitignore_free(struct gitignore *gi)
{
	if (!gi)
		return;
	for (size_t i = 0; i < gi->count; i++)
		free(gi->rules[i].pattern);
	free(gi->rules);
	free(gi);
}

/* 1 ignored, 0 re-included, -1 no rule matches. */
static int decide(const struct gitignore *gi, const char *path, bool is_dir)
{
	for (size_t i = gi->count; i-- > 0;) {
		const struct ignore_rule *r = &gi->rules[i];
		if (r->dir_only && !is_dir)
			continue;
		if (gitattributes_match(r->pattern, path))
			return r->negate ? 0 : 1;
	}
	return -1;
}

bool gitignore_ignored(const struct gitignore *gi, const char *path)
{
	char dir[4096];
	const char *slash = path;

	if (!gi || !gi->count)
		return false;
	while ((slash = strchr(slash, '/'))) {
		size_t n = (size_t)(slash - path);
		if (n >= sizeof(dir))
			return false;
		memcpy(dir, path, n);
		dir[n] = '\0';
		if (decide(gi, dir, true) == 1)
			return true;
		slash++;
	}
	return decide(gi, path, false) == 1;
}
