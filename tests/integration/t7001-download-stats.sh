#!/bin/bash
# Download statistics and likes: which /resolve requests count (the Hub's
# rules: model query files, every GGUF, diffusers weights at the top;
# datasets once per client and repo per five minutes; GET and HEAD alike;
# only 200 and 206 answers), that the counts are written in batches and on
# SIGTERM so they survive a restart, downloads/downloadsAllTime in repo
# info and sort=downloads, likes through POST/DELETE .../like with a token,
# and trendingScore.
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/m1" "$tmp/m2" "$tmp/diff/unet" "$tmp/ds/sub"
printf '{"model_type":"tiny"}\n' >"$tmp/m1/config.json"
head -c 2000 /dev/zero >"$tmp/m1/model.safetensors"
head -c 3000 /dev/zero | tr '\0' g >"$tmp/m1/q4_0.gguf"
printf '{"model_type":"tiny"}\n' >"$tmp/m2/config.json"
printf '{"_class_name":"StableDiffusionPipeline"}\n' >"$tmp/diff/model_index.json"
head -c 1000 /dev/zero >"$tmp/diff/v1.safetensors"
head -c 1000 /dev/zero >"$tmp/diff/unet/diffusion.safetensors"
printf '{"a":1}\n' >"$tmp/diff/unet/config.json"
printf 'a,b\n1,2\n' >"$tmp/ds/a.csv"
printf 'a,b\n3,4\n' >"$tmp/ds/sub/b.csv"
hv import "$tmp/m1" --repo haven-test/m1 -m m1 >/dev/null 2>&1 &&
	hv import "$tmp/m2" --repo haven-test/m2 -m m2 >/dev/null 2>&1 &&
	hv import "$tmp/diff" --repo haven-test/diff -m diff >/dev/null 2>&1 &&
	hv import "$tmp/ds" --repo haven-test/ds --type dataset -m ds >/dev/null 2>&1 &&
	hv user create alice >/dev/null 2>&1 &&
	hv import "$tmp/m2" --repo alice/secret -m secret >/dev/null 2>&1 || {
	echo "Bail out! setup failed"
	exit 1
}
TOKEN=$(hv token create --user alice --role write --name t 2>/dev/null)
start_server

# code METHOD URL [curl args]: the status of one request.
code() {
	local m=$1 u=$2
	shift 2
	if [ "$m" = HEAD ]; then
		hcurl -I -o /dev/null -w '%{http_code}' "$@" "$u"
	else
		hcurl -o /dev/null -w '%{http_code}' "$@" "$u"
	fi
}
# info TYPE REPO FIELD: one field of repo info (expand=FIELD).
info() {
	hcurl "$base/api/$1/$2?expand=$3" >"$tmp/info.json" &&
		json "$tmp/info.json" "str(d[\"$3\"])"
}

expect_success 'model: a config.json HEAD and a ranged GET count, a shard GET does not' '
	test "$(code HEAD "$base/haven-test/m1/resolve/main/config.json")" = 200 &&
	test "$(code GET "$base/haven-test/m1/resolve/main/config.json" -r 0-0)" = 206 &&
	test "$(code GET "$base/haven-test/m1/resolve/main/model.safetensors")" = 200 &&
	test "$(code GET "$base/haven-test/m1/resolve/main/q4_0.gguf")" = 200
'
expect_success 'raw, a missing file and an unsatisfiable range do not count' '
	test "$(code GET "$base/haven-test/m1/raw/main/config.json")" = 200 &&
	test "$(code GET "$base/haven-test/m1/resolve/main/nope/config.json")" = 404 &&
	test "$(code GET "$base/haven-test/m1/resolve/main/config.json" -r 5000-)" = 416
'
expect_success 'diffusers: model_index.json and top-level weights count, nested ones do not' '
	test "$(code GET "$base/haven-test/diff/resolve/main/model_index.json")" = 200 &&
	test "$(code HEAD "$base/haven-test/diff/resolve/main/v1.safetensors")" = 200 &&
	test "$(code GET "$base/haven-test/diff/resolve/main/unet/diffusion.safetensors")" = 200 &&
	test "$(code GET "$base/haven-test/diff/resolve/main/unet/config.json")" = 200
'
expect_success 'dataset: several files by GET and HEAD from one client count once' '
	test "$(code GET "$base/datasets/haven-test/ds/resolve/main/a.csv")" = 200 &&
	test "$(code HEAD "$base/datasets/haven-test/ds/resolve/main/sub/b.csv")" = 200 &&
	test "$(code GET "$base/datasets/haven-test/ds/resolve/main/a.csv")" = 200
