#!/bin/bash
# bench-pull-through.sh: pull-through fan-out. 16 clients on one cold
# 1 GiB file against one client alone, through `haven serve --upstream`.
#
# usage: tests/bench/bench-pull-through.sh [--record] [--keep]
#            [--size-mib N] [--clients N] [--link-mbs N]
#
#   --record        append the results table to tests/bench/RESULTS.md
#   --keep          keep the scratch folder (the servers are still stopped)
#   --size-mib N    size of the file (default 1024, i.e. 1 GiB)
#   --clients N     concurrent clients of the fan-out run (default 16)
#   --link-mbs N    the upstream link in MB/s (10^6 bytes), through a
#                   throttling TCP relay (tests/integration/relay.py);
#                   0 for a direct loopback connection (default 125,
#                   i.e. 1 Gbit/s)
#
# One run writes the file (AES-CTR keystream), imports it with `haven
# import` into an upstream data folder and serves it with `haven serve`
# on 127.0.0.1. Then, each time on a fresh, empty pull-through data
# folder with its own `haven serve --upstream` (so the file is cold):
#
#   1. one client: curl of the file, wall-clock seconds until it has all
#   2. N clients: N curls of the same file started together, wall-clock
#      seconds until the last has all
#
# Each client must get status 200 and every byte (curl's size_download);
# the cache must hold the object afterwards (it checked the sha256 before
# keeping it), and must have made exactly one upstream transfer in each
# run (its haven_upstream_transfers_total; the upstream's count of
# answered /resolve requests agrees). Bar: N clients <= 1.3 x one client.
# Needs haven (built), curl, python3, openssl and room under
# ${TMPDIR:-/tmp} for the file three times over plus 512 MiB. Only
# 127.0.0.1 is contacted. A watchdog stops it after HAVEN_BENCH_BUDGET
# seconds (default 900). Exit status: 0 when the bar is met, 1 when it is
# not, 2 when the benchmark could not run.
#
# Environment: HAVEN (the binary; default build/haven or ./haven at the top
# of the source tree), HAVEN_SERVE_ARGS (extra `haven serve` options for
# both servers), TMPDIR, HAVEN_BENCH_BUDGET.

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

size_mib=1024
nclients=16
link_mbs=125
parse_options "--size-mib size_mib --clients nclients --link-mbs link_mbs" "$@"
check_range --size-mib "$size_mib" 1 16384
check_range --clients "$nclients" 2 256
check_range --link-mbs "$link_mbs" 0 100000

REPO=bench/pull
FILE=weights.bin
RATIO_BAR=1.3
BUDGET_S=${HAVEN_BENCH_BUDGET:-900}
size=$((size_mib * 1024 * 1024))

find_haven
need_tools curl python3 openssl timeout
make_scratch haven-pullbench
start_watchdog
need_mib=$((size_mib * 3 + 512))
avail_mib=$(df -Pk "$scratch" | awk 'NR == 2 { print int($4 / 1024) }')
[ "${avail_mib:-0}" -ge "$need_mib" ] ||
	die "need about $need_mib MiB free under ${TMPDIR:-/tmp}, have ${avail_mib:-?} (try --size-mib)"
begin_run

# --- The upstream ----------------------------------------------------------------

updata=$scratch/upstream
mkdir -p "$scratch/src"
note "writing $size_mib MiB of test data"
make_data "$scratch/src/$FILE" "$size"
sha=$(sha256sum "$scratch/src/$FILE" | cut -d' ' -f1)
t0=$(date +%s.%N)
timeout 600 "$HAVEN" import "$scratch/src" --repo "$REPO" -m bench --data "$updata" \
	>"$scratch/import.log" 2>&1 || { cat "$scratch/import.log" >&2; die "haven import failed"; }
import_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
rm -rf "$scratch/src"
start_haven "$updata"
up_pid=$haven_pid
up_base=$hbase
up_port=$hport
haven_pid=

link=$up_base
if [ "$link_mbs" -gt 0 ]; then
	python3 "$top/tests/integration/relay.py" "$scratch/relay.port" "$up_port" \
		"$((link_mbs * 1000000))" "$size" "$scratch/relay.done" \
		>"$scratch/relay.log" 2>&1 </dev/null &
	bg_pids="$bg_pids $! $up_pid"
	await "$!" 50 test -s "$scratch/relay.port"
	[ -s "$scratch/relay.port" ] || die "the relay did not start"
	link=http://127.0.0.1:$(cat "$scratch/relay.port")
else
	bg_pids="$bg_pids $up_pid"
fi

