# Integration test library for Haven: sourced by every tNNNN-*.sh script.
#
# A test script looks like this:
#
#   #!/bin/bash
#   . "$(dirname "$0")/lib.sh"
#   setup_model_repo          # optional: fixture model, branch, tag
#   start_server
#   expect_success 'config.json answers 200' '
#       fetch c "$base/$REPO/resolve/main/config.json" &&
#       test "$(status c)" = 200
#   '
#   done_testing
#
# Every script gets its own scratch folder ($tmp, under ${TMPDIR:-/tmp}),
# with HOME pointing inside it, LC_ALL=C and no system git config, so
# nothing from the machine leaks in. Servers listen on 127.0.0.1 port 0 and
# write the bound port to a file, so tests can run in parallel. Output is
# TAP, read by automake's tap-driver.sh.
#
# Environment understood here:
#   top_builddir, top_srcdir  set by `make check`; guessed when run by hand
#   HAVEN                     the haven binary (default $top_builddir/haven)
#   HAVEN_TEST_TIMEOUT        seconds one script may run (default 600)
#   HAVEN_TEST_KEEP=1         keep the scratch folder
#   HAVEN_REQUIRE_JS=1        a missing JS client is a failure, not a skip
#   HAVEN_JS_MODULES          node_modules holding @huggingface/hub
#                             (default $top_srcdir/tests/js/node_modules)
#   NGINX                     the nginx binary of nginx_start (default: on
#                             PATH, or /usr/sbin/nginx)
#   HAVEN_REQUIRE_NGINX=1     a missing nginx is a failure, not a skip
#   HAVEN_TEST_TLS=1          servers speak HTTPS with a throwaway test CA
#                             (see "TLS" below); $base is then https://...

set -u

# --- Locations --------------------------------------------------------------

if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fi
if [ -z "${top_builddir:-}" ]; then
	if [ -x "$top_srcdir/build/haven" ]; then
		top_builddir=$top_srcdir/build
	else
		top_builddir=$top_srcdir
	fi
fi
HAVEN=${HAVEN:-$top_builddir/haven}
FIXTURES=$top_srcdir/tests/fixtures
if [ -x /usr/bin/python3 ]; then
	PYTHON=${PYTHON:-/usr/bin/python3}
else
	PYTHON=${PYTHON:-python3}
fi

# --- Scratch folder and a clean environment -----------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/haven-test.XXXXXX") || {
	echo "Bail out! cannot create a scratch folder"
	exit 99
}
HOME=$tmp/home
mkdir -p "$HOME"
LC_ALL=C
GIT_CONFIG_NOSYSTEM=1
GIT_TERMINAL_PROMPT=0
export HOME LC_ALL GIT_CONFIG_NOSYSTEM GIT_TERMINAL_PROMPT
unset LANG LANGUAGE
# Only 127.0.0.1 is ever contacted: no proxy, no token, no real Hub.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
NO_PROXY='*'
no_proxy='*'
export NO_PROXY no_proxy
unset HF_ENDPOINT HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE HAVEN_DATA
HF_HOME=$tmp/hf
HF_HUB_DISABLE_TELEMETRY=1
HF_HUB_DISABLE_XET=1
HF_HUB_DISABLE_PROGRESS_BARS=1
export HF_HOME HF_HUB_DISABLE_TELEMETRY HF_HUB_DISABLE_XET HF_HUB_DISABLE_PROGRESS_BARS
# Under the sanitizers, make any report fatal and visible in the server log.
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

