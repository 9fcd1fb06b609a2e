/*
 * demo.c: the demo model a fresh `haven serve --demo` holds, so
 * hf_hub_download works the moment the server is up. The files are
 * written to a temporary folder and imported like any other folder; the
 * safetensors file is a real one (a 4x4 F32 tensor) built here.
 */
#include "common/compat.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ingest/import.h"

static const char demo_readme[] =
	"---\n"
	"license: apache-2.0\n"
	"library_name: transformers\n"
	"tags:\n"
	"- demo\n"
	"---\n"
	"# tiny-model\n\n"
	"A tiny model served by Haven's quick start. Try:\n\n"
	"    HF_ENDPOINT=http://127.0.0.1:8080 python3 -c \\\n"
	"      'from huggingface_hub import hf_hub_download; "
	"print(hf_hub_download(\"" DEMO_REPO "\", \"config.json\"))'\n";

static const char demo_config[] =
	"{\n  \"architectures\": [\"TinyModel\"],\n  \"model_type\": \"tiny\",\n"
	"  \"hidden_size\": 4,\n  \"vocab_size\": 4\n}\n";

static int write_file(const char *dir, const char *name, const void *data,
		      size_t len)
{
	char path[4200];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")))
		return ERR_FAIL;
	if (fwrite(data, 1, len, f) != len)
		rc = ERR_FAIL;
	if (fclose(f) != 0)
		rc = ERR_FAIL;
	return rc;
}

/* A valid safetensors file: u64 header length, JSON header, data. */
static int write_safetensors(const char *dir)
{
	static const char header[] =
		"{\"weight\":{\"dtype\":\"F32\",\"shape\":[4,4],"
		"\"data_offsets\":[0,64]}}";
	unsigned char buf[8 + sizeof(header) + 64];
	uint64_t hlen = sizeof(header) - 1;
	size_t off = 0;

	for (int i = 0; i < 8; i++)
		buf[off++] = (unsigned char)(hlen >> (8 * i));
	memcpy(buf + off, header, hlen);
	off += hlen;
	for (int i = 0; i < 16; i++) {
		float v = (i % 5 == 0) ? 1.0f : 0.0f;	/* the identity */
		memcpy(buf + off, &v, 4);
		off += 4;
	}
	return write_file(dir, "model.safetensors", buf, off);
}

static void remove_folder(const char *dir)
{
	static const char *const names[] = { "README.md", "config.json",
					     "model.safetensors" };
	char path[4200];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int demo_seed(struct store *store, struct err *err)
{
	struct import_options opt = { .repo = DEMO_REPO,
				      .message = "Add the demo model" };
	struct import_result res;
	struct repo_record rec;
	char dir[4200];
	int rc;

	if (repo_lookup(store, "model", DEMO_REPO, &rec, NULL) == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s/tmp/demo-XXXXXX", store->data_dir);
	if (!mkdtemp(dir))
		return err_set(err, ERR_FAIL, "cannot create a temporary folder");
	if (write_file(dir, "README.md", demo_readme, strlen(demo_readme)) < 0 ||
	    write_file(dir, "config.json", demo_config, strlen(demo_config)) < 0 ||
	    write_safetensors(dir) < 0)
		rc = err_set(err, ERR_FAIL, "cannot write the demo model");
	else
		rc = import_folder(store, dir, &opt, &res, err);
	remove_folder(dir);
	return rc;
}
