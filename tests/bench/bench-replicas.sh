#!/bin/bash
# bench-replicas.sh: what read replicas (`haven serve --replica-of`) cost
# and how far behind they run: a primary and two replicas sharing one S3
# bucket on a Ceph RGW on loopback (tests/s3/rgw.sh), next to a lone
# server on the same bucket.
#
# usage: tests/bench/bench-replicas.sh [--record] [--keep] [--repos N]
#            [--commits N] [--lags N] [--catch-up N] [--duration S]
#
#   --record      append the results to tests/bench/RESULTS.md
#   --keep        keep the scratch folder
#   --repos N     repositories on the primary before the replicas join
#                 (bench-gen-lineage; default 2000)
#   --commits N   timed API commits per side (default 40)
#   --lags N      CLI commits whose replication lag is timed (default 20)
#   --catch-up N  commits made while a replica is stopped (default 200)
#   --duration S  seconds of each read-throughput run (default 4)
#
# One run writes N repositories into the primary's data folder with
# bench-gen-lineage, plus bench/rep (config.json, for the commit and read
# rows) with `haven import`, then starts the primary (with
# HAVEN_REPLICATION_TOKEN) and a lone server (no token, its own data
# folder, the same bucket) and measures:
#
#   1. Snapshot: replicas 1 and 2 start together on empty data folders.
#      Seconds from their start until the snapshot is in their LMDB (the
#      replica's log line event=replica_reconcile, written after the
#      snapshot's one transaction) and until each is in step, every
#      repository's git fetched (its haven_replica_lag_seconds is no
#      longer -1); then the listing is counted page by page on every node
#      and must hold every repository. Snapshot size: the primary's log
#      line event=replication_snapshot bytes=...
#   2. API commit latency: NDJSON commits of one small file, sequential on
#      one keep-alive connection per side, alternating the lone server,
#      the primary and replica 1 (which forwards to the primary) in a
#      rotating order; median and p95 in ms. Ratios are to the lone
#      server: the primary holds each answer until both replicas applied
#      the write.
#   3. Replication lag: `haven import` on the primary's data folder (no
#      HTTP, so nothing is held); both replicas' /api/models/bench/lag/
#      revision/main polled every 5 ms; ms from the CLI's exit until both
#      serve the new commit.
#   4. Read throughput: `ab -k -c 8 -t S` of resolve/main/config.json on
#      the primary and on replica 1, alternating, twice each; best run.
#   5. Catch-up: replica 2 stopped (SIGTERM: it leaves), N `haven import`
#      commits on the primary, replica 2 started again: seconds until it
#      serves the last commit.
#
# Every server is stopped with SIGTERM at the end and must exit 0.
# There are no bars: the table is the result. Needs a built tree (haven,
# tests/s3/s3-tool, tests/bench/bench-gen-lineage; HAVEN, S3_TOOL and
# BENCH_GEN pick them), curl, python3, ab (apache2-utils) and the ceph
# packages rgw.sh installs. Only 127.0.0.1 is contacted. A watchdog stops
# the run after HAVEN_BENCH_BUDGET seconds (default 300). Exit status: 0
# when it ran, 1 when a server did not exit 0, 2 when the benchmark could
# not run.

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

nrepos=2000
ncommits=40
nlags=20
ncatch=200
duration=4
parse_options "--repos nrepos --commits ncommits --lags nlags --catch-up ncatch --duration duration" "$@"
check_range --repos "$nrepos" 200 100000
check_range --commits "$ncommits" 5 1000
check_range --lags "$nlags" 3 200
check_range --catch-up "$ncatch" 1 10000
check_range --duration "$duration" 1 60

find_haven
if [ -z "${S3_TOOL:-}" ]; then
	for S3_TOOL in "$(dirname "$HAVEN")/tests/s3/s3-tool" "$top/build/tests/s3/s3-tool"; do
		[ -x "$S3_TOOL" ] && break
	done
