/*
 * cmd_load.c: `haven load REPO[@REV]` (loaders/loader.h: files, integrity,
 * structure, manifest, plan, and with a CUDA driver the verified copy to
 * the GPU) and `haven convert FILE.pt --to FILE.safetensors` (a torch.save
 * checkpoint read by the restricted pickle reader, written as its
 * safetensors twin, no code from the file ever run).
 */
#include "common/compat.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/util.h"
#include "loaders/loader.h"
#include "loaders/pickle_reader.h"
#include "loaders/planner.h"
#include "loaders/safetensors.h"
#include "loaders/torch_zip.h"

static void load_usage(FILE *out)
{
	fprintf(out,
		"usage: haven load REPO[@REV] (--endpoint URL | --data DIR) [--device N]\n"
		"                  [--plan auto|resident|offload] [--vram-limit BYTES[K|M|G]]\n"
		"                  [--dry-run] [--require-gpu] [--json] [--manifests DIR]\n"
		"                  [--manifest FILE] [--only COMPONENT] [--cache DIR]\n"
		"                  [--readers N] [--parallel N] [--trust-blobs]\n"
		"                  [--manifest-report-only]\n"
		"Checks a model revision file by file (sha256 = LFS oid, strict\n"
		"safetensors / torch zip parsing, the model's manifest), plans its\n"
		"placement, and with a CUDA driver loads it onto GPU N and verifies it\n"
		"there. --dry-run stops after the plan. Without a driver the GPU steps\n"
		"are skipped and said so (an error with --require-gpu). --trust-blobs\n"
		"(with --data) skips the sha256 at load time: the blob store is\n"
		"content-addressed and was hashed at ingest (haven fsck re-checks);\n"
		"the per-tensor checksums on the device still run.\n");
}

/* "6G", "512M", "1073741824". */
static int parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s[0] || s[0] == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (!strcmp(end, "K") || !strcmp(end, "KiB"))
		mul = 1ull << 10;
	else if (!strcmp(end, "M") || !strcmp(end, "MiB"))
		mul = 1ull << 20;
	else if (!strcmp(end, "G") || !strcmp(end, "GiB"))
		mul = 1ull << 30;
	else if (!strcmp(end, "GB"))
		mul = 1000000000ull;
	else if (*end)
		return -1;
	if (__builtin_mul_overflow((uint64_t)v, mul, out))
		return -1;
	return 0;
}

static void default_cache(char *out, size_t size)
{
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (x && x[0])
		snprintf(out, size, "%s/haven/blobs", x);
	else
		snprintf(out, size, "%s/.cache/haven/blobs", home ? home : "/tmp");
}

static double gbf(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k)) / 1e9;
}

