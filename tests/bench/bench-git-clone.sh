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

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh" || exit 2

runs=5
commits=2000
files=5000
parse_options "--runs runs --commits commits --files files" "$@"
check_range --runs "$runs" 1 21
check_range --commits "$commits" 1 100000
check_range --files "$files" 5 200000

REPO=bench/git-clone
BAR=1.2
BUDGET_S=${HAVEN_BENCH_BUDGET:-500}

# No configuration from this machine or user.
export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0

# --- Tools -------------------------------------------------------------------

find_haven
"$HAVEN" token --help >/dev/null 2>&1 || die "this haven has no token command (needed to push)"
find_nginx
FCGIWRAP=${FCGIWRAP:-$(command -v fcgiwrap || echo /usr/sbin/fcgiwrap)}
[ -x "$FCGIWRAP" ] || die "fcgiwrap not found (apt-get install fcgiwrap, or set FCGIWRAP)"
need_tools git
GIT_HTTP_BACKEND=${GIT_HTTP_BACKEND:-$(git --exec-path)/git-http-backend}
[ -x "$GIT_HTTP_BACKEND" ] || die "git http-backend not found at $GIT_HTTP_BACKEND"
need_tools curl python3 timeout

# --- Scratch folder, watchdog and cleanup -------------------------------------

make_scratch haven-bench-git
export HOME=$scratch/home
mkdir -p "$HOME"
start_watchdog

# --- The repository ------------------------------------------------------------------

begin_run
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
haven_setup "$DATA" bench "$REPO"
start_haven "$DATA"
hurl=$hbase/$REPO

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

note "starting fcgiwrap -c $nproc"
"$FCGIWRAP" -c "$nproc" -s "unix:$scratch/fcgiwrap.sock" >"$scratch/fcgiwrap.log" 2>&1 </dev/null &
fcgi_pid=$!
echo "$fcgi_pid" >"$scratch/fcgiwrap.pid"
await "$fcgi_pid" 50 test -S "$scratch/fcgiwrap.sock"
[ -S "$scratch/fcgiwrap.sock" ] || { cat "$scratch/fcgiwrap.log" >&2; die "fcgiwrap did not start"; }

# git_conf PORT: git http-backend through fcgiwrap, for every repository
# under $DATA/git.
git_conf() {
	nginx_conf "git http-backend through fcgiwrap" 1024 <<EOF
    client_max_body_size 0;
    server {
        listen 127.0.0.1:$1;
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
EOF
}

note "starting nginx, worker_processes $nproc"
start_nginx git_conf "$repo_dir/info/refs?service=git-upload-pack" ||
	die "nginx + fcgiwrap do not answer"
nurl=$nbase/$repo_dir

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

# clone_row NAME KIND BAR: the medians for KIND; a bar is "<= N" or "-".
clone_row() {
	local h=${times[$2.haven]} n=${times[$2.nginx]} r res=-
	r=$(ratio "$h" "$n")
	[ "$3" = - ] || res=$(judge "$r" le "${3#<= }")
	row "$1" "$h" "$n" "$r" "$3" "$res"
}

clone_row "git clone (full, with checkout), ms" full "<= $BAR"
clone_row "git clone --bare (transfer only), ms" bare -
clone_row "git clone --depth 1, ms" shallow -

# --- Report -------------------------------------------------------------------------------

run_facts
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
git_v=$(git --version | awk '{ print $3 }')
fcgi_v=$(dpkg-query -W -f '${Version}' fcgiwrap 2>/dev/null || echo unknown)
push_s=$(awk -v a="$t_push0" -v b="$t_push1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
verdict="bar met"
[ "$failed" = 1 ] && verdict="bar NOT met"

report() {
	echo "### git clone, $when"
	echo
	echo "- Machine: $(machine)."
	echo "  Clients and servers share these $nproc CPUs. Load average before the run: $load_start."
	echo "- Repository: $commits commits, $files files (git fast-import), $pack_mb MiB of objects"
	echo "  after the push to Haven (the push took $push_s s); both servers serve that same bare repository."
	echo "- Haven $rev: \`$(serve_cmd)\`, git http-backend per request."
	echo "- $nginx_v, worker_processes $nproc, fastcgi_buffering off; fcgiwrap $fcgi_v (-c $nproc); git $git_v (client and backend)."
	echo "- Median of $runs clones per line, alternating Haven and nginx, after one warm-up each; run took ${elapsed} s."
	echo "  Every run, ms: full haven${times[full.all_h]} / nginx${times[full.all_n]};" \
		"bare haven${times[bare.all_h]} / nginx${times[bare.all_n]};" \
		"depth 1 haven${times[shallow.all_h]} / nginx${times[shallow.all_n]}."
	echo "- Verdict: $verdict."
	echo
	table "nginx + fcgiwrap" Haven/nginx
}

publish