# metric BASE NAME: one sample's value from BASE/metrics.
metric() {
	curl -s --max-time 10 "$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
up_resolves() {
	metric "$up_base" 'haven_http_requests_total{family="resolve",code="2xx"}'
}

# --- One run -----------------------------------------------------------------------

# fan_out N: a fresh pull-through server, N clients on the cold file;
# prints the seconds until the last client had every byte, or fails.
fan_out() {
	local n=$1 pt=$scratch/pt-$1 t0 t1 i bad=0 pids= u0 u1 tr
	rm -rf "$pt" "$scratch/haven.port"
	HAVEN_SERVE_ARGS="${HAVEN_SERVE_ARGS:-} --upstream $link" start_haven "$pt" 2>/dev/null
	timeout 60 curl -sf -o /dev/null "$hbase/api/models/$REPO" ||
		{ note "the pull-through server cannot reach the upstream"; stop_pid "$haven_pid"; return 1; }
	u0=$(up_resolves)
	sync
	t0=$(date +%s.%N)
	for i in $(seq "$n"); do
		timeout 600 curl -s -o /dev/null -w '%{http_code} %{size_download}\n' \
			"$hbase/$REPO/resolve/main/$FILE" >"$scratch/client.$i" 2>&1 &
		pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids
	t1=$(date +%s.%N)
	for i in $(seq "$n"); do
		[ "$(cat "$scratch/client.$i")" = "200 $size" ] ||
			{ note "client $i got: $(cat "$scratch/client.$i")"; bad=1; }
	done
	tr=$(metric "$hbase" haven_upstream_transfers_total)
	u1=$(up_resolves)
	# Kept (fsync, rename) just after the last bytes went out.
	await "$haven_pid" 100 test -f "$pt/blobs/sha256/${sha:0:2}/${sha:2:2}/$sha"
	[ "$(stat -c %s "$pt/blobs/sha256/${sha:0:2}/${sha:2:2}/$sha" 2>/dev/null)" = "$size" ] ||
		{ note "the cache did not keep the object"; bad=1; }
	stop_pid "$haven_pid"
	haven_pid=
	rm -rf "$pt"
	[ "$tr" = 1 ] && [ "$((u1 - u0))" = 1 ] ||
		{ note "upstream transfers: cache says $tr, upstream answered $((u1 - u0))"; bad=1; }
	[ "$bad" = 0 ] || return 1
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

row_fmt='# %-44s %-10s %-10s ratio %-6s %s\n'
note "one client, then $nclients clients, each on a cold $size_mib MiB file"
t1=$(fan_out 1) || die "the one-client run failed"
note "one client: $t1 s"
tn=$(fan_out "$nclients") || { row "$nclients clients on one cold file, s" failed "$t1" - "<= $RATIO_BAR" FAIL; tn=; }
note "$nclients clients: ${tn:-failed} s"
r=$(ratio "$tn" "$t1")
[ -n "$tn" ] && row "$nclients clients / 1 client on a cold $size_mib MiB file, s" "$tn" "$t1" "$r" \
	"<= $RATIO_BAR" "$(judge "$r" le "$RATIO_BAR")"
mbs1=$(awk -v b="$size" -v s="$t1" 'BEGIN { printf "%.0f", b / s / 1e6 }')
echo "ratio $r"

# --- Report ------------------------------------------------------------------------

run_facts
verdict="all bars met"
[ "$failed" = 1 ] && verdict="the bar is NOT met"
link_text="a direct loopback connection"
[ "$link_mbs" -gt 0 ] && link_text="a TCP relay that sends the upstream's bytes at $link_mbs MB/s (tests/integration/relay.py)"
report() {
	echo "### Pull-through fan-out, $when"
	echo
	echo "- Machine: $(machine);"
	echo "  upstream, cache, relay and clients share these $nproc CPUs."
	echo "  Load average before the run: $load_start."
	echo "- Haven $rev. Upstream: \`$(serve_cmd)\` holding one $size_mib MiB LFS file"
	echo "  (\`haven import\`, ${import_s} s); the cache: \`$(serve_cmd) --upstream URL\`"
	echo "  on a fresh data folder for each run, reaching the upstream through $link_text."
	echo "- Clients: curl to /dev/null, all started together; wall-clock seconds until the"
	echo "  last one had every byte (status 200, size checked; the cache checked the sha256"
	echo "  before keeping the object). One upstream transfer in each run (the cache's"
	echo "  haven_upstream_transfers_total and the upstream's answered /resolve count)."
	echo "  One client alone: $mbs1 MB/s. Run took ${elapsed} s."
	echo "- Verdict: $verdict."
	echo
	table "1 client" "ratio"
}
publish
