/*
 * bundle_manifest.c: see bundle_manifest.h. JSON through jansson; every
 * field is checked on the way in, so the import code can use the parsed
 * struct without looking at a path or a name twice.
 */
#include "common/compat.h"

#include <jansson.h>

#include "common/util.h"
#include "ingest/bundle_manifest.h"
#include "storage/store.h"

bool bundle_object_path_valid(const char *path)
{
	size_t n = strlen(path), digits;

	if (n == 4 + SHA256_HEX_LEN && !strncmp(path, "lfs/", 4))
		return is_hex(path + 4, SHA256_HEX_LEN);
	if (n < 10 || strncmp(path, "git/", 4) || strcmp(path + n - 5, ".pack"))
		return false;
	digits = n - 9;
	if (digits > 9)
		return false;
	for (size_t i = 0; i < digits; i++) {
		if (path[4 + i] < '0' || path[4 + i] > '9')
			return false;
	}
	return true;
}

const struct bundle_object *bundle_manifest_object(
	const struct bundle_manifest *m, const char *path)
{
	for (size_t i = 0; i < m->nobjects; i++) {
		if (!strcmp(m->objects[i].path, path))
			return &m->objects[i];
	}
	return NULL;
}

void bundle_manifest_free(struct bundle_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nrepos; i++) {
		free(m->repos[i].refs);
		free(m->repos[i].requires);
		free(m->repos[i].lfs);
	}
	free(m->repos);
	free(m->objects);
	free(m);
}

/* --- parsing ---------------------------------------------------------- */

/* Copies a string member; ERR_INVALID when it is missing, not a string or
 * too long. */
static int get_str(char *out, size_t size, json_t *obj, const char *key,
		   const char *where, struct err *err)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v) || json_string_length(v) >= size ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: %s needs a string '%s'", where,
			       key);
	str_copy(out, json_string_value(v), size);
	return 0;
}

static int parse_object(struct bundle_object *o, json_t *j, struct err *err)
{
	json_t *size = json_object_get(j, "size");
	int rc;

	if (!json_is_object(j))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: an object is not a JSON object");
	if ((rc = get_str(o->path, sizeof(o->path), j, "path", "an object",
			  err)) < 0 ||
	    (rc = get_str(o->sha256, sizeof(o->sha256), j, "sha256",
			  "an object", err)) < 0)
		return rc;
	if (!bundle_object_path_valid(o->path))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: object path '%s' is not allowed",
			       o->path);
	if (!is_hex(o->sha256, SHA256_HEX_LEN))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: object '%s' has a malformed sha256",
			       o->path);
	if (!strncmp(o->path, "lfs/", 4) && strcmp(o->path + 4, o->sha256))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: LFS object '%s' is listed with "
			       "another sha256", o->path);
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return err_set(err, ERR_INVALID,
			       "bundle manifest: object '%s' has no valid size",
			       o->path);
	o->size = (uint64_t)json_integer_value(size);
	return 0;
}

/* An array of lower-case hex strings of length n, copied into *out. */
static int hex_list(void **out, size_t *count, json_t *arr, size_t n,
		    const char *what, const char *repo, struct err *err)
{
	size_t i, len = json_array_size(arr);
	char *list;
	json_t *v;

	*out = NULL;
	*count = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: '%s' of '%s' is not a list", what,
			       repo);
	if (len == 0)
		return 0;
	if (!(list = calloc(len, n + 1)))
		return err_set(err, ERR_FAIL, "out of memory");
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || json_string_length(v) != n ||
		    !is_hex(json_string_value(v), n)) {
			free(list);
			return err_set(err, ERR_INVALID,
				       "bundle manifest: '%s' of '%s' holds a "
				       "malformed id", what, repo);
		}
		memcpy(list + i * (n + 1), json_string_value(v), n + 1);
	}
	*out = list;
	*count = len;
	return 0;
}

static bool ref_name_ok(const char *name)
{
	int valid = 0;

	if (strncmp(name, "refs/heads/", 11) && strncmp(name, "refs/tags/", 10))
		return false;
	return git_reference_name_is_valid(&valid, name) == 0 && valid;
}

static int parse_refs(struct bundle_repo *r, json_t *refs, struct err *err)
{
	const char *name;
	size_t i = 0;
	json_t *v;

	if (!json_is_object(refs) || json_object_size(refs) == 0)
		return err_set(err, ERR_INVALID,
			       "bundle manifest: '%s' has no refs", r->name);
	if (!(r->refs = calloc(json_object_size(refs), sizeof(*r->refs))))
		return err_set(err, ERR_FAIL, "out of memory");
	json_object_foreach(refs, name, v) {
		struct bundle_ref *ref = &r->refs[i++];
		if (strlen(name) >= sizeof(ref->name) || !ref_name_ok(name))
			return err_set(err, ERR_INVALID,
				       "bundle manifest: '%s' has a ref with a "
				       "name that is not allowed: '%.200s'",
				       r->name, name);
		if (!json_is_string(v) || json_string_length(v) != GIT_HEX_LEN ||
		    !is_hex(json_string_value(v), GIT_HEX_LEN))
			return err_set(err, ERR_INVALID,
				       "bundle manifest: ref '%s' of '%s' has a "
				       "malformed id", name, r->name);
		str_copy(ref->name, name, sizeof(ref->name));
		str_copy(ref->oid, json_string_value(v), sizeof(ref->oid));
		r->nrefs++;
	}
	return 0;
}

