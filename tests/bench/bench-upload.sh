#!/bin/bash
# bench-upload.sh: Haven's LFS upload path against a plain write of the same
# bytes, on loopback and on the same disk.
#
# usage: tests/bench/bench-upload.sh [--record] [--keep] [--size-mib N]
#                                    [--big-mib N] [--runs N]
#
#   --record        append the results table to tests/bench/RESULTS.md
#   --keep          keep the scratch folder (the server is still stopped)
#   --size-mib N    size of the timed object (default 2048, i.e. 2 GiB)
#   --big-mib N     size of the object whose upload is watched for memory
#                   (default 10240, i.e. 10 GiB; smaller when the disk lacks
#                   room, which the report then says; 0 skips that line)
#   --runs N        timed runs per side, the best counts (default 3)
#
# One run creates a user, a write token and a repository in a fresh data
# folder, starts `haven serve` on 127.0.0.1, and measures:
#
#   1. upload throughput: one LFS batch request (transfer "basic", so the
#      object goes up in one PUT), then `curl -T FILE HREF` until the 200,
#      which Haven sends after it has hashed, written and fsynced the body;
#      against a small C program that copies the same file to a new file on
#      the same filesystem in one pass with a 1 MiB buffer, hashing it with
#      sha256 (OpenSSL EVP) and fsyncing at the end. Best of N each,
#      alternating (bar: Haven >= 0.8 x the reference)
#   2. Haven's peak resident memory while a 10 GiB object goes up: VmRSS
#      every 100 ms, and VmHWM at the end (bar: < 100 MB)
#
# Both sides read their input from the page cache (nothing is dropped).
# It needs haven (built), curl, python3, openssl and a C compiler with the
# OpenSSL headers (libssl-dev), and room on the disk of ${TMPDIR:-/tmp} for
# the big object twice (about 21 GiB by default). Only 127.0.0.1 is
# contacted. The run is bounded (a few minutes; a watchdog stops it after
# 420 s) and everything it started is stopped and removed on exit. Exit
# status: 0 when every bar is met, 1 when one is not, 2 when the benchmark
# could not run.
#
# Environment: HAVEN (the binary; default build/haven or ./haven at the top
# of the source tree), HAVEN_SERVE_ARGS (extra `haven serve` options), CC,
# TMPDIR, and HAVEN_BENCH_BUDGET (the watchdog's seconds, default 420).

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

size_mib=2048
big_mib=10240
runs=3
parse_options "--size-mib size_mib --big-mib big_mib --runs runs" "$@"
check_range --size-mib "$size_mib" 1 16384
check_range --big-mib "$big_mib" 0 65536
check_range --runs "$runs" 1 10

NS=bench
REPO=$NS/bench
RSS_BAR_KB=$((100 * 1024))
RATIO_BAR=0.8
BUDGET_S=${HAVEN_BENCH_BUDGET:-420}
size=$((size_mib * 1024 * 1024))

# label MIB: "2 GiB" or "1500 MiB".
label() {
	if [ $(($1 % 1024)) = 0 ]; then
		echo "$(($1 / 1024)) GiB"
	else
		echo "$1 MiB"
	fi
}

# --- Tools -------------------------------------------------------------------

find_haven
CC=${CC:-cc}
command -v "$CC" >/dev/null || die "no C compiler (set CC)"
need_tools curl python3 openssl timeout

# --- Scratch folder, watchdog and cleanup -------------------------------------

make_scratch haven-upbench
start_watchdog

# Disk room: the timed object, Haven's copy and the reference's copy first;
# the big object and Haven's copy of it afterwards, with 512 MiB to spare.
avail_mib=$(df -Pk "$scratch" | awk 'NR == 2 { print int($4 / 1024) }')
[ -n "$avail_mib" ] || die "cannot tell the free space under ${TMPDIR:-/tmp}"
[ "$avail_mib" -ge $((size_mib * 3 + 512)) ] ||
	die "need about $((size_mib * 3 + 512)) MiB free under ${TMPDIR:-/tmp}"
