#!/bin/bash
# bench-lineage.sh: lineage queries and download counting at scale: a data
# folder of 100,000 model repositories in which one base has 20,200
# descendants over three levels.
#
# usage: tests/bench/bench-lineage.sh [--record] [--keep] [--total N]
#                                     [--shape A,B,C] [--runs N]
#                                     [--duration S] [--data DIR]
#
#   --record      append the results to tests/bench/RESULTS.md
#   --keep        keep the scratch folder (and the generated data)
#   --total N     repositories (default 100000)
#   --shape A,B,C the big tree: A children of bench/base, B children of
#                 each, C of each of those (default 200,20,4: 20,200
#                 descendants)
#   --runs N      timed requests per query (default 30)
#   --duration S  seconds of the HEAD load (default 60)
#   --data DIR    use (and complete) the data folder DIR instead of a
#                 fresh one in the scratch folder; it is kept
#
# The data are written by tests/bench/bench-gen-lineage (built by make)
# through the calls the commit API makes: every repository is a bare git
# repository whose main branch has a README.md card naming its base and a
# config.json, and whose edges are in LMDB. Then `haven serve` runs on
# loopback and the script measures, alternating the three requests:
#
#   1. GET /api/models?filter=base_model:bench/base (the first page, as
#      list_models sends it)                         bar: median < 50 ms
#   2. GET /api/models/bench/base/lineage (depth 3: every descendant)
#                                                    bar: median < 50 ms
#   3. GET /api/models?limit=A, a plain listing of the same size, as the
#      reference both are divided by
#
# and reports the LMDB size per repository. Last, `ab -i -k` sends HEAD
# requests of bench/l1-0's config.json for about S seconds, as fast as it
# can (a fixed number, sized by a 5 s calibration run: `ab -t` would stop
# with requests in flight that the server counts and ab does not);
# the server is stopped (SIGTERM writes the last batch) and started again,
# and downloadsAllTime of bench/l1-0 must equal the number of HEADs that
# were answered 200 (bar: exactly).
#
# It needs a built haven and bench-gen-lineage, curl, ab (apache2-utils),
# mdb_stat (lmdb-utils) and python3. About 12 GB free under TMPDIR for the
# default size (mostly file system blocks of 100,000 small git
# repositories); generating them takes a few minutes on two cores. A
# watchdog stops the run after HAVEN_BENCH_BUDGET seconds (default 1500).
# Exit status: 0 when every bar is met, 1 when one is not, 2 when the
# benchmark could not run.
#
# Environment: HAVEN (the binary), BENCH_GEN (the generator; default
# next to HAVEN in tests/bench/), HAVEN_SERVE_ARGS (default
# "--log-level warn": one log line per request would be most of the HEAD
# load's work), TMPDIR.

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

total=100000
shape=200,20,4
runs=30
duration=60
data_dir=
parse_options "--total total --shape shape --runs runs --duration duration --data data_dir" "$@"
check_range --total "$total" 1000 1000000
check_range --runs "$runs" 3 1000
check_range --duration "$duration" 1 600
IFS=, read -r sa sb sc <<<"$shape"
check_range "--shape A" "$sa" 1 100000
check_range "--shape B" "${sb:-}" 1 1000
check_range "--shape C" "${sc:-}" 1 1000
tree=$((sa + sa * sb + sa * sb * sc))
[ "$total" -gt "$tree" ] || die "--total must exceed the tree ($tree descendants)"

BAR_MS=50
BUDGET_S=${HAVEN_BENCH_BUDGET:-1500}
HAVEN_SERVE_ARGS=${HAVEN_SERVE_ARGS---log-level warn}

find_haven
BENCH_GEN=${BENCH_GEN:-$(dirname "$HAVEN")/tests/bench/bench-gen-lineage}
[ -x "$BENCH_GEN" ] || die "no bench-gen-lineage at $BENCH_GEN (run make, or set BENCH_GEN)"
need_tools curl ab mdb_stat python3 timeout

make_scratch haven-bench-lineage
start_watchdog
begin_run

data=${data_dir:-$scratch/data}
mkdir -p "$data" || die "cannot create $data"
note "generating $total repositories in $data (shape $shape)"
gen_t0=$(date +%s.%N)
"$BENCH_GEN" "$data" --total "$total" --shape "$shape" --jobs "$nproc" >"$scratch/gen.out" ||
	die "bench-gen-lineage failed"
