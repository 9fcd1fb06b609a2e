#!/bin/bash
# bench-git-clone.sh: `git clone` from Haven side by side with stock
# `git http-backend` behind nginx and fcgiwrap, on loopback, in one run.
#
# usage: tests/bench/bench-git-clone.sh [--record] [--keep] [--runs N]
#                                       [--commits N] [--files N]
#
#   --record      append the results table to tests/bench/RESULTS.md
#   --keep        keep the scratch folder (servers are still stopped)
#   --runs N      timed clones per server and kind (default 5; the median
#                 counts)
#   --commits N   commits in the generated repository (default 2000)
#   --files N     files in it (default 5000)
#
# One run generates a repository with git fast-import (the first commit
# adds every file, in 50 folders; each later commit changes 5 of them),
# pushes it to a fresh Haven data folder with `git push` (a token made
# with `haven token create`), and serves that very bare repository twice:
# from `haven serve`, and from nginx + fcgiwrap running git http-backend,
# so both read the same pack files from the same page cache. After a
# warm-up clone from each (also checked to give the same commit), it times
# alternately, Haven first:
#
#   1. git clone (full, with checkout)   bar: Haven <= 1.2 x nginx
#   2. git clone --bare (transfer only)  reported
#   3. git clone --depth 1               reported
#
# It needs haven (built, with the token command), git, nginx, fcgiwrap,
# curl and python3 (Debian: apt-get install git nginx-light fcgiwrap curl
# python3). Only 127.0.0.1 is contacted. A watchdog stops the run after
# HAVEN_BENCH_BUDGET seconds (default 500; a normal run takes about one to
# two minutes) and everything it started is stopped and removed on exit.
# Exit status: 0 when the bar is met, 1 when it is not, 2 when the
# benchmark could not run.
#
# Environment: HAVEN (the binary; default build/haven or ./haven at the
# top of the source tree), HAVEN_SERVE_ARGS (extra `haven serve` options),
# NGINX, FCGIWRAP, GIT_HTTP_BACKEND (tool paths), TMPDIR.

set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

record=0
keep=0
runs=5
commits=2000
files=5000
while [ $# -gt 0 ]; do
	case $1 in
	--record) record=1 ;;
	--keep) keep=1 ;;
	--runs) runs=${2:?--runs needs a value}; shift ;;
	--commits) commits=${2:?--commits needs a value}; shift ;;
	--files) files=${2:?--files needs a value}; shift ;;
	-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "bench-git-clone.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
for v in "$runs" "$commits" "$files"; do
	case $v in ''|*[!0-9]*) echo "bench-git-clone.sh: bad number '$v'" >&2; exit 2 ;; esac
done
[ "$runs" -ge 1 ] && [ "$runs" -le 21 ] || { echo "bench-git-clone.sh: --runs must be 1..21" >&2; exit 2; }
[ "$commits" -ge 1 ] && [ "$commits" -le 100000 ] || { echo "bench-git-clone.sh: --commits must be 1..100000" >&2; exit 2; }
[ "$files" -ge 5 ] && [ "$files" -le 200000 ] || { echo "bench-git-clone.sh: --files must be 5..200000" >&2; exit 2; }

REPO=bench/git-clone
BAR=1.2
BUDGET_S=${HAVEN_BENCH_BUDGET:-500}

# Loopback only, and no configuration from this machine or user.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*' LC_ALL=C GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0

die() {
	echo "bench-git-clone.sh: $*" >&2
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
"$HAVEN" token --help >/dev/null 2>&1 || die "this haven has no token command (needed to push)"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || die "nginx not found (apt-get install nginx-light, or set NGINX)"
FCGIWRAP=${FCGIWRAP:-$(command -v fcgiwrap || echo /usr/sbin/fcgiwrap)}
[ -x "$FCGIWRAP" ] || die "fcgiwrap not found (apt-get install fcgiwrap, or set FCGIWRAP)"
command -v git >/dev/null || die "git not found"
GIT_HTTP_BACKEND=${GIT_HTTP_BACKEND:-$(git --exec-path)/git-http-backend}
[ -x "$GIT_HTTP_BACKEND" ] || die "git http-backend not found at $GIT_HTTP_BACKEND"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"
command -v timeout >/dev/null || die "timeout (coreutils) not found"

nproc=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)

# --- Scratch folder, watchdog and cleanup -------------------------------------

scratch=$(mktemp -d "${TMPDIR:-/tmp}/haven-bench-git.XXXXXX") || die "cannot create a scratch folder"
export HOME=$scratch/home
mkdir -p "$HOME"
haven_pid=
nginx_pid=
fcgi_pid=
watchdog_pid=

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

