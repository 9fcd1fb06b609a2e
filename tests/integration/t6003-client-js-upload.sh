#!/bin/bash
# The JS client, @huggingface/hub (tests/js, pinned in package-lock.json),
# writing to Haven: tests/js/hub-upload.test.mjs (node:test, TAP on a
# pipe). createRepo, uploadFiles small and large (LFS, multipart when the
# server offers it), deleteFile, listCommits, branches, a pull request,
# deleteRepo. Skipped when node or the package is missing, unless
# HAVEN_REQUIRE_JS=1.
. "$(dirname "$0")/lib.sh"

setup_js_client hub-upload.test.mjs

hv user create jsuser >/dev/null 2>&1 || { echo "Bail out! user create"; exit 1; }
token=$(hv token create --user jsuser --role write 2>/dev/null)
case $token in hf_*) ;; *) echo "Bail out! token create printed '$token'"; exit 1 ;; esac
start_server

# 65 MiB: larger than one 64 MiB part, so a server that offers the
# multipart extension for large objects gets two parts.
HAVEN_URL=$base HAVEN_TOKEN=$token HAVEN_USER=jsuser HAVEN_LARGE=$((65 << 20)) \
	expect_tap_from '@huggingface/hub upload' \
	timeout 300 node "$tmp/js/hub-upload.test.mjs"
parts=$(grep -c 'method=PUT path=/api/lfs/part/' "$tmp/server.log")
say "LFS uploads: $(grep -c 'method=PUT path=/api/lfs/' "$tmp/server.log") PUTs, $parts of them multipart parts"
expect_success 'the server kept no temporary files' '
	test -z "$(find "$DATA/tmp" -mindepth 1 2>/dev/null | head -n 5)"
'
done_testing
