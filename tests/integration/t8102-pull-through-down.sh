#!/bin/bash
# Pull-through when the upstream goes away: a transfer cut in the middle
# fails its clients (their connection closes short) and caches nothing;
# with the upstream dead, what is cached keeps being served, and misses
# get 502 or 504 with the Hub's error headers.
. "$(dirname "$0")/lib.sh"

setup_model_repo
mkdir -p "$tmp/big"
head -c $((24 << 20)) /dev/urandom >"$tmp/big/weights.bin"
hv import "$tmp/big" --repo haven-test/big -m big >/dev/null 2>&1 || {
	echo "Bail out! cannot import the big repository"
	exit 1
}
start_server
up=$base
up_pid=$server_pid
"$PYTHON" "$top_srcdir/tests/integration/relay.py" "$tmp/relay.port" "$port" \
	4000000 $((24 << 20)) "$tmp/relay.done" >"$tmp/relay.log" 2>&1 &
relay_pid=$!
server_pids="$server_pids $relay_pid"
for _ in $(seq 100); do [ -s "$tmp/relay.port" ] && break; sleep 0.1; done
uphost=127.0.0.1
ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && ca=(--upstream-ca-bundle "$HAVEN_TEST_CA")
DATA=$tmp/pt start_server --upstream "$scheme://$uphost:$(cat "$tmp/relay.port")" \
	${ca[@]+"${ca[@]}"}
pt=$base
big=$(sha256_of "$tmp/big/weights.bin")

expect_success 'files are pulled through while the upstream is up' '
	hcurl -o m.bin "$pt/$REPO/resolve/main/model.safetensors" &&
	cmp m.bin "$MODEL/model.safetensors" &&
	hcurl -o c.json "$pt/$REPO/resolve/main/config.json" &&
	cmp c.json "$MODEL/config.json" &&
	hcurl -o /dev/null "$pt/api/models/haven-test/big"
'
expect_success 'a transfer cut in the middle closes its clients short and keeps nothing' '
	{ curl -sS --noproxy "*" --max-time 60 -o cut.bin \
		"$pt/haven-test/big/resolve/main/weights.bin" 2>cut.err; echo $? >cut.rc; } &
	sleep 1.5 && kill "$relay_pid" && wait &&
	test "$(cat cut.rc)" != 0 &&
	test "$(size_of cut.bin)" -lt $((24 << 20)) &&
	test ! -e "$tmp/pt/blobs/sha256/${big:0:2}/${big:2:2}/$big" &&
	test -z "$(ls "$tmp/pt/tmp" | grep pull-)"
'
kill -KILL "$up_pid" 2>/dev/null
wait "$up_pid" 2>/dev/null

expect_success 'with the upstream dead, cached files are still served' '
	hcurl -o m2.bin "$pt/$REPO/resolve/main/model.safetensors" &&
	cmp m2.bin "$MODEL/model.safetensors" &&
	fetch i "$pt/api/models/$REPO" && test "$(status i)" = 200 &&
	fetch t "$pt/api/models/$REPO/tree/main" && test "$(status t)" = 200
'
expect_success 'a file not cached gets 502 or 504 with X-Error-Message' '
	fetch f "$pt/$REPO/resolve/main/extra/large.dat" &&
	case $(status f) in 502|504) ;; *) false ;; esac &&
	test -n "$(hdr f X-Error-Message)" && test -n "$(hdr f X-Request-Id)"
'
expect_success 'an unknown repository gets 502 or 504 with X-Error-Message' '
	fetch r "$pt/api/models/haven-test/elsewhere" &&
	case $(status r) in 502|504) ;; *) false ;; esac &&
	test -n "$(hdr r X-Error-Message)"
'
expect_success 'the cut transfer left nothing behind: fsck is clean' '
	"$HAVEN" fsck --data "$tmp/pt" >fsck.out 2>&1 && grep -q " 0 problems" fsck.out
'
done_testing
