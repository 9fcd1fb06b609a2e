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

set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

record=0
keep=0
size_mib=1024
duration=10
while [ $# -gt 0 ]; do
	case $1 in
	--record) record=1 ;;
	--keep) keep=1 ;;
	--size-mib) size_mib=${2:?--size-mib needs a value}; shift ;;
	--duration) duration=${2:?--duration needs a value}; shift ;;
	-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "bench-read.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
case $size_mib in ''|*[!0-9]*) echo "bench-read.sh: bad --size-mib" >&2; exit 2 ;; esac
case $duration in ''|*[!0-9]*) echo "bench-read.sh: bad --duration" >&2; exit 2 ;; esac
[ "$duration" -ge 1 ] && [ "$duration" -le 30 ] ||
	{ echo "bench-read.sh: --duration must be 1..30" >&2; exit 2; }
[ "$size_mib" -ge 1 ] && [ "$size_mib" -le 4096 ] ||
	{ echo "bench-read.sh: --size-mib must be 1..4096" >&2; exit 2; }

REPO=bench/model
CONNS=64
IDLE_CONNS=1000
PARALLEL=8
RSS_BAR_KB=$((64 * 1024))
BUDGET_S=${HAVEN_BENCH_BUDGET:-280}
size=$((size_mib * 1024 * 1024))
size_label="$size_mib MiB"
[ "$size_mib" = 1024 ] && size_label="1 GiB"

# Loopback only, whatever the environment says.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'
export LC_ALL=C

die() {
	echo "bench-read.sh: $*" >&2
	exit 2
}
note() {
	printf '# %s\n' "$*" >&2
}

# --- Tools -------------------------------------------------------------------

if [ -z "${HAVEN:-}" ]; then
	for HAVEN in "$top/build/haven" "$top/haven"; do
		[ -x "$HAVEN" ] && break
	done
fi
[ -x "$HAVEN" ] || die "no haven binary (build it, or set HAVEN)"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || die "nginx not found (apt-get install nginx-light, or set NGINX)"
WRK=${WRK:-$(command -v wrk)} || die "wrk not found (apt-get install wrk)"
AB=${AB:-$(command -v ab)} || die "ab not found (apt-get install apache2-utils)"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"
command -v timeout >/dev/null || die "timeout (coreutils) not found"

ulimit -n 4096 2>/dev/null || die "cannot raise the open-file limit to 4096 (ulimit -n)"

nproc=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)

# --- Scratch folder, watchdog and cleanup -------------------------------------

scratch=$(mktemp -d "${TMPDIR:-/tmp}/haven-bench.XXXXXX") || die "cannot create a scratch folder"
avail_kb=$(df -Pk "$scratch" | awk 'NR == 2 { print $4 }')
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $((size / 1024 * 2 + 200 * 1024)) ]; then
	rmdir "$scratch"
	die "need about $((size_mib * 2 + 200)) MiB free under ${TMPDIR:-/tmp}"
fi

haven_pid=
nginx_pid=
holder_pid=
bg_pids=
watchdog_pid=

# stop_pid PID: TERM, then KILL after 5 s.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# children PID: the direct children of PID (nginx's workers).
children() {
	local f
	cat /proc/"$1"/task/*/children 2>/dev/null && return
	for f in /proc/[0-9]*/stat; do
		awk -v p="$1" '$4 == p { print $1 }' "$f" 2>/dev/null
	done
}