static int parse_repo(struct bundle_repo *r, json_t *j,
		      const struct bundle_manifest *m, struct err *err)
{
	json_t *priv = json_object_get(j, "private");
	json_t *gated = json_object_get(j, "gated");
	json_t *pack = json_object_get(j, "pack");
	int rc;

	if (!json_is_object(j))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: a repository is not a JSON object");
	if ((rc = get_str(r->type, sizeof(r->type), j, "type", "a repository",
			  err)) < 0 ||
	    (rc = get_str(r->name, sizeof(r->name), j, "name", "a repository",
			  err)) < 0)
		return rc;
	if (!repo_type_valid(r->type) || !repo_name_valid(r->name))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: '%s' is not a valid %s name",
			       r->name, r->type);
	if ((rc = get_str(r->head, sizeof(r->head), j, "head", r->name,
			  err)) < 0)
		return rc;
	if (strncmp(r->head, "refs/heads/", 11) || !ref_name_ok(r->head))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: '%s' has an invalid head", r->name);
	if (!json_is_boolean(priv))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: '%s' needs a boolean 'private'",
			       r->name);
	r->private = json_is_true(priv);
	if (json_is_string(gated) &&
	    (!strcmp(json_string_value(gated), "auto") ||
	     !strcmp(json_string_value(gated), "manual")))
		str_copy(r->gated, json_string_value(gated), sizeof(r->gated));
	else if (!json_is_false(gated))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: 'gated' of '%s' must be false, "
			       "\"auto\" or \"manual\"", r->name);
	if ((rc = parse_refs(r, json_object_get(j, "refs"), err)) < 0 ||
	    (rc = hex_list((void **)&r->requires, &r->nrequires,
			   json_object_get(j, "requires"), GIT_HEX_LEN,
			   "requires", r->name, err)) < 0 ||
	    (rc = hex_list((void **)&r->lfs, &r->nlfs, json_object_get(j, "lfs"),
			   SHA256_HEX_LEN, "lfs", r->name, err)) < 0)
		return rc;
	if (json_is_string(pack)) {
		str_copy(r->pack, json_string_value(pack), sizeof(r->pack));
		if (strncmp(r->pack, "git/", 4) || !bundle_manifest_object(m, r->pack))
			return err_set(err, ERR_INVALID,
				       "bundle manifest: the pack of '%s' is not "
				       "a listed git object", r->name);
	} else if (!json_is_null(pack)) {
		return err_set(err, ERR_INVALID,
			       "bundle manifest: 'pack' of '%s' must be a path or "
			       "null", r->name);
	}
	return 0;
}

static int check_duplicates(const struct bundle_manifest *m, struct err *err)
{
	for (size_t i = 0; i < m->nobjects; i++) {
		for (size_t k = i + 1; k < m->nobjects; k++) {
			if (!strcmp(m->objects[i].path, m->objects[k].path))
				return err_set(err, ERR_INVALID,
					       "bundle manifest: object '%s' is "
					       "listed twice", m->objects[i].path);
		}
	}
	for (size_t i = 0; i < m->nrepos; i++) {
		for (size_t k = i + 1; k < m->nrepos; k++) {
			if (!strcmp(m->repos[i].type, m->repos[k].type) &&
			    !strcasecmp(m->repos[i].name, m->repos[k].name))
				return err_set(err, ERR_INVALID,
					       "bundle manifest: '%s' is listed "
					       "twice", m->repos[i].name);
			if (m->repos[i].pack[0] &&
			    !strcmp(m->repos[i].pack, m->repos[k].pack))
				return err_set(err, ERR_INVALID,
					       "bundle manifest: two repositories "
					       "share the pack '%s'", m->repos[i].pack);
		}
	}
	return 0;
}

