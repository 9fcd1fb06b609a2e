# lib.sh: what the benchmarks in tests/bench share. Each bench-*.sh sources
# it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# It sets here (this folder), top (the source tree) and prog (the script's
# name, for messages), keeps every request on loopback, and provides:
#
#   die, note              an error (exit status 2) and a progress line
#   parse_options          --record, --keep, --help and the script's own
#                          value options; check_range for their values
#   find_haven, find_nginx, need_tools
#                          the tools, from the environment or PATH
#   make_scratch, start_watchdog, cleanup
#                          a scratch folder that goes away on exit, and a
#                          watchdog that bounds the run; cleanup stops the
#                          processes kept in haven_pid, nginx_pid, fcgi_pid
#                          and bg_pids
#   begin_run              the run's start time and load average
#   haven_setup, start_haven, blob_of
#                          a user, token and repository; `haven serve`
#   free_port, nginx_conf, start_nginx
#                          nginx on a free loopback port
#   stop_pid, children, await, kb_field, make_data
#   row, ratio, judge, mb  the results table and its figures
#   run_facts, machine, serve_cmd, table, publish
#                          the report: what ran where, the table, and
#                          --record's append to RESULTS.md
#
# A script sets BUDGET_S (the watchdog's seconds) before start_watchdog,
# and row_fmt (a printf format for row's progress line; empty for none).
# Its report function prints one RESULTS.md section; publish prints it and,
# with --record, appends it. Exit statuses: 0 when every bar is met, 1 when
# one is not, 2 when the benchmark could not run.

set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
prog=$(basename "$0")

# Loopback only, whatever the environment says.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'
export LC_ALL=C

record=0
keep=0
scratch=
haven_pid=
nginx_pid=
fcgi_pid=
bg_pids=
watchdog_pid=
rows=()
failed=0
row_fmt=

die() {
	echo "$prog: $*" >&2
	exit 2
}

note() {
	printf '# %s\n' "$*" >&2
}

# --- Options -----------------------------------------------------------------

# parse_options "--OPT VAR ..." ARGS...: --record and --keep set record and
# keep to 1, --help prints the script's header comment, and each --OPT in
# the list stores the argument after it in VAR.
parse_options() {
	local spec=$1 var
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--record) record=1 ;;
		--keep) keep=1 ;;
		-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
		*)
			var=$(option_var "$1" $spec) || die "unknown option $1 (try --help)"
			[ $# -ge 2 ] || die "$1 needs a value"
			printf -v "$var" '%s' "$2"
			shift
			;;
		esac
		shift
	done
}

# option_var OPT SPEC...: the variable SPEC names for OPT.
option_var() {
	local opt=$1
	shift
	while [ $# -ge 2 ]; do
		[ "$1" = "$opt" ] && { echo "$2"; return 0; }
		shift 2
	done
	return 1
}

# check_range OPT VALUE MIN MAX: dies unless VALUE is a whole number in
# MIN..MAX.
check_range() {
	case $2 in
	'' | *[!0-9]*) die "$1 must be a whole number, $3..$4" ;;
	esac
	[ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be $3..$4"
}

# --- Tools -------------------------------------------------------------------

# find_haven: HAVEN, or build/haven or ./haven at the top of the tree.
find_haven() {
	if [ -z "${HAVEN:-}" ]; then
		for HAVEN in "$top/build/haven" "$top/haven"; do
			[ -x "$HAVEN" ] && break
		done
	fi
	[ -x "$HAVEN" ] || die "no haven binary (build it, or set HAVEN)"
}

# find_nginx: NGINX, or nginx on PATH or in /usr/sbin.
find_nginx() {
	NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
	[ -x "$NGINX" ] || die "nginx not found (apt-get install nginx-light, or set NGINX)"
}

# need_tools CMD...: dies unless each CMD is on PATH (timeout is coreutils').
need_tools() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null && continue
		[ "$c" = timeout ] && die "timeout (coreutils) not found"
		die "$c not found"
	done
}

nproc=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)

# --- Scratch folder, watchdog and cleanup ------------------------------------

# make_scratch PREFIX: a new folder under TMPDIR, in scratch.
make_scratch() {
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || die "cannot create a scratch folder"
}

# stop_pid PID: TERM, then KILL after 5 s.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# children PID: the direct children of PID (nginx's workers, fcgiwrap's).
children() {
	local f
	cat /proc/"$1"/task/*/children 2>/dev/null && return
	for f in /proc/[0-9]*/stat; do
		awk -v p="$1" '$4 == p { print $1 }' "$f" 2>/dev/null
	done
}