static void print_text(json_t *r)
{
	json_t *v, *files = json_object_get(r, "files");
	json_t *plan = json_object_get(r, "plan"), *gpu = json_object_get(r, "gpu");
	size_t i;

	printf("%s@%s (commit %s) from %s\n",
	       json_string_value(json_object_get(r, "repo")),
	       json_string_value(json_object_get(r, "revision")),
	       json_string_value(json_object_get(r, "commit")) ?
	       json_string_value(json_object_get(r, "commit")) : "?",
	       json_string_value(json_object_get(r, "source")));
	json_array_foreach(files, i, v) {
		const char *integ = json_string_value(json_object_get(v, "integrity"));
		const char *st = json_string_value(json_object_get(v, "structure"));
		printf("file %s: %" JSON_INTEGER_FORMAT " bytes, %s, %" JSON_INTEGER_FORMAT
		       " tensors, integrity %s, structure %s\n",
		       json_string_value(json_object_get(v, "path")),
		       json_integer_value(json_object_get(v, "size")),
		       json_string_value(json_object_get(v, "format")),
		       json_integer_value(json_object_get(v, "tensors")),
		       integ ? integ : "not checked", st ? st : "not checked");
	}
	json_array_foreach(json_object_get(r, "components"), i, v) {
		json_t *chk = json_object_get(v, "check"), *p;
		size_t j;
		printf("component %s: %" JSON_INTEGER_FORMAT " tensors, %.3f GB, manifest %s",
		       json_string_value(json_object_get(v, "name")),
		       json_integer_value(json_object_get(v, "tensors")),
		       gbf(v, "bytes"),
		       json_string_value(json_object_get(v, "manifest")) ?
		       json_string_value(json_object_get(v, "manifest")) : "none");
		if (chk)
			printf(": %s (%" JSON_INTEGER_FORMAT " matched, %" JSON_INTEGER_FORMAT
			       " missing, %" JSON_INTEGER_FORMAT " extra, %" JSON_INTEGER_FORMAT
			       " different)",
			       json_is_true(json_object_get(chk, "ok")) ? "ok" : "MISMATCH",
			       json_integer_value(json_object_get(chk, "matched")),
			       json_integer_value(json_object_get(chk, "missing")),
			       json_integer_value(json_object_get(chk, "extra")),
			       json_integer_value(json_object_get(chk, "different")));
		printf("\n");
		json_array_foreach(json_object_get(chk, "problems"), j, p) {
			if (j == 20) {
				printf("  ... %zu more\n",
				       json_array_size(json_object_get(chk, "problems")) - 20);
				break;
			}
			printf("  %s\n", json_string_value(p));
		}
	}
	if (plan)
		printf("plan: %s: %s\n", json_string_value(json_object_get(plan, "kind")),
		       json_string_value(json_object_get(plan, "why")));
	if (gpu) {
		const char *status = json_string_value(json_object_get(gpu, "status"));
		if (status && !strcmp(status, "loaded"))
			printf("gpu: %s: %.3f GB in %.3f s = %.2f GB/s, %.0f%% of the %.2f GB/s "
			       "pinned ceiling; %" JSON_INTEGER_FORMAT " device checksums, %"
			       JSON_INTEGER_FORMAT " mismatched; VRAM used %.3f GB\n",
			       json_string_value(json_object_get(gpu, "device")),
			       gbf(gpu, "bytes"),
			       json_number_value(json_object_get(gpu, "seconds")),
			       json_number_value(json_object_get(gpu, "gbps")),
			       100 * json_number_value(json_object_get(gpu, "efficiency")),
			       json_number_value(json_object_get(gpu, "h2d_ceiling_gbps")),
			       json_integer_value(json_object_get(json_object_get(gpu, "checksums"), "checked")),
			       json_integer_value(json_object_get(json_object_get(gpu, "checksums"), "mismatched")),
			       gbf(gpu, "vram_used"));
		else if (status)
			printf("gpu: %s: %s\n", status,
			       json_string_value(json_object_get(gpu, "reason")) ?
			       json_string_value(json_object_get(gpu, "reason")) : "");
	}
	printf("%s\n", json_is_true(json_object_get(r, "ok")) ? "ok" : "FAILED");
}

