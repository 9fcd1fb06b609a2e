#!/bin/bash
# bench-s3.sh: GET throughput of Haven's S3 client (storage/s3_client.c,
# through tests/s3/s3-tool) against curl's own SigV4 signer, both reading
# the same object from the same Ceph RGW on loopback (tests/s3/rgw.sh).
#
# usage: tests/bench/bench-s3.sh [--record] [--keep] [--size-mib N]
#                                [--runs N]
#
#   --record      append the results to tests/bench/RESULTS.md
#   --keep        keep the scratch folder
#   --size-mib N  the object (default 1024)
#   --runs N      timed GETs per side, alternating (default 3; best counts)
#
# One run starts RGW (memstore: the object lives in the OSD's memory, so
# no disk is timed) and records how long that took, uploads the object
# with the client (a multipart upload, timed and reported), then, after
# one warm-up each, alternates `s3-tool get BUCKET KEY >/dev/null` and
# `curl --aws-sigv4 ... -o /dev/null` (curl 7.88 needs the
# x-amz-content-sha256 header given). Bar: client/curl >= 0.8.
#
# It needs a built tree (tests/s3/s3-tool; S3_TOOL or HAVEN pick it),
# curl, the ceph packages rgw.sh installs, and about 3 GiB of free memory
# for a 1 GiB object. A watchdog stops the run after HAVEN_BENCH_BUDGET
# seconds (default 300). Exit status: 0 when the bar is met, 1 when not,
# 2 when the benchmark could not run.

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

size_mib=1024
runs=3
parse_options "--size-mib size_mib --runs runs" "$@"
check_range --size-mib "$size_mib" 16 3072
check_range --runs "$runs" 1 20

if [ -z "${S3_TOOL:-}" ]; then
	for S3_TOOL in "$top/build/tests/s3/s3-tool" \
		"$(dirname "${HAVEN:-/nonexistent/haven}")/tests/s3/s3-tool"; do
		[ -x "$S3_TOOL" ] && break
	done
fi
[ -x "$S3_TOOL" ] || die "no tests/s3/s3-tool (build the tree, or set S3_TOOL)"
need_tools curl timeout awk

BUDGET_S=${HAVEN_BENCH_BUDGET:-300}
make_scratch haven-bench-s3
start_watchdog
rgw_dir=$scratch/rgw
trap 'bash "$top/tests/s3/rgw.sh" stop "$rgw_dir" 2>/dev/null; cleanup' EXIT
begin_run

t0=$(date +%s%N)
timeout 180 bash "$top/tests/s3/rgw.sh" start "$rgw_dir" >"$scratch/rgw.env" 2>"$scratch/rgw.log" ||
	{ cat "$scratch/rgw.log" >&2; die "RGW did not start"; }
rgw_start_ms=$((($(date +%s%N) - t0) / 1000000))
# shellcheck disable=SC1091
. "$scratch/rgw.env"
note "RGW ready at $HAVEN_S3_ENDPOINT in $rgw_start_ms ms"

bytes=$((size_mib * 1024 * 1024))
obj=$scratch/object.bin
make_data "$obj" "$bytes"
bucket=haven-bench
timeout 60 "$S3_TOOL" mb "$bucket" || die "cannot create the bucket"
t0=$(date +%s%N)
timeout 300 "$S3_TOOL" put "$bucket" object.bin "$obj" >"$scratch/put.out" ||
	die "upload failed"
put_ns=$(($(date +%s%N) - t0))
read -r put_sha _ _ put_parts <"$scratch/put.out"
[ "$put_sha" = "$(sha256sum "$obj" | cut -d' ' -f1)" ] || die "upload sha256 differs"
rm -f "$obj" # the page cache is for the servers

url=$HAVEN_S3_ENDPOINT/$bucket/object.bin
curl_get() { # MB/s, or nothing on failure
	timeout 120 curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o /dev/null \
		-w '%{size_download} %{speed_download}\n' "$url" |
		awk -v b="$bytes" '$1 == b { printf "%.0f", $2 / 1e6 }'
}
client_get() {
	local t0 ns
	t0=$(date +%s%N)
	# the client checks that it got Content-Length bytes
	timeout 120 "$S3_TOOL" get "$bucket" object.bin >/dev/null || return 0
	ns=$(($(date +%s%N) - t0))
	awk -v b="$bytes" -v ns="$ns" 'BEGIN { printf "%.0f", b / (ns / 1e9) / 1e6 }'
}

curl_get >/dev/null
client_get >/dev/null
best_c=0 best_r=0 c_all="" r_all=""
for _ in $(seq "$runs"); do
	c=$(client_get)
	r=$(curl_get)
	[ -n "$c" ] && [ -n "$r" ] || die "a GET failed (client '$c', curl '$r')"
	c_all="$c_all $c" r_all="$r_all $r"
	[ "$c" -gt "$best_c" ] && best_c=$c
	[ "$r" -gt "$best_r" ] && best_r=$r
done
timeout 60 "$S3_TOOL" rm "$bucket" object.bin >/dev/null 2>&1

row_fmt='# %-40s client %-8s curl %-8s ratio %-6s %s\n'
q=$(ratio "$best_c" "$best_r")
row "GET ${size_mib} MiB object, MB/s (best of $runs)" "$best_c" "$best_r" "$q" ">= 0.8" "$(judge "$q" ge 0.8)"
put_mbs=$(awk -v b="$bytes" -v ns="$put_ns" 'BEGIN { printf "%.0f", b / (ns / 1e9) / 1e6 }')
row "PUT ${size_mib} MiB object (multipart, $put_parts parts), MB/s" "$put_mbs" - - - -
row "RGW start from an empty folder, s" "$(awk -v m="$rgw_start_ms" 'BEGIN { printf "%.1f", m / 1000 }')" - - - -

curl_v=$(curl --version | head -n 1 | cut -d' ' -f2)
ceph_v=$(dpkg-query -W -f='${Version}' radosgw 2>/dev/null || echo unknown)
run_facts
verdict="all bars met"
[ "$failed" = 0 ] || verdict="a bar was missed"

report() {
	echo "### S3 client GET, $when"
	echo
	echo "- Machine: $(machine);"
	echo "  client, gateway and OSD share these $nproc CPUs."
	echo "  Load average before the run: $load_start."
	echo "- Haven $rev: tests/s3/s3-tool (storage/s3_client.c, libcurl, SigV4) against"
	echo "  curl $curl_v \`--aws-sigv4\`, both writing to /dev/null; Ceph RGW $ceph_v"
	echo "  (memstore, one OSD) started by tests/s3/rgw.sh."
	echo "- Every run, MB/s: client$c_all / curl$r_all (alternating, after one warm-up"
	echo "  each); run took ${elapsed} s."
	echo "- Verdict: $verdict."
	echo
	echo "| Measurement | Haven client | curl | client/curl | Bar | Result |"
	echo "|---|---:|---:|---:|---|---|"
	printf '%s\n' "${rows[@]}"
}

publish