# cleanup: on exit, stops everything the run started and removes the
# scratch folder unless --keep.
cleanup() {
	local p workers=""
	trap - EXIT TERM INT HUP
	[ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null
	for p in $bg_pids; do
		kill -KILL "$p" 2>/dev/null
	done
	# nginx's workers and fcgiwrap's preforked children outlive their
	# parent's TERM.
	[ -n "$nginx_pid" ] && workers=$(children "$nginx_pid")
	[ -n "$fcgi_pid" ] && workers="$workers $(children "$fcgi_pid")"
	stop_pid "$haven_pid"
	stop_pid "$nginx_pid"
	stop_pid "$fcgi_pid"
	for p in $workers; do
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "$scratch" ] || return 0
	if [ "$keep" = 1 ]; then
		note "scratch folder kept: $scratch"
	else
		chmod -R u+rwx "$scratch" 2>/dev/null
		rm -rf "$scratch"
	fi
}

# start_watchdog: installs cleanup, and TERMs this script after BUDGET_S
# seconds. Every foreground command is bounded by its own timeout, so the
# trap runs within seconds; if it does not, the watchdog kills the
# processes named in $scratch/*.pid itself.
start_watchdog() {
	trap cleanup EXIT
	trap 'echo "$prog: interrupted" >&2; exit 2' INT HUP
	trap 'echo "$prog: stopped after ${BUDGET_S}s (watchdog)" >&2; exit 2' TERM
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
}

# await PID TENTHS TEST...: waits until the command TEST succeeds, for at
# most TENTHS tenths of a second and only while PID is alive; returns
# TEST's last status.
await() {
	local pid=$1 n=$2
	shift 2
	for _ in $(seq "$n"); do
		"$@" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	"$@"
}

# begin_run: the start time (t_start) and load average (load_start).
begin_run() {
	t_start=$(date +%s)
	load_start=$(cut -d' ' -f1-3 /proc/loadavg)
	note "scratch folder: $scratch"
}

# --- Haven -------------------------------------------------------------------

# haven_setup DATA USER REPO: a user, a write token for it (in token) and
# a repository, in a fresh data folder.
haven_setup() {
	local log=$scratch/setup.log
	timeout 30 "$HAVEN" user create "$2" --data "$1" >"$log" 2>&1 ||
		{ cat "$log" >&2; die "haven user create failed"; }
	token=$(timeout 30 "$HAVEN" token create --user "$2" --role write --name bench \
		--data "$1" 2>>"$log") || { cat "$log" >&2; die "haven token create failed"; }
	case $token in hf_*) ;; *) die "haven token create failed" ;; esac
	timeout 30 "$HAVEN" repo create "$3" --data "$1" >>"$log" 2>&1 ||
		{ cat "$log" >&2; die "haven repo create failed"; }
}

# serve_cmd: how start_haven runs `haven serve`, for the report.
serve_cmd() {
	echo "haven serve --threads $nproc${HAVEN_SERVE_ARGS:+ $HAVEN_SERVE_ARGS}"
}

# start_haven DATA: `haven serve` on a free loopback port, with nproc
# threads and HAVEN_SERVE_ARGS; sets haven_pid, hport and hbase.
start_haven() {
	note "starting $(serve_cmd)"
	# shellcheck disable=SC2086
	"$HAVEN" serve --data "$1" --listen 127.0.0.1:0 --threads "$nproc" \
		--port-file "$scratch/haven.port" ${HAVEN_SERVE_ARGS:-} \
		>"$scratch/haven.log" 2>&1 </dev/null &
	haven_pid=$!
	echo "$haven_pid" >"$scratch/haven.pid"
	await "$haven_pid" 100 test -s "$scratch/haven.port"
	[ -s "$scratch/haven.port" ] || { cat "$scratch/haven.log" >&2; die "haven serve did not start"; }
	hport=$(cat "$scratch/haven.port")
	hbase=http://127.0.0.1:$hport
}

# blob_of SHA: where Haven stores an object in the data folder $data.
blob_of() {
	echo "$data/blobs/sha256/${1:0:2}/${1:2:2}/$1"
}

