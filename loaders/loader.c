/*
 * loader.c: the steps of `haven load` (loader.h) tied together: files,
 * headers, manifests, plan, pipelined copy, device checks, and the JSON
 * report that the CLI prints and the Python binding reads.
 */
#include "common/compat.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "loaders/cuda_driver.h"
#include "loaders/loader.h"
#include "loaders/manifest.h"
#include "loaders/pickle_reader.h"
#include "loaders/pipeline.h"
#include "loaders/planner.h"
#include "loaders/repo_files.h"
#include "loaders/safetensors.h"
#include "loaders/torch_zip.h"
#include "storage/hash.h"

#ifndef HAVEN_MANIFEST_DIR
#define HAVEN_MANIFEST_DIR "/usr/local/share/haven/manifests"
#endif

#define INDEX_MAX ((size_t)64 << 20)

struct component {
	struct manifest *m;
	bool checked;			/* a real manifest, not the default */
	struct tensor_list tensors;	/* sorted by name */
	size_t *files;			/* indexes into rf->v */
	size_t nfiles;
	struct manifest_report rep;
	uint64_t *dev;			/* per tensor, 0: not on the device */
	unsigned char **host;		/* per tensor, streamed blocks */
};

struct load {
	struct load_opts o;
	struct repo_files *rf;
	struct component *comp;
	size_t ncomp;
	json_t *report, *files_json;
	struct cuda *cuda;
	uint64_t arena, blockbuf;
	void *pinned;
	struct plan plan;
	bool planned;
};