fi
[ -x "$S3_TOOL" ] || die "no tests/s3/s3-tool (build the tree, or set S3_TOOL)"
BENCH_GEN=${BENCH_GEN:-$(dirname "$HAVEN")/tests/bench/bench-gen-lineage}
[ -x "$BENCH_GEN" ] || die "no bench-gen-lineage at $BENCH_GEN (run make, or set BENCH_GEN)"
need_tools curl python3 ab timeout awk

BUDGET_S=${HAVEN_BENCH_BUDGET:-300}
make_scratch haven-bench-replicas
rgw_dir=$scratch/rgw
srv_pids=
primary_url='' lone_url='' r1_url='' r2_url='' tok_lone='' tok_primary=''
start_watchdog
trap 'stop_servers; bash "$top/tests/s3/rgw.sh" stop "$rgw_dir" 2>/dev/null; cleanup' EXIT
begin_run

timeout 180 bash "$top/tests/s3/rgw.sh" start "$rgw_dir" >"$scratch/rgw.env" 2>"$scratch/rgw.log" ||
	{ cat "$scratch/rgw.log" >&2; die "RGW did not start"; }
# shellcheck disable=SC1091
. "$scratch/rgw.env"
bucket=haven-bench-replicas
timeout 60 "$S3_TOOL" mb "$bucket" >/dev/null || die "cannot create the bucket"
note "RGW ready at $HAVEN_S3_ENDPOINT"

HAVEN_REPLICATION_TOKEN=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HAVEN_REPLICATION_TOKEN
S3ARGS=(--blobs "s3://$bucket/data" --s3-endpoint "$HAVEN_S3_ENDPOINT")

# --- Servers -----------------------------------------------------------------

# serve NAME DATA ARGS...: `haven serve` on a free loopback port, logging
# to $scratch/NAME.log; sets NAME_pid and NAME_url. The server named lone
# runs without the replication token.
serve() {
	local name=$1 data=$2 pf=$scratch/$1.port pid
	shift 2
	rm -f "$pf"
	# shellcheck disable=SC2086
	(
		[ "$name" = lone ] && unset HAVEN_REPLICATION_TOKEN
		exec "$HAVEN" serve --data "$data" --listen 127.0.0.1:0 --threads "$nproc" \
			--port-file "$pf" "${S3ARGS[@]}" ${HAVEN_SERVE_ARGS:-} "$@"
	) >>"$scratch/$name.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$scratch/$name.pid"
	srv_pids="$srv_pids $pid"
	printf -v "${name}_pid" '%s' "$pid"
	await "$pid" 300 test -s "$pf"
	[ -s "$pf" ] || { tail -n 20 "$scratch/$name.log" >&2; die "haven serve ($name) did not start"; }
	printf -v "${name}_url" 'http://127.0.0.1:%s' "$(cat "$pf")"
}

# unserve NAME: SIGTERM, and the exit status (124 after 30 s).
unserve() {
	local pid
	pid=$(cat "$scratch/$1.pid")
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; wait "$pid" 2>/dev/null; rm -f "$scratch/$1.pid"; return 124; }
	wait "$pid"
	local rc=$? p rest=
	for p in $srv_pids; do
		[ "$p" = "$pid" ] || rest="$rest $p"
	done
	srv_pids=$rest
	rm -f "$scratch/$1.pid"
	return $rc
}

# shellcheck disable=SC2317 # called from the EXIT trap
stop_servers() {
	local p
	for p in $srv_pids; do
		stop_pid "$p"
	done
	srv_pids=
}

# --- Data --------------------------------------------------------------------

pdata=$scratch/primary
ldata=$scratch/lone
mkdir -p "$scratch/files"
printf '{"architectures": ["BenchModel"], "hidden_size": 64, "num_hidden_layers": 2}\n' \
	>"$scratch/files/config.json"
t0=$(date +%s.%N)
timeout 120 "$BENCH_GEN" "$pdata" --total "$nrepos" --shape 10,9,1 --jobs "$nproc" \
	>"$scratch/gen.log" 2>&1 || { cat "$scratch/gen.log" >&2; die "bench-gen-lineage failed"; }
