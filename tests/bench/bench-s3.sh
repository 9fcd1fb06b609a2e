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
# Then the same object is imported with `haven import` into a data folder
# whose blobs.conf names the bucket (prefix haven/), and GETs of its
# /resolve URL through `haven serve` (the S3 backend's streaming path)
# alternate with curl's direct GETs (bar: Haven/curl >= 0.8); a second
# server with --blob-redirect times its 302 answers (500 on one keep-alive
# connection) next to 1-byte GETs of the presigned URL.
#
# It needs a built tree (tests/s3/s3-tool; S3_TOOL or HAVEN pick it),
# curl, python3, the haven binary (HAVEN, or next to s3-tool), the ceph
# packages rgw.sh installs, and about 4 GiB of free memory for a 1 GiB
# object (two copies in the store). A watchdog stops the run after HAVEN_BENCH_BUDGET
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

# Haven on the same bucket (prefix haven/): the object imported through the
# S3 backend, served by `haven serve` (streamed) and, on a second server,
# by --blob-redirect.
if [ -z "${HAVEN:-}" ] && [ -x "$(dirname "$S3_TOOL")/../../haven" ]; then
	HAVEN=$(cd "$(dirname "$S3_TOOL")/../.." && pwd)/haven
fi
find_haven
hdata=$scratch/haven-data
mkdir -p "$hdata" "$scratch/import"
printf 'blobs s3://%s/haven\ns3_endpoint %s\n' "$bucket" "$HAVEN_S3_ENDPOINT" >"$hdata/blobs.conf"
mv "$obj" "$scratch/import/object.bin"
t0=$(date +%s%N)
timeout 300 "$HAVEN" import "$scratch/import" --repo bench/s3 -m bench --data "$hdata" \
	>"$scratch/import.log" 2>&1 || { cat "$scratch/import.log" >&2; die "haven import failed"; }
import_ns=$(($(date +%s%N) - t0))
rm -rf "$scratch/import" # the page cache is for the servers

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

start_haven "$hdata"
haven_get() { # MB/s through Haven's S3 path, or nothing on failure
	timeout 120 curl -sf -o /dev/null -w '%{size_download} %{speed_download}\n' \
		"$hbase/bench/s3/resolve/main/object.bin" |
		awk -v b="$bytes" '$1 == b { printf "%.0f", $2 / 1e6 }'
}
haven_get >/dev/null
curl_get >/dev/null
best_h=0 best_d=0 h_all="" d_all=""
for _ in $(seq "$runs"); do
	h=$(haven_get)
	d=$(curl_get)
	[ -n "$h" ] && [ -n "$d" ] || die "a GET failed (haven '$h', curl '$d')"
	h_all="$h_all $h" d_all="$d_all $d"
	[ "$h" -gt "$best_h" ] && best_h=$h
	[ "$d" -gt "$best_d" ] && best_d=$d
done
haven_rss_kb=$(kb_field "$haven_pid" VmHWM)
stop_pid "$haven_pid"

# Redirect mode: the 302 answers, timed on one keep-alive connection
# (python3 http.client), against a 1-byte GET of the presigned URL itself.
rm -f "$scratch/haven.port"
HAVEN_SERVE_ARGS="${HAVEN_SERVE_ARGS:-} --blob-redirect" start_haven "$hdata"
redirect_ms=$(timeout 120 python3 - "$hport" <<'PY'
import http.client, sys, time, urllib.parse
port, n = int(sys.argv[1]), 500
c = http.client.HTTPConnection("127.0.0.1", port)
path = "/bench/s3/resolve/main/object.bin"
def once(conn, p, headers):
    conn.request("GET", p, headers=headers)
    r = conn.getresponse()
    r.read()
    return r
r = once(c, path, {})
assert r.status == 302 and r.getheader("X-Linked-Size"), r.status
loc = urllib.parse.urlsplit(r.getheader("Location"))
s3 = http.client.HTTPConnection(loc.hostname, loc.port)
s3path = loc.path + "?" + loc.query
assert once(s3, s3path, {"Range": "bytes=0-0"}).status == 206
t = time.perf_counter()
for _ in range(n):
    once(c, path, {})
redirect = (time.perf_counter() - t) / n * 1000
t = time.perf_counter()
for _ in range(n):
    once(s3, s3path, {"Range": "bytes=0-0"})
direct = (time.perf_counter() - t) / n * 1000
print("%.3f %.3f" % (redirect, direct))
PY
) || die "the redirect timing failed"
stop_pid "$haven_pid"
read -r redirect_ms s3_probe_ms <<<"$redirect_ms"
timeout 60 "$S3_TOOL" rm "$bucket" object.bin >/dev/null 2>&1

