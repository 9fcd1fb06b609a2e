#!/bin/bash
# bench-read.sh: Haven's read path side by side with nginx, on loopback.
#
# usage: tests/bench/bench-read.sh [--record] [--keep] [--size-mib N]
#                                  [--duration SECONDS]
#
#   --record        append the results table to tests/bench/RESULTS.md
#   --keep          keep the scratch folder (servers are still stopped)
#   --size-mib N    size of the large file (default 1024, i.e. 1 GiB)
#   --duration S    length of each request-rate run (default 10)
#
# One run imports a 1 GiB file and a small config.json into a fresh Haven
# data folder, serves it with `haven serve` and the same bytes with nginx,
# and measures both the same way:
#
#   1. large-file GET throughput: curl, best of 3 each (bar: >= 0.9 x nginx)
#   2. HEAD /NS/NAME/resolve/main/config.json: requests/s and p99 latency,
#      64 keep-alive connections (bar: >= 0.5 x nginx); GET of the same file
#      and GET /api/models/NS/NAME against a static file of the same bytes
#      (reported, no bar)
#   3. Haven's resident memory with 1,000 idle keep-alive connections, and
#      its peak during 8 parallel large-file downloads (bar: < 64 MB each)
#
# It needs haven (built), nginx, wrk, ab (apache2-utils), curl, python3 and
# about 2.2 GiB free under ${TMPDIR:-/tmp}; openssl makes the test data
# faster. Only 127.0.0.1 is contacted. The whole run is bounded (about two
# minutes; a watchdog stops it after 280 s) and everything it started is
# stopped and removed on exit. Exit status: 0 when every bar is met, 1 when
# one is not, 2 when the benchmark could not run.
#
# Environment: HAVEN (the binary; default build/haven or ./haven at the top
# of the source tree), HAVEN_SERVE_ARGS (extra `haven serve` options, e.g.
# "--log-level warn"), NGINX, WRK, AB (tool paths), TMPDIR, and
# HAVEN_BENCH_BUDGET (the watchdog's seconds, default 280).

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

size_mib=1024
duration=10
parse_options "--size-mib size_mib --duration duration" "$@"
check_range --size-mib "$size_mib" 1 4096
check_range --duration "$duration" 1 30

REPO=bench/model
CONNS=64
IDLE_CONNS=1000
PARALLEL=8
RSS_BAR_KB=$((64 * 1024))
BUDGET_S=${HAVEN_BENCH_BUDGET:-280}
size=$((size_mib * 1024 * 1024))
size_label="$size_mib MiB"
[ "$size_mib" = 1024 ] && size_label="1 GiB"

# --- Tools -------------------------------------------------------------------

find_haven
find_nginx
WRK=${WRK:-$(command -v wrk)} || die "wrk not found (apt-get install wrk)"
AB=${AB:-$(command -v ab)} || die "ab not found (apt-get install apache2-utils)"
need_tools curl python3 timeout

ulimit -n 4096 2>/dev/null || die "cannot raise the open-file limit to 4096 (ulimit -n)"

# --- Scratch folder, watchdog and cleanup -------------------------------------

make_scratch haven-bench
avail_kb=$(df -Pk "$scratch" | awk 'NR == 2 { print $4 }')
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $((size / 1024 * 2 + 200 * 1024)) ]; then
	rmdir "$scratch"
	die "need about $((size_mib * 2 + 200)) MiB free under ${TMPDIR:-/tmp}"
fi

start_watchdog

# --- Memory ----------------------------------------------------------------------

# pids_of SERVER: the processes whose memory counts for SERVER.
pids_of() {
	if [ "$1" = haven ]; then
		echo "$haven_pid"
	else
		echo "$nginx_pid"
		children "$nginx_pid"
	fi
}

