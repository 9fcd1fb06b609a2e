#!/bin/bash
# bench-mirror.sh: `haven mirror` from a local upstream Haven against the
# rate at which this machine hashes and durably writes the same bytes.
#
# usage: tests/bench/bench-mirror.sh [--record] [--keep] [--size-mib N]
#                                    [--files N] [--runs N]
#
#   --record        append the results table to tests/bench/RESULTS.md
#   --keep          keep the scratch folder (the server is still stopped)
#   --size-mib N    size of each LFS file (default 1024, i.e. 1 GiB)
#   --files N       LFS files in the repository (default 4)
#   --runs N        timed runs per side, the best counts (default 2)
#
# One run writes N pseudo-random files (AES-CTR keystream) once, imports
# them with `haven import` into an upstream data folder as one repository
# (each file becomes an LFS object), and starts `haven serve` on 127.0.0.1
# for it. Then, alternating, best of N each:
#
#   1. `haven mirror --from UPSTREAM` of that repository into a fresh data
#      folder on the same filesystem (git history, then the LFS objects,
#      each downloaded, hashed, fsynced and moved into the blob store,
#      then the refs): bytes of the LFS files / wall-clock seconds
#   2. the reference: a small C program that reads the same files (the
#      upstream's blobs, from the page cache) and writes each to a new
#      file in one pass with a 1 MiB buffer, hashing it with sha256
#      (OpenSSL EVP) and fsyncing it: bytes / seconds
#
# Bar: mirror >= 0.7 x the reference. The CPU seconds of both sides (the
# mirror's plus the upstream server's, against the reference's) are
# reported. It needs haven (built), curl, python3, openssl, git and a C
# compiler with the OpenSSL headers (Debian: apt-get install curl python3
# openssl git gcc libssl-dev), and room under ${TMPDIR:-/tmp} for the
# files three times over, plus 512 MiB (about 12.5 GiB by default): the
# upstream's copy, the mirror's and the reference's (the generated files
# go once imported). Only 127.0.0.1 is contacted. A run takes a few
# minutes; a watchdog stops it after HAVEN_BENCH_BUDGET seconds (default
# 900), and everything it started is stopped and removed on exit. Exit
# status: 0 when the bar is met, 1 when it is not, 2 when the benchmark
# could not run.
#
# Environment: HAVEN (the binary; default build/haven or ./haven at the top
# of the source tree), HAVEN_SERVE_ARGS (extra `haven serve` options),
# HAVEN_MIRROR_ARGS (extra `haven mirror` options, e.g. --parallel 2), CC,
# TMPDIR, and HAVEN_BENCH_BUDGET.

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

size_mib=1024
nfiles=4
runs=2
parse_options "--size-mib size_mib --files nfiles --runs runs" "$@"
check_range --size-mib "$size_mib" 1 16384
check_range --files "$nfiles" 1 64
check_range --runs "$runs" 1 10

REPO=bench/mirror
RATIO_BAR=0.7
BUDGET_S=${HAVEN_BENCH_BUDGET:-900}
size=$((size_mib * 1024 * 1024))
total=$((size * nfiles))
total_mib=$((size_mib * nfiles))

# label MIB: "1 GiB" or "1500 MiB".
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
need_tools curl python3 openssl git timeout

# --- Scratch folder, watchdog and disk room ------------------------------------

make_scratch haven-mirrorbench
start_watchdog
need_mib=$((total_mib * 3 + 512))
avail_mib=$(df -Pk "$scratch" | awk 'NR == 2 { print int($4 / 1024) }')
[ -n "$avail_mib" ] || die "cannot tell the free space under ${TMPDIR:-/tmp}"
[ "$avail_mib" -ge "$need_mib" ] ||
	die "need about $need_mib MiB free under ${TMPDIR:-/tmp}, have $avail_mib (try --size-mib)"

# --- Reference program ------------------------------------------------------------

