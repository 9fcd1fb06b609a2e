#!/bin/bash
# A chain of pull-through caches three levels deep, as a regional Haven
# would use a national one that uses the Hub: origin <- national <-
# regional. A client of the regional cache gets the origin's commits and
# bytes, and each object crosses each link once.
. "$(dirname "$0")/lib.sh"

setup_model_repo
start_server
origin=$base
origin_pid=$server_pid
ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && ca=(--upstream-ca-bundle "$HAVEN_TEST_CA")
DATA=$tmp/national start_server --upstream "$origin" ${ca[@]+"${ca[@]}"}
national=$base
national_pid=$server_pid
DATA=$tmp/regional start_server --upstream "$national" ${ca[@]+"${ca[@]}"}
regional=$base

# metric BASE NAME: a sample's value from BASE/metrics (0 when absent).
metric() {
	hcurl "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}
origin_resolves() {
	metric "$origin" 'haven_http_requests_total{family="resolve",code="2xx"}'
}

expect_success 'the regional cache answers with the origin'"'"'s commit ids' '
	hcurl -o rev.json "$regional/api/models/$REPO/revision/dev" &&
	json_check rev.json "d[\"sha\"] == \"$dev_sha\"" &&
	git clone -q "$regional/$REPO" clone 2>err &&
	test "$(git -C clone rev-parse HEAD)" = "$main_sha"
'
before=$(origin_resolves)
expect_success 'LFS files through two caches: the right bytes, one transfer per link' '
	for f in model.safetensors extra/large.dat; do
		hcurl -o got "$regional/$REPO/resolve/main/$f" && cmp got "$MODEL/$f" || return 1
	done &&
	test "$(metric "$regional" haven_upstream_transfers_total)" = 2 &&
	test "$(metric "$national" haven_upstream_transfers_total)" = 2 &&
	test "$(($(origin_resolves) - before))" = 2
'
expect_success 'asked again, at either level, nothing crosses a link' '
	for f in model.safetensors extra/large.dat; do
		hcurl -o got "$regional/$REPO/resolve/main/$f" && cmp got "$MODEL/$f" &&
		hcurl -o got "$national/$REPO/resolve/main/$f" && cmp got "$MODEL/$f" || return 1
	done &&
	test "$(metric "$regional" haven_upstream_transfers_total)" = 2 &&
	test "$(metric "$national" haven_upstream_transfers_total)" = 2 &&
	test "$(($(origin_resolves) - before))" = 2
'
expect_success 'haven fsck is clean at both cache levels' '
	"$HAVEN" fsck --data "$tmp/national" >f1 2>&1 && grep -q " 0 problems" f1 &&
	"$HAVEN" fsck --data "$tmp/regional" >f2 2>&1 && grep -q " 0 problems" f2
'
# Every level exits 0 on SIGTERM (leak checks run at exit).
stop_server
server_pid=$national_pid
stop_server
server_pid=$origin_pid
done_testing