row_fmt='# %-40s client %-8s curl %-8s ratio %-6s %s\n'
q=$(ratio "$best_c" "$best_r")
row "GET ${size_mib} MiB object, MB/s (best of $runs)" "$best_c" "$best_r" "$q" ">= 0.8" "$(judge "$q" ge 0.8)"
q=$(ratio "$best_h" "$best_d")
row "GET ${size_mib} MiB via Haven (S3 backend) vs curl from RGW, MB/s" "$best_h" "$best_d" "$q" ">= 0.8" "$(judge "$q" ge 0.8)"
row "Haven serve peak RSS during those GETs, MiB" "$(mb "$haven_rss_kb")" - - - -
row "--blob-redirect: one 302 answer (keep-alive), ms" "$redirect_ms" "$s3_probe_ms" - - -
import_mbs=$(awk -v b="$bytes" -v ns="$import_ns" 'BEGIN { printf "%.0f", b / (ns / 1e9) / 1e6 }')
row "haven import into S3 (hash, then 16 MiB parts), MB/s" "$import_mbs" - - - -
put_mbs=$(awk -v b="$bytes" -v ns="$put_ns" 'BEGIN { printf "%.0f", b / (ns / 1e9) / 1e6 }')
row "PUT ${size_mib} MiB object (multipart, $put_parts parts), MB/s" "$put_mbs" - - - -
row "RGW start from an empty folder, s" "$(awk -v m="$rgw_start_ms" 'BEGIN { printf "%.1f", m / 1000 }')" - - - -

curl_v=$(curl --version | head -n 1 | cut -d' ' -f2)
ceph_v=$(dpkg-query -W -f='${Version}' radosgw 2>/dev/null || echo unknown)
run_facts
verdict="all bars met"
[ "$failed" = 0 ] || verdict="a bar was missed"

report() {
	echo "### S3 client and S3 blob backend GET, $when"
	echo
	echo "- Machine: $(machine);"
	echo "  client, gateway and OSD share these $nproc CPUs."
	echo "  Load average before the run: $load_start."
	echo "- Haven $rev: tests/s3/s3-tool (storage/s3_client.c, libcurl, SigV4) against"
	echo "  curl $curl_v \`--aws-sigv4\`, both writing to /dev/null; Ceph RGW $ceph_v"
	echo "  (memstore, one OSD) started by tests/s3/rgw.sh."
	echo "- Every run, MB/s: client$c_all / curl$r_all (alternating, after one warm-up"
	echo "  each); run took ${elapsed} s."
	echo "- Haven rows: \`$(serve_cmd)\` on a data folder whose blobs.conf names the"
	echo "  bucket; curl of /resolve/main/object.bin through Haven vs curl --aws-sigv4"
	echo "  from RGW, MB/s:"
	echo "  haven$h_all / curl$d_all. Redirect row: mean of 500 GETs answered 302 on one"
	echo "  keep-alive connection (Haven column) and of 500 1-byte GETs of the presigned"
	echo "  URL from RGW (other column), ms."
	echo "- Verdict: $verdict."
	echo
	echo "| Measurement | Haven client | curl | client/curl | Bar | Result |"
	echo "|---|---:|---:|---:|---|---|"
	printf '%s\n' "${rows[@]}"
}

publish