DATA=$tmp/data
# HAVEN_TEST_BLOBS=s3://BUCKET: $DATA keeps its LFS objects in that bucket,
# under a prefix of this script's own, through <data>/blobs.conf (what
# `haven serve --blobs` records); HAVEN_S3_ENDPOINT and the AWS_* keys
# come from the environment (t9102 runs scripts this way against RGW).
if [ -n "${HAVEN_TEST_BLOBS:-}" ]; then
	S3_BUCKET=${HAVEN_TEST_BLOBS#s3://}
	S3_BUCKET=${S3_BUCKET%%/*}
	S3_PREFIX=$(basename "$0" .sh)-$$/
	S3_TOOL=$top_builddir/tests/s3/s3-tool
	mkdir -p "$DATA"
	printf 'blobs s3://%s/%s\ns3_endpoint %s\n' "$S3_BUCKET" "${S3_PREFIX%/}" \
		"${HAVEN_S3_ENDPOINT:?}" >"$DATA/blobs.conf"
fi
scheme=http
n=0
failed=0
server_pid=
server_pids=
port=
base=
planned=0

cleanup() {
	local p
	for p in $server_pids; do
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "${watchdog_pid:-}" ] && kill "$watchdog_pid" 2>/dev/null
	[ -n "${nginx_pid:-}" ] && nginx_stop
	if [ "${HAVEN_TEST_KEEP:-0}" = 1 ]; then
		echo "# scratch folder kept: $tmp"
	else
		chmod -R u+rwx "$tmp" 2>/dev/null
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'echo "Bail out! interrupted"; exit 1' INT HUP
trap 'echo "Bail out! $(basename "$0") ran longer than ${HAVEN_TEST_TIMEOUT:-600}s"; dump_server_log; exit 1' ALRM

# A watchdog bounds the whole script. Its output goes to /dev/null so that a
# leftover sleep never holds the TAP pipe open.
(
	sleep "${HAVEN_TEST_TIMEOUT:-600}" &
	sp=$!
	trap 'kill $sp 2>/dev/null; exit 0' TERM
	wait $sp && kill -s ALRM $$
) >/dev/null 2>&1 </dev/null &
watchdog_pid=$!

# --- TAP ------------------------------------------------------------------------

# expect_success DESCRIPTION COMMANDS: run COMMANDS (a string, eval'd in a
# subshell whose working directory is $tmp) and print one TAP line; the
# status of the last command decides, so chain checks with &&. On failure
# the commands' output is shown as TAP comments. Being a subshell, COMMANDS
# cannot `wait` for the server: signal and wait for it at the top level.
expect_success() {
	n=$((n + 1))
	if (cd "$tmp" && eval "$2") >"$tmp/out.$n" 2>&1 </dev/null; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		sed -e 's/^/#   /' "$tmp/out.$n" | head -n 60
		failed=$((failed + 1))
	fi
}

# test_skip DESCRIPTION REASON
test_skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

# say MESSAGE: a TAP comment.
say() {
	echo "# $*"
}

# skip_all REASON: the whole script is skipped (TAP "1..0 # SKIP"). Exit
# status 0 because tap-driver.sh reports any other status as an error.
skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# expect_tap_from DESCRIPTION COMMAND...: run a client program that prints
# its own TAP-like lines ("ok [N] - desc" / "not ok [N] - desc"; indented or
# other lines are diagnostics) and renumber them into this script's plan.
# The program's exit status must be 0 and it must report at least one check.
expect_tap_from() {
	local desc=$1 rc line seen=0 diag=1 failed_before=$failed
	shift
	"$@" >"$tmp/tap.out" 2>"$tmp/tap.err" </dev/null
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok "* | "not ok "*)
			local text
			text=$(printf '%s\n' "$line" | sed -E 's/^(not )?ok( [0-9]+)?( -)? ?//')
			n=$((n + 1))
			seen=$((seen + 1))
			case $line in
			"not ok "*)
				echo "not ok $n - $desc: $text"
				case $text in
				*"# TODO"* | *"# todo"*) ;;
				*) failed=$((failed + 1)) ;;
				esac
				diag=1
				;;
			*)
				echo "ok $n - $desc: $text"
				diag=0
				;;
			esac
			;;
		"TAP version"* | "1.."* | "# Subtest"*) ;;
		" "* | "	"*) [ "$diag" = 1 ] && printf '#   %s\n' "$line" ;;
		"#"*) printf '%s\n' "$line" ;;
		*) printf '#   %s\n' "$line" ;;
		esac
	done <"$tmp/tap.out"
	# One more line for the exit status, unless failures were reported
	# already (they explain the status).
	if [ "$rc" -eq 0 ] && [ "$seen" -gt 0 ]; then
		n=$((n + 1))
		echo "ok $n - $desc: client exited 0 after $seen checks"
	elif [ "$failed" -eq "$failed_before" ]; then
		n=$((n + 1))
		echo "not ok $n - $desc: client exited $rc after $seen checks"
		failed=$((failed + 1))
	fi
	if [ "$rc" -ne 0 ]; then
		sed -e 's/^/#   stderr: /' "$tmp/tap.err" | tail -n 40
	fi
}

# setup_js_client TEST.mjs: for the scripts that run @huggingface/hub
# (tests/js, pinned in package-lock.json). Skips the whole script when
# node >= 18 or the installed package is missing (run `npm ci` in
# tests/js), or bails out under HAVEN_REQUIRE_JS=1. Sets $modules to the
# node_modules folder (HAVEN_JS_MODULES, default tests/js/node_modules)
# and copies tests/js/TEST.mjs to $tmp/js/, next to a link to $modules:
# node resolves packages from the script's folder, and the source tree
# may be read-only.
setup_js_client() {
	local node_major
	command -v node >/dev/null 2>&1 || js_missing "node is not installed"
	node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
	[ "${node_major:-0}" -ge 18 ] 2>/dev/null || js_missing "node >= 18 is needed (found ${node_major:-none})"
	modules=${HAVEN_JS_MODULES:-$top_srcdir/tests/js/node_modules}
	[ -f "$modules/@huggingface/hub/package.json" ] ||
		js_missing "@huggingface/hub is not installed in $modules (run npm ci in tests/js)"
	mkdir -p "$tmp/js"
	cp "$top_srcdir/tests/js/$1" "$tmp/js/"
	ln -s "$modules" "$tmp/js/node_modules"
	printf '{"type": "module"}\n' >"$tmp/js/package.json"
}

# js_ready: true when node and @huggingface/hub are installed; $tmp/js is
# then a folder where a script the test writes can import the client.
js_ready() {
	modules=${HAVEN_JS_MODULES:-$top_srcdir/tests/js/node_modules}
	command -v node >/dev/null 2>&1 &&
		[ -f "$modules/@huggingface/hub/package.json" ] || return 1
	[ -d "$tmp/js" ] && return 0
	mkdir -p "$tmp/js" &&
		ln -s "$(cd "$modules" && pwd)" "$tmp/js/node_modules" &&
		printf '{"type": "module"}\n' >"$tmp/js/package.json"
}
js_missing() {
	if [ "${HAVEN_REQUIRE_JS:-0}" = 1 ]; then
		echo "Bail out! $* (HAVEN_REQUIRE_JS=1)"
		exit 1
	fi
	skip_all "$*"
}

# --- The haven binary -----------------------------------------------------------

require_haven() {
	if [ ! -x "$HAVEN" ]; then
		n=$((n + 1))
		echo "not ok $n - haven binary exists at $HAVEN"
		echo "1..$n"
		exit 1
	fi
}
require_haven

# hv ARGS...: run a haven subcommand on this test's data folder.
hv() {
	"$HAVEN" "$@" --data "$DATA"
}

# --- TLS ------------------------------------------------------------------------------

# tls_make_certs DIR: a throwaway CA (DIR/ca.pem) and a server certificate
# it signed for 127.0.0.1 and localhost (DIR/server.pem, DIR/server.key).
tls_make_certs() {
	local d=$1
	mkdir -p "$d" &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
			-subj "/CN=Haven Test CA" >"$d/openssl.log" 2>&1 &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/server.key" -out "$d/server.csr" \
			-subj "/CN=localhost" >>"$d/openssl.log" 2>&1 &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -out "$d/server.pem" -days 2 \
			-extfile "$d/ext.cnf" >>"$d/openssl.log" 2>&1
}

# tls_enable: from here on, start_server adds --tls-cert and --tls-key
# ($tmp/tls/server.pem and .key) and $base is https://; every client trusts
# the test CA through its usual variable: curl (CURL_CA_BUNDLE), OpenSSL
# and Python (SSL_CERT_FILE, REQUESTS_CA_BUNDLE), Node
# (NODE_EXTRA_CA_CERTS) and git (GIT_SSL_CAINFO, i.e. http.sslCAInfo).
# HAVEN_TEST_CA names the CA file for scripts of their own. Run at once
# under HAVEN_TEST_TLS=1, which is how the whole suite runs over HTTPS.
tls_enable() {
	[ "$scheme" = https ] && return 0
	if ! tls_make_certs "$tmp/tls"; then
		echo "Bail out! cannot make the test CA and certificate with openssl"
		sed -e 's/^/#   /' "$tmp/tls/openssl.log" 2>/dev/null
		exit 1
	fi
	scheme=https
	HAVEN_TEST_TLS=1
	HAVEN_TEST_CA=$tmp/tls/ca.pem
	CURL_CA_BUNDLE=$HAVEN_TEST_CA
	SSL_CERT_FILE=$HAVEN_TEST_CA
	REQUESTS_CA_BUNDLE=$HAVEN_TEST_CA
	NODE_EXTRA_CA_CERTS=$HAVEN_TEST_CA
	GIT_SSL_CAINFO=$HAVEN_TEST_CA
	export HAVEN_TEST_TLS HAVEN_TEST_CA CURL_CA_BUNDLE SSL_CERT_FILE REQUESTS_CA_BUNDLE \
		NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO
}
[ "${HAVEN_TEST_TLS:-0}" = 1 ] && tls_enable

# skip_under_tls DESCRIPTION: true (and a TAP skip line) when servers speak
# HTTPS; for checks that talk plain TCP to the server on purpose.
skip_under_tls() {
	[ "$scheme" = https ] || return 1
	test_skip "$1" "plain TCP check; HAVEN_TEST_TLS=1"
}

# --- Ceph RGW (S3 tests) -----------------------------------------------------------

# rgw_start_or_skip: start a one-node Ceph RGW under $tmp/rgw with
# tests/s3/rgw.sh, stopped again on exit, and source its environment
# (HAVEN_S3_ENDPOINT, AWS_*). When it cannot start, the whole script is
# skipped with the reason, or fails under HAVEN_REQUIRE_S3=1.
RGW="$top_srcdir/tests/s3/rgw.sh"
RGW_DIR=$tmp/rgw
rgw_stop() {
	bash "$RGW" stop "$RGW_DIR" 2>/dev/null
}
rgw_start_or_skip() {
	local t0 rc
	trap 'rgw_stop; cleanup' EXIT
	t0=$(date +%s%N)
	bash "$RGW" start "$RGW_DIR" >"$tmp/rgw.env" 2>"$tmp/rgw.log"
	rc=$?
	if [ $rc -ne 0 ]; then
		sed 's/^/# /' "$tmp/rgw.log" | tail -n 15
		if [ "${HAVEN_REQUIRE_S3:-0}" = 1 ]; then
			echo "not ok 1 - Ceph RGW starts on loopback (status $rc)"
			echo "1..1"
			exit 1
		fi
		[ $rc -eq 77 ] && skip_all "Ceph RGW is not available here: $(grep 'skip:' "$tmp/rgw.log" | tail -n 1)"
		skip_all "Ceph RGW did not start here (status $rc; its log is above)"
	fi
	. "$tmp/rgw.env"
	say "RGW ready at $HAVEN_S3_ENDPOINT in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

# --- nginx as a load balancer (several nodes, deploy/nginx) ----------------------

# free_port: a TCP port free on 127.0.0.1 right now (the kernel's pick).
# For addresses that must be known before a server starts, such as the
# balancer's URL that every node gets as --public-url.
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nginx_or_skip: sets NGINX (default: nginx on PATH, or /usr/sbin/nginx),
# or skips the whole script when it is missing (HAVEN_REQUIRE_NGINX=1
# makes that a failure). nginx_start calls it; a script may call it first
# to skip before it builds its fixtures.
nginx_or_skip() {
	NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
	[ -x "$NGINX" ] && return 0
	if [ "${HAVEN_REQUIRE_NGINX:-0}" = 1 ]; then
		echo "Bail out! nginx is not installed (HAVEN_REQUIRE_NGINX=1)"
		exit 1
	fi
	skip_all "nginx is not installed (Debian: apt-get install nginx)"
}

# nginx_start PORT_VAR BACKEND_URL...: start nginx (the Debian package's
# /usr/sbin/nginx, or $NGINX) under $tmp/nginx as a load balancer in front
# of the given Haven nodes ("http://127.0.0.1:PORT"), with the proxy
# settings of deploy/nginx/haven-proxy.conf (included as is) and an
# upstream like deploy/nginx/haven.conf's (least_conn, max_fails=3
# fail_timeout=10s, keepalive). It listens on 127.0.0.1 port
# $PORT_VAR, or a free port when PORT_VAR is empty, which it then sets;
# $nbase is the balancer's URL and $nginx_pid its master process. Under
# HAVEN_TEST_TLS=1 it terminates TLS with the test certificate and speaks
# HTTPS to the nodes. Waits until nginx answers GET /api/health (any
# status: the nodes need not be up yet). When nginx is missing the whole
# script is skipped (see nginx_or_skip). Stopped by nginx_stop or at exit;
# one balancer per script.
nginx_start() {
	local var=$1 p i tries=3 b servers='' tls='' up=http e=()
	shift
	nginx_or_skip
	for b in "$@"; do
		b=${b#*://}
		servers="$servers    server ${b%%/*} max_fails=3 fail_timeout=10s;
"
	done
	if [ "$scheme" = https ]; then
		up=https
		tls="ssl_certificate $tmp/tls/server.pem;
    ssl_certificate_key $tmp/tls/server.key;
    proxy_ssl_trusted_certificate $HAVEN_TEST_CA;
    proxy_ssl_verify on;
    proxy_ssl_name localhost;
    proxy_ssl_session_reuse on;"
	fi
	mkdir -p "$tmp/nginx/tmp"
	# -e: nginx opens its default error log before reading the config,
	# which a normal user may not write.
	"$NGINX" -h 2>&1 | grep -q -- '-e filename' && e=(-e "$tmp/nginx/error.log")
	p=${!var:-}
	[ -n "$p" ] && tries=1
	while [ $tries -gt 0 ]; do
		tries=$((tries - 1))
		[ -n "${!var:-}" ] || p=$(free_port)
		nginx_write_conf "$p" "$servers" "$up" "$tls" >"$tmp/nginx/nginx.conf"
		"$NGINX" -p "$tmp/nginx/" ${e[@]+"${e[@]}"} -c "$tmp/nginx/nginx.conf" \
			>>"$tmp/nginx/stdout.log" 2>&1 </dev/null &
		nginx_pid=$!
		nbase="$scheme://127.0.0.1:$p"
		i=0
		while [ $i -lt 100 ] && kill -0 "$nginx_pid" 2>/dev/null; do
			if curl -s -o /dev/null --max-time 2 --noproxy '*' "$nbase/api/health"; then
				printf -v "$var" '%s' "$p"
				return 0
			fi
			sleep 0.1
			i=$((i + 1))
		done
		nginx_stop
	done
	echo "Bail out! nginx did not answer on 127.0.0.1:$p"
	cat "$tmp/nginx/error.log" "$tmp/nginx/stdout.log" 2>/dev/null | tail -n 20 | sed 's/^/#   /'
	exit 1
}

# nginx_write_conf PORT SERVERS UPSTREAM-SCHEME TLS-LINES: the test
# balancer's nginx.conf, on stdout. Workers run as the invoking user (as
# root, `user` must say so, or they would drop to nobody); every path
# nginx writes is under $tmp/nginx.
nginx_write_conf() {
	local user='' listen="listen 127.0.0.1:$1;" src
	# nginx reads a relative include from its own prefix, not from here.
	src=$(cd "$top_srcdir" && pwd)
	[ "$(id -u)" = 0 ] && user="user root $(id -gn);"
	[ -n "$4" ] && listen="listen 127.0.0.1:$1 ssl;"
	cat <<EOF
# Generated by tests/integration/lib.sh (nginx_start).
daemon off;
master_process on;
$user
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events {
    worker_connections 256;
}
http {
    access_log $tmp/nginx/access.log;
    client_body_temp_path $tmp/nginx/tmp/body;
    proxy_temp_path $tmp/nginx/tmp/proxy;
    fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
    scgi_temp_path $tmp/nginx/tmp/scgi;
    upstream haven {
        least_conn;
$2        keepalive 16;
        keepalive_timeout 50s;
    }
    server {
        $listen
        $4
        location / {
            proxy_pass $3://haven;
            include "$src/deploy/nginx/haven-proxy.conf";
        }
    }
}
EOF
}

# children_of PID: the process ids of PID's children, from /proc (a
# fresh Debian has no procps).
children_of() {
	cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . | tr '\n' ' '
}

# nginx_stop: stop the balancer (TERM: nginx closes its connections and
# its workers exit before the master does; KILL after 10 s, workers
# included, so that nothing is left running).
nginx_stop() {
	local pid=${nginx_pid:-} workers w
	[ -n "$pid" ] || return 0
	workers=$(children_of "$pid")
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 10 >/dev/null 2>&1
	for w in $workers; do
		kill -0 "$w" 2>/dev/null && kill -KILL "$w" 2>/dev/null
	done
	nginx_pid=
}

# --- Servers ----------------------------------------------------------------------

# start_server [ARGS...]: start `haven serve` on this test's data folder on
# 127.0.0.1 port 0, wait for the port file and for a first HTTP answer (any
# status). Sets server_pid, port and base. Extra ARGS go to `haven serve`.
# Under HAVEN_TEST_TLS=1 the server speaks HTTPS (see "TLS" above).
start_server() {
	local pf=$tmp/port.$((${#server_pids} + 1)).$RANDOM i=0
	local tls=()
	[ "$scheme" = https ] && tls=(--tls-cert "$tmp/tls/server.pem" --tls-key "$tmp/tls/server.key")
	rm -f "$pf"
	# HAVEN_TEST_BLOB_REDIRECT=1 (with HAVEN_TEST_BLOBS): /resolve of LFS
	# files answers 302 to a presigned URL of the object store.
	[ "${HAVEN_TEST_BLOB_REDIRECT:-0}" = 1 ] && tls+=(--blob-redirect)
	"$HAVEN" serve --data "$DATA" --listen 127.0.0.1:0 --port-file "$pf" ${tls[@]+"${tls[@]}"} "$@" \
		>>"$tmp/server.log" 2>&1 </dev/null &
	server_pid=$!
	server_pids="$server_pids $server_pid"
	port=
	while [ $i -lt 300 ]; do
		if [ -s "$pf" ]; then
			port=$(tr -d ' \r\n' <"$pf")
			case $port in
			'' | *[!0-9]*) port= ;;
			*) break ;;
			esac
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	if [ -z "$port" ]; then
		echo "Bail out! haven serve did not write its port file ($pf)"
		dump_server_log
		exit 1
	fi
	base="$scheme://127.0.0.1:$port"
	i=0
	while ! curl -s -o /dev/null --max-time 2 --noproxy '*' "$base/"; do
		i=$((i + 1))
		if [ $i -ge 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
			echo "Bail out! haven serve on $base does not answer"
			dump_server_log
			exit 1
		fi
		sleep 0.1
	done
}

# wait_exit PID SECONDS: wait for a child to exit and return its exit status;
# 124 when it is still running after SECONDS (then it is killed).
wait_exit() {
	local pid=$1 limit=$(($2 * 10)) i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt $limit ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.1
	done
	wait "$pid"
}

# stop_server [SIGNAL]: signal the current server and report (as a TAP line)
# that it exits 0 within 30 seconds.
stop_server() {
	local sig=${1:-TERM} rc
	[ -n "$server_pid" ] || return 0
	kill -s "$sig" "$server_pid" 2>/dev/null
	wait_exit "$server_pid" 30
	rc=$?
	n=$((n + 1))
	if [ $rc -eq 0 ]; then
		echo "ok $n - server exits 0 on SIG$sig"
	else
		echo "not ok $n - server exits 0 on SIG$sig (status $rc)"
		dump_server_log
		failed=$((failed + 1))
	fi
	server_pids=$(echo "$server_pids" | sed "s/ $server_pid\b//")
	server_pid=
}

dump_server_log() {
	if [ -s "$tmp/server.log" ]; then
		echo "# --- last lines of the server log ---"
		tail -n 40 "$tmp/server.log" | sed -e 's/^/#   /'
	fi
}

# done_testing: stop the server with SIGTERM (it must exit 0: leak checks
# run at exit under ASan), print the plan and exit 1 if anything failed.
done_testing() {
	stop_server TERM
	echo "1..$n"
	if [ "$failed" -ne 0 ]; then
		dump_server_log
		exit 1
	fi
	exit 0
}

# --- HTTP helpers -------------------------------------------------------------------

# hcurl ARGS...: curl, bounded in time, never through a proxy.
hcurl() {
	curl -sS --max-time "${CURL_MAX_TIME:-30}" --noproxy '*' "$@"
}

# fetch NAME CURL-ARGS...: one request; body in $tmp/NAME.body, headers in
# $tmp/NAME.hdr, status code in $tmp/NAME.code. Returns curl's status.
fetch() {
	local name=$1
	shift
	rm -f "$tmp/$name.body" "$tmp/$name.hdr" "$tmp/$name.code"
	hcurl -o "$tmp/$name.body" -D "$tmp/$name.hdr" -w '%{http_code}' "$@" \
		>"$tmp/$name.code"
}

# fetch_head NAME URL [CURL-ARGS...]: a HEAD request.
fetch_head() {
	local name=$1
	shift
	rm -f "$tmp/$name.body" "$tmp/$name.hdr" "$tmp/$name.code"
	: >"$tmp/$name.body"
	hcurl -I -o /dev/null -D "$tmp/$name.hdr" -w '%{http_code}' "$@" \
		>"$tmp/$name.code"
}

status() {
	cat "$tmp/$1.code"
}

body() {
	echo "$tmp/$1.body"
}

# hdr NAME HEADER: the value of a response header (last one, CR stripped;
# empty when absent). Header names compare case-insensitively.
hdr() {
	tr -d '\r' <"$tmp/$1.hdr" |
		awk -v h="$2" 'BEGIN { h = tolower(h) }
			/^HTTP\// { v = ""; found = 0; next }
			{ i = index($0, ":"); if (i == 0) next
			  k = tolower(substr($0, 1, i - 1))
			  if (k == h) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); found = 1 } }
			END { if (found) print v }'
}

# has_hdr NAME HEADER: true when the header is present.
has_hdr() {
	tr -d '\r' <"$tmp/$1.hdr" | grep -qi "^$2:"
}

# show NAME: print a response for a failure message.
show() {
	echo "--- status $(status "$1")"
	tr -d '\r' <"$tmp/$1.hdr"
	head -c 2000 "$tmp/$1.body" 2>/dev/null
	echo
}

# expect_status NAME CODE...: the response's status is one of CODE...
expect_status() {
	local name=$1 got
	shift
	got=$(status "$name")
	for c in "$@"; do
		[ "$got" = "$c" ] && return 0
	done
	echo "expected status $*, got $got"
	show "$name"
	return 1
}

# expect_hdr NAME HEADER VALUE: the header has exactly this value.
expect_hdr() {
	local got
	got=$(hdr "$1" "$2")
	if [ "$got" != "$3" ]; then
		echo "header $2: expected '$3', got '$got'"
		show "$1"
		return 1
	fi
}

# expect_error NAME STATUS CODE: a Hub-style error response: this status,
# X-Error-Code CODE (none when CODE is -), X-Error-Message, X-Request-Id and,
# unless it was a HEAD, a JSON body {"error": "..."}.
expect_error() {
	local name=$1 st=$2 code=$3
	expect_status "$name" "$st" || return 1
	if [ "$code" != - ]; then
		expect_hdr "$name" X-Error-Code "$code" || return 1
	fi
	if [ -z "$(hdr "$name" X-Error-Message)" ] || [ -z "$(hdr "$name" X-Request-Id)" ]; then
		echo "X-Error-Message and X-Request-Id are required on errors"
		show "$name"
		return 1
	fi
	if [ -s "$tmp/$name.body" ]; then
		case $(hdr "$name" Content-Type) in
		application/json*) ;;
		*)
			echo "error body must be application/json"
			show "$name"
			return 1
			;;
		esac
		json_check "$tmp/$name.body" 'isinstance(d, dict) and isinstance(d.get("error"), str) and d["error"]' || return 1
	fi
}

# is_4xx NAME
is_4xx() {
	case $(status "$1") in
	4[0-9][0-9]) return 0 ;;
	esac
	echo "expected a 4xx status, got $(status "$1")"
	show "$1"
	return 1
}

# raw_http [--timeout S] PAYLOAD: send PAYLOAD to the server exactly as
# given and print what comes back (until the server closes or S seconds
# pass, default 5). Escapes in PAYLOAD are decoded by Python's
# unicode_escape (\r, \n, \x00). PAYLOAD "@FILE" sends FILE's bytes.
# Under HAVEN_TEST_TLS=1 the bytes go inside a TLS connection.
cat >"$tmp/raw_http.py" <<'EOF_PY'
import os, socket, ssl, sys, time
port, timeout, payload = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if payload.startswith("@"):
    data = open(payload[1:], "rb").read()
else:
    data = payload.encode("latin-1").decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
if os.environ.get("HAVEN_TEST_TLS") == "1":
    ctx = ssl.create_default_context(cafile=os.environ["HAVEN_TEST_CA"])
    s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
try:
    s.sendall(data)
except OSError:
    pass
out = b""
end = time.time() + timeout
try:
    while time.time() < end:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except OSError:
    pass
sys.stdout.buffer.write(out)
EOF_PY
raw_http() {
	local to=5
	if [ "$1" = --timeout ]; then
		to=$2
		shift 2
	fi
	"$PYTHON" "$tmp/raw_http.py" "$port" "$to" "$1"
}

# raw_status OUTPUT-FILE: the status code of the first response in the file.
raw_status() {
	head -n 1 "$1" | sed -n -E 's/^HTTP\/1\.[01] ([0-9]{3}).*/\1/p' | tr -d '\r'
}

# urlencode STRING [SAFE]: percent-encode like Python's quote().
urlencode() {
	"$PYTHON" -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=sys.argv[2]))' "$1" "${2-/}"
}