const char *load_default_manifest_dir(void)
{
	const char *env = getenv("HAVEN_MANIFESTS");

	return env && env[0] ? env : HAVEN_MANIFEST_DIR;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static bool is_weights(const char *path)
{
	return ends_with(path, ".safetensors") || ends_with(path, ".pt") ||
	       ends_with(path, ".pth") || ends_with(path, ".bin") ||
	       ends_with(path, ".ckpt");
}

/* The components: matching manifests, or one default. */
static int find_components(struct load *l, struct err *err)
{
	struct manifest **list = NULL;
	size_t n = 0;
	int rc;

	if (l->o.manifest_file) {
		struct manifest *m;
		if ((rc = manifest_load_file(&m, l->o.manifest_file, err)) < 0)
			return rc;
		list = malloc(sizeof(*list));
		if (!list) {
			manifest_free(m);
			return err_set(err, ERR_FAIL, "out of memory");
		}
		list[n++] = m;
	} else {
		const char *dir = l->o.manifest_dir ? l->o.manifest_dir :
				  load_default_manifest_dir();
		rc = manifest_find(&list, &n, dir, l->o.repo, err);
		if (rc == ERR_NOTFOUND && !l->o.manifest_dir)
			rc = 0, n = 0, list = NULL;
		else if (rc < 0)
			return rc;
	}
	l->comp = calloc(n + 1, sizeof(*l->comp));
	if (!l->comp) {
		manifest_list_free(list, n);
		return err_set(err, ERR_FAIL, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (l->o.only && strcmp(list[i]->name, l->o.only)) {
			manifest_free(list[i]);
			continue;
		}
		l->comp[l->ncomp].m = list[i];
		l->comp[l->ncomp++].checked = true;
	}
	free(list);
	if (l->o.only && !l->ncomp)
		return err_set(err, ERR_NOTFOUND, "no manifest component '%s' for '%s'",
			       l->o.only, l->o.repo);
	if (!l->ncomp) {
		bool st = false;
		for (size_t i = 0; i < l->rf->count; i++)
			st |= ends_with(l->rf->v[i].path, ".safetensors");
		const char *text = st ? "name checkpoint\nfiles *.safetensors\n" :
				   "name checkpoint\nfiles *.pt *.pth *.bin *.ckpt\n";
		if ((rc = manifest_parse(&l->comp[0].m, text, strlen(text),
					 "default", err)) < 0)
			return rc;
		l->ncomp = 1;
	}
	for (size_t c = 0; c < l->ncomp; c++) {
		struct component *k = &l->comp[c];
		k->files = calloc(l->rf->count + 1, sizeof(*k->files));
		if (!k->files)
			return err_set(err, ERR_FAIL, "out of memory");
		for (size_t i = 0; i < l->rf->count; i++)
			if (is_weights(l->rf->v[i].path) &&
			    manifest_wants_file(k->m, l->rf->v[i].path))
				k->files[k->nfiles++] = i;
		if (!k->nfiles)
			return err_set(err, ERR_NOTFOUND,
				       "no file of '%s' at %s matches component '%s'",
				       l->o.repo, l->rf->commit, k->m->name);
	}
	return 0;
}

/* The path without directory and extension: the name a single-tensor
 * torch file's tensor gets. */
static void stem_name(char *out, size_t size, const char *path)
{
	const char *dot = strrchr(path, '.');
	size_t n = dot && dot > path ? (size_t)(dot - path) : strlen(path);

	if (n >= size)
		n = size - 1;
	memcpy(out, path, n);
	out[n] = '\0';
}

int loader_torch_tensors(struct tensor_list *out, int fidx, int fd,
			 uint64_t size, const char *path, struct err *err)
{
	struct torch_zip *z = NULL;
	struct pickle_result pr = { 0 };
	const struct zip_entry *pkl, *bo;
	unsigned char *buf = NULL;
	char name[512], key[512], bytes[16];
	int rc;

	if ((rc = torch_zip_open(&z, torch_zip_read_fd, &fd, size, err)) < 0)
		return rc;
	bo = torch_zip_member(z, "byteorder");
	if (bo) {
		if (bo->size >= sizeof(bytes) ||
		    (rc = torch_zip_read_fd(&fd, bytes, (size_t)bo->size, bo->data_off, err)) < 0) {
			rc = rc < 0 ? rc : err_set(err, ERR_INVALID, "bad byteorder entry");
			goto out;
		}
		bytes[bo->size] = '\0';
		if (strcmp(bytes, "little")) {
			rc = err_set(err, ERR_INVALID, "'%s' is %s-endian; only little-endian is read",
				     path, bytes);
			goto out;
		}
	}
	pkl = torch_zip_member(z, "data.pkl");
	if (pkl->size > PICKLE_MAX_BYTES) {
		rc = err_set(err, ERR_TOOBIG, "'%s': data.pkl is %llu bytes", path,
			     (unsigned long long)pkl->size);
		goto out;
	}
	buf = malloc(pkl->size ? (size_t)pkl->size : 1);
	if (!buf) {
		rc = err_set(err, ERR_FAIL, "out of memory");
		goto out;
	}
	if ((rc = torch_zip_read_fd(&fd, buf, (size_t)pkl->size, pkl->data_off, err)) < 0 ||
	    (rc = pickle_read(&pr, buf, (size_t)pkl->size, err)) < 0)
		goto out;
	for (size_t i = 0; i < pr.count; i++) {
		const struct pickle_tensor *p = &pr.v[i];
		const struct zip_entry *e;
		struct tensor_desc d = { 0 };

		snprintf(key, sizeof(key), "data/%s", p->storage_key);
		e = strchr(p->storage_key, '/') ? NULL : torch_zip_member(z, key);
		if (!e || e->size < p->storage_bytes) {
			rc = err_set(err, ERR_INVALID,
				     "'%s': storage '%s' is missing or shorter than declared",
				     path, p->storage_key);
			goto out;
		}
		if (p->name[0])
			str_copy(name, p->name, sizeof(name));
		else
			stem_name(name, sizeof(name), path);
		d.name = name;
		d.dtype = p->dtype;
		d.ndim = p->ndim;
		memcpy(d.shape, p->shape, sizeof(d.shape));
		d.nbytes = p->nbytes;
		d.offset = e->data_off + p->storage_offset;
		d.file = fidx;
		if ((rc = tensor_list_add(out, &d, err)) < 0)
			goto out;
	}
out:
	free(buf);
	pickle_result_release(&pr);
	torch_zip_free(z);
	return rc;
}

static int open_file(const struct repo_file *f, int *fd, struct err *err)
{
	struct stat sb;

	*fd = open(f->local, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return err_set(err, ERR_FAIL, "cannot open '%s' (%s)", f->local, f->path);
	if (fstat(*fd, &sb) < 0 || (uint64_t)sb.st_size != f->size) {
		close(*fd);
		*fd = -1;
		return err_set(err, ERR_CORRUPT, "'%s' is %lld bytes, the registry lists %llu",
			       f->path, (long long)sb.st_size,
			       (unsigned long long)f->size);
	}
	return 0;
}

static int hash_fd(int fd, char sha[65])
{
	struct sha256_ctx *ctx = sha256_new();
	char *buf = malloc((size_t)4 << 20);
	off_t off = 0;
	ssize_t n;

	if (!ctx || !buf) {
		sha256_free(ctx);
		free(buf);
		return ERR_FAIL;
	}
	while ((n = pread(fd, buf, (size_t)4 << 20, off)) > 0) {
		sha256_update(ctx, buf, (size_t)n);
		off += n;
	}
	free(buf);
	if (n < 0) {
		sha256_free(ctx);
		return ERR_FAIL;
	}
	sha256_final_hex(ctx, sha);
	return 0;
}

/* Step 2 for one file: its tensors into the component's list. */
static int parse_file(struct load *l, struct component *k, size_t fi,
		      struct err *err)
{
	struct repo_file *f = &l->rf->v[fi];
	struct err e = { 0 };
	int fd = -1, rc;
	size_t before = k->tensors.count;
	json_t *fj;

	if ((rc = repo_files_fetch(l->rf, f, &e)) == 0 &&
	    (rc = open_file(f, &fd, &e)) == 0) {
		if (ends_with(f->path, ".safetensors"))
			rc = safetensors_read_fd(&k->tensors, (int)fi, fd, f->size, &e);
		else
			rc = loader_torch_tensors(&k->tensors, (int)fi, fd, f->size, f->path, &e);
	}
	if (rc < 0 && rc != ERR_CORRUPT && fd >= 0 && f->lfs && !f->hashed &&
	    !l->o.trust_blobs) {
		/* A malformed file: tampered, or published that way? The
		 * digest tells, so the report blames the right thing. */
		char sha[65];
		if (hash_fd(fd, sha) == 0 && strcmp(sha, f->sha256))
			rc = err_set(&e, ERR_CORRUPT,
				     "refused: '%s' has sha256 %s, the registry lists %s (%s)",
				     f->path, sha, f->sha256, e.msg);
	}
	if (fd >= 0)
		close(fd);
	fj = json_pack("{s:s,s:I,s:s,s:s,s:I}", "path", f->path,
		       "size", (json_int_t)f->size, "sha256", f->sha256,
		       "format", ends_with(f->path, ".safetensors") ? "safetensors" :
		       "torch-zip", "tensors", (json_int_t)(k->tensors.count - before));
	if (f->hashed)
		json_object_set_new(fj, "integrity", json_string("ok"));
	if (f->fetch_seconds > 0)
		json_object_set_new(fj, "fetch_seconds", json_real(f->fetch_seconds));
	if (rc < 0) {
		json_object_set_new(fj, rc == ERR_CORRUPT ? "integrity" : "structure",
				    json_string(e.msg));
		json_array_append_new(l->files_json, fj);
		return err_set(err, rc, "%s", e.msg);
	}
	json_object_set_new(fj, "structure", json_string("ok"));
	json_array_append_new(l->files_json, fj);
	return 0;
}

static json_t *file_json(struct load *l, size_t fi)
{
	size_t i;
	json_t *fj;

	json_array_foreach(l->files_json, i, fj)
		if (!strcmp(json_string_value(json_object_get(fj, "path")),
			    l->rf->v[fi].path))
			return fj;
	return NULL;
}

/* Index files next to the shards: every listed shard present, every
 * tensor in the shard the index names, none unlisted. */
static int check_indexes(struct load *l, struct component *k, json_t *cj,
			 struct err *err)
{
	for (size_t i = 0; i < l->rf->count; i++) {
		struct repo_file *f = &l->rf->v[i];
		struct safetensors_index ix;
		char *text = NULL, dir[1024];
		const char *slash;
		size_t len, dlen;
		int rc;

		if (!ends_with(f->path, ".safetensors.index.json"))
			continue;
		slash = strrchr(f->path, '/');
		dlen = slash ? (size_t)(slash - f->path) + 1 : 0;
		snprintf(dir, sizeof(dir), "%.*s%s", (int)dlen, f->path,
			 "x.safetensors");
		if (!manifest_wants_file(k->m, dir))
			continue;
		if ((rc = repo_files_read_small(l->rf, f, &text, &len, INDEX_MAX, err)) < 0)
			return rc;
		struct err ie = { 0 };
		rc = safetensors_index_parse(&ix, text, len, &ie);
		free(text);
		if (rc < 0)
			return err_set(err, rc, "%s: %s", f->path, ie.msg);
		for (size_t s = 0; rc == 0 && s < ix.nfiles; s++) {
			char p[1024];
			snprintf(p, sizeof(p), "%.*s%s", (int)dlen, f->path, ix.files[s]);
			if (!repo_files_find(l->rf, p))
				rc = err_set(err, ERR_INVALID, "%s lists shard '%s', which is missing",
					     f->path, ix.files[s]);
		}
		for (size_t t = 0; rc == 0 && t < k->tensors.count; t++) {
			const struct tensor_desc *d = &k->tensors.v[t];
			const char *sh = safetensors_index_shard(&ix, d->name);
			const char *fp = l->rf->v[d->file].path;
			if (strncmp(fp, f->path, dlen) || strchr(fp + dlen, '/'))
				continue;
			if (!sh || strcmp(sh, fp + dlen))
				rc = err_set(err, ERR_INVALID,
					     "tensor '%s' is in '%s' but %s says '%s'",
					     d->name, fp, f->path, sh ? sh : "nothing");
		}
		safetensors_index_release(&ix);
		if (rc < 0)
			return rc;
		json_object_set_new(cj, "index", json_string(f->path));
	}
	return 0;
}

static int step_components(struct load *l, json_t *comps, struct err *err)
{
	int rc;

	for (size_t c = 0; c < l->ncomp; c++) {
		struct component *k = &l->comp[c];
		uint64_t bytes = 0;
		json_t *cj = json_pack("{s:s}", "name", k->m->name), *probs;

		json_array_append_new(comps, cj);
		json_object_set_new(cj, "manifest", k->checked ?
				    json_string(k->m->source) : json_null());
		for (size_t i = 0; i < k->nfiles; i++)
			if ((rc = parse_file(l, k, k->files[i], err)) < 0)
				return rc;
		if ((rc = tensor_list_sort_unique(&k->tensors, err)) < 0 ||
		    (rc = check_indexes(l, k, cj, err)) < 0)
			return rc;
		for (size_t i = 0; i < k->tensors.count; i++)
			bytes += k->tensors.v[i].nbytes;
		json_object_set_new(cj, "tensors", json_integer((json_int_t)k->tensors.count));
		json_object_set_new(cj, "bytes", json_integer((json_int_t)bytes));
		if (!k->checked)
			continue;
		if ((rc = manifest_check(&k->rep, k->m, &k->tensors, err)) < 0)
			return rc;
		probs = json_array();
		for (size_t i = 0; i < k->rep.nlines; i++)
			json_array_append_new(probs, json_string(k->rep.lines[i]));
		json_object_set_new(cj, "check", json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
			"ok", manifest_report_ok(&k->rep),
			"matched", (json_int_t)k->rep.matched,
			"missing", (json_int_t)k->rep.missing,
			"extra", (json_int_t)k->rep.extra,
			"different", (json_int_t)k->rep.different,
			"allowed", (json_int_t)k->rep.allowed,
			"params", (json_int_t)k->rep.params, "problems", probs));
	}
	for (size_t c = 0; c < l->ncomp && !l->o.manifest_soft; c++)
		if (l->comp[c].checked && !manifest_report_ok(&l->comp[c].rep))
			return err_set(err, ERR_INVALID,
				       "component '%s' does not match its manifest (%zu missing, %zu extra, %zu different)",
				       l->comp[c].m->name, l->comp[c].rep.missing,
				       l->comp[c].rep.extra, l->comp[c].rep.different);
	return 0;
}

static int step_plan(struct load *l, uint64_t free_vram, const char *source,
		     double gbps, struct err *err)
{
	struct plan_input in = { .free_vram = free_vram, .vram_limit = l->o.vram_limit,
				 .mode = l->o.mode, .h2d_gbps = gbps };
	struct plan_item *items;
	size_t n = 0, total = 0;
	int rc;

	for (size_t c = 0; c < l->ncomp; c++)
		total += l->comp[c].tensors.count;
	items = calloc(total + 1, sizeof(*items));
	if (!items)
		return err_set(err, ERR_FAIL, "out of memory");
	/* Blocks come from the first component that declares them; the
	 * others count as always resident. */
	const struct manifest *bm = NULL;
	for (size_t c = 0; c < l->ncomp && !bm; c++)
		if (l->comp[c].m->nblocks)
			bm = l->comp[c].m;
	for (size_t c = 0; c < l->ncomp; c++) {
		const struct component *k = &l->comp[c];
		in.reserve += k->m->reserve;
		for (size_t i = 0; i < k->tensors.count; i++) {
			items[n].nbytes = k->tensors.v[i].nbytes;
			items[n++].block = k->m == bm ?
				manifest_block_of(bm, k->tensors.v[i].name) : -1;
		}
	}
	in.items = items;
	in.count = n;
	in.nblocks = bm ? bm->nblocks : 0;
	rc = plan_make(&l->plan, &in, err);
	free(items);
	if (rc < 0)
		return rc;
	l->planned = true;
	json_object_set_new(l->report, "plan", json_pack(
		"{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:I,s:I,s:I,s:f}",
		"kind", plan_kind_name(l->plan.kind), "why", l->plan.why,
		"free_from", source, "free_vram", (json_int_t)free_vram,
		"total", (json_int_t)l->plan.total, "budget", (json_int_t)l->plan.budget,
		"base", (json_int_t)l->plan.base, "max_block", (json_int_t)l->plan.max_block,
		"resident_blocks", l->plan.resident_blocks,
		"streamed_blocks", l->plan.streamed_blocks,
		"device_bytes", (json_int_t)l->plan.device_bytes,
		"host_pinned", (json_int_t)l->plan.host_pinned,
		"reserve", (json_int_t)in.reserve,
		"pass_seconds", l->plan.pass_seconds));
	if (l->plan.kind == PLAN_IS_REFUSED)
		return err_set(err, ERR_TOOBIG, "refused: %s", l->plan.why);
	return 0;
}

/* Device and host destinations per tensor, following the plan. */
static int place(struct load *l, struct err *err)
{
	uint64_t dev_total = 0, host_total = 0, off = 0, hoff = 0;
	const struct manifest *bm = NULL;
	int rc;

	for (size_t c = 0; c < l->ncomp && !bm; c++)
		if (l->comp[c].m->nblocks)
			bm = l->comp[c].m;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t c = 0; c < l->ncomp; c++) {
			struct component *k = &l->comp[c];
			if (!pass && (!(k->dev = calloc(k->tensors.count + 1, sizeof(*k->dev))) ||
				      !(k->host = calloc(k->tensors.count + 1, sizeof(*k->host)))))
				return err_set(err, ERR_FAIL, "out of memory");
			for (size_t i = 0; i < k->tensors.count; i++) {
				uint64_t a = (k->tensors.v[i].nbytes + PLAN_ALIGN - 1) /
					     PLAN_ALIGN * PLAN_ALIGN;
				int b = k->m == bm ? manifest_block_of(bm, k->tensors.v[i].name) : -1;
				bool streamed = l->plan.kind == PLAN_IS_OFFLOAD && b >= 0 &&
						b >= l->plan.resident_blocks;
				if (!pass) {
					if (streamed)
						host_total += a;
					else
						dev_total += a;
				} else if (streamed) {
					k->host[i] = (unsigned char *)l->pinned + hoff;
					hoff += a;
				} else {
					k->dev[i] = l->arena + off;
					off += a;
				}
			}
		}
		if (!pass) {
			if ((rc = cuda_alloc(l->cuda, &l->arena, dev_total, err)) < 0)
				return rc;
			if (host_total &&
			    ((rc = cuda_host_alloc(l->cuda, &l->pinned, host_total, err)) < 0 ||
			     (rc = cuda_alloc(l->cuda, &l->blockbuf, 2 * l->plan.max_block, err)) < 0))
				return rc;
		}
	}
	return 0;
}