children() {
	cat /proc/"$1"/task/*/children 2>/dev/null
}

cleanup() {
	local p workers=""
	trap - EXIT TERM INT HUP
	[ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null
	[ -n "$nginx_pid" ] && workers=$(children "$nginx_pid")
	stop_pid "$haven_pid"
	stop_pid "$nginx_pid"
	stop_pid "$fcgi_pid"
	for p in $workers; do
		kill -KILL "$p" 2>/dev/null
	done
	if [ "$keep" = 1 ]; then
		note "scratch folder kept: $scratch"
	else
		chmod -R u+rwx "$scratch" 2>/dev/null
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT
trap 'echo "bench-git-clone.sh: interrupted" >&2; exit 2' INT HUP
trap 'echo "bench-git-clone.sh: stopped after ${BUDGET_S}s (watchdog)" >&2; exit 2' TERM

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

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# --- The repository ------------------------------------------------------------------

t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
note "scratch folder: $scratch"
note "generating $commits commits over $files files with git fast-import"
git init -q --bare "$scratch/src.git" || die "git init failed"
python3 - "$commits" "$files" <<'EOF' | timeout 300 git -C "$scratch/src.git" fast-import --quiet ||
import hashlib, sys

commits, files = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
dirs = 50


def path(i):
    return "src/d%02d/file%05d.txt" % (i % dirs, i)


def content(i, rev):
    # ~1 KiB of text that differs per file; a revision changes a few lines,
    # so later versions delta well, as source edits do.
    h = hashlib.sha256(b"%d" % i).hexdigest()
    lines = ["file %d line %d %s" % (i, j, h[j % 48:j % 48 + 16]) for j in range(24)]
    lines[rev % 24] = "file %d line %d changed in revision %d" % (i, rev % 24, rev)
    lines.append("revision %d" % rev)
    return ("\n".join(lines) + "\n").encode()


def data(b):
    out.write(b"data %d\n" % len(b))
    out.write(b)
    out.write(b"\n")


t0 = 1700000000
for c in range(commits):
    out.write(b"commit refs/heads/main\nmark :%d\n" % (c + 1))
    out.write(b"committer Bench <bench@example.com> %d +0000\n" % (t0 + c * 60))
    data(b"Commit %d\n" % c)
    if c:
        out.write(b"from :%d\n" % c)
        changed = sorted({(c * 7919 + k * 104729) % files for k in range(5)})
    else:
        changed = range(files)
    for i in changed:
        out.write(b"M 100644 inline %s\n" % path(i).encode())
        data(content(i, c))
    out.write(b"\n")
EOF
	die "generating the repository failed"
git -C "$scratch/src.git" symbolic-ref HEAD refs/heads/main
head_sha=$(git -C "$scratch/src.git" rev-parse main) || die "no main branch"
n_commits=$(git -C "$scratch/src.git" rev-list --count main)
n_files=$(git -C "$scratch/src.git" ls-tree -r main | wc -l)
[ "$n_commits" = "$commits" ] && [ "$n_files" = "$files" ] ||
	die "generated $n_commits commits and $n_files files"

# --- Haven ---------------------------------------------------------------------------

DATA=$scratch/data
"$HAVEN" user create bench --data "$DATA" >/dev/null 2>&1 || die "haven user create failed"
token=$("$HAVEN" token create --user bench --role write --data "$DATA" 2>/dev/null)
case $token in hf_*) ;; *) die "haven token create failed" ;; esac
"$HAVEN" repo create "$REPO" --data "$DATA" >/dev/null 2>&1 || die "haven repo create failed"

note "starting haven serve --threads $nproc"
# shellcheck disable=SC2086
"$HAVEN" serve --data "$DATA" --listen 127.0.0.1:0 --port-file "$scratch/haven.port" \
	--threads "$nproc" ${HAVEN_SERVE_ARGS:-} >"$scratch/haven.log" 2>&1 </dev/null &
haven_pid=$!
echo "$haven_pid" >"$scratch/haven.pid"
for _ in $(seq 100); do
	[ -s "$scratch/haven.port" ] && break
	kill -0 "$haven_pid" 2>/dev/null || break
	sleep 0.1
done
[ -s "$scratch/haven.port" ] || { cat "$scratch/haven.log" >&2; die "haven serve did not start"; }
hurl=http://127.0.0.1:$(cat "$scratch/haven.port")/$REPO

note "pushing it to Haven"
t_push0=$(date +%s%N)
timeout 300 git -C "$scratch/src.git" push -q --force \
	"$(printf '%s\n' "$hurl" | sed "s#://#://bench:$token@#")" main:main 2>"$scratch/push.err" ||
	{ cat "$scratch/push.err" >&2; die "git push to Haven failed"; }
t_push1=$(date +%s%N)
gitdir=$(ls -d "$DATA"/git/*.git)
[ "$(git --git-dir="$gitdir" rev-parse main)" = "$head_sha" ] || die "Haven's main is not the pushed commit"
repo_dir=$(basename "$gitdir")
pack_mb=$(du -sk "$gitdir/objects" | awk '{ printf "%.1f", $1 / 1024 }')

# --- nginx + fcgiwrap + git http-backend on the same bare repository ---------------------

mkdir -p "$scratch/nginx/tmp"
note "starting fcgiwrap -c $nproc"
"$FCGIWRAP" -c "$nproc" -s "unix:$scratch/fcgiwrap.sock" >"$scratch/fcgiwrap.log" 2>&1 </dev/null &
fcgi_pid=$!
echo "$fcgi_pid" >"$scratch/fcgiwrap.pid"
for _ in $(seq 50); do
	[ -S "$scratch/fcgiwrap.sock" ] && break
	sleep 0.1
done
[ -S "$scratch/fcgiwrap.sock" ] || { cat "$scratch/fcgiwrap.log" >&2; die "fcgiwrap did not start"; }

nginx_user=
[ "$(id -u)" = 0 ] && nginx_user='user root root;'
nginx_e=
"$NGINX" -h 2>&1 | grep -q -- '-e filename' && nginx_e="-e $scratch/nginx/error.log"
nport=$(free_port)
nt=$scratch/nginx/tmp
cat >"$scratch/nginx/nginx.conf" <<EOF
# Generated by bench-git-clone.sh: git http-backend through fcgiwrap.
daemon off;
master_process on;
$nginx_user
worker_processes $nproc;
pid $scratch/nginx/nginx.pid;
error_log $scratch/nginx/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_max_body_size 0;
    client_body_temp_path $nt/body;
    proxy_temp_path $nt/proxy;
    fastcgi_temp_path $nt/fastcgi;
    uwsgi_temp_path $nt/uwsgi;
    scgi_temp_path $nt/scgi;
    server {
        listen 127.0.0.1:$nport;
        location / {
            fastcgi_pass unix:$scratch/fcgiwrap.sock;
            fastcgi_buffering off;
            fastcgi_request_buffering off;
            fastcgi_param SCRIPT_FILENAME $GIT_HTTP_BACKEND;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_PROTOCOL \$server_protocol;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param PATH_INFO \$uri;
            fastcgi_param REMOTE_ADDR \$remote_addr;
            fastcgi_param HTTP_CONTENT_ENCODING \$http_content_encoding;
            fastcgi_param HTTP_GIT_PROTOCOL \$http_git_protocol;
            fastcgi_param GIT_PROTOCOL \$http_git_protocol;
            fastcgi_param GIT_PROJECT_ROOT $DATA/git;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param HOME $HOME;
        }
    }
}
EOF
note "starting nginx, worker_processes $nproc"
# shellcheck disable=SC2086
"$NGINX" -p "$scratch/nginx/" $nginx_e -c "$scratch/nginx/nginx.conf" \
	>"$scratch/nginx/stdout.log" 2>&1 </dev/null &
nginx_pid=$!
echo "$nginx_pid" >"$scratch/nginx.pid"
nurl=http://127.0.0.1:$nport/$repo_dir
ok=0
for _ in $(seq 50); do
	kill -0 "$nginx_pid" 2>/dev/null || break
	if curl -sf --max-time 2 -o /dev/null "$nurl/info/refs?service=git-upload-pack"; then
		ok=1
		break
	fi
	sleep 0.1
done
[ "$ok" = 1 ] || { cat "$scratch/nginx/error.log" "$scratch/nginx/stdout.log" >&2 2>/dev/null; die "nginx + fcgiwrap do not answer"; }

# --- Measurements ------------------------------------------------------------------------

# clone_once KIND URL DIR: one clone; prints its wall time in ms.
clone_once() {
	local kind=$1 url=$2 dir=$3 t0 t1 args=()
	rm -rf "$dir"
	# The previous clone's writeback must not land in this one's time.
	sync
	case $kind in
	full) ;;
	bare) args=(--bare) ;;
	shallow) args=(--depth 1) ;;
	esac
	t0=$(date +%s%N)
	timeout 120 git -c credential.helper= clone -q "${args[@]}" "$url" "$dir" \
		>"$scratch/clone.err" 2>&1 || { cat "$scratch/clone.err" >&2; return 1; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

note "warm-up clones, checked to be the same"
clone_once full "$hurl" "$scratch/c-haven" >/dev/null || die "clone from Haven failed"
clone_once full "$nurl" "$scratch/c-nginx" >/dev/null || die "clone from nginx failed"
[ "$(git -C "$scratch/c-haven" rev-parse HEAD)" = "$head_sha" ] &&
	[ "$(git -C "$scratch/c-nginx" rev-parse HEAD)" = "$head_sha" ] ||
	die "the clones are not at the pushed commit"
git -C "$scratch/c-haven" fsck --no-progress >/dev/null 2>&1 || die "the clone from Haven fails git fsck"
[ "$(git -C "$scratch/c-haven" ls-files | wc -l)" = "$files" ] || die "the clone from Haven lacks files"

declare -A times
for kind in full bare shallow; do
	note "timing $runs x git clone ($kind) from each, alternating"
	h=
	n=
	for _ in $(seq "$runs"); do
		t=$(clone_once "$kind" "$hurl" "$scratch/c-haven") || die "clone ($kind) from Haven failed"
		h="$h $t"
		t=$(clone_once "$kind" "$nurl" "$scratch/c-nginx") || die "clone ($kind) from nginx failed"
		n="$n $t"
	done
	times[$kind.haven]=$(echo "$h" | median)
	times[$kind.nginx]=$(echo "$n" | median)
	times[$kind.all_h]=$h
	times[$kind.all_n]=$n
	note "  haven ms:$h | nginx ms:$n"
done
rm -rf "$scratch/c-haven" "$scratch/c-nginx"

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

rows=()
failed=0
r_full=$(ratio "${times[full.haven]}" "${times[full.nginx]}")
res=FAIL
awk -v r="$r_full" -v bar="$BAR" 'BEGIN { exit !(r <= bar) }' && res=PASS
[ "$res" = PASS ] || failed=1
rows+=("| git clone (full, with checkout), ms | ${times[full.haven]} | ${times[full.nginx]} | $r_full | <= $BAR | $res |")
rows+=("| git clone --bare (transfer only), ms | ${times[bare.haven]} | ${times[bare.nginx]} | $(ratio "${times[bare.haven]}" "${times[bare.nginx]}") | - | - |")
rows+=("| git clone --depth 1, ms | ${times[shallow.haven]} | ${times[shallow.nginx]} | $(ratio "${times[shallow.haven]}" "${times[shallow.nginx]}") | - | - |")

# --- Report -------------------------------------------------------------------------------

elapsed=$(($(date +%s) - t_start))
when=$(date -u '+%Y-%m-%d %H:%M UTC')
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu" ] || cpu=$(uname -m)
mem=$(awk '$1 == "MemTotal:" { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
git_v=$(git --version | awk '{ print $3 }')
fcgi_v=$(dpkg-query -W -f '${Version}' fcgiwrap 2>/dev/null || echo unknown)
push_s=$(awk -v a="$t_push0" -v b="$t_push1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
verdict="bar met"
[ "$failed" = 1 ] && verdict="bar NOT met"

report() {
	echo "### git clone, $when"
	echo
	echo "- Machine: $nproc CPUs ($cpu), Linux $(uname -r) $(uname -m), $mem RAM."
	echo "  Clients and servers share these $nproc CPUs. Load average before the run: $load_start."
	echo "- Repository: $commits commits, $files files (git fast-import), $pack_mb MiB of objects"
	echo "  after the push to Haven (the push took $push_s s); both servers serve that same bare repository."
	echo "- Haven $rev: \`haven serve --threads $nproc${HAVEN_SERVE_ARGS:+ $HAVEN_SERVE_ARGS}\`, git http-backend per request."
	echo "- $nginx_v, worker_processes $nproc, fastcgi_buffering off; fcgiwrap $fcgi_v (-c $nproc); git $git_v (client and backend)."
	echo "- Median of $runs clones per line, alternating Haven and nginx, after one warm-up each; run took ${elapsed} s."
	echo "  Every run, ms: full haven${times[full.all_h]} / nginx${times[full.all_n]};" \
		"bare haven${times[bare.all_h]} / nginx${times[bare.all_n]};" \
		"depth 1 haven${times[shallow.all_h]} / nginx${times[shallow.all_n]}."
	echo "- Verdict: $verdict."
	echo
	echo "| Measurement | Haven | nginx + fcgiwrap | Haven/nginx | Bar | Result |"
	echo "|---|---:|---:|---:|---|---|"
	printf '%s\n' "${rows[@]}"
}

echo
report
if [ "$record" = 1 ]; then
	results=$here/RESULTS.md
	{ echo; report; } >>"$results"
	note "appended to $results"
fi
exit "$failed"