# --- JSON helpers ---------------------------------------------------------------------

# json FILE EXPR: print the Python expression EXPR evaluated with d = the
# parsed JSON (strings bare, everything else as JSON).
json() {
	"$PYTHON" - "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
v = eval("(" + sys.argv[2] + "\n)")
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# json_check FILE EXPR: true when EXPR is truthy; prints the JSON if not.
# `re` and `json` are available in EXPR.
json_check() {
	"$PYTHON" - "$@" <<'EOF'
import json, re, sys
raw = open(sys.argv[1], encoding="utf-8").read()
try:
    d = json.loads(raw)
except ValueError as e:
    print("not JSON (%s): %s" % (e, raw[:2000]))
    sys.exit(1)
try:
    ok = eval("(" + sys.argv[2] + "\n)")
except Exception as e:
    ok = False
    print("%s: %r" % (type(e).__name__, e))
if not ok:
    print("check failed: " + sys.argv[2])
    print(json.dumps(d, indent=1, sort_keys=True)[:4000])
    sys.exit(1)
EOF
}

# follow_pages URL OUT: GET URL and every Link rel="next" page after it;
# the concatenated JSON arrays go to OUT, the page count to OUT.pages. Fails
# when a Link URL is not absolute on $base or lacks the space after ';'.
follow_pages() {
	local url=$1 out=$2 pages=0 link
	echo '[]' >"$out"
	while [ -n "$url" ]; do
		pages=$((pages + 1))
		if [ $pages -gt 2000 ]; then
			echo "more than 2000 pages: pagination does not end"
			return 1
		fi
		fetch page "$url" || return 1
		expect_status page 200 || return 1
		"$PYTHON" - "$out" "$tmp/page.body" <<'EOF' || return 1
import json, sys
acc = json.load(open(sys.argv[1]))
page = json.load(open(sys.argv[2]))
if not isinstance(page, list):
    print("page is not a JSON array"); sys.exit(1)
json.dump(acc + page, open(sys.argv[1], "w"))
EOF
		link=$(hdr page Link)
		url=
		if [ -n "$link" ]; then
			url=$(printf '%s\n' "$link" | sed -n -E 's/.*<(https?:\/\/[^>]*)>;[[:space:]]+rel="next".*/\1/p')
			if [ -z "$url" ]; then
				echo "Link header without an absolute rel=\"next\" URL: $link"
				return 1
			fi
			case $url in
			"$base"/*) ;;
			*)
				echo "Link URL $url is not on $base"
				return 1
				;;
			esac
		fi
	done
	echo $pages >"$out.pages"
}

# --- Fixtures -------------------------------------------------------------------------

# is_sha STRING: 40 lowercase hex digits.
is_sha() {
	printf '%s' "$1" | grep -Eqx '[0-9a-f]{40}'
}

sha256_of() {
	sha256sum "$1" | cut -d' ' -f1
}

size_of() {
	wc -c <"$1" | tr -d ' '
}

# flip_byte FILE OFFSET: changes the byte at OFFSET (xor 1), so the file
# keeps its size and is sure to differ; writing a fixed byte would leave it
# unchanged whenever that byte was already there.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || return 1
	chmod u+w "$1" 2>/dev/null
	printf "\\$(printf %03o $((b ^ 1)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# lfs_pointer FILE: the git-lfs pointer text of FILE.
lfs_pointer() {
	printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n' \
		"$(sha256_of "$1")" "$(size_of "$1")"
}

# blob_path HEX: where the blob store keeps the object with this sha256.
# With HAVEN_TEST_BLOBS, a fresh copy of the S3 object (a path that does
# not exist when the object does not), for checks that read the bytes.
blob_path() {
	if [ -n "${HAVEN_TEST_BLOBS:-}" ]; then
		mkdir -p "$tmp/s3-copies"
		rm -f "$tmp/s3-copies/$1"
		"$S3_TOOL" get "$S3_BUCKET" "${S3_PREFIX}sha256/$1" \
			>"$tmp/s3-copies/$1.part" 2>/dev/null &&
			mv "$tmp/s3-copies/$1.part" "$tmp/s3-copies/$1"
		rm -f "$tmp/s3-copies/$1.part"
		echo "$tmp/s3-copies/$1"
		return 0
	fi
	echo "$DATA/blobs/sha256/$(echo "$1" | cut -c1-2)/$(echo "$1" | cut -c3-4)/$1"
}

# count_blobs: number of objects in the blob store.
count_blobs() {
	if [ -n "${HAVEN_TEST_BLOBS:-}" ]; then
		"$S3_TOOL" ls "$S3_BUCKET" "${S3_PREFIX}sha256/" | wc -l | tr -d ' '
	elif [ -d "$DATA/blobs" ]; then
		find "$DATA/blobs" -type f | wc -l | tr -d ' '
	else
		echo 0
	fi
}

# git_dir_for COMMIT: the bare repository under $DATA/git holding COMMIT.
git_dir_for() {
	local g
	for g in "$DATA"/git/*.git; do
		[ -d "$g" ] || continue
		if git --git-dir="$g" cat-file -e "$1^{commit}" 2>/dev/null; then
			echo "$g"
			return 0
		fi
	done
	echo "no repository under $DATA/git holds commit $1" >&2
	return 1
}

# make_model DIR [--small]: generate the fixture model (see
# tests/fixtures/make-model.sh).
make_model() {
	sh "$FIXTURES/make-model.sh" "$@" >/dev/null || {
		echo "Bail out! tests/fixtures/make-model.sh failed"
		exit 1
	}
}

# fixture_files DIR: every file under DIR, relative paths, sorted, one a line.
fixture_files() {
	(cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
}

# setup_model_repo [--small]: the model most tests read. Sets REPO,
# MODEL (the source folder of main), DEV (the source folder of branch dev),
# main_sha (main, also tag v1.0), dev_sha (branch dev) and feature_sha
# (branch feature/x, created from main).
#   main: the fixture, imported with -m "Add tiny model"
#   v1.0: tag on main
#   dev:  main plus a changed config.json and a new DEV.md
#   feature/x: a branch whose name needs percent-encoding
setup_model_repo() {
	REPO=haven-test/Tiny-Model
	MODEL=$tmp/model
	DEV=$tmp/model-dev
	make_model "$MODEL" "$@"
	main_sha=$(hv import "$MODEL" --repo "$REPO" -m "Add tiny model" 2>"$tmp/import.err")
	if ! is_sha "$main_sha"; then
		echo "Bail out! haven import did not print a commit sha (got '$main_sha')"
		sed -e 's/^/#   /' "$tmp/import.err"
		exit 1
	fi
	hv repo tag "$REPO" v1.0 --from main >/dev/null 2>"$tmp/tag.err" || {
		echo "Bail out! haven repo tag failed"
		sed -e 's/^/#   /' "$tmp/tag.err"
		exit 1
	}
	hv repo branch "$REPO" feature/x --from main >/dev/null 2>"$tmp/branch.err" || {
		echo "Bail out! haven repo branch failed"
		sed -e 's/^/#   /' "$tmp/branch.err"
		exit 1
	}
	feature_sha=$main_sha
	cp -R "$MODEL" "$DEV"
	printf '{"architectures": ["HavenTestModel"], "model_type": "haven-test", "hidden_size": 2048, "branch": "dev"}\n' >"$DEV/config.json"
	printf '# Notes for the dev branch\n' >"$DEV/DEV.md"
	dev_sha=$(hv import "$DEV" --repo "$REPO" --revision dev -m "Dev changes" 2>"$tmp/import.err")
	if ! is_sha "$dev_sha"; then
		echo "Bail out! haven import --revision dev did not print a commit sha (got '$dev_sha')"
		sed -e 's/^/#   /' "$tmp/import.err"
		exit 1
	fi
	export REPO MODEL DEV main_sha dev_sha feature_sha
}