/* Steps 1 (for --data) and 5: one pipelined pass per file. */
static int step_read(struct load *l, json_t *gpu, struct err *err)
{
	struct pipeline_opts po = {
		.readers = l->o.readers > 0 ? l->o.readers : 8,
		.chunk = l->o.chunk ? l->o.chunk : (size_t)16 << 20,
		.cuda = l->cuda, .streams = 4,
	};
	uint64_t bytes = 0;
	double t0 = now_s();
	int rc = 0;

	po.slots = po.readers * 2;
	for (size_t c = 0; c < l->ncomp; c++) {
		struct component *k = &l->comp[c];
		for (size_t fi = 0; fi < k->nfiles; fi++) {
			struct repo_file *f = &l->rf->v[k->files[fi]];
			struct tensor_desc *ts = NULL;
			uint64_t *dev = NULL;
			unsigned char **host = NULL;
			size_t n = 0;
			struct pipeline_stats st;
			struct pipeline_dest dest;
			json_t *fj = file_json(l, k->files[fi]);
			int fd;

			/* This file's tensors by offset, with their destinations. */
			ts = calloc(k->tensors.count + 1, sizeof(*ts));
			dev = calloc(k->tensors.count + 1, sizeof(*dev));
			host = calloc(k->tensors.count + 1, sizeof(*host));
			if (!ts || !dev || !host) {
				free(ts), free(dev), free(host);
				return err_set(err, ERR_FAIL, "out of memory");
			}
			for (size_t i = 0; i < k->tensors.count; i++)
				if ((size_t)k->tensors.v[i].file == k->files[fi]) {
					ts[n] = k->tensors.v[i];
					ts[n].host_sum = 0;
					ts[n].file = (int)i;	/* back-reference */
					n++;
				}
			for (size_t i = 1; i < n; i++)	/* insertion sort by offset */
				for (size_t j = i; j > 0 && ts[j - 1].offset > ts[j].offset; j--) {
					struct tensor_desc tmp = ts[j];
					ts[j] = ts[j - 1];
					ts[j - 1] = tmp;
				}
			for (size_t i = 0; i < n; i++) {
				dev[i] = k->dev ? k->dev[ts[i].file] : 0;
				host[i] = k->host ? k->host[ts[i].file] : NULL;
			}
			dest.dev = dev;
			dest.host = host;
			po.sha = !f->hashed && !(l->o.trust_blobs && l->o.data_dir);
			rc = open_file(f, &fd, err);
			if (rc == 0) {
				rc = pipeline_run(&st, fd, f->size, ts, n, &dest, &po, err);
				close(fd);
			}
			for (size_t i = 0; rc == 0 && i < n; i++)
				k->tensors.v[ts[i].file].host_sum = ts[i].host_sum;
			free(ts), free(dev), free(host);
			if (rc < 0)
				return rc;
			bytes += st.bytes;
			if (fj)
				json_object_set_new(fj, "read_seconds", json_real(st.seconds));
			if (fj && !po.sha && !f->hashed)
				json_object_set_new(fj, "integrity",
						    json_string("trusted (blob store, --trust-blobs)"));
			if (po.sha) {
				bool ok = !strcmp(st.sha256, f->sha256);
				if (fj)
					json_object_set_new(fj, "integrity", json_string(ok ? "ok" :
						"sha256 differs from the LFS oid"));
				if (!ok)
					return err_set(err, ERR_CORRUPT,
						       "refused: '%s' has sha256 %s, the registry lists %s",
						       f->path, st.sha256, f->sha256);
			}
		}
	}
	if (gpu) {
		double dt = now_s() - t0;
		json_object_set_new(gpu, "bytes", json_integer((json_int_t)bytes));
		json_object_set_new(gpu, "seconds", json_real(dt));
		json_object_set_new(gpu, "gbps", json_real(dt > 0 ? (double)bytes / dt / 1e9 : 0));
	}
	return 0;
}

