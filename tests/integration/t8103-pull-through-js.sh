#!/bin/bash
# The JS client, @huggingface/hub, against a pull-through Haven whose
# upstream is a second Haven on loopback: snapshot-download traffic
# (tests/js/pull-through.test.mjs) on a cache that starts empty. Skipped
# when node or the installed package is missing, unless HAVEN_REQUIRE_JS=1.
. "$(dirname "$0")/lib.sh"

setup_js_client pull-through.test.mjs
setup_model_repo
start_server
up=$base
up_pid=$server_pid
uphost=127.0.0.1
ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && ca=(--upstream-ca-bundle "$HAVEN_TEST_CA")
DATA=$tmp/pt start_server --upstream "$scheme://$uphost:${up##*:}" ${ca[@]+"${ca[@]}"}

HAVEN_URL=$base HAVEN_REPO=$REPO HAVEN_MODEL_DIR=$MODEL \
HAVEN_MAIN_SHA=$main_sha HAVEN_TMP=$tmp \
	expect_tap_from '@huggingface/hub via pull-through' \
	timeout 120 node "$tmp/js/pull-through.test.mjs"
expect_success 'every LFS object the client read is kept' '
	for f in model.safetensors extra/large.dat; do
		oid=$(sha256_of "$MODEL/$f") &&
		test -f "$tmp/pt/blobs/sha256/${oid:0:2}/${oid:2:2}/$oid" || return 1
	done
'
# The upstream too exits 0 on SIGTERM (leak checks run at exit).
stop_server
server_pid=$up_pid
done_testing
