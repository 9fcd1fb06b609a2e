/*
 * test_gitattributes.c: .gitattributes matching (ingest/gitattributes.h).
 *
 * The expected answers are git's own: each row was checked against
 * "git check-attr filter" with the same pattern and path.
 */
#include "common/compat.h"

#include "ingest/gitattributes.h"
#include "tests/unit/test.h"

struct match_case {
	const char *pattern;
	const char *path;
	bool match;
};

/* Runs a table of cases and reports every wrong answer. */
static int run_cases(const struct match_case *cases, size_t n)
{
	int wrong = 0;

	for (size_t i = 0; i < n; i++) {
		bool got = gitattributes_match(cases[i].pattern, cases[i].path);
		if (got != cases[i].match) {
			fprintf(stderr, "  pattern '%s' path '%s': got %s\n",
				cases[i].pattern, cases[i].path,
				got ? "match" : "no match");
			wrong++;
		}
	}
	return wrong;
}

static int test_gitattributes_match_basename(void)
{
	static const struct match_case cases[] = {
		{ "*.bin", "a.bin", true },
		{ "*.bin", "dir/a.bin", true },
		{ "*.bin", "a/b/c/a.bin", true },
		{ "*.bin", "a.bins", false },
		{ "*.bin", "a.bin/x", false },
		{ "*.tar.*", "x.tar.gz", true },
		{ "*.tar.*", "d/x.tar.zst", true },
		{ "*.tar.*", "x.tar", false },
		{ "*tfevents*", "events.out.tfevents.1700000000.host", true },
		{ "*tfevents*", "runs/1/events.out.tfevents.1", true },
		{ "*tfevents*", "tfevents", true },
		{ "*tfevents*", "tfevent", false },
		{ "[ab].txt", "a.txt", true },
		{ "[ab].txt", "b.txt", true },
		{ "[ab].txt", "c.txt", false },
		{ "[!ab].txt", "c.txt", true },
		{ "[a-c].txt", "b.txt", true },
		{ "?.txt", "a.txt", true },
		{ "?.txt", "ab.txt", false },
		{ "README", "README", true },
		{ "README", "docs/README", true },
	};
	int rc = -1;

	CHECK(run_cases(cases, ARRAY_SIZE(cases)) == 0);
	rc = 0;
out:
	return rc;
}

static int test_gitattributes_match_with_slash(void)
{
	static const struct match_case cases[] = {
		{ "/top.bin", "top.bin", true },
		{ "/top.bin", "d/top.bin", false },
		{ "dir/*.bin", "dir/a.bin", true },
		{ "dir/*.bin", "dir/sub/a.bin", false },
		{ "dir/*.bin", "other/dir/a.bin", false },
		{ "saved_model/**/*", "saved_model/x", true },
		{ "saved_model/**/*", "saved_model/a/b/c", true },
		{ "saved_model/**/*", "saved_model", false },
		{ "saved_model/**/*", "other/saved_model/x", false },
		{ "a/**/b", "a/b", true },
		{ "a/**/b", "a/x/b", true },
		{ "a/**/b", "a/x/y/b", true },
		{ "**/foo", "foo", true },
		{ "**/foo", "d/foo", true },
		{ "abc/**", "abc/x/y", true },
	};
	int rc = -1;

	CHECK(run_cases(cases, ARRAY_SIZE(cases)) == 0);
	rc = 0;
out:
	return rc;
}

/* "**" between slashes stands for whole folders only. */
static int test_gitattributes_double_star_matches_whole_folders(void)
{
	static const struct match_case cases[] = {
		{ "a/**/b", "a/xb", false },
		{ "a/**/b", "a/x/yb", false },
		{ "**/foo", "xfoo", false },
		{ "**/foo", "d/xfoo", false },
	};
	int rc = -1;

	CHECK(run_cases(cases, ARRAY_SIZE(cases)) == 0);
	rc = 0;
out:
	return rc;
}

/* git-lfs track writes a space in a path as "[[:space:]]". */
static int test_gitattributes_match_character_class_names(void)
{
	static const struct match_case cases[] = {
		{ "my[[:space:]]file.bin", "my file.bin", true },
		{ "my[[:space:]]file.bin", "myxfile.bin", false },
		{ "[[:digit:]].txt", "7.txt", true },
		{ "[[:digit:]].txt", "a.txt", false },
	};
	int rc = -1;

	CHECK(run_cases(cases, ARRAY_SIZE(cases)) == 0);
	rc = 0;
out:
	return rc;
}

