#!/bin/bash
# `haven serve --upstream URL` with a second Haven on loopback as the
# upstream, reached through a throttling TCP relay (relay.py) so that a
# transfer takes long enough to watch: repositories and revisions come on
# demand with the upstream's commit ids; 8 concurrent clients on one cold
# 200 MB file share one upstream transfer, all get the right bytes, and
# the first byte reaches them before the upstream has even finished
# sending the file; ranges are answered while the file fills; a new
# upstream commit is fetched when asked for.
. "$(dirname "$0")/lib.sh"

BIG=$((200 << 20))
RATE=40000000	# bytes per second through the relay: about 5 s for BIG

setup_model_repo
mkdir -p "$tmp/big"
head -c "$BIG" /dev/urandom >"$tmp/big/weights.bin"
head -c $((48 << 20)) /dev/urandom >"$tmp/big/part.bin"
head -c $((48 << 20)) /dev/urandom >"$tmp/big/late.bin"
hv import "$tmp/big" --repo haven-test/big -m "Big weights" >/dev/null 2>&1 || {
	echo "Bail out! cannot import the big repository"
	exit 1
}
start_server
up=$base
up_pid=$server_pid
UP_DATA=$DATA

"$PYTHON" "$top_srcdir/tests/integration/relay.py" "$tmp/relay.port" "$port" \
	"$RATE" "$BIG" "$tmp/relay.done" >"$tmp/relay.log" 2>&1 &
relay_pid=$!
server_pids="$server_pids $relay_pid"
for _ in $(seq 100); do [ -s "$tmp/relay.port" ] && break; sleep 0.1; done
rport=$(cat "$tmp/relay.port")
uphost=127.0.0.1
ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && ca=(--upstream-ca-bundle "$HAVEN_TEST_CA")
DATA=$tmp/pt start_server --upstream "$scheme://$uphost:$rport" \
	--upstream-refresh 1 ${ca[@]+"${ca[@]}"}
pt=$base

# less_than "A + B" C: true when A + B < C (decimal seconds).
less_than() {
	awk -v a="${1%% + *}" -v b="${1##* + }" -v c="$2" 'BEGIN { exit !(a + b < c) }'
}