# rss_of SERVER FIELD: FIELD summed over the server's processes, in kB.
rss_of() {
	local p t=0 v
	for p in $(pids_of "$1"); do
		v=$(kb_field "$p" "$2")
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# reset_peak SERVER: restart VmHWM from the current RSS (Linux >= 4.0).
reset_peak() {
	local p ok=0
	for p in $(pids_of "$1"); do
		echo 5 2>/dev/null >/proc/"$p"/clear_refs && ok=1
	done
	[ "$ok" = 1 ]
}

# --- Data ------------------------------------------------------------------------

begin_run
mkdir -p "$scratch/src" "$scratch/www" "$scratch/nginx"
note "writing a $size_label pseudo-random file"
big=$scratch/src/model.safetensors
make_data "$big" "$size"

# A config.json of the usual size (about 700 bytes).
cat >"$scratch/src/config.json" <<'EOF'
{
  "_name_or_path": "bench/model",
  "architectures": [
    "LlamaForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.0",
  "use_cache": true,
  "vocab_size": 32000
}
EOF

note "importing into Haven"
data=$scratch/data
timeout 120 "$HAVEN" import "$scratch/src" --repo "$REPO" --data "$data" \
	>"$scratch/import.log" 2>&1 || { cat "$scratch/import.log" >&2; die "haven import failed"; }

# nginx serves the very same bytes: the blob itself, linked, so both servers
# read the same cached pages.
sha=$(sha256sum "$big" | cut -c1-64)
blob=$(blob_of "$sha")
[ -f "$blob" ] || die "haven import did not store $blob"
rm -f "$big"
ln "$blob" "$scratch/www/model.safetensors" 2>/dev/null ||
	cp "$blob" "$scratch/www/model.safetensors" || die "cannot copy the blob"
cp "$scratch/src/config.json" "$scratch/www/config.json"

# --- Servers --------------------------------------------------------------------

start_haven "$data"

# The static twin of /api/models/NS/NAME: Haven's own answer, byte for byte.
curl -sf --max-time 10 -o "$scratch/www/api-model.json" "$hbase/api/models/$REPO" ||
	die "GET /api/models/$REPO failed"
api_bytes=$(stat -c %s "$scratch/www/api-model.json")

# static_conf PORT: a plain static server of $scratch/www.
static_conf() {
	nginx_conf "a plain static server on loopback" 4096 "worker_rlimit_nofile 8192;" <<EOF
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types {
        application/json json;
    }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$1;
        root $scratch/www;
    }
EOF
}

note "starting nginx, worker_processes $nproc"
start_nginx static_conf config.json || die "nginx did not start"

# Both must answer the same bytes before anything is compared.
for u in "$hbase/$REPO/resolve/main/config.json" "$nbase/config.json"; do
	curl -sf --max-time 10 "$u" | cmp -s - "$scratch/www/config.json" ||
		die "$u does not answer config.json"
done
curl -sf --max-time 10 -o "$scratch/api-nginx.json" "$nbase/api-model.json" &&
	cmp -s "$scratch/api-nginx.json" "$scratch/www/api-model.json" ||
	die "nginx does not answer api-model.json"

# --- Measurements ---------------------------------------------------------------

row_fmt='# %-44s haven %-12s nginx %-12s ratio %-6s %s\n'

# download URL: bytes/s, or nothing when the transfer was not a full 200.
download() {
	local out
	out=$(curl -sL --max-time 60 -o /dev/null \
		-w '%{http_code} %{size_download} %{speed_download}' "$1") || return 1
	set -- $out
	[ "$1" = 200 ] && [ "$2" = "$size" ] || return 1
	echo "$3"
}

note "large-file GET, best of 3 (after one warm-up each)"
cat "$scratch/www/model.safetensors" >/dev/null
hurl=$hbase/$REPO/resolve/main/model.safetensors
nurl=$nbase/model.safetensors
download "$hurl" >/dev/null
download "$nurl" >/dev/null
hbest=0
nbest=0
for i in 1 2 3; do
	v=$(download "$hurl") && hbest=$(awk -v a="$hbest" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
	v=$(download "$nurl") && nbest=$(awk -v a="$nbest" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
done
r=$(ratio "$hbest" "$nbest")
[ "$hbest" = 0 ] && r=-
row "GET $size_label file, MB/s (best of 3)" \
	"$(awk -v v="$hbest" 'BEGIN { printf "%.0f", v / 1e6 }')" \
	"$(awk -v v="$nbest" 'BEGIN { printf "%.0f", v / 1e6 }')" \
	"$r" ">= 0.90" "$(judge "$r" ge 0.9)"

# to_ms VALUE: wrk's "1.23ms" / "456.78us" / "1.2s" in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000
		else if (v ~ /ms$/) n += 0
		else if (v ~ /m$/) n *= 60000
		else if (v ~ /s$/) n *= 1000
		printf "%.2f", n
	}'
}

# run_wrk URL: sets rps and p99 (ms); both empty on errors.
run_wrk() {
	local f=$scratch/wrk.out
	rps=
	p99=
	timeout $((duration + 20)) "$WRK" -c "$CONNS" -t 2 -d "${duration}s" --latency "$1" >"$f" 2>&1 || {
		note "wrk failed:"; sed 's/^/#   /' "$f" >&2; return 1; }
	if grep -qE 'Non-2xx|Socket errors' "$f"; then
		note "wrk saw errors on $1:"; grep -E 'Non-2xx|Socket errors' "$f" | sed 's/^/#   /' >&2
		return 1
	fi
	rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$f")
	p99=$(to_ms "$(awk '/Latency Distribution/ { d = 1 } d && $1 == "99%" { print $2; exit }' "$f")")
}

# run_ab_head URL: like run_wrk, with ab -i (HEAD); see README.md for why.
run_ab_head() {
	local f=$scratch/ab.out csv=$scratch/ab.csv
	rps=
	p99=
	# -t before -n: -t resets the request count to 50000.
	timeout $((duration + 20)) "$AB" -q -i -k -c "$CONNS" -t "$duration" -n 5000000 \
		-e "$csv" "$1" >"$f" 2>&1 || {
		note "ab failed:"; tail -5 "$f" | sed 's/^/#   /' >&2; return 1; }
	if ! grep -qE '^Failed requests: +0$' "$f" || grep -q 'Non-2xx' "$f"; then
		note "ab saw errors on $1:"; grep -E 'Failed|Non-2xx' "$f" | sed 's/^/#   /' >&2
		return 1
	fi
	rps=$(awk '$1 == "Requests" && $2 == "per" { print $4 }' "$f")
	p99=$(awk -F, '$1 == "99" { printf "%.2f", $2 }' "$csv")
}

# compare NAME TOOL HAVEN_URL NGINX_URL BAR: a requests/s row and a p99 row.
compare() {
	local name=$1 tool=$2 hr hp nr np r res=- bar=$5
	note "$name: $tool, $CONNS connections, ${duration}s each"
	$tool "$3"; hr=$rps; hp=$p99
	$tool "$4"; nr=$rps; np=$p99
	r=$(ratio "$hr" "$nr")
	if [ "$bar" != - ]; then
		res=$(judge "$r" ge "${bar#>= }")
	elif [ -z "$hr" ] || [ -z "$nr" ]; then
		res=FAIL
	fi
	row "$name, requests/s" "$(printf '%.0f' "${hr:-0}")" "$(printf '%.0f' "${nr:-0}")" "$r" "$bar" "$res"
	row "$name, p99 ms" "${hp:--}" "${np:--}" "$(ratio "$hp" "$np")" - -
}

compare "HEAD resolve/main/config.json" run_ab_head \
	"$hbase/$REPO/resolve/main/config.json" "$nbase/config.json" ">= 0.50"
compare "GET resolve/main/config.json" run_wrk \
	"$hbase/$REPO/resolve/main/config.json" "$nbase/config.json" -
compare "GET /api/models/NS/NAME ($api_bytes B)" run_wrk \
	"$hbase/api/models/$REPO" "$nbase/api-model.json" -

# hold_idle PORT PATH SERVER: open $IDLE_CONNS keep-alive connections, each
# after one complete request, and measure SERVER's RSS while they idle.
# Sets idle_rss (kB) and idle_open (connections still open afterwards).
hold_idle() {
	local ready=$scratch/holder.ready done=$scratch/holder.done
	rm -f "$ready" "$done"
	timeout 120 python3 - "$1" "$2" "$IDLE_CONNS" "$ready" "$done" <<'EOF' &
import errno, signal, socket, sys, time

port, path, n, ready, done = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: keep-alive\r\n\r\n" % (path, port)).encode()


def one():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed before the response head")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    if lines[0].split()[1] != "200":
        raise OSError("status " + lines[0])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
        if k.strip().lower() == "connection" and "close" in v.lower():
            raise OSError("server closes the connection")
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed during the body")
        body += chunk
    return s


socks = []
try:
    for _ in range(n):
        socks.append(one())
except OSError as e:
    print("holder: connection %d: %s" % (len(socks) + 1, e), file=sys.stderr)
with open(ready, "w") as f:
    f.write("%d\n" % len(socks))


def finish(*_):
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK):
                alive += 1  # unexpected bytes, but open
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                alive += 1
    with open(done, "w") as f:
        f.write("%d\n" % alive)
    sys.exit(0)


signal.signal(signal.SIGTERM, finish)
while True:
    time.sleep(1)
EOF
	holder_pid=$!
	bg_pids=$holder_pid
	echo "$holder_pid" >"$scratch/holder.pid"
	await "$holder_pid" 600 test -s "$ready"
	idle_rss=
	idle_open=0
	if [ -s "$ready" ] && [ "$(cat "$ready")" = "$IDLE_CONNS" ]; then
		sleep 1
		idle_rss=$(rss_of "$3" VmRSS)
	else
		note "$3: only $(cat "$ready" 2>/dev/null || echo 0) of $IDLE_CONNS idle connections opened"
	fi
	kill -TERM "$holder_pid" 2>/dev/null
	wait "$holder_pid" 2>/dev/null
	bg_pids=
	[ -s "$done" ] && idle_open=$(cat "$done")
	if [ -n "$idle_rss" ] && [ "$idle_open" != "$IDLE_CONNS" ]; then
		note "$3: $idle_open of $IDLE_CONNS idle connections were still open at the end"
		idle_rss=
	fi
	return 0
}