static int test_gitattributes_last_match_wins(void)
{
	static const char text[] =
		"*.bin filter=lfs diff=lfs merge=lfs -text\n"
		"special.bin -filter\n"
		"*.txt text\n";
	static const char quiet[] = "*.bin filter=lfs\n*.bin -text\n";
	static const char again[] = "*.bin -filter\n*.bin filter=lfs\n";
	struct gitattributes *ga = gitattributes_parse(text, strlen(text));
	int rc = -1;

	CHECK(ga != NULL);
	CHECK(gitattributes_is_lfs(ga, "a.bin"));
	CHECK(gitattributes_is_lfs(ga, "dir/model.bin"));
	CHECK(!gitattributes_is_lfs(ga, "special.bin"));
	CHECK(!gitattributes_is_lfs(ga, "dir/special.bin"));
	CHECK(!gitattributes_is_lfs(ga, "notes.txt"));
	CHECK(!gitattributes_is_lfs(ga, "a.bins"));
	gitattributes_free(ga);

	/* A later line that says nothing about filter changes nothing. */
	ga = gitattributes_parse(quiet, strlen(quiet));
	CHECK(ga != NULL);
	CHECK(gitattributes_is_lfs(ga, "a.bin"));
	gitattributes_free(ga);

	/* Re-enabled after being switched off. */
	ga = gitattributes_parse(again, strlen(again));
	CHECK(ga != NULL);
	CHECK(gitattributes_is_lfs(ga, "a.bin"));
	rc = 0;
out:
	gitattributes_free(ga);
	return rc;
}

static int test_gitattributes_comments_and_blank_lines(void)
{
	static const char text[] =
		"# *.bin filter=lfs\n"
		"\n"
		"   \n"
		"  *.pt filter=lfs diff=lfs merge=lfs -text\n"
		"\t# indented comment *.txt filter=lfs\n"
		"*.onnx\tfilter=lfs\n";
	struct gitattributes *ga = gitattributes_parse(text, strlen(text));
	int rc = -1;

	CHECK(ga != NULL);
	CHECK(!gitattributes_is_lfs(ga, "a.bin"));
	CHECK(!gitattributes_is_lfs(ga, "a.txt"));
	CHECK(gitattributes_is_lfs(ga, "model.pt"));
	CHECK(gitattributes_is_lfs(ga, "model.onnx"));
	rc = 0;
out:
	gitattributes_free(ga);
	return rc;
}

static int test_gitattributes_crlf_lines(void)
{
	static const char text[] =
		"*.bin filter=lfs diff=lfs merge=lfs -text\r\n"
		"keep.bin -filter\r\n"
		"*.h5 filter=lfs\r\n";
	struct gitattributes *ga = gitattributes_parse(text, strlen(text));
	int rc = -1;

	CHECK(ga != NULL);
	CHECK(gitattributes_is_lfs(ga, "a.bin"));
	CHECK(!gitattributes_is_lfs(ga, "keep.bin"));
	CHECK(gitattributes_is_lfs(ga, "weights.h5"));
	rc = 0;
out:
	gitattributes_free(ga);
	return rc;
}

static int test_gitattributes_empty_text(void)
{
	struct gitattributes *ga = gitattributes_parse(NULL, 0);
	int rc = -1;

	CHECK(ga != NULL);
	CHECK(!gitattributes_is_lfs(ga, "a.bin"));
	CHECK(!gitattributes_is_lfs(NULL, "a.bin"));
	rc = 0;
out:
	gitattributes_free(ga);
	return rc;
}

int main(void)
{
	RUN(test_gitattributes_match_basename);
	RUN(test_gitattributes_match_with_slash);
	RUN(test_gitattributes_double_star_matches_whole_folders);
	RUN(test_gitattributes_match_character_class_names);
	RUN(test_gitattributes_last_match_wins);
	RUN(test_gitattributes_comments_and_blank_lines);
	RUN(test_gitattributes_crlf_lines);
	RUN(test_gitattributes_empty_text);
	return TEST_REPORT();
}
