/*
 * store.c: the data directory and repository lifecycle; see store.h.
 *
 * Creating a repository writes git first (the bare repository and its
 * initial commit, fsynced) and the LMDB record last, so a crash leaves
 * either no repository or a complete one; a stray git directory without a
 * record is harmless and reported by fsck.
 */
#include "common/compat.h"

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/gitrepo.h"
#include "storage/lineage.h"
#include "storage/stats.h"
#include "storage/repo_refs.h"
#include "storage/store.h"

static const char model_attributes[] =
	"*.7z filter=lfs diff=lfs merge=lfs -text\n"
	"*.arrow filter=lfs diff=lfs merge=lfs -text\n"
	"*.bin filter=lfs diff=lfs merge=lfs -text\n"
	"*.bz2 filter=lfs diff=lfs merge=lfs -text\n"
	"*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
	"*.ftz filter=lfs diff=lfs merge=lfs -text\n"
	"*.gz filter=lfs diff=lfs merge=lfs -text\n"
	"*.h5 filter=lfs diff=lfs merge=lfs -text\n"
	"*.joblib filter=lfs diff=lfs merge=lfs -text\n"
	"*.lfs.* filter=lfs diff=lfs merge=lfs -text\n"
	"*.mlmodel filter=lfs diff=lfs merge=lfs -text\n"
	"*.model filter=lfs diff=lfs merge=lfs -text\n"
	"*.msgpack filter=lfs diff=lfs merge=lfs -text\n"
	"*.npy filter=lfs diff=lfs merge=lfs -text\n"
	"*.npz filter=lfs diff=lfs merge=lfs -text\n"
	"*.onnx filter=lfs diff=lfs merge=lfs -text\n"
	"*.ot filter=lfs diff=lfs merge=lfs -text\n"
	"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
	"*.pb filter=lfs diff=lfs merge=lfs -text\n"
	"*.pickle filter=lfs diff=lfs merge=lfs -text\n"
	"*.pkl filter=lfs diff=lfs merge=lfs -text\n"
	"*.pt filter=lfs diff=lfs merge=lfs -text\n"
	"*.pth filter=lfs diff=lfs merge=lfs -text\n"
	"*.rar filter=lfs diff=lfs merge=lfs -text\n"
	"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
	"saved_model/**/* filter=lfs diff=lfs merge=lfs -text\n"
	"*.tar.* filter=lfs diff=lfs merge=lfs -text\n"
	"*.tar filter=lfs diff=lfs merge=lfs -text\n"
	"*.tflite filter=lfs diff=lfs merge=lfs -text\n"
	"*.tgz filter=lfs diff=lfs merge=lfs -text\n"
	"*.wasm filter=lfs diff=lfs merge=lfs -text\n"
	"*.xz filter=lfs diff=lfs merge=lfs -text\n"
	"*.zip filter=lfs diff=lfs merge=lfs -text\n"
	"*.zst filter=lfs diff=lfs merge=lfs -text\n"
	"*tfevents* filter=lfs diff=lfs merge=lfs -text\n";

static const char dataset_extra_attributes[] =
	"# Audio files - uncompressed\n"
	"*.pcm filter=lfs diff=lfs merge=lfs -text\n"
	"*.sam filter=lfs diff=lfs merge=lfs -text\n"
	"*.raw filter=lfs diff=lfs merge=lfs -text\n"
	"# Audio files - compressed\n"
	"*.aac filter=lfs diff=lfs merge=lfs -text\n"
	"*.flac filter=lfs diff=lfs merge=lfs -text\n"
	"*.mp3 filter=lfs diff=lfs merge=lfs -text\n"
	"*.ogg filter=lfs diff=lfs merge=lfs -text\n"
	"*.wav filter=lfs diff=lfs merge=lfs -text\n"
	"# Image files - uncompressed\n"
	"*.bmp filter=lfs diff=lfs merge=lfs -text\n"
	"*.gif filter=lfs diff=lfs merge=lfs -text\n"
	"*.png filter=lfs diff=lfs merge=lfs -text\n"
	"*.tiff filter=lfs diff=lfs merge=lfs -text\n"
	"# Image files - compressed\n"
	"*.jpg filter=lfs diff=lfs merge=lfs -text\n"
	"*.jpeg filter=lfs diff=lfs merge=lfs -text\n"
	"*.webp filter=lfs diff=lfs merge=lfs -text\n"
	"*.lz4 filter=lfs diff=lfs merge=lfs -text\n"
	"*.mds filter=lfs diff=lfs merge=lfs -text\n";