# parallel_peak URL SERVER: peak RSS (kB) of SERVER during $PARALLEL
# simultaneous large downloads; sets peak_rss (empty if a download failed).
parallel_peak() {
	local pids="" p ok=1 cur i
	peak_rss=
	reset_peak "$2" || note "$2: cannot reset VmHWM; the peak may predate this step"
	for i in $(seq "$PARALLEL"); do
		curl -sL --max-time 120 -o /dev/null -w '%{http_code} %{size_download}\n' \
			"$1" >"$scratch/par.$i" 2>&1 &
		pids="$pids $!"
	done
	bg_pids=$pids
	local max=0
	while :; do
		cur=$(rss_of "$2" VmRSS)
		[ "$cur" -gt "$max" ] && max=$cur
		local running=0
		for p in $pids; do
			kill -0 "$p" 2>/dev/null && running=1
		done
		[ "$running" = 1 ] || break
		sleep 0.05
	done
	for p in $pids; do
		wait "$p" || ok=0
	done
	bg_pids=
	for i in $(seq "$PARALLEL"); do
		[ "$(cat "$scratch/par.$i")" = "200 $size" ] || ok=0
	done
	if [ "$ok" != 1 ]; then
		note "$2: a parallel download failed"
		return 0
	fi
	cur=$(rss_of "$2" VmHWM)
	[ "$cur" -gt "$max" ] && max=$cur
	peak_rss=$max
}

