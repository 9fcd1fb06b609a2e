#!/bin/bash
# The JS client, @huggingface/hub (tests/js, pinned in package-lock.json),
# with hubUrl set to Haven: tests/js/hub-client.test.mjs, written for
# node's built-in test runner (node:test). It is run directly, one file,
# tests in order; with stdout not a terminal node reports TAP (node 18+).
# Skipped when node or the installed package is missing (run `npm ci` in
# tests/js), unless HAVEN_REQUIRE_JS=1.
. "$(dirname "$0")/lib.sh"

setup_js_client hub-client.test.mjs

setup_model_repo
mkdir -p "$tmp/ds"
printf 'a,b\n1,2\n' >"$tmp/ds/data.csv"
head -c 3000 /dev/zero | tr '\0' q >"$tmp/ds/part.parquet"
hv import "$tmp/ds" --repo haven-test/tiny-data --type dataset -m data >/dev/null 2>&1
start_server

say "@huggingface/hub $(node -p "require('$modules/@huggingface/hub/package.json').version"), node $(node --version)"
HAVEN_URL=$base HAVEN_REPO=$REPO HAVEN_MODEL_DIR=$MODEL HAVEN_DEV_DIR=$DEV \
HAVEN_MAIN_SHA=$main_sha HAVEN_DEV_SHA=$dev_sha HAVEN_TMP=$tmp \
HAVEN_DATASET=haven-test/tiny-data HAVEN_DATASET_DIR=$tmp/ds \
	expect_tap_from '@huggingface/hub' \
	timeout 300 node "$tmp/js/hub-client.test.mjs"
done_testing
