/*
 * test_gitignore.c: the .gitignore rules the preupload answer applies
 * (ingest/gitignore.h): patterns, folders, negation and anchoring.
 */
#include "common/compat.h"

#include "ingest/gitignore.h"
#include "tests/unit/test.h"

static struct gitignore *parse(const char *text)
{
	return gitignore_parse(text, strlen(text));
}

static int test_gitignore_patterns(void)
{
	struct gitignore *gi = parse("# comment\n\n*.log\n  \nbuild/\n/top.txt\n"
				     "docs/*.tmp\n\\#hash\nspace\\ \n");
	int rc = -1;

	CHECK(gi);
	CHECK(gitignore_ignored(gi, "a.log"));
	CHECK(gitignore_ignored(gi, "deep/dir/a.log"));
	CHECK(!gitignore_ignored(gi, "a.log.txt"));
	CHECK(gitignore_ignored(gi, "build/out.bin"));
	CHECK(gitignore_ignored(gi, "src/build/out.bin"));
	CHECK(!gitignore_ignored(gi, "build"));	/* a file named build */
	CHECK(gitignore_ignored(gi, "top.txt"));
	CHECK(!gitignore_ignored(gi, "sub/top.txt"));
	CHECK(gitignore_ignored(gi, "docs/x.tmp"));
	CHECK(!gitignore_ignored(gi, "other/docs/x.tmp"));
	CHECK(gitignore_ignored(gi, "#hash"));
	CHECK(!gitignore_ignored(gi, "comment"));
	CHECK(gitignore_ignored(gi, "space "));
	CHECK(!gitignore_ignored(gi, "readme.md"));
	rc = 0;
out:
	gitignore_free(gi);
	return rc;
}

static int test_gitignore_negation(void)
{
	struct gitignore *gi = parse("*.bin\n!keep.bin\nlogs/\n!logs/important.txt\n");
	int rc = -1;

	CHECK(gi);
	CHECK(gitignore_ignored(gi, "w.bin"));
	CHECK(!gitignore_ignored(gi, "keep.bin"));
	CHECK(!gitignore_ignored(gi, "sub/keep.bin"));
	/* A file below an ignored folder cannot be re-included. */
	CHECK(gitignore_ignored(gi, "logs/important.txt"));
	rc = 0;
out:
	gitignore_free(gi);
	return rc;
}

static int test_gitignore_empty(void)
{
	struct gitignore *gi = parse("");
	int rc = -1;

	CHECK(gi);
	CHECK(!gitignore_ignored(gi, "anything"));
	CHECK(!gitignore_ignored(NULL, "anything"));
	gitignore_free(gi);
	gi = gitignore_parse(NULL, 0);
	CHECK(gi && !gitignore_ignored(gi, "x"));
	rc = 0;
out:
	gitignore_free(gi);
	return rc;
}

int main(void)
{
	RUN(test_gitignore_patterns);
	RUN(test_gitignore_negation);
	RUN(test_gitignore_empty);
	return TEST_REPORT();
}