gen_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
for d in "$pdata" "$ldata"; do
	haven_setup "$d" bench bench/lag
	eval "tok_$(basename "$d")=\$token"
	timeout 30 "$HAVEN" import "$scratch/files" --repo bench/rep -m "config" --data "$d" \
		>>"$scratch/setup.log" 2>&1 || { cat "$scratch/setup.log" >&2; die "haven import failed"; }
done
total=$((nrepos + 2))
note "$total repositories on the primary (bench-gen-lineage: $gen_s s)"

serve primary "$pdata"
serve lone "$ldata"

# --- 1. Snapshot: two replicas join ------------------------------------------------

# Both replicas join at once, each on an empty data folder. The poller
# prints, for each, "LMDB GIT": seconds from its start until the
# snapshot was in its LMDB (its log's event=replica_reconcile, which
# follows the snapshot's transaction) and until it was in step, every
# repository's git fetched (haven_replica_lag_seconds no longer -1).
t_join=$(date +%s.%N)
serve r1 "$scratch/replica1" --replica-of "$primary_url"
serve r2 "$scratch/replica2" --replica-of "$primary_url"
note "replicas 1 and 2 join (snapshot of $total repositories)"
timeout $((BUDGET_S)) python3 - "$t_join" "$r1_url $scratch/r1.log" "$r2_url $scratch/r2.log" \
	>"$scratch/join.txt" <<'PY' || die "the replicas were not in step within 200 s"
