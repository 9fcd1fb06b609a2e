#!/bin/bash
# One Haven node behind nginx as the load balancer, with the proxy
# settings of deploy/nginx/haven-proxy.conf (lib.sh's nginx_start): what a
# client gets through the balancer is what it gets from the node itself.
# Listings and a 50 MiB LFS download are byte-identical, ranges too; an
# upload with @huggingface/hub through the balancer lands (its LFS PUT
# goes through the balancer too, since the node's public_url is the
# balancer's); git reads pass; a 404's X-Error-Code, X-Error-Message and
# body are unchanged; nginx_stop leaves no process and no listener. Then
# a pool with a dead node: GETs and POSTs are passed to the live one.
# Skipped when nginx is missing; the upload check is skipped when the JS
# client is.
. "$(dirname "$0")/lib.sh"
nginx_or_skip

REPO=haven-test/big-model
mkdir -p "$tmp/model"
printf '{"model_type": "haven-test"}\n' >"$tmp/model/config.json"
head -c $((50 << 20)) /dev/urandom >"$tmp/model/weights.bin"
big_sha=$(sha256_of "$tmp/model/weights.bin")
main_sha=$(hv import "$tmp/model" --repo "$REPO" -m "Add big model" 2>"$tmp/import.err")
is_sha "$main_sha" || { echo "Bail out! haven import failed"; sed 's/^/#   /' "$tmp/import.err"; exit 1; }
hv user create lbuser >/dev/null 2>&1 || { echo "Bail out! user create"; exit 1; }
token=$(hv token create --user lbuser --role write 2>/dev/null)
case $token in hf_*) ;; *) echo "Bail out! token create printed '$token'"; exit 1 ;; esac

# The balancer's address is fixed first: the node announces it as its
# public_url, as every node of a cluster does.
lb_port=$(free_port)
start_server --public-url "$scheme://127.0.0.1:$lb_port"
direct=$base
nginx_start lb_port "$direct"
lb=$nbase
say "Haven on $direct, nginx on $lb"

expect_success 'GET /api/models: the same status, headers and bytes through nginx' '
	fetch d "$direct/api/models?full=true" && fetch l "$lb/api/models?full=true" &&
	expect_status l 200 && cmp "$(body d)" "$(body l)" &&
	test "$(hdr l Content-Type)" = "$(hdr d Content-Type)" &&
	json_check "$(body l)" "[m[\"id\"] for m in d] == [\"$REPO\"]"
'

expect_success 'a 50 MiB LFS file downloads byte-identical through nginx, with its Hub headers' '
	fetch d "$direct/$REPO/resolve/main/weights.bin" &&
	fetch l "$lb/$REPO/resolve/main/weights.bin" &&
	expect_status l 200 &&
	cmp "$(body d)" "$(body l)" && test "$(sha256_of "$(body l)")" = "$big_sha" &&
	expect_hdr l X-Repo-Commit "$main_sha" &&
	expect_hdr l X-Linked-Size $((50 << 20)) &&
	expect_hdr l ETag "$(hdr d ETag)" &&
	expect_hdr l Content-Length $((50 << 20))
'

expect_success 'a range across the middle comes back as 206 with the same bytes' '
	fetch d -r 20000000-30000000 "$direct/$REPO/resolve/main/weights.bin" &&
	fetch l -r 20000000-30000000 "$lb/$REPO/resolve/main/weights.bin" &&
	expect_status l 206 && cmp "$(body d)" "$(body l)" &&
	expect_hdr l Content-Range "$(hdr d Content-Range)"
'

expect_success 'HEAD passes the metadata that huggingface_hub reads' '
	fetch_head l "$lb/$REPO/resolve/main/weights.bin" &&
	expect_status l 200 &&
	expect_hdr l X-Linked-Etag "\"$big_sha\"" &&
	expect_hdr l X-Repo-Commit "$main_sha"
'