cleanup() {
	local p workers=""
	trap - EXIT TERM INT HUP
	[ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null
	for p in $bg_pids $holder_pid; do
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "$nginx_pid" ] && workers=$(children "$nginx_pid")
	stop_pid "$haven_pid"
	stop_pid "$nginx_pid"
	for p in $workers; do
		kill -KILL "$p" 2>/dev/null
	done
	if [ "$keep" = 1 ]; then
		note "scratch folder kept: $scratch"
	else
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT
trap 'echo "bench-read.sh: interrupted" >&2; exit 2' INT HUP
trap 'echo "bench-read.sh: stopped after ${BUDGET_S}s (watchdog)" >&2; exit 2' TERM

# The watchdog TERMs this script; every foreground command below is bounded
# by its own timeout, so the trap runs within seconds. If it does not, the
# watchdog kills the servers itself.
(
	sleep "$BUDGET_S" &
	sp=$!
	trap 'kill $sp 2>/dev/null; exit 0' TERM
	wait $sp || exit 0
	kill -TERM $$ 2>/dev/null
	sleep 20 &
	sp=$!
	wait $sp || exit 0
	for f in "$scratch"/*.pid; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	kill -KILL $$ 2>/dev/null
) </dev/null >/dev/null 2>&1 &
watchdog_pid=$!

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# kb_field PID FIELD: a /proc/PID/status value in kB (VmRSS, VmHWM).
kb_field() {
	awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status 2>/dev/null
}

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

t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$scratch/src" "$scratch/www" "$scratch/nginx/tmp"
note "scratch folder: $scratch"
note "writing a $size_label pseudo-random file"
big=$scratch/src/model.safetensors
if command -v openssl >/dev/null; then
	openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:haven-bench \
		-in /dev/zero 2>/dev/null | head -c "$size" >"$big"
fi
if [ "$(stat -c %s "$big" 2>/dev/null)" != "$size" ]; then
	head -c "$size" /dev/urandom >"$big"
fi
[ "$(stat -c %s "$big")" = "$size" ] || die "could not write the test file"

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
blob=$data/blobs/sha256/${sha:0:2}/${sha:2:2}/$sha
[ -f "$blob" ] || die "haven import did not store $blob"
rm -f "$big"
ln "$blob" "$scratch/www/model.safetensors" 2>/dev/null ||
	cp "$blob" "$scratch/www/model.safetensors" || die "cannot copy the blob"
cp "$scratch/src/config.json" "$scratch/www/config.json"

# --- Servers --------------------------------------------------------------------

note "starting haven serve --threads $nproc ${HAVEN_SERVE_ARGS:-}"
# shellcheck disable=SC2086
"$HAVEN" serve --data "$data" --listen 127.0.0.1:0 --threads "$nproc" \
	--port-file "$scratch/haven.port" ${HAVEN_SERVE_ARGS:-} >"$scratch/haven.log" 2>&1 &
haven_pid=$!
echo "$haven_pid" >"$scratch/haven.pid"
for i in $(seq 100); do
	[ -s "$scratch/haven.port" ] && break
	kill -0 "$haven_pid" 2>/dev/null || break
	sleep 0.1
done
[ -s "$scratch/haven.port" ] || { cat "$scratch/haven.log" >&2; die "haven serve did not start"; }
hport=$(cat "$scratch/haven.port")
hbase=http://127.0.0.1:$hport

# The static twin of /api/models/NS/NAME: Haven's own answer, byte for byte.
curl -sf --max-time 10 -o "$scratch/www/api-model.json" "$hbase/api/models/$REPO" ||
	die "GET /api/models/$REPO failed"
api_bytes=$(stat -c %s "$scratch/www/api-model.json")

nginx_user=
[ "$(id -u)" = 0 ] && nginx_user='user root root;'
nginx_e=
"$NGINX" -h 2>&1 | grep -q -- '-e filename' && nginx_e="-e $scratch/nginx/error.log"

start_nginx() {
	local port=$1 nt=$scratch/nginx/tmp
	cat >"$scratch/nginx/nginx.conf" <<EOF
# Generated by bench-read.sh: a plain static server on loopback.
daemon off;
master_process on;
$nginx_user
worker_processes $nproc;
worker_rlimit_nofile 8192;
pid $scratch/nginx/nginx.pid;
error_log $scratch/nginx/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types {
        application/json json;
    }
    default_type application/octet-stream;
    client_body_temp_path $nt/body;
    proxy_temp_path $nt/proxy;
    fastcgi_temp_path $nt/fastcgi;
    uwsgi_temp_path $nt/uwsgi;
    scgi_temp_path $nt/scgi;
    server {
        listen 127.0.0.1:$port;
        root $scratch/www;
    }
}
EOF
	# shellcheck disable=SC2086
	"$NGINX" -p "$scratch/nginx/" $nginx_e -c "$scratch/nginx/nginx.conf" \
		>>"$scratch/nginx/stdout.log" 2>&1 &
	nginx_pid=$!
	echo "$nginx_pid" >"$scratch/nginx.pid"
	for i in $(seq 50); do
		kill -0 "$nginx_pid" 2>/dev/null || return 1
		curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/config.json" && return 0
		sleep 0.1
	done
	return 1
}

note "starting nginx, worker_processes $nproc"
ok=0
for _ in 1 2 3; do
	nport=$(free_port)
	if start_nginx "$nport"; then
		ok=1
		break
	fi
	stop_pid "$nginx_pid"
	nginx_pid=
done
if [ "$ok" != 1 ]; then
	cat "$scratch/nginx/error.log" "$scratch/nginx/stdout.log" >&2 2>/dev/null
	die "nginx did not start"
fi
nbase=http://127.0.0.1:$nport

# Both must answer the same bytes before anything is compared.
for u in "$hbase/$REPO/resolve/main/config.json" "$nbase/config.json"; do
	curl -sf --max-time 10 "$u" | cmp -s - "$scratch/www/config.json" ||
		die "$u does not answer config.json"
done
curl -sf --max-time 10 -o "$scratch/api-nginx.json" "$nbase/api-model.json" &&
	cmp -s "$scratch/api-nginx.json" "$scratch/www/api-model.json" ||
	die "nginx does not answer api-model.json"

# --- Measurements ---------------------------------------------------------------

rows=()
failed=0

# row NAME HAVEN NGINX RATIO BAR RESULT
row() {
	rows+=("| $1 | $2 | $3 | $4 | $5 | $6 |")
	printf '# %-44s haven %-12s nginx %-12s ratio %-6s %s\n' "$1" "$2" "$3" "$4" "$6" >&2
	[ "$6" = FAIL ] && failed=1
	return 0
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# judge VALUE OP LIMIT: PASS or FAIL (OP is ge or lt); FAIL when VALUE is not a number.
judge() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v !~ /^[0-9.]+$/) { print "FAIL"; exit }
		if (op == "ge") print (v + 0 >= l + 0) ? "PASS" : "FAIL"
		else print (v + 0 < l + 0) ? "PASS" : "FAIL"
	}'
}

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
	local ready=$scratch/holder.ready done=$scratch/holder.done i
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
	echo "$holder_pid" >"$scratch/holder.pid"
	for i in $(seq 600); do
		[ -s "$ready" ] && break
		kill -0 "$holder_pid" 2>/dev/null || break
		sleep 0.1
	done
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
	holder_pid=
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

mb() {
	[ -n "$1" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo -
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

elapsed=$(($(date +%s) - t_start))
when=$(date -u '+%Y-%m-%d %H:%M UTC')
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu" ] || cpu=$(uname -m)
mem=$(awk '$1 == "MemTotal:" { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
wrk_v=$("$WRK" -v 2>&1 | awk 'NR == 1 { sub(/^debian\//, "", $2); print $2 }')
ab_v=$("$AB" -V 2>&1 | sed -n '1s/.*Version \([^ ,]*\).*/\1/p')
curl_v=$(curl --version | awk 'NR == 1 { print $2 }')
verdict="all bars met"
[ "$failed" = 1 ] && verdict="at least one bar NOT met"

report() {
	echo "### $when"
	echo
	echo "- Machine: $nproc CPUs ($cpu), Linux $(uname -r) $(uname -m), $mem RAM."
	echo "  Client and servers share these $nproc CPUs: the figures are ratios, not capacities."
	echo "  Load average before the run: $load_start."
	if [ -n "${HAVEN_SERVE_ARGS:-}" ]; then
		echo "- Haven $rev: \`haven serve --threads $nproc $HAVEN_SERVE_ARGS\`."
	else
		echo "- Haven $rev: \`haven serve --threads $nproc\`, default settings (log level info)."
	fi
	echo "- $nginx_v: worker_processes $nproc, sendfile on, access_log off, keepalive_requests 1000000."
	echo "- Clients: curl $curl_v (large GET), ab $ab_v (HEAD), wrk $wrk_v (GET);" \
		"$CONNS keep-alive connections, ${duration} s per run; run took ${elapsed} s."
	echo "- Verdict: $verdict."
	echo
	echo "| Measurement | Haven | nginx | Haven/nginx | Bar | Result |"
	echo "|---|---:|---:|---:|---|---|"
	printf '%s\n' "${rows[@]}"
}

echo
report
if [ "$record" = 1 ]; then
	results=$here/RESULTS.md
	if [ ! -f "$results" ]; then
		cat >"$results" <<'EOF'
# Read-path benchmark results

Appended by `tests/bench/bench-read.sh --record`; see README.md for what
each line measures. The newest run is at the bottom.
EOF
	fi
	{ echo; report; } >>"$results"
	note "appended to $results"
fi
exit "$failed"
