#!/bin/bash
# The JS client, @huggingface/hub (tests/js, pinned in package-lock.json),
# writing to Haven: tests/js/hub-upload.test.mjs (node:test, TAP on a
# pipe). createRepo, uploadFiles small and large (LFS, multipart when the
# server offers it), deleteFile, listCommits, branches, a pull request,
# deleteRepo. Skipped when node or the package is missing, unless
# HAVEN_REQUIRE_JS=1.
. "$(dirname "$0")/lib.sh"

js_missing() {
	if [ "${HAVEN_REQUIRE_JS:-0}" = 1 ]; then
		echo "Bail out! $* (HAVEN_REQUIRE_JS=1)"
		exit 1
	fi
	skip_all "$*"
}
command -v node >/dev/null 2>&1 || js_missing "node is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
[ "${node_major:-0}" -ge 18 ] 2>/dev/null || js_missing "node >= 18 is needed (found ${node_major:-none})"
modules=${HAVEN_JS_MODULES:-$top_srcdir/tests/js/node_modules}
[ -f "$modules/@huggingface/hub/package.json" ] ||
	js_missing "@huggingface/hub is not installed in $modules (run npm ci in tests/js)"

hv user create jsuser >/dev/null 2>&1 || { echo "Bail out! user create"; exit 1; }
token=$(hv token create --user jsuser --role write 2>/dev/null)
case $token in hf_*) ;; *) echo "Bail out! token create printed '$token'"; exit 1 ;; esac
start_server

# Node resolves packages from the script's folder: run a copy next to a
# link to the installed modules (the source tree may be read-only).
mkdir -p "$tmp/js"
cp "$top_srcdir/tests/js/hub-upload.test.mjs" "$tmp/js/"
ln -s "$modules" "$tmp/js/node_modules"
printf '{"type": "module"}\n' >"$tmp/js/package.json"

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