static char dataset_attributes[sizeof(model_attributes) +
			       sizeof(dataset_extra_attributes)];

const char *repo_default_gitattributes(const char *type)
{
	if (strcmp(type, "dataset"))
		return model_attributes;
	if (!dataset_attributes[0])
		snprintf(dataset_attributes, sizeof(dataset_attributes), "%s%s",
			 model_attributes, dataset_extra_attributes);
	return dataset_attributes;
}

int store_open(struct store **out, const char *data_dir, bool create,
	       struct err *err)
{
	struct store *s;
	struct stat st;
	char git_dir[4200];
	int rc;

	if (stat(data_dir, &st) < 0) {
		if (errno != ENOENT || !create)
			return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL,
				       "cannot use data directory '%s': %s",
				       data_dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		return err_set(err, ERR_INVALID,
			       "data directory '%s' is not a directory", data_dir);
	} else if (access(data_dir, R_OK | W_OK | X_OK) < 0) {
		return err_set(err, ERR_FAIL, "cannot use data directory '%s': %s",
			       data_dir, strerror(errno));
	}
	if (!(s = calloc(1, sizeof(*s))))
		return err_set(err, ERR_FAIL, "out of memory");
	str_copy(s->data_dir, data_dir, sizeof(s->data_dir));
	snprintf(git_dir, sizeof(git_dir), "%s/git", data_dir);
	if (mkdir_p(git_dir) < 0) {
		rc = err_set(err, ERR_FAIL, "cannot create '%s': %s", git_dir,
			     strerror(errno));
		goto fail;
	}
	if ((rc = meta_open(&s->meta, data_dir, STORE_DEFAULT_MAP_SIZE, err)) < 0 ||
	    (rc = blob_store_open(&s->blobs, data_dir, err)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_free(s);
	return rc;
}

void store_free(struct store *store)
{
	if (!store)
		return;
	meta_free(store->meta);
	blob_store_free(store->blobs);
	free(store);
}

bool repo_type_valid(const char *type)
{
	return !strcmp(type, "model") || !strcmp(type, "dataset") ||
	       !strcmp(type, "space");
}

static bool part_valid(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	if (s[0] == '-' || s[0] == '.' || s[len - 1] == '-' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			  c == '.';
		if (!ok)
			return false;
		if (i && (c == '-' || c == '.') && s[i - 1] == c)
			return false;
	}
	return true;
}

bool repo_name_valid(const char *name)
{
	const char *slash = strchr(name, '/');
	size_t len = strlen(name);

	if (!slash || strchr(slash + 1, '/'))
		return false;
	if (len >= 4 && !strcasecmp(name + len - 4, ".git"))
		return false;
	return part_valid(name, (size_t)(slash - name), 96) &&
	       part_valid(slash + 1, strlen(slash + 1), 96);
}

void repo_git_path(const struct store *store, const struct repo_record *rec,
		   char *out, size_t size)
{
	snprintf(out, size, "%s/git/%s.git", store->data_dir, rec->id);
}

int repo_open_git(git_repository **out, const struct store *store,
		  const struct repo_record *rec, struct err *err)
{
	char path[4200];

	repo_git_path(store, rec, path, sizeof(path));
	return gitrepo_open(out, path, err);
}

/* meta_repo_get or meta_redirect_get. */
typedef int (*record_get_fn)(struct meta_txn *txn, const char *type,
			     const char *name, struct repo_record *out,
			     struct err *err);

/* Checks type and name, then runs get in a read transaction of its own. */
static int record_read(struct store *store, record_get_fn get,
		       const char *type, const char *name,
		       struct repo_record *out, struct err *err)
{
	struct meta_txn *txn = NULL;
	int rc;

	if (!repo_type_valid(type) || !repo_name_valid(name))
		return err_set(err, ERR_NOREPO, "Repository not found");
	if ((rc = meta_txn_begin(&txn, store->meta, false, err)) < 0)
		return rc;
	rc = get(txn, type, name, out, err);
	meta_txn_abort(txn);
	return rc;
}

int repo_lookup(struct store *store, const char *type, const char *name,
		struct repo_record *out, struct err *err)
{
	return record_read(store, meta_repo_get, type, name, out, err);
}

static int initial_commit(git_repository *repo, const char *type,
			  struct err *err)
{
	const char *attrs = repo_default_gitattributes(type);
	struct gitrepo_file file = { ".gitattributes", 0100644, { { 0 } } };
	struct gitrepo_commit_spec spec = {
		.ref = "refs/heads/main", .files = &file, .nfiles = 1,
		.author = "system", .message = "initial commit",
	};
	git_oid commit;

	if (git_blob_create_from_buffer(&file.blob, repo, attrs, strlen(attrs)) < 0)
		return gitrepo_fail(err, ERR_FAIL, "cannot write .gitattributes");
	return gitrepo_commit_tree(repo, &spec, &commit, NULL, err);
}

static void new_repo_id(char out[REPO_ID_LEN + 1])
{
	unsigned char raw[REPO_ID_LEN / 2];

	RAND_bytes(raw, sizeof(raw));
	hex_encode(out, raw, sizeof(raw));
}

int repo_create(struct store *store, const char *type, const char *name,
		struct repo_record *out, struct err *err)
{
	return repo_create_ex(store, type, name, false, out, err);
}

static int create_repo(struct store *store, const char *type,
		       const char *name, bool private, bool with_initial_commit,
		       struct repo_record *out, struct err *err)
{
	struct repo_record rec;
	struct meta_txn *txn = NULL;
	git_repository *repo = NULL;
	char path[4200];
	int rc;

	if (!repo_type_valid(type))
		return err_set(err, ERR_INVALID, "invalid repository type '%s'",
			       type);
	if (!repo_name_valid(name))
		return err_set(err, ERR_INVALID,
			       "invalid repository id '%.200s': expected "
			       "namespace/name of letters, digits, '-', '_' "
			       "and '.'", name);
	if (repo_lookup(store, type, name, &rec, NULL) == 0)
		return err_set(err, ERR_EXISTS, "repository '%s' already exists",
			       rec.name);
	memset(&rec, 0, sizeof(rec));
	new_repo_id(rec.id);
	str_copy(rec.type, type, sizeof(rec.type));
	str_copy(rec.name, name, sizeof(rec.name));
	rec.created = time(NULL);
	rec.private = private;
	repo_git_path(store, &rec, path, sizeof(path));
	if ((rc = gitrepo_init_bare(&repo, path, err)) < 0 ||
	    (with_initial_commit && (rc = initial_commit(repo, type, err)) < 0) ||
	    (rc = meta_txn_begin(&txn, store->meta, true, err)) < 0)
		goto out;
	if ((rc = meta_repo_insert(txn, &rec, err)) < 0 ||
	    (rc = repo_refs_put(txn, rec.id, repo, err)) < 0) {
		meta_txn_abort(txn);
		goto out;
	}
	rc = meta_txn_commit(txn, err);
out:
	git_repository_free(repo);
	if (rc == 0 && out)
		*out = rec;
	return rc;
}

int repo_create_ex(struct store *store, const char *type, const char *name,
		   bool private, struct repo_record *out, struct err *err)
{
	return create_repo(store, type, name, private, true, out, err);
}

int repo_create_empty(struct store *store, const char *type, const char *name,
		      bool private, struct repo_record *out, struct err *err)
{
	return create_repo(store, type, name, private, false, out, err);
}

/* --- delete and move ------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Takes a git directory out of sight with one rename into tmp/, then
 * removes it: no reader ever opens a half-deleted repository. */
void repo_remove_git_dir(struct store *store, const struct repo_record *rec)
{
	char path[4200], gone[4300];

	repo_git_path(store, rec, path, sizeof(path));
	snprintf(gone, sizeof(gone), "%s/tmp/deleted-%s.git", store->data_dir,
		 rec->id);
	if (rename(path, gone) < 0) {
		log_msg(LOG_WARN, "event=repo_delete_git_failed path=%s error=%s",
			path, strerror(errno));
		return;
	}
	if (nftw(gone, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		log_msg(LOG_WARN, "event=repo_delete_git_failed path=%s error=%s",
			gone, strerror(errno));
}

int repo_delete(struct store *store, const char *type, const char *name,
		struct err *err)
{
	struct meta_txn *txn = NULL;
	struct repo_record rec;
	int rc;

	if (!repo_type_valid(type) || !repo_name_valid(name))
		return err_set(err, ERR_NOREPO, "Repository not found");
	if ((rc = meta_txn_begin(&txn, store->meta, true, err)) < 0)
		return rc;
	if ((rc = meta_repo_get(txn, type, name, &rec, err)) < 0 ||
	    (rc = meta_repo_delete(txn, &rec, err)) < 0 ||
	    (rc = lineage_remove(txn, rec.id, err)) < 0 ||
	    (!strcmp(type, "model") &&
	     (rc = lineage_orphan(txn, &rec, err)) < 0) ||
	    (rc = stats_remove(txn, rec.id, err)) < 0 ||
	    (rc = meta_kv_del(txn, META_KV_MIRRORS, rec.id, err)) < 0 ||
	    (rc = meta_kv_del(txn, META_KV_GIT_REFS, rec.id, err)) < 0) {
		meta_txn_abort(txn);
		return rc;
	}
	/* The record goes first: from then on nothing names the git dir. */
	if ((rc = meta_txn_commit(txn, err)) < 0)
		return rc;
	repo_remove_git_dir(store, &rec);
	return 0;
}

static const char *type_title(const char *type)
{
	if (!strcmp(type, "dataset"))
		return "dataset";
	return !strcmp(type, "space") ? "space" : "model";
}

int repo_move(struct store *store, const char *type, const char *from,
	      const char *to, struct repo_record *out, struct err *err)
{
	struct meta_txn *txn = NULL;
	struct repo_record rec, other;
	int rc;

	if (!repo_type_valid(type) || !repo_name_valid(from))
		return err_set(err, ERR_NOREPO, "Repository not found");
	if (!repo_name_valid(to))
		return err_set(err, ERR_INVALID, "invalid repository id '%.200s'",
			       to);
	if ((rc = meta_txn_begin(&txn, store->meta, true, err)) < 0)
		return rc;
	if ((rc = meta_repo_get(txn, type, from, &rec, err)) < 0)
		goto fail;
	if (meta_repo_get(txn, type, to, &other, NULL) == 0 &&
	    strcmp(other.id, rec.id)) {
		rc = err_set(err, ERR_EXISTS, "A %s repository called %s already "
			     "exists", type_title(type), other.name);
		goto fail;
	}
	if ((rc = meta_repo_rename(txn, &rec, to, err)) < 0 ||
	    (!strcmp(type, "model") &&
	     (rc = lineage_rename(txn, rec.name, to, err)) < 0))
		goto fail;
	if ((rc = meta_txn_commit(txn, err)) < 0)
		return rc;
	str_copy(rec.name, to, sizeof(rec.name));
	if (out)
		*out = rec;
	return 0;
fail:
	meta_txn_abort(txn);
	return rc;
}

int repo_lookup_moved(struct store *store, const char *type, const char *name,
		      struct repo_record *out, struct err *err)
{
	return record_read(store, meta_redirect_get, type, name, out, err);
}