static float bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

/* One BF16 GEMV on the device against the CPU, on the first resident
 * 2-D BF16 tensor. */
static int smoke_gemv(struct load *l, json_t *gpu, struct err *err)
{
	for (size_t c = 0; c < l->ncomp; c++) {
		struct component *k = &l->comp[c];
		for (size_t i = 0; i < k->tensors.count; i++) {
			const struct tensor_desc *t = &k->tensors.v[i];
			unsigned rows, cols;
			uint16_t *w;
			float *x, *y;
			double maxerr = 0;
			int rc;

			if (!k->dev[i] || t->dtype != DT_BF16 || t->ndim != 2 ||
			    !t->shape[0] || !t->shape[1] || t->shape[1] > 65536)
				continue;
			rows = t->shape[0] < 64 ? (unsigned)t->shape[0] : 64;
			cols = (unsigned)t->shape[1];
			w = malloc((size_t)rows * cols * 2);
			x = malloc((size_t)cols * 4);
			y = malloc((size_t)rows * 4);
			rc = !w || !x || !y ? err_set(err, ERR_FAIL, "out of memory") : 0;
			if (rc == 0)
				rc = cuda_copy_dtoh(l->cuda, w, k->dev[i], (size_t)rows * cols * 2, err);
			for (unsigned j = 0; rc == 0 && j < cols; j++)
				x[j] = (float)((int)(j % 17) - 8) / 8.0f;
			if (rc == 0)
				rc = cuda_gemv_bf16(l->cuda, k->dev[i], rows, cols, x, y, err);
			for (unsigned r = 0; rc == 0 && r < rows; r++) {
				float acc = 0;
				for (unsigned j = 0; j < cols; j++)
					acc = fmaf(bf16_to_f32(w[(size_t)r * cols + j]), x[j], acc);
				double d = fabs((double)acc - (double)y[r]) / (1.0 + fabs((double)acc));
				if (!(d <= maxerr))
					maxerr = isnan(d) ? INFINITY : (d > maxerr ? d : maxerr);
			}
			free(w), free(x), free(y);
			if (rc < 0)
				return rc;
			json_object_set_new(gpu, "gemv", json_pack("{s:s,s:i,s:i,s:f,s:b}",
				"tensor", t->name, "rows", (int)rows, "cols", (int)cols,
				"max_rel_err", isfinite(maxerr) ? maxerr : -1.0,
				"ok", maxerr <= 1e-3));
			if (!(maxerr <= 1e-3))
				return err_set(err, ERR_CORRUPT,
					       "device GEMV on '%s' differs from the CPU (%g)",
					       t->name, maxerr);
			return 0;
		}
	}
	json_object_set_new(gpu, "gemv", json_pack("{s:s}", "skipped",
		"no resident 2-D BF16 tensor"));
	return 0;
}