int cmd_load(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "data", required_argument, NULL, 'd' },
		{ "device", required_argument, NULL, 'D' },
		{ "plan", required_argument, NULL, 'p' },
		{ "vram-limit", required_argument, NULL, 'v' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "require-gpu", no_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "manifests", required_argument, NULL, 'M' },
		{ "manifest", required_argument, NULL, 'm' },
		{ "only", required_argument, NULL, 'o' },
		{ "cache", required_argument, NULL, 'c' },
		{ "readers", required_argument, NULL, 'r' },
		{ "parallel", required_argument, NULL, 'P' },
		{ "trust-blobs", no_argument, NULL, 'T' },
		{ "manifest-report-only", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct load_opts o = { .mode = PLAN_AUTO };
	struct load *l = NULL;
	struct err err = { 0 };
	char repo[512], cache[4096];
	bool json = false;
	char *at;
	int c, rc;

	default_cache(cache, sizeof(cache));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': o.endpoint = optarg; break;
		case 'd': o.data_dir = optarg; break;
		case 'D': o.device = atoi(optarg); break;
		case 'p':
			if ((o.mode = plan_mode_parse(optarg)) < 0) {
				fprintf(stderr, "haven: --plan must be auto, resident or offload\n");
				return EXIT_USAGE;
			}
			break;
		case 'v':
			if (parse_bytes(optarg, &o.vram_limit) < 0 || !o.vram_limit) {
				fprintf(stderr, "haven: bad --vram-limit '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n': o.dry_run = true; break;
		case 'R': o.require_gpu = true; break;
		case 'j': json = true; break;
		case 'M': o.manifest_dir = optarg; break;
		case 'm': o.manifest_file = optarg; break;
		case 'o': o.only = optarg; break;
		case 'c': str_copy(cache, optarg, sizeof(cache)); break;
		case 'r': o.readers = atoi(optarg); break;
		case 'P': o.parallel = atoi(optarg); break;
		case 'T': o.trust_blobs = true; break;
		case 'S': o.manifest_soft = true; break;
		case 'h': load_usage(stdout); return 0;
		default: load_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !o.endpoint == !o.data_dir) {
		load_usage(stderr);
		return EXIT_USAGE;
	}
	if (str_copy(repo, argv[optind], sizeof(repo)) >= sizeof(repo)) {
		fprintf(stderr, "haven: repository name too long\n");
		return EXIT_USAGE;
	}
	if ((at = strchr(repo, '@'))) {
		*at = '\0';
		o.rev = at + 1;
	}
	o.repo = repo;
	o.cache_dir = cache;
	o.token = getenv("HF_TOKEN");
	rc = load_run(&l, &o, &err);
	if (l) {
		if (json) {
			char *s = json_dumps(load_report(l), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			if (s)
				printf("%s\n", s);
			free(s);
		} else {
			print_text(load_report(l));
		}
		const char *reason = json_string_value(json_object_get(
			json_object_get(load_report(l), "gpu"), "reason"));
		if (rc == 0 && reason && !o.dry_run)
			fprintf(stderr, "haven: GPU steps skipped: %s\n", reason);
	}
	load_free(l);
	if (rc < 0)
		return cli_fail(&err);
	return 0;
}

/* --- convert --------------------------------------------------------------- */

static int convert(const char *in, const char *out, struct err *err)
{
	struct tensor_list tl = { 0 };
	struct stat sb;
	int fd, rc;

	fd = open(in, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		rc = err_set(err, ERR_NOTFOUND, "cannot open '%s'", in);
		goto out;
	}
	if ((rc = loader_torch_tensors(&tl, 0, fd, (uint64_t)sb.st_size, in,
				       err)) < 0)
		goto out;
	if (!tl.count) {
		rc = err_set(err, ERR_INVALID, "'%s' holds no tensors", in);
		goto out;
	}
	if ((rc = tensor_list_sort_unique(&tl, err)) < 0 ||
	    (rc = safetensors_write(out, &tl, fd, err)) < 0)
		goto out;
	printf("%s: %zu tensors written to %s\n", in, tl.count, out);
out:
	if (fd >= 0)
		close(fd);
	tensor_list_release(&tl);
	return rc;
}

int cmd_convert(int argc, char **argv)
{
	struct err err = { 0 };

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: haven convert FILE.pt --to FILE.safetensors\n"
		       "Writes the safetensors twin of a torch.save checkpoint. The pickle\n"
		       "is read, never run: only a plain state dict's opcodes and globals\n"
		       "are accepted, anything else is refused by name.\n");
		return 0;
	}
	if (argc != 4 || strcmp(argv[2], "--to")) {
		fprintf(stderr, "usage: haven convert FILE.pt --to FILE.safetensors\n");
		return EXIT_USAGE;
	}
	if (convert(argv[1], argv[3], &err) < 0)
		return cli_fail(&err);
	return 0;
}