static int parse_top(struct bundle_manifest *m, json_t *root, struct err *err)
{
	json_t *objects = json_object_get(root, "objects");
	json_t *repos = json_object_get(root, "repos");
	json_t *version = json_object_get(root, "version");
	json_t *since = json_object_get(root, "since");
	json_t *fmt = json_object_get(root, "format");
	size_t i;
	json_t *v;
	int rc;

	if (!json_is_object(root) || !json_is_string(fmt) ||
	    strcmp(json_string_value(fmt), BUNDLE_FORMAT))
		return err_set(err, ERR_INVALID,
			       "not a Haven bundle manifest (no \"format\": \"%s\")",
			       BUNDLE_FORMAT);
	if (!json_is_integer(version) || json_integer_value(version) != BUNDLE_VERSION)
		return err_set(err, ERR_INVALID,
			       "unsupported bundle version (this Haven reads "
			       "version %d)", BUNDLE_VERSION);
	m->version = BUNDLE_VERSION;
	if ((rc = get_str(m->created, sizeof(m->created), root, "created",
			  "the manifest", err)) < 0 ||
	    (rc = get_str(m->key, sizeof(m->key), root, "key", "the manifest",
			  err)) < 0)
		return rc;
	if (json_is_string(since) && json_string_length(since) == SHA256_HEX_LEN &&
	    is_hex(json_string_value(since), SHA256_HEX_LEN))
		str_copy(m->since, json_string_value(since), sizeof(m->since));
	else if (!json_is_null(since))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: 'since' must be a sha256 or null");
	if (!json_is_array(objects) || !json_is_array(repos))
		return err_set(err, ERR_INVALID,
			       "bundle manifest: 'objects' and 'repos' must be lists");
	if (json_array_size(objects) &&
	    !(m->objects = calloc(json_array_size(objects), sizeof(*m->objects))))
		return err_set(err, ERR_FAIL, "out of memory");
	json_array_foreach(objects, i, v) {
		if ((rc = parse_object(&m->objects[i], v, err)) < 0)
			return rc;
		m->nobjects++;
	}
	if (json_array_size(repos) &&
	    !(m->repos = calloc(json_array_size(repos), sizeof(*m->repos))))
		return err_set(err, ERR_FAIL, "out of memory");
	json_array_foreach(repos, i, v) {
		m->nrepos++;
		if ((rc = parse_repo(&m->repos[i], v, m, err)) < 0)
			return rc;
	}
	return check_duplicates(m, err);
}

int bundle_manifest_parse(struct bundle_manifest **out, const char *text,
			  size_t len, struct err *err)
{
	struct bundle_manifest *m;
	json_error_t jerr;
	json_t *root;
	int rc;

	*out = NULL;
	if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)))
		return err_set(err, ERR_INVALID,
			       "bundle manifest is not valid JSON: %s (line %d)",
			       jerr.text, jerr.line);
	if (!(m = calloc(1, sizeof(*m)))) {
		json_decref(root);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	rc = parse_top(m, root, err);
	json_decref(root);
	if (rc < 0) {
		bundle_manifest_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* --- formatting ------------------------------------------------------- */

static json_t *hex_array(const char *list, size_t count, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < count; i++)
		json_array_append_new(a, json_string(list + i * (n + 1)));
	return a;
}

static json_t *repo_json(const struct bundle_repo *r)
{
	json_t *j = json_object(), *refs = json_object();

	for (size_t i = 0; i < r->nrefs; i++)
		json_object_set_new(refs, r->refs[i].name,
				    json_string(r->refs[i].oid));
	json_object_set_new(j, "type", json_string(r->type));
	json_object_set_new(j, "name", json_string(r->name));
	json_object_set_new(j, "private", json_boolean(r->private));
	json_object_set_new(j, "gated", r->gated[0] ? json_string(r->gated)
						    : json_false());
	json_object_set_new(j, "head", json_string(r->head));
	json_object_set_new(j, "refs", refs);
	json_object_set_new(j, "requires",
			    hex_array((const char *)r->requires, r->nrequires,
				      GIT_HEX_LEN));
	json_object_set_new(j, "pack", r->pack[0] ? json_string(r->pack)
						  : json_null());
	json_object_set_new(j, "lfs", hex_array((const char *)r->lfs, r->nlfs,
						SHA256_HEX_LEN));
	return j;
}

int bundle_manifest_format(char **out, size_t *len,
			   const struct bundle_manifest *m, struct err *err)
{
	json_t *root = json_object(), *repos = json_array(),
	       *objects = json_array();
	char *text;

	json_object_set_new(root, "format", json_string(BUNDLE_FORMAT));
	json_object_set_new(root, "version", json_integer(BUNDLE_VERSION));
	json_object_set_new(root, "created", json_string(m->created));
	json_object_set_new(root, "key", json_string(m->key));
	json_object_set_new(root, "since", m->since[0] ? json_string(m->since)
						       : json_null());
	for (size_t i = 0; i < m->nrepos; i++)
		json_array_append_new(repos, repo_json(&m->repos[i]));
	for (size_t i = 0; i < m->nobjects; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "path", json_string(m->objects[i].path));
		json_object_set_new(o, "size",
				    json_integer((json_int_t)m->objects[i].size));
		json_object_set_new(o, "sha256", json_string(m->objects[i].sha256));
		json_array_append_new(objects, o);
	}
	json_object_set_new(root, "repos", repos);
	json_object_set_new(root, "objects", objects);
	text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return err_set(err, ERR_FAIL, "out of memory");
	*len = strlen(text);
	/* A final newline, so the file reads well with cat. */
	*out = realloc(text, *len + 2);
	if (!*out) {
		free(text);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	(*out)[(*len)++] = '\n';
	(*out)[*len] = '\0';
	return 0;
}
