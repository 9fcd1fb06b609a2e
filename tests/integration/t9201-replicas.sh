#!/bin/bash
# A primary and two read replicas (`haven serve --replica-of`) sharing one
# S3 bucket on a real Ceph RGW, behind nginx (deploy/nginx). Replicas
# start from a snapshot and follow the change feed; a write through any
# node is read on every node as soon as it is acknowledged (API commits,
# @huggingface/hub uploads, git push); tokens and download counts cross
# nodes. Kill a replica: the balancer keeps serving reads and writes. Kill
# the primary: reads go on, writes get 503 with the Hub's error headers;
# when it returns, writes work again and every acknowledged commit is on
# every node. A restarted replica catches up by itself. Skipped when RGW
# or nginx cannot run here.
. "$(dirname "$0")/lib.sh"

S3=$top_builddir/tests/s3/s3-tool
B=haven-t9201

[ "$scheme" = https ] && skip_all "the replica checks run over plain HTTP (HAVEN_TEST_TLS=1)"
[ -n "${HAVEN_TEST_BLOBS:-}" ] && skip_all "runs its own S3 setup (HAVEN_TEST_BLOBS is set)"
[ -x "$S3" ] || skip_all "tests/s3/s3-tool is not built (run make first)"
nginx_or_skip
rgw_start_or_skip
"$S3" mb $B >/dev/null 2>"$tmp/mb.err" || {
	echo "Bail out! cannot create bucket $B: $(cat "$tmp/mb.err")"
	exit 1
}

HAVEN_REPLICATION_TOKEN=rep-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HAVEN_REPLICATION_TOKEN
S3ARGS=(--blobs "s3://$B/data" --s3-endpoint "$HAVEN_S3_ENDPOINT")
lb_port=$(free_port)
LB=http://127.0.0.1:$lb_port
p_port=$(free_port)

# --- a primary with a model, two replicas, nginx in front -----------------------

P_DATA=$tmp/primary
DATA=$P_DATA
start_server --listen "127.0.0.1:$p_port" --public-url "$LB" "${S3ARGS[@]}"
P=$base
p_pid=$server_pid
setup_model_repo
# The model's namespace is a user's own: its token writes there.
hv user create haven-test >/dev/null 2>&1
token=$(hv token create --user haven-test --role write 2>/dev/null)
case $token in hf_*) ;; *) echo "Bail out! token create printed '$token'"; exit 1 ;; esac

# start_replica N: replica N on its own data folder (R<N> is its URL).
start_replica() {
	DATA=$tmp/replica$1 start_server --replica-of "$P" --public-url "$LB" \
		"${S3ARGS[@]}" "${@:2}"
	eval "R$1=\$base; r$1_pid=\$server_pid"
}
start_replica 1
start_replica 2
server_pid=
nginx_start lb_port "$R1" "$R2" "$P"
say "primary $P, replicas $R1 $R2, nginx $LB"