/* Step 6: device checksums; streamed blocks pass through the two block
 * buffers, as they would during a forward pass. */
static int verify(struct load *l, json_t *gpu, uint64_t free0, struct err *err)
{
	size_t checked = 0, bad = 0;
	uint64_t min_free = free0, f, t;
	char first_bad[256] = "";
	double t0 = now_s();
	int rc;

	for (size_t c = 0; c < l->ncomp; c++) {
		struct component *k = &l->comp[c];
		for (size_t i = 0; i < k->tensors.count; i++) {
			const struct tensor_desc *d = &k->tensors.v[i];
			uint64_t where = k->dev[i], sum = 0;
			if (!where && k->host[i]) {
				where = l->blockbuf + (checked % 2) * l->plan.max_block;
				if ((rc = cuda_copy_htod(l->cuda, where, k->host[i],
							 (size_t)d->nbytes, 0, err)) < 0 ||
				    (rc = cuda_sync(l->cuda, err)) < 0)
					return rc;
			}
			if (!where)
				continue;
			if ((rc = cuda_checksum(l->cuda, where, d->nbytes, &sum, err)) < 0)
				return rc;
			checked++;
			if (sum != d->host_sum && !bad++)
				str_copy(first_bad, d->name, sizeof(first_bad));
		}
	}
	if (cuda_mem_info(l->cuda, &f, &t, err) == 0 && f < min_free)
		min_free = f;
	json_object_set_new(gpu, "checksums", json_pack("{s:I,s:I,s:f}",
		"checked", (json_int_t)checked, "mismatched", (json_int_t)bad,
		"seconds", now_s() - t0));
	json_object_set_new(gpu, "vram_used", json_integer((json_int_t)(free0 - min_free)));
	if (bad)
		return err_set(err, ERR_CORRUPT,
			       "%zu tensors differ on the device from what was read (first: '%s')",
			       bad, first_bad);
	return smoke_gemv(l, gpu, err);
}