'
expect_success 'five config.json HEADs of m2' '
	for i in 1 2 3 4 5; do
		test "$(code HEAD "$base/haven-test/m2/resolve/main/config.json")" = 200 || exit 1
	done
'
stop_server TERM
start_server

expect_success 'after SIGTERM and a restart: exact downloads per repo' '
	test "$(info models haven-test/m1 downloads)" = 3 &&
	test "$(info models haven-test/diff downloads)" = 2 &&
	test "$(info datasets haven-test/ds downloads)" = 1 &&
	test "$(info models haven-test/m2 downloads)" = 5
'
expect_success 'downloadsAllTime equals downloads on the first day' '
	test "$(info models haven-test/m1 downloadsAllTime)" = 3 &&
	test "$(info datasets haven-test/ds downloadsAllTime)" = 1
'
expect_success 'repo info has downloads by default' '
	hcurl "$base/api/models/haven-test/m2" >"$tmp/i.json" &&
	json_check "$tmp/i.json" "d[\"downloads\"] == 5 and d[\"likes\"] == 0"
'
expect_success 'counts reach LMDB within the flush interval while serving' '
	test "$(code HEAD "$base/haven-test/m1/resolve/main/config.json")" = 200 &&
	i=0 && while [ "$(info models haven-test/m1 downloads)" != 4 ]; do
		i=$((i + 1)); [ $i -lt 50 ] || exit 1; sleep 0.2
	done
'
expect_success 'sort=downloads orders by the last 30 days, most first' '
	hcurl "$base/api/models?author=haven-test&sort=downloads&direction=-1" >"$tmp/l.json" &&
	json_check "$tmp/l.json" "[x[\"id\"] for x in d] == [\"haven-test/m2\", \"haven-test/m1\", \"haven-test/diff\"]" &&
	json_check "$tmp/l.json" "[x[\"downloads\"] for x in d] == [5, 4, 2]"
'
expect_success 'like without a token: 401, and nothing recorded' '
	test "$(code POST "$base/api/models/haven-test/diff/like" -X POST)" = 401 &&
	test "$(code DELETE "$base/api/models/haven-test/diff/like" -X DELETE)" = 401 &&
	test "$(info models haven-test/diff likes)" = 0
'
expect_success 'like with a token, twice: one like' '
	test "$(code POST "$base/api/models/haven-test/diff/like" -X POST -H "Authorization: Bearer $TOKEN")" = 200 &&
	test "$(code POST "$base/api/models/haven-test/diff/like" -X POST -H "Authorization: Bearer $TOKEN")" = 200 &&
	test "$(info models haven-test/diff likes)" = 1
'
expect_success 'likers lists the user' '
	hcurl "$base/api/models/haven-test/diff/likers" >"$tmp/k.json" &&
	json_check "$tmp/k.json" "[x[\"user\"] for x in d] == [\"alice\"]"
'
expect_success 'sort=likes puts the liked repo first' '
	hcurl "$base/api/models?author=haven-test&sort=likes" >"$tmp/l.json" &&
	json_check "$tmp/l.json" "d[0][\"id\"] == \"haven-test/diff\""
'
expect_success 'trendingScore: 7-day downloads plus 10 per recent like; sort=trending_score' '
	test "$(info models haven-test/diff trendingScore)" = 12 &&
	test "$(info models haven-test/m2 trendingScore)" = 5 &&
	hcurl "$base/api/models?author=haven-test&sort=trending_score" >"$tmp/l.json" &&
	json_check "$tmp/l.json" "[x[\"id\"] for x in d] == [\"haven-test/diff\", \"haven-test/m2\", \"haven-test/m1\"]"
'
expect_success 'like of a missing repo: 404' '
	test "$(code POST "$base/api/models/haven-test/none/like" -X POST -H "Authorization: Bearer $TOKEN")" = 404
'
expect_success 'unlike (DELETE, as huggingface_hub sends it) removes the like' '
	test "$(code DELETE "$base/api/models/haven-test/diff/like" -X DELETE -H "Authorization: Bearer $TOKEN")" = 200 &&
	test "$(info models haven-test/diff likes)" = 0