big_note=
if [ "$big_mib" -gt 0 ] && [ "$avail_mib" -lt $((big_mib * 2 + 512)) ]; then
	fit=$(((avail_mib - 512) / 2 / 1024 * 1024))
	[ "$fit" -ge 1024 ] || fit=$(((avail_mib - 512) / 2))
	big_note="the disk had room for $(label "$fit"), not $(label "$big_mib")"
	note "$big_note"
	big_mib=$fit
fi
big=$((big_mib * 1024 * 1024))

# --- Reference program ------------------------------------------------------------

cat >"$scratch/copyhash.c" <<'EOF'
/* copyhash SRC DST: copies SRC to a new file DST in one pass with a 1 MiB
 * buffer, hashing the bytes with sha256, fsyncs DST, and prints the hex
 * digest, the byte count, the seconds it took and the CPU seconds it used
 * (user + system). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <openssl/evp.h>

static unsigned char buf[1 << 20];

int main(int argc, char **argv)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	struct timespec t0, t1;
	struct rusage ru;
	long long total = 0;
	EVP_MD_CTX *ctx;
	int in, out;

	if (argc != 3) {
		fputs("usage: copyhash SRC DST\n", stderr);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	in = open(argv[1], O_RDONLY);
	out = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, 0644);
	ctx = EVP_MD_CTX_new();
	if (in < 0 || out < 0 || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		perror("copyhash: open");
		return 1;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf)), off = 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("copyhash: read");
			return 1;
		}
		if (n == 0)
			break;
		while (off < n) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				perror("copyhash: write");
				return 1;
			}
			off += w;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		total += n;
	}
	if (fsync(out) < 0 || close(out) < 0) {
		perror("copyhash: fsync");
		return 1;
	}
	close(in);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	for (i = 0; i < mdlen; i++)
		printf("%02x", md[i]);
	printf(" %lld %.6f %.2f\n", total, (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	return 0;
}
EOF
"$CC" -O2 -o "$scratch/copyhash" "$scratch/copyhash.c" -lcrypto 2>"$scratch/cc.log" ||
	{ cat "$scratch/cc.log" >&2; die "cannot build the reference program (is libssl-dev installed?)"; }

# --- Data folder and server --------------------------------------------------------

begin_run
data=$scratch/data
mkdir -p "$scratch/src" "$scratch/ref"
haven_setup "$data" "$NS" "$REPO"
start_haven "$data"

# upload_href FILE SHA BYTES: the signed PUT URL from a "basic" LFS batch.
upload_href() {
	local body
	body=$(printf '{"operation":"upload","transfers":["basic"],"objects":[{"oid":"%s","size":%s}]}' "$2" "$3")
	curl -sf --max-time 10 -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/vnd.git-lfs+json' \
		-H 'Accept: application/vnd.git-lfs+json' \
		-d "$body" -o "$scratch/batch.json" "$hbase/$REPO.git/info/lfs/objects/batch" ||
		{ note "the LFS batch request failed"; return 1; }
	python3 - "$scratch/batch.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
obj = doc["objects"][0]
if doc.get("transfer", "basic") != "basic" or "upload" not in obj.get("actions", {}):
    sys.exit("no basic upload action: %s" % json.dumps(doc)[:300])
print(obj["actions"]["upload"]["href"])
EOF
}

# cpu_of PID: the CPU seconds (user + system) a process has used so far.
cpu_of() {
	awk -v hz="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' /proc/"$1"/stat 2>/dev/null
}
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# put FILE SHA BYTES: uploads through Haven; prints the seconds until the
# 200 and the CPU seconds the server used meanwhile, or nothing when the
# upload was not accepted or the blob is missing.
put() {
	local href out c0
	rm -f "$(blob_of "$2")"
	href=$(upload_href "$1" "$2" "$3") || return 1
	c0=$(cpu_of "$haven_pid")
	out=$(curl -s --max-time 280 -T "$1" -w '%{http_code} %{size_upload} %{time_total}' \
		-o "$scratch/put.out" "$href") || { note "curl -T failed"; return 1; }
	set -- $out "$2" "$3"
	if [ "$1" != 200 ] || [ "$2" != "$5" ]; then
		note "PUT answered $1 after $2 bytes: $(head -c 300 "$scratch/put.out")"
		return 1
	fi
	[ "$(stat -c %s "$(blob_of "$4")" 2>/dev/null)" = "$5" ] ||
		{ note "the blob is not stored after the 200"; return 1; }
	echo "$3 $(awk -v a="$c0" -v b="$(cpu_of "$haven_pid")" 'BEGIN { printf "%.2f", b - a }')"
}

# reference FILE SHA: prints the reference program's seconds and CPU seconds.
reference() {
	local out dst=$scratch/ref/copy
	rm -f "$dst"
	out=$(timeout 280 "$scratch/copyhash" "$1" "$dst") || return 1
	rm -f "$dst"
	set -- $out "$2"
	[ "$1" = "$5" ] || { note "the reference program hashed $1, not $5"; return 1; }
	echo "$3 $4"
}

# --- Measurements ---------------------------------------------------------------

row_fmt='# %-44s haven %-10s reference %-10s ratio %-6s %s\n'

# mbps BYTES SECONDS: MB/s (10^6 bytes), no decimals; "-" without SECONDS.
mbps() {
	awk -v b="$1" -v s="$2" 'BEGIN { if (s == "" || s + 0 == 0) print "-"; else printf "%.0f", b / s / 1e6 }'
}

# least A B: the smaller of two numbers, ignoring an empty A.
least() {
	awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'
}

size_label=$(label "$size_mib")
note "writing a $size_label pseudo-random file"
src=$scratch/src/object.bin
make_data "$src" "$size"
sha=$(sha256sum "$src" | cut -c1-64)

note "$size_label upload vs copy+sha256+fsync: one warm-up each, then best of $runs, alternating"
put "$src" "$sha" "$size" >/dev/null || die "the warm-up upload failed"
reference "$src" "$sha" >/dev/null || die "the reference program failed"
h_best=
r_best=
h_cpu=
r_cpu=
h_all=
r_all=

# timed_run SIDE CMD ARGS...: one timed run of put or reference for side h
# or r: keeps the least seconds and CPU seconds in SIDE_best and SIDE_cpu,
# and adds the run's MB/s (or "failed") to SIDE_all.
timed_run() {
	local best=$1_best cpu=$1_cpu all=$1_all t
	shift
	if t=$("$@"); then
		set -- $t
		printf -v "$best" '%s' "$(least "${!best}" "$1")"
		printf -v "$cpu" '%s' "$(least "${!cpu}" "$2")"
		printf -v "$all" '%s' "${!all} $(mbps "$size" "$1")"
	else
		printf -v "$all" '%s' "${!all} failed"
	fi
}

for _ in $(seq "$runs"); do
	timed_run h put "$src" "$sha" "$size"
	timed_run r reference "$src" "$sha"
done
h_mbps=$(mbps "$size" "$h_best")
r_mbps=$(mbps "$size" "$r_best")
r=$(ratio "$r_best" "$h_best")
row "Upload $size_label (PUT, basic), MB/s (best of $runs)" "$h_mbps" "$r_mbps" "$r" ">= $RATIO_BAR" \
	"$(judge "$r" ge "$RATIO_BAR")"
row "CPU seconds for that $size_label (server / reference; least)" "${h_cpu:--}" "${r_cpu:--}" \
	"$(ratio "$h_cpu" "$r_cpu")" - -
rm -f "$src" "$(blob_of "$sha")"

big_res=skipped
h_peak=
h_rest=
big_mbps=
if [ "$big_mib" -gt 0 ]; then
	big_label=$(label "$big_mib")
	note "writing a $big_label pseudo-random file"
	src=$scratch/src/big.bin
	make_data "$src" "$big"
	bsha=$(sha256sum "$src" | cut -c1-64)
	h_rest=$(kb_field "$haven_pid" VmRSS)
	# Restart VmHWM from the current RSS (Linux >= 4.0) so the peak is this
	# upload's; where that is refused it covers the server's whole life,
	# which only makes the figure larger.
	echo 5 2>/dev/null >/proc/"$haven_pid"/clear_refs ||
		note "cannot reset VmHWM; the peak covers the whole run"
	note "$big_label upload, VmRSS every 100 ms"
	put "$src" "$bsha" "$big" >"$scratch/big.time" &
	put_pid=$!
	bg_pids=$put_pid
	max=0
	samples=0
	while kill -0 "$put_pid" 2>/dev/null; do
		cur=$(kb_field "$haven_pid" VmRSS)
		[ -n "$cur" ] && [ "$cur" -gt "$max" ] && max=$cur
		samples=$((samples + 1))
		sleep 0.1
	done
	wait "$put_pid"
	put_rc=$?
	bg_pids=
	hwm=$(kb_field "$haven_pid" VmHWM)
	[ -n "$hwm" ] && [ "$hwm" -gt "$max" ] && max=$hwm
	if [ "$put_rc" = 0 ] && [ -s "$scratch/big.time" ]; then
		h_peak=$max
		big_mbps=$(mbps "$big" "$(cut -d' ' -f1 "$scratch/big.time")")
	else
		note "the $big_label upload failed"
	fi
	note "$samples samples, max VmRSS $(mb "$max") MB (VmHWM $(mb "$hwm") MB)"
	big_res=FAIL
	[ -n "$h_peak" ] && [ "$h_peak" -lt "$RSS_BAR_KB" ] && big_res=PASS
	row "Peak RSS during a $big_label upload, MB" "$(mb "$h_peak")" - - "< 100 MB" "$big_res"
	row "$big_label upload, MB/s (one run)" "${big_mbps:--}" - - - -
	row "RSS before that upload, MB" "$(mb "$h_rest")" - - - -
	rm -f "$src" "$(blob_of "$bsha")"
fi

# --- Report -------------------------------------------------------------------------

run_facts
fs=$(df -PT "$scratch" | awk 'NR == 2 { print $2 " on " $1 }')
curl_v=$(curl --version | awk 'NR == 1 { print $2 }')
ssl_v=$(openssl version | awk '{ print $1 " " $2 }')
verdict="all bars met"
[ "$failed" = 1 ] && verdict="at least one bar NOT met"

report() {
	echo "### Upload, $when"
	echo
	echo "- Machine: $(machine);"
	echo "  the client (curl) and the server share these $nproc CPUs."
	echo "  Load average before the run: $load_start. Disk: $fs."
	if [ -n "${HAVEN_SERVE_ARGS:-}" ]; then
		echo "- Haven $rev: \`$(serve_cmd)\`."
	else
		echo "- Haven $rev: \`haven serve --threads $nproc\`, default settings."
	fi
	echo "- Haven: LFS batch (basic), then \`curl -T\` (curl $curl_v) of the object to the"
	echo "  signed URL until the 200. Reference: one process copying the same file to a"
	echo "  new file on the same filesystem, 1 MiB buffer, sha256 ($ssl_v EVP), fsync."
	echo "  Input from the page cache on both sides."
	echo "- Every run, MB/s: haven$h_all / reference$r_all (after one warm-up each);"
	echo "  run took ${elapsed} s."
	if [ "$big_res" != skipped ]; then
		echo "- Peak RSS: the larger of VmRSS sampled every 100 ms ($samples samples) and"
		echo "  VmHWM at the end (reset before the upload)."
		[ -n "$big_note" ] && echo "  Smaller than 10 GiB: $big_note."
	fi
	echo "- Verdict: $verdict."
	echo
	table Reference Haven/reference
}

publish
