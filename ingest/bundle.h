/*
 * bundle.h: air-gap bundles. A bundle carries repositories from one Haven
 * to another without a network: their git objects (one pack per
 * repository), the LFS objects their commits name, and a signed manifest
 * listing every object with its size and sha256. docs/bundles.md
 * describes the format.
 *
 * bundle_export writes a bundle as a directory, or as a tar file when the
 * path ends in ".tar". With a since manifest (the manifest of an earlier
 * bundle) it leaves out the commits reachable from that manifest's refs
 * and the LFS objects that manifest listed.
 *
 * bundle_import checks the signature against trusted public keys, then
 * the size and sha256 of every object, before anything is written. Then,
 * following the durability rule: LFS objects into the blob store (those
 * already there are skipped, so an interrupted import resumes), claims
 * for the repository, the pack into the repository's git directory (a
 * new repository is created with the manifest's settings), refs (new ones
 * and fast-forwards; anything else needs force), the repository record,
 * and the lineage of each default branch that moved.
 */
#ifndef HAVEN_BUNDLE_H
#define HAVEN_BUNDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/store.h"

struct bundle_export_options {
	const char *type;		/* of every repository; "model" by default */
	const char *const *repos;	/* "NS/NAME" or "NS/NAME@REV" */
	size_t nrepos;
	const char *to;			/* a new directory, or a new .tar file */
	const char *since;		/* an earlier bundle's manifest, or NULL */
	const char *key;		/* private key file */
};

struct bundle_import_options {
	const char *path;		/* a bundle directory or tar file */
	const char *const *trust;	/* public key files */
	size_t ntrust;
	bool force;			/* allow refs to move other than forward */
};

struct bundle_result {
	size_t repos, repos_created;
	size_t refs, refs_updated;
	size_t packs, git_objects;
	size_t lfs_objects;		/* LFS objects in the bundle */
	size_t lfs_stored, lfs_present;	/* import: written, already held */
	uint64_t bytes;			/* bytes of every object in the bundle */
	char key[96];			/* fingerprint of the signing key */
};

int bundle_export(struct store *store, const struct bundle_export_options *opt,
		  struct bundle_result *res, struct err *err);

int bundle_import(struct store *store, const struct bundle_import_options *opt,
		  struct bundle_result *res, struct err *err);

/* --- shared by the export and import halves ------------------------------ */

/* Makes a private folder <data>/tmp/bundle-<what>-XXXXXX, locked through
 * *lock_fd until the caller closes it (after bundle_remove_tree). Folders
 * of earlier commands that died are removed first. */
int bundle_tmpdir(char *out, size_t size, int *lock_fd,
		  const struct store *store, const char *what, struct err *err);

/* Removes a folder and everything in it (best effort). */
void bundle_remove_tree(const char *path);

/* Copies the rest of in to out (when out >= 0) while hashing; *size gets
 * the byte count. */
int bundle_copy_hash(int in, int out, uint64_t *size,
		     char sha[SHA256_HEX_LEN + 1], struct err *err);

#endif