static int run(struct load *l, struct err *err)
{
	const struct load_opts *o = &l->o;
	json_t *comps = json_array(), *gpu = json_object();
	uint64_t free0 = 0, total = 0;
	double ceiling = 0;
	struct err e = { 0 };
	int rc;

	json_object_set_new(l->report, "components", comps);
	json_object_set_new(l->report, "gpu", gpu);
	if (o->data_dir)
		rc = repo_files_open_data(&l->rf, o->data_dir, o->repo,
					  o->rev ? o->rev : "main", err);
	else
		rc = repo_files_open_http(&l->rf, o->endpoint, o->token, o->repo,
					  o->rev ? o->rev : "main", o->cache_dir,
					  o->parallel > 0 ? o->parallel : 4, err);
	if (rc < 0)
		return rc;
	json_object_set_new(l->report, "commit", json_string(l->rf->commit));
	if ((rc = find_components(l, err)) < 0 ||
	    (rc = step_components(l, comps, err)) < 0)
		return rc;

	/* Step 4 needs the free VRAM: from the device, or the limit. */
	if (!o->dry_run) {
		rc = cuda_open(&l->cuda, o->device, 4, &e);
		if (rc == ERR_UNAVAILABLE) {
			json_object_set_new(gpu, "status", json_string("skipped"));
			json_object_set_new(gpu, "reason", json_string(e.msg));
			if (o->require_gpu)
				return err_set(err, rc, "%s", e.msg);
		} else if (rc < 0) {
			return err_set(err, rc, "%s", e.msg);
		}
	} else {
		json_object_set_new(gpu, "status", json_string("skipped"));
		json_object_set_new(gpu, "reason", json_string("dry run"));
	}
	if (l->cuda) {
		json_object_set_new(gpu, "device", json_string(cuda_describe(l->cuda)));
		if ((rc = cuda_mem_info(l->cuda, &free0, &total, err)) < 0 ||
		    (rc = cuda_h2d_ceiling(l->cuda, (size_t)1 << 30, &ceiling, err)) < 0)
			return rc;
		json_object_set_new(gpu, "h2d_ceiling_gbps", json_real(ceiling));
		json_object_set_new(gpu, "total_vram", json_integer((json_int_t)total));
		if ((rc = step_plan(l, free0, "device", ceiling, err)) < 0)
			return rc;
	} else if (o->vram_limit) {
		if ((rc = step_plan(l, o->vram_limit, "--vram-limit", 0, err)) < 0)
			return rc;
	} else {
		json_object_set_new(l->report, "plan", json_pack("{s:s,s:s}", "kind",
			"none", "why", "no device and no --vram-limit: nothing to plan against"));
	}
	if (!l->cuda)
		return step_read(l, NULL, err);	/* integrity (and checksums) */
	if ((rc = place(l, err)) < 0 || (rc = step_read(l, gpu, err)) < 0)
		return rc;
	{
		double gbps = json_real_value(json_object_get(gpu, "gbps"));
		json_object_set_new(gpu, "efficiency", json_real(ceiling > 0 ? gbps / ceiling : 0));
	}
	if ((rc = verify(l, gpu, free0, err)) < 0)
		return rc;
	json_object_set_new(gpu, "status", json_string("loaded"));
	return 0;
}