'
expect_success 'private repo: its owner downloads and likes it' '
	A="Authorization: Bearer $TOKEN" &&
	test "$(code PUT "$base/api/models/alice/secret/settings" -X PUT -H "$A" -H "Content-Type: application/json" --data-binary "{\"private\": true}")" = 200 &&
	for i in 1 2 3 4 5 6 7; do
		test "$(code HEAD "$base/alice/secret/resolve/main/config.json" -H "$A")" = 200 || exit 1
	done &&
	test "$(code POST "$base/api/models/alice/secret/like" -X POST -H "$A")" = 200 &&
	i=0 && while ! { hcurl -H "$A" "$base/api/models/alice/secret?expand=downloads" >p.json &&
		test "$(json p.json "str(d[\"downloads\"])")" = 7; }; do
		i=$((i + 1)); [ $i -lt 50 ] || exit 1; sleep 0.2
	done
'
expect_success 'private repo: anonymous callers see neither its counts nor its likers' '
	test "$(code GET "$base/api/models/alice/secret?expand=downloads")" = 401 &&
	test "$(code GET "$base/api/models/alice/secret/likers")" = 401 &&
	hcurl "$base/api/models?sort=downloads" >"$tmp/l.json" &&
	json_check "$tmp/l.json" "\"alice/secret\" not in [x[\"id\"] for x in d] and d[0][\"id\"] == \"haven-test/m2\""
'
expect_success 'GET /metrics: Prometheus text with every series' '
	fetch m "$base/metrics" && expect_status m 200 &&
	grep -qi "^content-type: text/plain; version=0.0.4" "$tmp/m.hdr" &&
	for name in haven_http_requests_total haven_http_request_duration_seconds \
		haven_http_response_bytes_total haven_http_connections_active \
		haven_downloads_counted_total haven_blob_store_bytes \
		haven_blob_store_objects haven_lmdb_map_size_bytes haven_lmdb_used_bytes; do
		grep -q "^# TYPE $name " "$tmp/m.body" || { echo "no $name"; exit 1; }
	done &&
	grep -Eq "^haven_http_requests_total\{family=\"resolve\",code=\"2xx\"\} [1-9][0-9]*\$" "$tmp/m.body" &&
	grep -Eq "^haven_http_requests_total\{family=\"api\",code=\"4xx\"\} [1-9][0-9]*\$" "$tmp/m.body" &&
	grep -Eq "^haven_http_request_duration_seconds_bucket\{le=\"\+Inf\"\} [1-9][0-9]*\$" "$tmp/m.body" &&
	grep -Eq "^haven_downloads_counted_total 8\$" "$tmp/m.body" &&
	grep -Eq "^haven_http_connections_active [1-9][0-9]*\$" "$tmp/m.body" &&
	grep -Eq "^haven_lmdb_map_size_bytes [1-9][0-9]*\$" "$tmp/m.body"
'
expect_success '/metrics: every line is a comment or "name{labels} value"' '
	grep -Ev "^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z]+=\"[^\"]*\"(,[a-z]+=\"[^\"]*\")*\})? [0-9.e+-]+)\$" "$tmp/m.body" >bad;
	test ! -s bad || { cat bad; exit 1; }
'
stop_server TERM

expect_success 'haven stats: the total and one row per day' '
	hv stats >out && head -1 out | grep -qx "19 downloads" &&
	grep -Eq "^$(date -u +%Y-%m-%d) +19\$" out
'
expect_success 'haven stats --by repo --top 2 --json: the two largest' '
	hv stats --by repo --top 2 --json >s.json &&
	json_check s.json "d[\"total\"] == 19 and [(r[\"repo\"], r[\"downloads\"]) for r in d[\"rows\"]] == [(\"alice/secret\", 7), (\"haven-test/m2\", 5)]"
'
expect_success 'haven stats --author haven-test --by author' '
	hv stats --author haven-test --by author --json >s.json &&
	json_check s.json "d[\"rows\"] == [{\"author\": \"haven-test\", \"downloads\": 12}]"
'
expect_success 'haven stats --since tomorrow: nothing' '
	hv stats --since 2999-01-01 --json >s.json &&
	json_check s.json "d[\"total\"] == 0 and d[\"rows\"] == []"
'
expect_success 'haven stats: bad arguments exit 2 with a message' '
	{ hv stats --by week 2>err; test $? = 2; } && grep -q "invalid --by" err &&
	{ hv stats --since 2024-1-1 2>err; test $? = 2; } && grep -q "invalid --since" err &&
	{ hv stats --top 0 2>err; test $? = 2; } && grep -q "invalid --top" err
'
done_testing
