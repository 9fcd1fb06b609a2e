/*
 * load_api.c: libhavenload.so's ctypes-friendly wrapper around loader.h
 * (load_api.h). The device memory of a load made with "keep" stays valid
 * until haven_load_close.
 */
#include "common/compat.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/util.h"
#include "loaders/load_api.h"
#include "loaders/loader.h"
#include "loaders/planner.h"
#include "storage/gitrepo.h"

struct handle {
	struct load *l;
	char *report;
	json_t *opts;	/* the load keeps pointers into it */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
	gitrepo_global_init();
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int haven_load_open(void **out, const char *opts_json, char *errbuf,
		    size_t errlen)
{
	struct load_opts o = { .mode = PLAN_AUTO };
	struct err err = { 0 };
	struct handle *h;
	json_error_t jerr;
	json_t *j;
	int rc;

	*out = NULL;
	pthread_once(&once, init_once);
	j = json_loads(opts_json ? opts_json : "", 0, &jerr);
	if (!json_is_object(j) || !jstr(j, "repo")) {
		json_decref(j);
		if (errbuf && errlen)
			str_copy(errbuf, "options must be a JSON object with \"repo\"", errlen);
		return ERR_INVALID;
	}
	o.repo = jstr(j, "repo");
	o.rev = jstr(j, "revision");
	o.endpoint = jstr(j, "endpoint");
	o.data_dir = jstr(j, "data");
	o.token = jstr(j, "token") ? jstr(j, "token") : getenv("HF_TOKEN");
	o.cache_dir = jstr(j, "cache") ? jstr(j, "cache") : "/tmp/haven-load-cache";
	o.manifest_dir = jstr(j, "manifests");
	o.manifest_file = jstr(j, "manifest");
	o.only = jstr(j, "only");
	o.device = (int)json_integer_value(json_object_get(j, "device"));
	o.vram_limit = (uint64_t)json_integer_value(json_object_get(j, "vram_limit"));
	o.dry_run = json_is_true(json_object_get(j, "dry_run"));
	o.require_gpu = json_is_true(json_object_get(j, "require_gpu"));
	o.keep = !json_is_false(json_object_get(j, "keep"));
	o.trust_blobs = json_is_true(json_object_get(j, "trust_blobs"));
	o.readers = (int)json_integer_value(json_object_get(j, "readers"));
	o.parallel = (int)json_integer_value(json_object_get(j, "parallel"));
	if (jstr(j, "plan") && (o.mode = plan_mode_parse(jstr(j, "plan"))) < 0)
		o.mode = -1;
	if (o.mode < 0 || !o.endpoint == !o.data_dir) {
		json_decref(j);
		if (errbuf && errlen)
			str_copy(errbuf, "give one of endpoint and data, and plan auto|resident|offload",
				 errlen);
		return ERR_INVALID;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		json_decref(j);
		return ERR_FAIL;
	}
	h->opts = j;
	rc = load_run(&h->l, &o, &err);
	if (h->l)
		h->report = json_dumps(load_report(h->l), JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (rc < 0 && errbuf && errlen)
		str_copy(errbuf, err.msg, errlen);
	if (!h->l) {
		json_decref(h->opts);
		free(h);
		return rc;
	}
	*out = h;
	return rc;
}

const char *haven_load_report(void *hp)
{
	struct handle *h = hp;

	return h && h->report ? h->report : "{}";
}

size_t haven_load_count(void *hp)
{
	struct handle *h = hp;

	return h ? load_tensor_count(h->l) : 0;
}

int haven_load_tensor(void *hp, size_t i, const char **name, const char **dtype,
		      int *ndim, int64_t *shape, uint64_t *nbytes, uint64_t *dptr)
{
	struct handle *h = hp;
	const struct tensor_desc *d;

	if (!h || load_tensor_at(h->l, i, &d, dptr) < 0)
		return ERR_NOTFOUND;
	*name = d->name;
	*dtype = dtype_name(d->dtype);
	*ndim = d->ndim;
	for (int k = 0; k < TENSOR_MAX_DIMS; k++)
		shape[k] = k < d->ndim ? (int64_t)d->shape[k] : 0;
	*nbytes = d->nbytes;
	return 0;
}

void haven_load_close(void *hp)
{
	struct handle *h = hp;

	if (!h)
		return;
	load_free(h->l);
	json_decref(h->opts);
	free(h->report);
	free(h);
}