gen_s=$(awk -v a="$gen_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
git_kb=$(du -sk "$data/git" | cut -f1)

start_haven "$data"

# times URL N OUT: N timings of GET URL in ms, one a line, appended to OUT;
# dies unless each answers 200.
time_get() {
	local r
	r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 "$1") ||
		die "GET $1 failed"
	[ "${r%% *}" = 200 ] || die "GET $1 answered ${r%% *}"
	awk -v t="${r#* }" 'BEGIN { printf "%.3f\n", t * 1000 }' >>"$2"
}

# stat FILE: "median p95" of the numbers in FILE.
stat_ms() {
	python3 - "$1" <<'EOF'
import sys
v = sorted(float(x) for x in open(sys.argv[1]))
p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
print("%.2f %.2f" % (v[len(v) // 2], p95))
EOF
}

q_filter="$hbase/api/models?filter=base_model:bench/base"
q_lineage="$hbase/api/models/bench/base/lineage"
q_plain="$hbase/api/models?limit=$sa"

# What the answers hold, checked once before anything is timed.
curl -s --max-time 60 "$q_filter" >"$scratch/filter.json" || die "filter request failed"
curl -s --max-time 60 "$q_lineage" >"$scratch/lineage.json" || die "lineage request failed"
curl -s --max-time 60 "$q_plain" >"$scratch/plain.json" || die "plain listing failed"
facts=$(python3 - "$scratch" "$sa" "$tree" <<'EOF'
import json, os, sys
d, a, tree = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = json.load(open(os.path.join(d, "filter.json")))
l = json.load(open(os.path.join(d, "lineage.json")))
p = json.load(open(os.path.join(d, "plain.json")))
assert len(f) == a and all(x["id"].startswith("bench/l1-") for x in f), "filter page: %d" % len(f)
assert len(l["descendants"]) == tree, "lineage: %d descendants" % len(l["descendants"])
assert len(p) == a, "plain page: %d" % len(p)
print(len(f), len(l["descendants"]), max(x["depth"] for x in l["descendants"]),
      os.path.getsize(os.path.join(d, "filter.json")),
      os.path.getsize(os.path.join(d, "lineage.json")),
      os.path.getsize(os.path.join(d, "plain.json")))
EOF
) || die "the answers are not what the data set holds"
read -r n_filter n_lineage lineage_depth b_filter b_lineage b_plain <<<"$facts"

note "timing $runs requests each (filter, lineage, plain listing), alternating"
for _ in $(seq "$runs"); do
	time_get "$q_filter" "$scratch/t.filter"
	time_get "$q_lineage" "$scratch/t.lineage"
	time_get "$q_plain" "$scratch/t.plain"
done
read -r filter_med filter_p95 <<<"$(stat_ms "$scratch/t.filter")"
read -r lineage_med lineage_p95 <<<"$(stat_ms "$scratch/t.lineage")"
read -r plain_med plain_p95 <<<"$(stat_ms "$scratch/t.plain")"

# LMDB: the file's allocated size, and the pages in use.
mdb_kb=$(du -sk "$data/meta/data.mdb" | cut -f1)
mdb_used=$(mdb_stat -e "$data/meta" | awk -F': *' '/Page size/ { ps = $2 } /Number of pages used/ { pu = $2 } END { print ps * pu }')

# --- HEAD load and the exact count ------------------------------------------------

head_url="$hbase/bench/l1-0/resolve/main/config.json"
before=$(curl -s "$hbase/api/models/bench/l1-0?expand=downloadsAllTime" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["downloadsAllTime"])') ||
	die "cannot read downloadsAllTime"
# ab -t stops with requests in flight that the server answers (and
# counts) but ab does not, so the load is a fixed number of requests,
# sized by a 5 s run against another repository to last about S seconds.
note "calibrating: ab -i -k -c 32 for 5 s on bench/l1-1"
timeout 60 ab -i -k -c 32 -t 5 -n 100000000 -r "$hbase/bench/l1-1/resolve/main/config.json" \
	>"$scratch/ab-cal.out" 2>&1 || { cat "$scratch/ab-cal.out" >&2; die "ab failed"; }
cal_rps=$(awk -F': *' '/^Requests per second/ { print $2 }' "$scratch/ab-cal.out" | cut -d' ' -f1)
nreq=$(awk -v r="$cal_rps" -v d="$duration" 'BEGIN { printf "%d", r * d }')
[ "$nreq" -gt 0 ] || die "calibration run answered nothing"
note "HEAD load: ab -i -k -c 32 -n $nreq (about $duration s at $cal_rps/s)"
timeout $((duration * 3 + 60)) ab -i -k -c 32 -n "$nreq" -r "$head_url" \
	>"$scratch/ab.out" 2>"$scratch/ab.err" || { cat "$scratch/ab.err" >&2; die "ab failed"; }
load_s=$(awk -F': *' '/^Time taken for tests/ { print $2 }' "$scratch/ab.out" | cut -d' ' -f1)
complete=$(awk -F': *' '/^Complete requests/ { print $2 }' "$scratch/ab.out")
failed_req=$(awk -F': *' '/^Failed requests/ { print $2 }' "$scratch/ab.out")
non2xx=$(awk -F': *' '/^Non-2xx responses/ { print $2 }' "$scratch/ab.out")
rps=$(awk -F': *' '/^Requests per second/ { print $2 }' "$scratch/ab.out" | cut -d' ' -f1)
ok200=$((complete - ${failed_req:-0} - ${non2xx:-0}))
note "stopping the server (SIGTERM writes the last batch) and starting it again"
stop_pid "$haven_pid"
haven_pid=
rm -f "$scratch/haven.port"
start_haven "$data"
after=$(curl -s "$hbase/api/models/bench/l1-0?expand=downloadsAllTime" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["downloadsAllTime"])') ||
	die "cannot read downloadsAllTime"
counted=$((after - before))

# --- Results -----------------------------------------------------------------------

rows=()
row "filter=base_model:bench/base, first page ($n_filter models, $b_filter B), median ms" \
	"$filter_med" "$plain_med" "$(ratio "$filter_med" "$plain_med")" "< $BAR_MS ms" \
	"$(judge "$filter_med" lt "$BAR_MS")"
row "... p95 ms" "$filter_p95" "$plain_p95" "$(ratio "$filter_p95" "$plain_p95")" - -
row "lineage of bench/base ($n_lineage descendants, depth $lineage_depth, $b_lineage B), median ms" \
	"$lineage_med" "$plain_med" "$(ratio "$lineage_med" "$plain_med")" "< $BAR_MS ms" \
	"$(judge "$lineage_med" lt "$BAR_MS")"
row "... p95 ms" "$lineage_p95" "$plain_p95" "$(ratio "$lineage_p95" "$plain_p95")" - -
row "LMDB bytes per repository (pages in use / file)" \
	"$((mdb_used / total)) / $((mdb_kb * 1024 / total))" - - - -
row "HEAD config.json for ${load_s}s: answered 200 / counted" "$ok200" "$counted" \
	"$(ratio "$counted" "$ok200")" "equal" \
	"$([ "$ok200" -gt 0 ] && [ "$counted" = "$ok200" ] && echo PASS || echo FAIL)"
row "... HEAD requests/s reached (ab -c 32, $failed_req failed, ${non2xx:-0} non-2xx)" \
	"$rps" - - "20000 if the machine can" -

run_facts
verdict="every bar met"
[ "$failed" = 0 ] || verdict="at least one bar NOT met"

report() {
	echo "### lineage and download counting at scale, $when"
	echo
	echo "- Machine: $(machine)."
	echo "  Client and server share these $nproc CPUs. Load average before the run: $load_start."
	echo "- Data: $total model repositories written by bench-gen-lineage in $gen_s s ($nproc processes;"
	echo "  0 s means they were there already), $((git_kb / total)) KiB of git per repository on disk."
	echo "  bench/base has $sa children, each $sb, each of those $sc: $tree descendants over three levels."
	echo "  The other repositories form trees of ten (a root and nine children) under ns-N/."
	echo "- Haven $rev: \`$(serve_cmd)\`."
	echo "- Timings: curl time_total of $runs requests each, alternating filter, lineage and the"
	echo "  plain listing \`GET /api/models?limit=$sa\` ($b_plain B), the reference column; run took ${elapsed} s."
	echo "- HEAD load: ab -i -k -c 32 -n $nreq (the rate of a 5 s calibration run on another"
	echo "  repository times $duration s); the server was stopped with SIGTERM and restarted"
	echo "  before downloadsAllTime was read."
	echo "- Verdict: $verdict."
	echo
	table "plain listing" Haven/plain
}

publish