# head_of URL: the main commit that node serves.
head_of() {
	curl -s --max-time 5 --noproxy '*' "$1/api/models/$REPO/revision/main" |
		"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin).get("sha", ""))' 2>/dev/null
}
# wait_head URL SHA: up to 10 s for the node to serve SHA as main.
wait_head() {
	local i=0
	while [ "$(head_of "$1")" != "$2" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && return 1
		sleep 0.1
	done
}
# commit_via URL NAME: an API commit adding NAME; prints the status and
# records the acknowledged commit in $tmp/acked.
commit_via() {
	local st
	printf '{"key":"header","value":{"summary":"add %s","description":""}}\n{"key":"file","value":{"content":"%s","path":"%s","encoding":"base64"}}\n' \
		"$2" "$(printf 'written as %s' "$2" | base64 -w0)" "$2" >"$tmp/commit.ndjson"
	st=$(curl -s --noproxy '*' -D "$tmp/commit.h" -o "$tmp/commit.out" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $token" -H 'Content-Type: application/x-ndjson' \
		--data-binary @"$tmp/commit.ndjson" "$1/api/models/$REPO/commit/main")
	[ "$st" = 200 ] && json "$tmp/commit.out" 'd["commitOid"]' >>"$tmp/acked"
	echo "$st"
}
# reads URL NAME: true when the node serves the file NAME as committed.
reads() {
	test "$(curl -s --max-time 5 --noproxy '*' "$1/$REPO/resolve/main/$2")" = "written as $2"
}

expect_success 'replicas start from a snapshot and serve the primary'"'"'s repository' '
	wait_head "$R1" "$main_sha" && wait_head "$R2" "$main_sha" &&
	for r in "$R1" "$R2"; do
		for f in model.safetensors config.json; do
			fetch g "$r/$REPO/resolve/main/$f" && expect_status g 200 &&
			cmp "$(body g)" "$MODEL/$f" || return 1
		done
		fetch t "$r/api/models/$REPO/refs" &&
		json_check "$(body t)" "[b[\"name\"] for b in d[\"branches\"]] != [] and [t[\"name\"] for t in d[\"tags\"]] == [\"v1.0\"]" || return 1
	done &&
	grep -q "event=replica_snapshot_loaded" "$tmp/server.log" &&
	cmp "$P_DATA/secret" "$tmp/replica1/secret" &&
	cmp "$P_DATA/secret" "$tmp/replica2/secret"
'
expect_success 'a token made on the primary is known on every replica' '
	for r in "$R1" "$R2"; do
		fetch w -H "Authorization: Bearer $token" "$r/api/whoami-v2" &&
		expect_status w 200 && json_check "$(body w)" "d[\"name\"] == \"haven-test\"" || return 1
	done
'
expect_success 'the change feed answers the replication token only' '
	fetch f "$P/api/replication/changes?since=0" && expect_status f 401 &&
	fetch f -H "Authorization: Bearer nope-not-the-token" "$P/api/replication/changes?since=0" &&
	expect_status f 401 &&
	fetch f -H "Authorization: Bearer $HAVEN_REPLICATION_TOKEN" "$P/api/replication/changes?since=0" &&
	expect_status f 200 && test -n "$(hdr f X-Haven-Log-Id)" &&
	fetch f -H "Authorization: Bearer $HAVEN_REPLICATION_TOKEN" "$R1/api/replication/changes?since=0" &&
	expect_status f 404
'

# --- read your writes, on every node ------------------------------------------------

expect_success 'a commit through any node is read on every other node once acknowledged' '
	i=0 &&
	for via in "$R1" "$R2" "$P" "$R1" "$R2" "$P"; do
		i=$((i + 1)) &&
		test "$(commit_via "$via" "ryw-$i.txt")" = 200 &&
		reads "$R1" "ryw-$i.txt" && reads "$R2" "ryw-$i.txt" && reads "$P" "ryw-$i.txt" &&
		reads "$LB" "ryw-$i.txt" || return 1
	done
'
expect_success 'a write through a replica is answered by the primary, with the Hub'"'"'s body' '
	test "$(commit_via "$R2" "via-r2.txt")" = 200 &&
	json_check "$tmp/commit.out" "d[\"commitUrl\"].startswith(\"$LB/\") and len(d[\"commitOid\"]) == 40"
'
expect_success 'a private repository made through one replica: its owner reads it on the other, anonymous callers do not' '
	fetch c -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
		-d "{\"name\": \"secret\", \"organization\": \"haven-test\", \"type\": \"model\", \"private\": true}" \
		"$R1/api/repos/create" && expect_status c 200 &&
	printf "{\"key\":\"header\",\"value\":{\"summary\":\"s\",\"description\":\"\"}}\n{\"key\":\"file\",\"value\":{\"content\":\"%s\",\"path\":\"s.txt\",\"encoding\":\"base64\"}}\n" \
		"$(printf hidden | base64 -w0)" >s.ndjson &&
	fetch w -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/x-ndjson" \
		--data-binary @s.ndjson "$R1/api/models/haven-test/secret/commit/main" && expect_status w 200 &&
	fetch g -H "Authorization: Bearer $token" "$R2/haven-test/secret/resolve/main/s.txt" &&
	expect_status g 200 && test "$(cat "$(body g)")" = hidden &&
	fetch a "$R2/haven-test/secret/resolve/main/s.txt" && expect_error a 401 RepoNotFound
'

if js_ready; then
	head -c $((12 << 20)) /dev/urandom >"$tmp/upload.bin"
	cat >"$tmp/js/updown.mjs" <<'EOF'
import { readFileSync, writeFileSync } from "node:fs";
import { createRepo, uploadFiles, downloadFile } from "@huggingface/hub";
const { HAVEN_URL: hubUrl, HAVEN_TOKEN: accessToken, UPLOAD_FILE: big, OUT } = process.env;
const repo = { type: "model", name: "haven-test/through-lb" };
await createRepo({ hubUrl, accessToken, repo });
const out = await uploadFiles({
	hubUrl, accessToken, repo,
	files: [
		{ path: "README.md", content: new Blob(["# uploaded through the balancer\n"]) },
		{ path: "big.bin", content: new Blob([readFileSync(big)]) },
	],
});
for (const path of ["README.md", "big.bin"]) {
	const blob = await downloadFile({ hubUrl, accessToken, repo, path });
	writeFileSync(`${OUT}/${path}`, Buffer.from(await blob.arrayBuffer()));
}
console.log(out.commit.oid);
EOF
	expect_success '@huggingface/hub uploads and downloads through the balancer, consistently' '
		mkdir -p js-out &&
		HAVEN_URL=$LB HAVEN_TOKEN=$token UPLOAD_FILE=$tmp/upload.bin OUT=$PWD/js-out \
			timeout 60 node "$tmp/js/updown.mjs" >js.out 2>js.err &&
		oid=$(tail -n 1 js.out) && is_sha "$oid" &&
		cmp js-out/big.bin "$tmp/upload.bin" &&
		test "$(cat js-out/README.md)" = "# uploaded through the balancer" &&
		for n in "$R1" "$R2" "$P"; do
			fetch g "$n/haven-test/through-lb/resolve/main/big.bin" && expect_status g 200 &&
			cmp "$(body g)" "$tmp/upload.bin" && expect_hdr g X-Repo-Commit "$oid" || return 1
		done
	'
else
	test_skip '@huggingface/hub uploads and downloads through the balancer' "node or @huggingface/hub is missing"
fi

lb_auth="http://haven-test:$token@127.0.0.1:$lb_port"
expect_success 'git push through the balancer; every node serves the pushed commit' '
	git clone -q "$lb_auth/$REPO" clone 2>err &&
	printf "pushed through the balancer\n" >clone/PUSHED.md &&
	git -C clone add PUSHED.md &&
	git -C clone -c user.name=haven-test -c user.email=t@example.com commit -q -m push &&
	git -C clone push -q origin main 2>err &&
	pushed=$(git -C clone rev-parse HEAD) &&
	for n in "$R1" "$R2" "$P"; do
		test "$(head_of "$n")" = "$pushed" || return 1
	done &&
	git clone -q "$R2/$REPO" clone2 && test "$(git -C clone2 rev-parse HEAD)" = "$pushed"
'
expect_success 'replica metrics: in step, nothing to apply' '
	fetch m "$R1/metrics" && grep -q "^haven_replica_lag_changes 0$" "$(body m)" &&
	grep -q "^haven_replica_lag_seconds 0.000$" "$(body m)" &&
	grep -q "^haven_replica_primary_up 1$" "$(body m)" &&
	fetch m "$P/metrics" && grep -q "^haven_replica_applied_seq{replica=" "$(body m)"
'
expect_success 'downloads counted on a replica reach the primary'"'"'s statistics' '
	fetch i "$P/api/models/$REPO?expand%5B%5D=downloads" && before=$(json "$(body i)" "d[\"downloads\"]") &&
	for k in 1 2 3; do fetch g "$R1/$REPO/resolve/main/config.json" && expect_status g 200 || return 1; done &&
	j=0 && while :; do
		fetch i "$P/api/models/$REPO?expand%5B%5D=downloads" &&
		[ "$(json "$(body i)" "d[\"downloads\"]")" = $((before + 3)) ] && break
		j=$((j + 1)) && [ $j -lt 60 ] || return 1
		sleep 0.2
	done
'

# --- failures -------------------------------------------------------------------------

kill -KILL "$r2_pid"
wait "$r2_pid" 2>/dev/null
server_pids=$(echo "$server_pids" | sed "s/ $r2_pid\b//")
expect_success 'with a replica killed, the balancer keeps serving reads and writes' '
	for k in 1 2 3 4 5 6 7 8; do
		fetch g "$LB/$REPO/resolve/main/config.json" && expect_status g 200 || return 1
	done &&
	test "$(commit_via "$LB" "after-r2-died.txt")" = 200 &&
	reads "$R1" "after-r2-died.txt" && reads "$LB" "after-r2-died.txt"
'

kill -KILL "$p_pid"
wait "$p_pid" 2>/dev/null
server_pids=$(echo "$server_pids" | sed "s/ $p_pid\b//")
expect_success 'with the primary down, reads go on' '
	for k in 1 2 3 4 5 6; do
		fetch g "$LB/$REPO/resolve/main/ryw-1.txt" && expect_status g 200 || return 1
	done &&
	fetch g "$R1/api/models/$REPO" && expect_status g 200
'
expect_success '... and writes get 503 with the Hub'"'"'s error headers, directly and through the balancer' '
	for n in "$R1" "$LB"; do
		fetch w -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/x-ndjson" \
			--data-binary @"$tmp/commit.ndjson" "$n/api/models/$REPO/commit/main" &&
		expect_status w 503 && has_hdr w X-Error-Message &&
		grep -q "primary cannot be reached" "$(body w)" || return 1
	done &&
	fetch w -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
		-d "{\"name\": \"while-down\", \"type\": \"model\"}" "$R1/api/repos/create" &&
	expect_status w 503
'

DATA=$P_DATA start_server --listen "127.0.0.1:$p_port" --public-url "$LB" "${S3ARGS[@]}"
p_pid=$server_pid
server_pid=
expect_success 'when the primary returns, writes work again' '
	test "$(commit_via "$R1" "primary-back.txt")" = 200 &&
	reads "$R1" "primary-back.txt" && reads "$LB" "primary-back.txt"
'
start_replica 2
server_pid=
expect_success 'a restarted replica catches up by itself' '
	wait_head "$R2" "$(head_of "$P")" &&
	reads "$R2" "after-r2-died.txt" && reads "$R2" "primary-back.txt"
'
expect_success 'nothing acknowledged is lost: every acknowledged commit is on every node' '
	test "$(wc -l <"$tmp/acked")" -ge 9 &&
	for oid in $(cat "$tmp/acked"); do
		for n in "$P" "$R1" "$R2"; do
			fetch r "$n/api/models/$REPO/revision/$oid" && expect_status r 200 ||
				{ echo "$oid missing on $n"; return 1; }
		done
	done
'

# --- settings a replica refuses ---------------------------------------------------

expect_success 'a replica needs the replication token and S3 blobs, and says so' '
	! env -u HAVEN_REPLICATION_TOKEN timeout 10 "$HAVEN" serve --data "$tmp/bad1" --listen 127.0.0.1:0 \
		--replica-of "$P" "${S3ARGS[@]}" >out 2>err &&
	grep -q "replication_token" err &&
	! timeout 10 "$HAVEN" serve --data "$tmp/bad2" --listen 127.0.0.1:0 --replica-of "$P" >out 2>err &&
	grep -q "blobs s3://" err &&
	! "$HAVEN" serve --data "$tmp/bad3" --replica-of "$P" --replication-token x >out 2>err &&
	grep -qi "command line\|config file" err
'

nginx_stop
for pid in $r2_pid $r1_pid $p_pid; do
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 30
	rc=$?
	server_pids=$(echo "$server_pids" | sed "s/ $pid\b//")
	expect_success "server $pid exits 0 on SIGTERM" "test $rc = 0"
done
done_testing
