/*
 * test_tmp.h: scratch folders for the unit tests that work on disk.
 *
 * A test makes its own folder under $TMPDIR (or /tmp) with scratch_dir()
 * or scratch_meta(), and removes it with rm_rf() after its "out:" label.
 * On failure the helpers leave the name empty, so that rm_rf() on a
 * folder that was never made does nothing. The functions are static
 * inline so that a test may use any subset of them without warnings.
 */
#ifndef HAVEN_TEST_TMP_H
#define HAVEN_TEST_TMP_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "storage/meta.h"

#define SCRATCH_LEN 256
#define SCRATCH_MAP_SIZE ((size_t)16 << 20)

static inline int scratch_remove_entry(const char *path, const struct stat *st,
				       int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes dir and everything below it; nothing when dir is empty. */
static inline void rm_rf(const char *dir)
{
	if (dir[0])
		nftw(dir, scratch_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Makes a new folder named haven-test-<tag>-XXXXXX in $TMPDIR (or /tmp)
 * and writes its path to dir. Returns 0, or -1 with dir left empty.
 */
static inline int scratch_dir(char dir[SCRATCH_LEN], const char *tag)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, SCRATCH_LEN, "%s/haven-test-%s-XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp", tag);
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		return -1;
	}
	return 0;
}

/* Makes a scratch folder in dir and opens a fresh, small environment in it. */
static inline int scratch_meta(struct meta **out, char dir[SCRATCH_LEN],
			       const char *tag)
{
	if (scratch_dir(dir, tag) < 0)
		return -1;
	return meta_open(out, dir, SCRATCH_MAP_SIZE, NULL);
}

#endif