cat >"$scratch/hashwrite.c" <<'EOF'
/* hashwrite DSTDIR SRC...: copies each SRC to a new file in DSTDIR in one
 * pass with a 1 MiB buffer, hashing it with sha256 and fsyncing it, and
 * prints each hex digest on a line, then the byte count, the seconds it
 * took and the CPU seconds it used (user + system). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <openssl/evp.h>

static unsigned char buf[1 << 20];

static long long copy_one(const char *src, const char *dst, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	long long total = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int in = open(src, O_RDONLY);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (in < 0 || out < 0 || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		perror("hashwrite: open");
		return -1;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf)), off = 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("hashwrite: read");
			return -1;
		}
		if (n == 0)
			break;
		while (off < n) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				perror("hashwrite: write");
				return -1;
			}
			off += w;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		total += n;
	}
	if (fsync(out) < 0 || close(out) < 0) {
		perror("hashwrite: fsync");
		return -1;
	}
	close(in);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return total;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	long long total = 0;
	char dst[4096], hex[65] = "";

	if (argc < 3) {
		fputs("usage: hashwrite DSTDIR SRC...\n", stderr);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 2; i < argc; i++) {
		long long n;
		snprintf(dst, sizeof(dst), "%s/%d", argv[1], i - 2);
		if ((n = copy_one(argv[i], dst, hex)) < 0)
			return 1;
		printf("%s\n", hex);
		total += n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("%lld %.6f %.2f\n", total, (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	return 0;
}
EOF
"$CC" -O2 -o "$scratch/hashwrite" "$scratch/hashwrite.c" -lcrypto 2>"$scratch/cc.log" ||
	{ cat "$scratch/cc.log" >&2; die "cannot build the reference program (is libssl-dev installed?)"; }

# --- The upstream ----------------------------------------------------------------------

begin_run
updata=$scratch/upstream
src=$scratch/src
mkdir -p "$src" "$scratch/ref"
note "writing $nfiles pseudo-random files of $(label "$size_mib")"
for i in $(seq "$nfiles"); do
	make_data "$src/part-$i.bin" "$size"
done
printf '{"model_type": "haven-bench"}\n' >"$src/config.json"
shas=()
for i in $(seq "$nfiles"); do
	shas+=("$(sha256sum "$src/part-$i.bin" | cut -c1-64)")
done
note "importing them into the upstream with haven import"
t0=$(date +%s)
timeout 600 "$HAVEN" import "$src" --repo "$REPO" --data "$updata" >"$scratch/import.out" 2>&1 ||
	{ cat "$scratch/import.out" >&2; die "haven import failed"; }
import_s=$(($(date +%s) - t0))
rm -rf "$src"
data=$updata
blobs=()
for s in "${shas[@]}"; do
	[ "$(stat -c %s "$(blob_of "$s")" 2>/dev/null)" = "$size" ] ||
		die "the upstream does not hold LFS object $s"
	blobs+=("$(blob_of "$s")")
done
sync
start_haven "$updata"

# --- Measurements ---------------------------------------------------------------

row_fmt='# %-44s haven %-10s reference %-10s ratio %-6s %s\n'
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# cpu_of PID: the CPU seconds (user + system) a process has used so far.
cpu_of() {
	awk -v hz="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' /proc/"$1"/stat 2>/dev/null
}

# mbps BYTES SECONDS: MB/s (10^6 bytes), no decimals; "-" without SECONDS.
mbps() {
	awk -v b="$1" -v s="$2" 'BEGIN { if (s == "" || s + 0 == 0) print "-"; else printf "%.0f", b / s / 1e6 }'
}

# least A B: the smaller of two numbers, ignoring an empty A.
least() {
	awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'
}

# mirror_run: one `haven mirror` into a fresh data folder; prints its
# seconds and the CPU seconds it and the upstream server used, or nothing
# when it failed or the objects are not all there.
mirror_run() {
	local m=$scratch/mirror c0 t out
	rm -rf "$m"
	sync
	c0=$(cpu_of "$haven_pid")
	# shellcheck disable=SC2086
	t=$( { TIMEFORMAT='%R %U %S'; time timeout 600 "$HAVEN" mirror --from "$hbase" \
		--data "$m" --json ${HAVEN_MIRROR_ARGS:-} "$REPO" \
		>"$scratch/mirror.json" 2>"$scratch/mirror.err"; } 2>&1) ||
		{ note "haven mirror failed: $(tail -n 3 "$scratch/mirror.err")"; return 1; }
	out=$(python3 - "$scratch/mirror.json" "$nfiles" "$total" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ok = d.get("failed") == 0 and d.get("filesFetched") == int(sys.argv[2]) \
    and d.get("bytesFetched") == int(sys.argv[3])
print("ok" if ok else "unexpected summary: " + json.dumps(d)[:300])
EOF
	)
	[ "$out" = ok ] || { note "$out"; return 1; }
	for s in "${shas[@]}"; do
		[ "$(stat -c %s "$m/blobs/sha256/${s:0:2}/${s:2:2}/$s" 2>/dev/null)" = "$size" ] ||
			{ note "the mirror lacks LFS object $s"; return 1; }
	done
	set -- $t
	echo "$1 $(awk -v u="$2" -v s="$3" -v a="$c0" -v b="$(cpu_of "$haven_pid")" \
		'BEGIN { printf "%.2f", u + s + b - a }')"
}

# reference_run: prints the reference program's seconds and CPU seconds.
reference_run() {
	local out dst=$scratch/ref
	rm -rf "$dst" && mkdir -p "$dst"
	sync
	out=$(timeout 600 "$scratch/hashwrite" "$dst" "${blobs[@]}") || return 1
	rm -rf "$dst"
	[ "$(echo "$out" | head -n "$nfiles" | tr '\n' ' ')" = "${shas[*]} " ] ||
		{ note "the reference program hashed other bytes"; return 1; }
	set -- $(echo "$out" | tail -n 1)
	[ "$1" = "$total" ] || { note "the reference program copied $1 bytes, not $total"; return 1; }
	echo "$2 $3"
}

h_best=
r_best=
h_cpu=
r_cpu=
h_all=
r_all=

# timed_run SIDE CMD: one timed run for side h or r: keeps the least
# seconds and CPU seconds in SIDE_best and SIDE_cpu, and adds the run's
# MB/s (or "failed") to SIDE_all.
timed_run() {
	local best=$1_best cpu=$1_cpu all=$1_all t
	if t=$($2); then
		set -- $t
		printf -v "$best" '%s' "$(least "${!best}" "$1")"
		printf -v "$cpu" '%s' "$(least "${!cpu}" "$2")"
		printf -v "$all" '%s' "${!all} $(mbps "$total" "$1")"
	else
		printf -v "$all" '%s' "${!all} failed"
	fi
}

what="$nfiles x $(label "$size_mib")"
note "mirror of $what vs read+sha256+write+fsync: best of $runs, alternating"
for _ in $(seq "$runs"); do
	timed_run h mirror_run
	note "mirror: ${h_all# }"
	timed_run r reference_run
	note "reference: ${r_all# }"
done
h_mbps=$(mbps "$total" "$h_best")
r_mbps=$(mbps "$total" "$r_best")
r=$(ratio "$r_best" "$h_best")
row "Mirror $what LFS, MB/s (best of $runs)" "$h_mbps" "$r_mbps" "$r" ">= $RATIO_BAR" \
	"$(judge "$r" ge "$RATIO_BAR")"
row "CPU seconds (mirror + upstream server / reference; least)" "${h_cpu:--}" "${r_cpu:--}" \
	"$(ratio "$h_cpu" "$r_cpu")" - -

# --- Report -------------------------------------------------------------------------

run_facts
fs=$(df -PT "$scratch" | awk 'NR == 2 { print $2 " on " $1 }')
ssl_v=$(openssl version | awk '{ print $1 " " $2 }')
verdict="all bars met"
[ "$failed" = 1 ] && verdict="the bar is NOT met"

report() {
	echo "### Mirror, $when"
	echo
	echo "- Machine: $(machine);"
	echo "  the mirror, the upstream server and the reference share these $nproc CPUs."
	echo "  Load average before the run: $load_start. Disk: $fs."
	echo "- Haven $rev. Upstream: \`$(serve_cmd)\` on loopback, holding one"
	echo "  repository with $what LFS files (\`haven import\`, ${import_s} s)."
	echo "- Haven: \`haven mirror --from UPSTREAM${HAVEN_MIRROR_ARGS:+ $HAVEN_MIRROR_ARGS}\` into a fresh data folder"
	echo "  on the same filesystem, wall-clock time of the whole command (git fetch, LFS"
	echo "  downloads, verification, fsync, refs). Reference: one process reading the"
	echo "  upstream's blobs (page cache) and writing each to a new file, 1 MiB buffer,"
	echo "  sha256 ($ssl_v EVP), fsync. MB/s are bytes of the LFS files / seconds."
	echo "- Every run, MB/s: haven$h_all / reference$r_all (alternating, no warm-up);"
	echo "  run took ${elapsed} s."
	echo "- Verdict: $verdict."
	echo
	table Reference Haven/reference
}

publish
