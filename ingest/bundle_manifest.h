/*
 * bundle_manifest.h: the manifest of an air-gap bundle (docs/bundles.md):
 * which repositories a bundle carries (type, name, settings, refs and the
 * commits an incremental bundle builds on) and every object file in it
 * with its size and SHA-256. The manifest's exact bytes are what the
 * bundle's signature covers.
 *
 * Parsing checks everything a reader must not trust: object paths are
 * only "git/<digits>.pack" or "lfs/<64 hex>" (so none can leave the
 * bundle), an LFS object's name is its sha256, repository names, ref
 * names and ids are well formed, and nothing is listed twice.
 */
#ifndef HAVEN_BUNDLE_MANIFEST_H
#define HAVEN_BUNDLE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/gitrepo.h"
#include "storage/hash.h"
#include "storage/meta.h"

#define BUNDLE_FORMAT "haven-bundle"
#define BUNDLE_VERSION 1
#define BUNDLE_MANIFEST "manifest.json"
#define BUNDLE_SIGNATURE "manifest.sig"
#define BUNDLE_PATH_MAX 80	/* "lfs/" + 64 hex, "git/<n>.pack" */
#define BUNDLE_REF_MAX 256
#define BUNDLE_MANIFEST_MAX ((size_t)256 << 20)

struct bundle_object {
	char path[BUNDLE_PATH_MAX];
	uint64_t size;
	char sha256[SHA256_HEX_LEN + 1];
};

struct bundle_ref {
	char name[BUNDLE_REF_MAX];	/* refs/heads/... or refs/tags/... */
	char oid[GIT_HEX_LEN + 1];	/* what the ref points at (a commit or
					 * an annotated tag) */
};

struct bundle_repo {
	char type[8];
	char name[REPO_NAME_MAX];
	bool private;
	char gated[8];			/* "", "auto" or "manual" */
	char head[BUNDLE_REF_MAX];	/* the default branch, refs/heads/... */
	struct bundle_ref *refs;
	size_t nrefs;
	char (*requires)[GIT_HEX_LEN + 1];	/* commits the target must hold */
	size_t nrequires;
	char pack[BUNDLE_PATH_MAX];	/* "" when the bundle adds no git objects */
	char (*lfs)[SHA256_HEX_LEN + 1];	/* LFS objects its new commits name */
	size_t nlfs;
};

struct bundle_manifest {
	int version;
	char created[32];
	char key[96];			/* fingerprint of the signing key */
	char since[SHA256_HEX_LEN + 1];	/* sha256 of the earlier manifest, or "" */
	struct bundle_repo *repos;
	size_t nrepos;
	struct bundle_object *objects;
	size_t nobjects;
};

/* Parses and checks manifest text. ERR_INVALID, with the reason, for
 * anything malformed. */
int bundle_manifest_parse(struct bundle_manifest **out, const char *text,
			  size_t len, struct err *err);

/* Renders a manifest as JSON text (malloc'd, NUL-terminated). */
int bundle_manifest_format(char **out, size_t *len,
			   const struct bundle_manifest *m, struct err *err);

void bundle_manifest_free(struct bundle_manifest *m);

/* The object listed under path, or NULL. */
const struct bundle_object *bundle_manifest_object(
	const struct bundle_manifest *m, const char *path);

/* True for the object names a bundle may hold: "git/<digits>.pack" and
 * "lfs/<64 lower-case hex>". */
bool bundle_object_path_valid(const char *path);

#endif
