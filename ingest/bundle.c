/*
 * bundle.c: what the export and import halves of bundles share: private
 * scratch folders under <data>/tmp (locked while in use, swept when the
 * command that made one died) and hashing while copying.
 */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ingest/bundle.h"

/* Removes the scratch folders of bundle commands that died (a crash, a
 * kill): their lock is no longer held. A folder without a lock file yet
 * may belong to a command that is just starting, so only an old one is
 * taken for stale. */
static void sweep_stale(const char *tmp)
{
	struct dirent *e;
	DIR *d = opendir(tmp);

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[4400], lock[4500];
		struct stat st;
		int fd;

		if (strncmp(e->d_name, "bundle-", 7))
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
		snprintf(lock, sizeof(lock), "%s/.lock", path);
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if ((fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0) {
			if (errno == ENOENT && st.st_mtime < time(NULL) - 3600)
				bundle_remove_tree(path);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			log_msg(LOG_INFO, "event=bundle_stale_removed path=%s", path);
			bundle_remove_tree(path);
		}
		close(fd);
	}
	closedir(d);
}

int bundle_tmpdir(char *out, size_t size, int *lock_fd,
		  const struct store *store, const char *what, struct err *err)
{
	char dir[4200], lock[4400];

	*lock_fd = -1;
	out[0] = '\0';
	snprintf(dir, sizeof(dir), "%s/tmp", store->data_dir);
	if (mkdir_p(dir) < 0)
		return err_set(err, ERR_FAIL, "cannot create '%s': %s", dir,
			       strerror(errno));
	sweep_stale(dir);
	if ((size_t)snprintf(out, size, "%s/bundle-%s-XXXXXX", dir, what) >= size) {
		out[0] = '\0';
		return err_set(err, ERR_FAIL, "data directory path too long");
	}
	if (!mkdtemp(out)) {
		out[0] = '\0';
		return err_set(err, ERR_FAIL, "cannot create a folder in '%s': %s",
			       dir, strerror(errno));
	}
	/* Held until the command ends, so that a later command can tell a
	 * folder in use from one a dead command left behind. */
	snprintf(lock, sizeof(lock), "%s/.lock", out);
	if ((*lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
	    flock(*lock_fd, LOCK_EX) < 0)
		return err_set(err, ERR_FAIL, "cannot lock '%s': %s", lock,
			       strerror(errno));
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void bundle_remove_tree(const char *path)
{
	if (path && path[0])
		nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int bundle_copy_hash(int in, int out, uint64_t *size,
		     char sha[SHA256_HEX_LEN + 1], struct err *err)
{
	struct sha256_ctx *ctx = sha256_new();
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	uint64_t total = 0;
	int rc = 0;

	if (!ctx || !buf) {
		sha256_free(ctx);
		free(buf);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	for (;;) {
		ssize_t n = read(in, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(err, ERR_FAIL, "read failed: %s",
				     strerror(errno));
			break;
		}
		if (n == 0)
			break;
		sha256_update(ctx, buf, (size_t)n);
		total += (uint64_t)n;
		if (out >= 0 && write_full(out, buf, (size_t)n) < 0) {
			rc = err_set(err, ERR_FAIL, "write failed: %s",
				     strerror(errno));
			break;
		}
	}
	free(buf);
	if (rc < 0) {
		sha256_free(ctx);
		return rc;
	}
	sha256_final_hex(ctx, sha);
	*size = total;
	return 0;
}