expect_success 'a 404 keeps its X-Error-Code, X-Error-Message and JSON body' '
	fetch d -H "Authorization: Bearer $token" "$direct/api/models/nobody/missing" &&
	fetch l -H "Authorization: Bearer $token" "$lb/api/models/nobody/missing" &&
	expect_error l 404 RepoNotFound &&
	expect_hdr l X-Error-Message "$(hdr d X-Error-Message)" &&
	cmp "$(body d)" "$(body l)" &&
	fetch d "$direct/$REPO/resolve/main/nope.txt" &&
	fetch l "$lb/$REPO/resolve/main/nope.txt" &&
	expect_error l 404 EntryNotFound &&
	expect_hdr l X-Error-Message "$(hdr d X-Error-Message)"
'

expect_success 'an anonymous 401 keeps RepoNotFound and WWW-Authenticate' '
	fetch l "$lb/api/models/nobody/missing" &&
	expect_error l 401 RepoNotFound &&
	test -n "$(hdr l WWW-Authenticate)"
'

expect_success 'git ls-remote through nginx lists main' '
	git ls-remote "$lb/$REPO" refs/heads/main >refs.out 2>refs.err &&
	grep -q "^$main_sha	refs/heads/main$" refs.out
'

# @huggingface/hub: a small file inline and a 12 MiB one through LFS.
if js_ready; then
	head -c $((12 << 20)) /dev/urandom >"$tmp/upload.bin"
	cat >"$tmp/js/upload.mjs" <<'EOF'
import { readFileSync } from "node:fs";
import { createRepo, uploadFiles } from "@huggingface/hub";
const { HAVEN_URL: hubUrl, HAVEN_TOKEN: accessToken, UPLOAD_FILE: big } = process.env;
const repo = { type: "model", name: "lbuser/through-lb" };
await createRepo({ hubUrl, accessToken, repo });
const out = await uploadFiles({
	hubUrl, accessToken, repo,
	files: [
		{ path: "README.md", content: new Blob(["# uploaded through nginx\n"]) },
		{ path: "big.bin", content: new Blob([readFileSync(big)]) },
	],
});
console.log(out.commit.oid);
EOF
	expect_success '@huggingface/hub uploads through nginx; the files land on the node' '
		HAVEN_URL=$lb HAVEN_TOKEN=$token UPLOAD_FILE=$tmp/upload.bin \
			timeout 60 node "$tmp/js/upload.mjs" >js.out 2>js.err &&
		is_sha "$(tail -n 1 js.out)" &&
		fetch r "$direct/lbuser/through-lb/resolve/main/big.bin" &&
		expect_status r 200 &&
		test "$(sha256_of "$(body r)")" = "$(sha256_of "$tmp/upload.bin")" &&
		fetch s "$direct/lbuser/through-lb/resolve/main/README.md" &&
		test "$(cat "$(body s)")" = "# uploaded through nginx" &&
		grep -q "\"PUT /api/lfs/" "$tmp/nginx/access.log" &&
		grep -q "\"POST /api/models/lbuser/through-lb/commit/main" "$tmp/nginx/access.log"
	'
else
	test_skip '@huggingface/hub uploads through nginx' "node or @huggingface/hub is missing"
fi

expect_success 'nginx spooled nothing to disk (bodies stream both ways)' '
	! grep "buffered to a temporary file" "$tmp/nginx/error.log"
'

master=$nginx_pid
workers=$(children_of "$master")
say "nginx master $master, workers $workers"
nginx_stop
expect_success 'nginx_stop leaves no nginx process and no listener' '
	test -n "$workers" &&
	for p in $master $workers; do ! kill -0 "$p" 2>/dev/null || { echo "$p still runs"; exit 1; }; done &&
	! curl -s -o /dev/null --max-time 2 --noproxy "*" "$lb/api/health" &&
	test -z "$nginx_pid"
'
expect_success 'the node still answers directly' '
	fetch d "$direct/api/health" && expect_status d 200
'

# A pool with a dead node (nothing listens on its port): requests that
# reach it are passed to the live one (proxy_next_upstream error).
lb2_port=
nginx_start lb2_port "$direct" "http://127.0.0.1:$(free_port)"
expect_success 'a dead node in the pool: every GET and POST still answers' '
	for i in 1 2 3 4 5 6; do
		fetch g "$nbase/api/models" && expect_status g 200 || exit 1
		fetch p -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
			-d "{\"name\": \"dead-pool-$i\", \"type\": \"model\"}" "$nbase/api/repos/create" &&
			expect_status p 200 || exit 1
	done
'
nginx_stop
done_testing