# --- nginx -------------------------------------------------------------------

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# nginx_conf WHAT CONNECTIONS [MAIN]: writes $scratch/nginx/nginx.conf, a
# loopback nginx with nproc workers and everything under $scratch/nginx;
# the http block's own directives come from stdin, MAIN adds main ones.
nginx_conf() {
	local nt=$scratch/nginx/tmp user=
	mkdir -p "$nt"
	[ "$(id -u)" = 0 ] && user='user root root;'
	{
		cat <<EOF
# Generated by $prog: $1.
daemon off;
master_process on;
$user
worker_processes $nproc;
${3:-}
pid $scratch/nginx/nginx.pid;
error_log $scratch/nginx/error.log warn;
events {
    worker_connections $2;
}
http {
    access_log off;
    client_body_temp_path $nt/body;
    proxy_temp_path $nt/proxy;
    fastcgi_temp_path $nt/fastcgi;
    uwsgi_temp_path $nt/uwsgi;
    scgi_temp_path $nt/scgi;
EOF
		cat
		echo '}'
	} >"$scratch/nginx/nginx.conf"
}

# start_nginx WRITE_CONF PATH: up to three tries on a free port, each
# writing the config with `WRITE_CONF PORT`, until GET PATH answers there.
# Sets nginx_pid, nport and nbase; on failure shows nginx's logs and
# returns 1.
start_nginx() {
	local e=
	"$NGINX" -h 2>&1 | grep -q -- '-e filename' && e="-e $scratch/nginx/error.log"
	for _ in 1 2 3; do
		nport=$(free_port)
		nbase=http://127.0.0.1:$nport
		"$1" "$nport"
		# shellcheck disable=SC2086
		"$NGINX" -p "$scratch/nginx/" $e -c "$scratch/nginx/nginx.conf" \
			>>"$scratch/nginx/stdout.log" 2>&1 </dev/null &
		nginx_pid=$!
		echo "$nginx_pid" >"$scratch/nginx.pid"
		for _ in $(seq 50); do
			kill -0 "$nginx_pid" 2>/dev/null || break
			curl -sf --max-time 2 -o /dev/null "$nbase/$2" && return 0
			sleep 0.1
		done
		stop_pid "$nginx_pid"
		nginx_pid=
	done
	cat "$scratch/nginx/error.log" "$scratch/nginx/stdout.log" >&2 2>/dev/null
	return 1
}

# --- Measurements ------------------------------------------------------------

# kb_field PID FIELD: a /proc/PID/status value in kB (VmRSS, VmHWM).
kb_field() {
	awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status 2>/dev/null
}

# make_data FILE BYTES: pseudo-random, incompressible bytes (AES-CTR with
# openssl, else /dev/urandom), written back to disk before anything is
# timed.
make_data() {
	if command -v openssl >/dev/null; then
		timeout 300 openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:"haven-bench-$1" \
			-in /dev/zero 2>/dev/null | head -c "$2" >"$1"
	fi
	[ "$(stat -c %s "$1" 2>/dev/null)" = "$2" ] || head -c "$2" /dev/urandom >"$1"
	[ "$(stat -c %s "$1" 2>/dev/null)" = "$2" ] || die "could not write $1"
	sync
}

# row NAME HAVEN OTHER RATIO BAR RESULT: a table row; a FAIL fails the run.
# With row_fmt set, also a progress line (row_fmt gets all but BAR).
row() {
	rows+=("| $1 | $2 | $3 | $4 | $5 | $6 |")
	# shellcheck disable=SC2059
	[ -z "$row_fmt" ] || printf "$row_fmt" "$1" "$2" "$3" "$4" "$6" >&2
	[ "$6" = FAIL ] && failed=1
	return 0
}

# ratio A B: A / B with two decimals; "-" when either is missing.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# judge VALUE OP LIMIT: PASS or FAIL (OP is ge, le or lt); FAIL when VALUE
# is not a number.
judge() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v !~ /^[0-9.]+$/) { print "FAIL"; exit }
		if (op == "ge") print (v + 0 >= l + 0) ? "PASS" : "FAIL"
		else if (op == "le") print (v + 0 <= l + 0) ? "PASS" : "FAIL"
		else print (v + 0 < l + 0) ? "PASS" : "FAIL"
	}'
}

# mb KB: megabytes with one decimal; "-" for nothing.
mb() {
	[ -n "$1" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo -
}

# --- Report ------------------------------------------------------------------

# run_facts: elapsed, when, cpu, mem and rev for the report.
run_facts() {
	elapsed=$(($(date +%s) - t_start))
	when=$(date -u '+%Y-%m-%d %H:%M UTC')
	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	[ -n "$cpu" ] || cpu=$(uname -m)
	mem=$(awk '$1 == "MemTotal:" { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)
}

# machine: "N CPUs (model), Linux release arch, M GiB RAM".
machine() {
	echo "$nproc CPUs ($cpu), Linux $(uname -r) $(uname -m), $mem RAM"
}

# table OTHER RATIO: the results table, OTHER naming the second column and
# RATIO the third.
table() {
	echo "| Measurement | Haven | $1 | $2 | Bar | Result |"
	echo "|---|---:|---:|---:|---|---|"
	printf '%s\n' "${rows[@]}"
}

# publish: prints the script's report, appends it to RESULTS.md with
# --record, and exits with the run's status.
publish() {
	local results=$here/RESULTS.md
	echo
	report
	if [ "$record" = 1 ]; then
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
}