note "memory: at rest"
h_rest=$(rss_of haven VmRSS)
n_rest=$(rss_of nginx VmRSS)
row "RSS at rest after the runs above, MB" "$(mb "$h_rest")" "$(mb "$n_rest")" \
	"$(ratio "$h_rest" "$n_rest")" - -

note "memory: $IDLE_CONNS idle keep-alive connections"
hold_idle "$hport" "/$REPO/resolve/main/config.json" haven
h_idle=$idle_rss
hold_idle "$nport" /config.json nginx
n_idle=$idle_rss
res=FAIL
[ -n "$h_idle" ] && [ "$h_idle" -lt "$RSS_BAR_KB" ] && res=PASS
row "RSS with $IDLE_CONNS idle keep-alive conns, MB" "$(mb "$h_idle")" "$(mb "$n_idle")" \
	"$(ratio "$h_idle" "$n_idle")" "< 64 MB" "$res"

note "memory: peak during $PARALLEL parallel $size_label downloads"
parallel_peak "$hurl" haven
h_peak=$peak_rss
parallel_peak "$nurl" nginx
n_peak=$peak_rss
res=FAIL
[ -n "$h_peak" ] && [ "$h_peak" -lt "$RSS_BAR_KB" ] && res=PASS
row "Peak RSS, $PARALLEL parallel $size_label GETs, MB" "$(mb "$h_peak")" "$(mb "$n_peak")" \
	"$(ratio "$h_peak" "$n_peak")" "< 64 MB" "$res"

# --- Report -------------------------------------------------------------------------

run_facts
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
wrk_v=$("$WRK" -v 2>&1 | awk 'NR == 1 { sub(/^debian\//, "", $2); print $2 }')
ab_v=$("$AB" -V 2>&1 | sed -n '1s/.*Version \([^ ,]*\).*/\1/p')
curl_v=$(curl --version | awk 'NR == 1 { print $2 }')
verdict="all bars met"
[ "$failed" = 1 ] && verdict="at least one bar NOT met"

report() {
	echo "### $when"
	echo
	echo "- Machine: $(machine)."
	echo "  Client and servers share these $nproc CPUs: the figures are ratios, not capacities."
	echo "  Load average before the run: $load_start."
	if [ -n "${HAVEN_SERVE_ARGS:-}" ]; then
		echo "- Haven $rev: \`$(serve_cmd)\`."
	else
		echo "- Haven $rev: \`haven serve --threads $nproc\`, default settings (log level info)."
	fi
	echo "- $nginx_v: worker_processes $nproc, sendfile on, access_log off, keepalive_requests 1000000."
	echo "- Clients: curl $curl_v (large GET), ab $ab_v (HEAD), wrk $wrk_v (GET);" \
		"$CONNS keep-alive connections, ${duration} s per run; run took ${elapsed} s."
	echo "- Verdict: $verdict."
	echo
	table nginx Haven/nginx
}

publish