int load_run(struct load **out, const struct load_opts *opts, struct err *err)
{
	struct load *l = calloc(1, sizeof(*l));
	struct err e = { 0 };
	int rc;

	*out = NULL;
	if (!l)
		return err_set(err, ERR_FAIL, "out of memory");
	l->o = *opts;
	l->report = json_pack("{s:s,s:s,s:s}", "repo", opts->repo, "revision",
			      opts->rev ? opts->rev : "main", "source",
			      opts->data_dir ? "data" : "endpoint");
	l->files_json = json_array();
	json_object_set(l->report, "files", l->files_json);
	rc = run(l, &e);
	json_object_set_new(l->report, "ok", json_boolean(rc == 0));
	if (rc < 0)
		json_object_set_new(l->report, "error", json_string(e.msg));
	if (rc < 0 || !opts->keep) {
		/* Nothing stays on the device unless asked to. */
		if (l->cuda) {
			cuda_dev_free(l->cuda, l->arena);
			cuda_dev_free(l->cuda, l->blockbuf);
			cuda_host_free(l->cuda, l->pinned);
			l->arena = l->blockbuf = 0;
			l->pinned = NULL;
		}
	}
	*out = l;
	if (rc < 0)
		err_set(err, rc, "%s", e.msg);
	return rc;
}