# metric BASE NAME: a sample's value from BASE/metrics.
metric() {
	hcurl "$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
up_resolves() {
	metric "$up" 'haven_http_requests_total{family="resolve",code="2xx"}'
}

expect_success 'an unknown repository comes from the upstream with its commit ids' '
	hcurl -o rev.json "$pt/api/models/$REPO/revision/main" &&
	json_check rev.json "d[\"sha\"] == \"$main_sha\"" &&
	hcurl -o up.refs "$up/api/models/$REPO/refs" &&
	hcurl -o pt.refs "$pt/api/models/$REPO/refs" &&
	cmp up.refs pt.refs
'
expect_success 'branches, tags and commit ids resolve as upstream' '
	for rev in dev v1.0 "$dev_sha"; do
		hcurl -D h -o got "$pt/$REPO/resolve/$rev/config.json" &&
		grep -qi "^x-repo-commit: " h || return 1
	done &&
	cmp got "$DEV/config.json" &&
	grep -qi "^x-repo-commit: $dev_sha" h
'
expect_success 'git clone from the pull-through cache gives the upstream history' '
	git clone -q "$pt/$REPO" clone 2>err &&
	test "$(git -C clone rev-parse HEAD)" = "$main_sha" &&
	test "$(git -C clone rev-parse origin/dev)" = "$dev_sha"
'
expect_success 'HEAD of a cold LFS file answers from its pointer, with no transfer' '
	before=$(metric "$pt" haven_upstream_transfers_total) &&
	hcurl -I -o /dev/null -D h "$pt/$REPO/resolve/main/extra/large.dat" &&
	grep -qi "^content-length: $(size_of "$MODEL/extra/large.dat")" h &&
	grep -qi "^x-linked-size: $(size_of "$MODEL/extra/large.dat")" h &&
	grep -qi "^etag: \"$(sha256_of "$MODEL/extra/large.dat")\"" h &&
	test "$(metric "$pt" haven_upstream_transfers_total)" = "$before"
'

want=$(sha256_of "$tmp/big/weights.bin")
up_before=$(up_resolves)
pt_before=$(metric "$pt" haven_upstream_transfers_total)
t0=$(date +%s.%N)
clients=
for i in 1 2 3 4 5 6 7 8; do
	(
		s=$(date +%s.%N)
		curl -sS --max-time 120 --noproxy '*' -o "$tmp/c$i.bin" \
			-w '%{http_code} %{time_starttransfer} %{time_total}\n' \
			"$pt/haven-test/big/resolve/main/weights.bin" >"$tmp/c$i.w" 2>"$tmp/c$i.err"
		echo "$s" >"$tmp/c$i.start"
	) &
	clients="$clients $!"
done
wait $clients
done_at=$(cat "$tmp/relay.done" 2>/dev/null)
first=$(for i in 1 2 3 4 5 6 7 8; do
	echo "$(cat "$tmp/c$i.start") $(cut -d" " -f2 "$tmp/c$i.w")"; done |
	awk '{ t = $1 + $2; if (m == "" || t < m) m = t } END { printf "%.3f", m }')
last=$(for i in 1 2 3 4 5 6 7 8; do
	echo "$(cat "$tmp/c$i.start") $(cut -d" " -f3 "$tmp/c$i.w")"; done |
	awk '{ t = $1 + $2; if (t > m) m = t } END { printf "%.3f", m }')
say "$(echo "$first $done_at $last $t0" | awk '{ printf "8 clients: first byte at %.2f s, upstream done at %.2f s, last client done at %.2f s", $1 - $4, $2 - $4, $3 - $4 }')"

expect_success '8 concurrent clients on a cold 200 MB file all get the right bytes' '
	for i in 1 2 3 4 5 6 7 8; do
		test "$(cut -d" " -f1 c$i.w)" = 200 &&
		test "$(sha256_of c$i.bin)" = "$want" || return 1
	done
'
expect_success 'the upstream sees one transfer of it' '
	test "$(metric "$pt" haven_upstream_transfers_total)" = $((pt_before + 1)) &&
	test "$(up_resolves)" = $((up_before + 1)) &&
	test "$(cat relay.done.bytes)" -lt $((BIG + BIG / 2))
'
expect_success 'the first byte reaches a client before the upstream finished sending' '
	test -n "$done_at" &&
	less_than "$first + 1.0" "$done_at"
'
expect_success 'the file is kept: the next download is served from the store' '
	hcurl -o again.bin "$pt/haven-test/big/resolve/main/weights.bin" &&
	test "$(sha256_of again.bin)" = "$want" &&
	test "$(up_resolves)" = $((up_before + 1)) &&
	test -f "$tmp/pt/blobs/sha256/${want:0:2}/${want:2:2}/$want"
'
expect_success 'a range of a file still filling is answered before the file is whole' '
	part=$(sha256_of "$tmp/big/part.bin") &&
	off=$((3 << 20)) &&
	{ curl -sS --noproxy "*" -o whole.bin -w "%{time_total}" \
		"$pt/haven-test/big/resolve/main/part.bin" >whole.t & } &&
	sleep 0.3 &&
	hcurl -r "$off-$((off + 99))" -o range.bin -w "%{http_code} %{time_total}" \
		"$pt/haven-test/big/resolve/main/part.bin" >range.w &&
	wait &&
	test "$(cut -d" " -f1 range.w)" = 206 &&
	tail -c +$((off + 1)) "$tmp/big/part.bin" | head -c 100 | cmp - range.bin &&
	test "$(sha256_of whole.bin)" = "$part" &&
	less_than "$(cut -d" " -f2 range.w) + 0.3" "$(cat whole.t)"
'

# A new commit upstream: the cache asks for it when a client names it.
cp -R "$DEV" "$tmp/dev2"
printf 'new upstream file\n' >"$tmp/dev2/NEW.md"
dev2=$(DATA=$UP_DATA hv import "$tmp/dev2" --repo "$REPO" --revision dev -m "New" 2>/dev/null)
sleep 1.1
expect_success 'a new upstream commit is fetched when a client asks for it' '
	is_sha "$dev2" &&
	hcurl -D h -o got "$pt/$REPO/resolve/$dev2/NEW.md" &&
	cmp got "$tmp/dev2/NEW.md" &&
	grep -qi "^x-repo-commit: $dev2" h
'
expect_success 'a revision the upstream lacks is still RevisionNotFound' '
	fetch r "$pt/api/models/$REPO/revision/no-such-branch" &&
	test "$(status r)" = 404 && test "$(hdr r X-Error-Code)" = RevisionNotFound
'
expect_success 'a repository the upstream lacks is RepositoryNotFound' '
	fetch r "$pt/api/models/haven-test/nothing-here" &&
	test "$(status r)" = 401 -o "$(status r)" = 404 &&
	test "$(hdr r X-Error-Code)" = RepoNotFound
'
expect_success 'the pulled-through repository is read-only' '
	fetch w -X POST -H "Content-Type: application/json" -d "{}" \
		"$pt/api/models/$REPO/commit/main" &&
	test "$(status w)" -ge 400
'
expect_success 'a token on the command line is refused' '
	! "$HAVEN" serve --data "$tmp/x" --upstream "$up" --upstream-token secret >out 2>&1 &&
	grep -q "not taken on the command line" out
'

# Stopping with a transfer and its clients in flight: still exit 0 (and
# under the sanitizers, nothing leaks).
curl -sS --noproxy '*' --max-time 30 -o "$tmp/late.out" \
	"$pt/haven-test/big/resolve/main/late.bin" >/dev/null 2>&1 &
late_pid=$!
sleep 0.5
stop_server TERM
wait "$late_pid" 2>/dev/null
kill "$relay_pid" 2>/dev/null
server_pid=$up_pid
done_testing