import calendar, http.client, re, sys, time, urllib.parse
t0 = float(sys.argv[1])
nodes = [a.split() for a in sys.argv[2:]]
git = [None] * len(nodes)
deadline = time.time() + 200
def in_step(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request("GET", "/metrics")
        for line in c.getresponse().read().decode().splitlines():
            if line.startswith("haven_replica_lag_seconds "):
                return float(line.split()[1]) >= 0
    except OSError:
        pass
    finally:
        c.close()
    return False
def lmdb_at(log):
    for line in open(log):
        if "event=replica_reconcile" in line:
            m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z", line)
            return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + \
                int(m.group(2)) / 1000 - t0
    return None
while None in git and time.time() < deadline:
    for i, (url, log) in enumerate(nodes):
        if git[i] is None and in_step(url):
            git[i] = time.time() - t0
    time.sleep(0.05)
if None in git:
    sys.exit(1)
for i, (url, log) in enumerate(nodes):
    print("%.2f %.1f" % (lmdb_at(log) or -1, git[i]))
PY
{ read -r snap1_lmdb snap1_git; read -r snap2_lmdb snap2_git; } <"$scratch/join.txt"
note "in step after $snap1_git s and $snap2_git s (snapshot in LMDB after $snap1_lmdb s and $snap2_lmdb s)"

# listed URL: how many models the listing shows, page by page (Link).
listed() {
	timeout 60 python3 - "$1" <<'PY'
import http.client, json, re, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
path, n = "/api/models?limit=1000", 0
while path:
    c.request("GET", path)
    r = c.getresponse()
    n += len(json.loads(r.read()))
    m = re.search(r'<([^>]+)>;\s*rel="next"', r.getheader("Link") or "")
    path = None
    if m:
        v = urllib.parse.urlsplit(m.group(1))
        path = v.path + ("?" + v.query if v.query else "")
print(n)
PY
}

snap_bytes=$(sed -n 's/.*event=replication_snapshot .*bytes=\([0-9]*\).*/\1/p' "$scratch/primary.log" | tail -n 1)
[ -n "$snap_bytes" ] || die "the primary logged no event=replication_snapshot"
for r in "$r1_url" "$r2_url" "$primary_url"; do
	n=$(listed "$r") || die "cannot list models on $r"
	[ "$n" = "$total" ] || die "$r lists $n models, not $total"
done
for r in "$r1_url" "$r2_url"; do
	for repo in bench/base ns-0/root-0 bench/rep; do
		timeout 10 curl -sf -o /dev/null "$r/$repo/resolve/main/config.json" ||
			die "$r does not serve $repo/config.json after the snapshot"
	done
done

# --- 2. API commit latency ----------------------------------------------------

note "API commits: $ncommits each on the lone server, the primary and replica 1, alternating"
timeout 300 python3 - "$ncommits" "$scratch/latency.txt" \
	"lone $lone_url $tok_lone" "primary $primary_url $tok_primary" \
	"replica $r1_url $tok_primary" <<'PY' || die "the commit-latency run failed"
import base64, http.client, json, sys, time, urllib.parse
n, out = int(sys.argv[1]), sys.argv[2]
sides = []
for arg in sys.argv[3:]:
    name, url, token = arg.split()
    u = urllib.parse.urlsplit(url)
    sides.append((name, u.hostname, u.port, token))
conns = {}
def commit(side, i):
    name, host, port, token = side
    if name not in conns:
        conns[name] = http.client.HTTPConnection(host, port, timeout=30)
    content = base64.b64encode(("commit %d via %s\n" % (i, name)).encode()).decode()
    body = (json.dumps({"key": "header", "value": {"summary": "bench %d" % i, "description": ""}}) + "\n" +
            json.dumps({"key": "file", "value": {"content": content, "path": "latency.txt",
                                                 "encoding": "base64"}}) + "\n").encode()
    t = time.perf_counter()
    c = conns[name]
    c.request("POST", "/api/models/bench/rep/commit/main", body=body,
              headers={"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"})
    r = c.getresponse()
    data = r.read()
    ms = (time.perf_counter() - t) * 1000
    if r.status != 200:
        sys.exit("%s answered %d: %s" % (name, r.status, data[:200]))
    return ms
times = {s[0]: [] for s in sides}
for i in range(3):
    for s in sides:
        commit(s, -1 - i)
for i in range(n):
    k = i % len(sides)
    for s in sides[k:] + sides[:k]:
        times[s[0]].append(commit(s, i))
with open(out, "w") as f:
    for name, v in times.items():
        v.sort()
        med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
        p95 = v[max(0, -(-len(v) * 95 // 100) - 1)]
        f.write("%s %.1f %.1f %s\n" % (name, med, p95, " ".join("%.0f" % x for x in v)))
PY
read -r _ lone_med lone_p95 _ < <(grep '^lone ' "$scratch/latency.txt")
read -r _ prim_med prim_p95 _ < <(grep '^primary ' "$scratch/latency.txt")
read -r _ rep_med rep_p95 _ < <(grep '^replica ' "$scratch/latency.txt")
note "commit median/p95 ms: lone $lone_med/$lone_p95, primary $prim_med/$prim_p95, via replica $rep_med/$rep_p95"
timed_out=$(curl -s --max-time 10 "$primary_url/metrics" |
	awk '$1 == "haven_replication_waits_timed_out_total" { print $2 }')

# --- 3. Replication lag of CLI commits ------------------------------------------

note "replication lag: $nlags haven import commits on the primary's data folder"
mkdir -p "$scratch/lag"
timeout 120 python3 - "$nlags" "$scratch/lag.txt" "$HAVEN" "$pdata" "$scratch/lag" \
	"$r1_url" "$r2_url" <<'PY' || die "the lag run failed"
import http.client, json, subprocess, sys, time, urllib.parse
n, out, haven, data, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
reps = [urllib.parse.urlsplit(u) for u in sys.argv[6:]]
conns = [http.client.HTTPConnection(u.hostname, u.port, timeout=10) for u in reps]
def head(i):
    c = conns[i]
    c.request("GET", "/api/models/bench/lag/revision/main")
    r = c.getresponse()
    body = r.read()
    return json.loads(body).get("sha") if r.status == 200 else None
lags, cli = [], []
for k in range(n):
    with open(folder + "/lag.txt", "w") as f:
        f.write("lag %d\n" % k)
    old = [head(i) for i in range(len(conns))]
    seen = [None] * len(conns)
    t0 = time.perf_counter()
    p = subprocess.Popen([haven, "import", folder, "--repo", "bench/lag", "-m", "lag %d" % k,
                          "--data", data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t_exit = None
    while None in seen or t_exit is None:
        now = time.perf_counter()
        if t_exit is None and p.poll() is not None:
            t_exit = now
        for i in range(len(conns)):
            if seen[i] is None:
                sha = head(i)
                if sha and sha != old[i]:
                    seen[i] = (time.perf_counter(), sha)
        if now - t0 > 20:
            sys.exit("commit %d: not on every replica after 20 s" % k)
        time.sleep(0.005)
    oid = p.stdout.read().decode().strip().splitlines()[-1]
    if p.returncode != 0 or any(s[1] != oid for s in seen):
        sys.exit("commit %d: import said %s, replicas serve %s" % (k, oid, [s[1] for s in seen]))
    lags.append((max(s[0] for s in seen) - t_exit) * 1000)
    cli.append((t_exit - t0) * 1000)
lags.sort(); cli.sort()
med = lambda v: v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
with open(out, "w") as f:
    f.write("%.0f %.0f %.0f %.0f %s\n" % (med(lags), lags[-1], med(cli), lags[0],
                                          " ".join("%.0f" % x for x in lags)))
PY
read -r lag_med lag_max cli_med lag_min lag_all <"$scratch/lag.txt"
note "lag: median $lag_med ms, max $lag_max ms (the import itself: $cli_med ms)"

# --- 4. Read throughput -------------------------------------------------------

# rps URL: requests/s of ab -k on URL's config.json; nothing on errors.
rps() {
	timeout $((duration + 30)) ab -q -k -c 8 -t "$duration" -n 10000000 \
		"$1/bench/rep/resolve/main/config.json" >"$scratch/ab.out" 2>&1 || return 0
	grep -q '^Non-2xx responses' "$scratch/ab.out" && return 0
	awk '/^Failed requests:/ && $3 != 0 { bad = 1 }
		/^Requests per second:/ { r = $4 }
		END { if (!bad && r != "") printf "%.0f", r }' "$scratch/ab.out"
}
note "read throughput: ab -k -c 8 -t $duration, primary and replica 1 alternating"
best_p=0 best_r=0 p_all= r_all=
for _ in 1 2; do
	p=$(rps "$primary_url")
	r=$(rps "$r1_url")
	[ -n "$p" ] && [ -n "$r" ] || { cat "$scratch/ab.out" >&2; die "a read run failed (primary '$p', replica '$r')"; }
	p_all="$p_all $p" r_all="$r_all $r"
	[ "$p" -gt "$best_p" ] && best_p=$p
	[ "$r" -gt "$best_r" ] && best_r=$r
done

# --- 5. Catch-up ----------------------------------------------------------------

note "catch-up: replica 2 stopped, $ncatch commits, replica 2 started"
unserve r2 || die "replica 2 did not exit 0 on SIGTERM"
t0=$(date +%s.%N)
for i in $(seq "$ncatch"); do
	echo "catch-up $i" >"$scratch/lag/lag.txt"
	last=$(timeout 30 "$HAVEN" import "$scratch/lag" --repo bench/lag -m "catch-up $i" \
		--data "$pdata" 2>>"$scratch/setup.log" | tail -n 1) || die "haven import failed"
done
catch_commit_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
t0=$(date +%s.%N)
serve r2 "$scratch/replica2" --replica-of "$primary_url"
for _ in $(seq 1200); do
	sha=$(curl -s --max-time 5 "$r2_url/api/models/bench/lag/revision/main" |
		python3 -c 'import json, sys; print(json.load(sys.stdin).get("sha", ""))' 2>/dev/null)
	[ "$sha" = "$last" ] && break
	sleep 0.05
done
[ "$sha" = "$last" ] || die "replica 2 did not serve the last commit within 60 s"
catch_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
note "replica 2 serves the last of $ncatch commits $catch_s s after it was started"

# --- Stop -----------------------------------------------------------------------

exit_codes=
for s in r1 r2 primary lone; do
	unserve "$s"
	rc=$?
	exit_codes="$exit_codes $s=$rc"
	[ "$rc" = 0 ] || { note "$s exited $rc on SIGTERM"; failed=1; }
done

# --- Report ----------------------------------------------------------------------

per_repo=$(awk -v b="$snap_bytes" -v n="$total" 'BEGIN { printf "%.0f", b / n }')
row_fmt='# %-52s %-9s %-9s ratio %-6s %s\n'
row "API commit, median ms: primary / lone" "$prim_med" "$lone_med" "$(ratio "$prim_med" "$lone_med")" - -
row "API commit, median ms: through replica 1 / lone" "$rep_med" "$lone_med" "$(ratio "$rep_med" "$lone_med")" - -
row "API commit, p95 ms: primary / lone" "$prim_p95" "$lone_p95" "$(ratio "$prim_p95" "$lone_p95")" - -
row "API commit, p95 ms: through replica 1 / lone" "$rep_p95" "$lone_p95" "$(ratio "$rep_p95" "$lone_p95")" - -
row "Lag of a CLI commit until both replicas serve it, median ms (max)" "$lag_med ($lag_max)" - - - -
row "GET config.json, requests/s: replica 1 / primary (best of 2)" "$best_r" "$best_p" "$(ratio "$best_r" "$best_p")" - -
row "Catch-up after $ncatch commits while stopped, s from start" "$catch_s" - - - -
row "Two replicas join $total repositories: snapshot in LMDB, s" "$snap1_lmdb, $snap2_lmdb" - - - -
row "Two replicas join $total repositories: in step, git included, s" "$snap1_git, $snap2_git" - - - -
row "Snapshot size, bytes (per repository)" "$snap_bytes ($per_repo)" - - - -

run_facts
ceph_v=$(dpkg-query -W -f='${Version}' radosgw 2>/dev/null || echo unknown)
ab_v=$(ab -V 2>/dev/null | awk '/^This is ApacheBench/ { print $5; exit }' | tr -d ,)
report() {
	echo "### Read replicas, $when"
	echo
	echo "- Machine: $(machine);"
	echo "  RGW, the primary, two replicas, the lone server and the clients share these"
	echo "  $nproc CPUs. Load average before the run: $load_start."
	echo "- Haven $rev: \`$(serve_cmd) --blobs s3://BUCKET\` for every node, on Ceph RGW"
	echo "  $ceph_v (tests/s3/rgw.sh); the primary with HAVEN_REPLICATION_TOKEN, the"
	echo "  replicas with \`--replica-of\`, the lone server without a token on its own data"
	echo "  folder. The primary holds $total repositories ($nrepos from bench-gen-lineage"
	echo "  in $gen_s s, each with two commits)."
	echo "- Commits: NDJSON commit of one small file to one repository, sequential, one"
	echo "  keep-alive connection per side, $ncommits per side after 3 warm-ups, the three"
	echo "  sides alternating in a rotating order. Median/p95 ms: lone $lone_med/$lone_p95,"
	echo "  primary $prim_med/$prim_p95, through replica 1 $rep_med/$rep_p95. Writes that"
	echo "  stopped waiting (haven_replication_waits_timed_out_total): ${timed_out:-?}."
	echo "- Lag: $nlags \`haven import\` commits on the primary's data folder (each $cli_med ms"
	echo "  median); both replicas polled every 5 ms; ms from the CLI's exit until both serve"
	echo "  the commit, sorted: $lag_all."
	echo "- Reads: ab $ab_v \`-k -c 8 -t $duration\`, requests/s: primary$p_all / replica 1$r_all."
	echo "- Catch-up: replica 2 stopped with SIGTERM, $ncatch \`haven import\` commits to one"
	echo "  repository ($catch_commit_s s), replica 2 started; seconds until it served the last"
	echo "  one, its start included."
	echo "- Snapshot: both replicas started together on empty folders; seconds from their"
	echo "  start until the snapshot was in LMDB (the replica's event=replica_reconcile) and"
	echo "  until it was in step (haven_replica_lag_seconds no longer -1: every repository's"
	echo "  git fetched); then all $total listed on each node. Size from the primary's"
	echo "  event=replication_snapshot."
	echo "- SIGTERM exit statuses:$exit_codes. Run took ${elapsed} s."
	echo
	echo "| Measurement | Replicated | Lone / primary | Ratio | Bar | Result |"
	echo "|---|---:|---:|---:|---|---|"
	printf '%s\n' "${rows[@]}"
}
publish