json_t *load_report(const struct load *l)
{
	return l->report;
}

size_t load_tensor_count(const struct load *l)
{
	size_t n = 0;

	for (size_t c = 0; c < l->ncomp; c++)
		n += l->comp[c].tensors.count;
	return n;
}

int load_tensor_at(const struct load *l, size_t i, const struct tensor_desc **desc,
		   uint64_t *dptr)
{
	for (size_t c = 0; c < l->ncomp; c++) {
		if (i < l->comp[c].tensors.count) {
			*desc = &l->comp[c].tensors.v[i];
			*dptr = l->arena && l->comp[c].dev ? l->comp[c].dev[i] : 0;
			return 0;
		}
		i -= l->comp[c].tensors.count;
	}
	return ERR_NOTFOUND;
}

void load_free(struct load *l)
{
	if (!l)
		return;
	if (l->cuda) {
		cuda_dev_free(l->cuda, l->arena);
		cuda_dev_free(l->cuda, l->blockbuf);
		cuda_host_free(l->cuda, l->pinned);
		cuda_free(l->cuda);
	}
	for (size_t c = 0; c < l->ncomp; c++) {
		struct component *k = &l->comp[c];
		manifest_free(k->m);
		tensor_list_release(&k->tensors);
		manifest_report_release(&k->rep);
		free(k->files);
		free(k->dev);
		free(k->host);
	}
	free(l->comp);
	repo_files_free(l->rf);
	json_decref(l->files_json);
	json_decref(l->report);
	free(l);
}
