#!/bin/bash
# HTTPS built into `haven serve --tls-cert FILE --tls-key FILE`, with a
# throwaway test CA made here: startup refuses bad certificate and key
# files with one clear line; curl, git, the JS client and the Python client
# verify the server through their usual CA settings; a 12 MiB LFS file,
# a range and HEAD headers come through intact; plain HTTP, garbage and
# silent clients on the TLS port are cut without disturbing anyone else;
# and tokens sent with requests never reach the server's log.
. "$(dirname "$0")/lib.sh"

tls_enable
tls=$tmp/tls

# --- Startup: bad files fail at once, with one line naming the file ---------

# serve_fails NAME ARGS...: `haven serve` with ARGS exits non-zero within
# 10 seconds, its stderr in $tmp/NAME.err.
serve_fails() {
	local name=$1
	shift
	! timeout 10 "$HAVEN" serve --data "$DATA" --listen 127.0.0.1:0 "$@" \
		>"$tmp/$name.out" 2>"$tmp/$name.err" &&
		test "$(wc -l <"$tmp/$name.err")" = 1 || {
		echo "stderr:"
		cat "$tmp/$name.err"
		return 1
	}
}
tls_make_certs "$tmp/other" || echo "Bail out! cannot make a second test CA"
printf 'not a certificate\n' >"$tmp/junk.pem"

expect_success 'a missing certificate file stops serve with one line naming it' '
	serve_fails e1 --tls-cert "$tmp/nope.pem" --tls-key "$tls/server.key" &&
	grep -q "nope.pem" e1.err && grep -qi "certificate" e1.err
'
expect_success 'a missing key file stops serve with one line naming it' '
	serve_fails e2 --tls-cert "$tls/server.pem" --tls-key "$tmp/nope.key" &&
	grep -q "nope.key" e2.err
'
expect_success 'a key that does not belong to the certificate stops serve' '
	serve_fails e3 --tls-cert "$tls/server.pem" --tls-key "$tmp/other/server.key" &&
	grep -q "does not match" e3.err
'
expect_success 'a file that is not PEM stops serve' '
	serve_fails e4 --tls-cert "$tmp/junk.pem" --tls-key "$tls/server.key" &&
	grep -q "junk.pem" e4.err &&
	serve_fails e5 --tls-cert "$tls/server.pem" --tls-key "$tmp/junk.pem" &&
	grep -q "junk.pem" e5.err
'
expect_success 'a certificate without a key (or the reverse) stops serve' '
	serve_fails e6 --tls-cert "$tls/server.pem" &&
	serve_fails e7 --tls-key "$tls/server.key"
'

# --- A repository and the server ---------------------------------------------

setup_model_repo
hv repo create haven-test/second >/dev/null 2>&1 # a next page for limit=1
st=$MODEL/model.safetensors
st_size=$(size_of "$st")
st_sha=$(sha256_of "$st")
start_server --header-timeout 2 --log-level debug
say "serving on $base"

expect_success 'curl --cacert: repo info answers 200 with the commit' '
	env -u CURL_CA_BUNDLE curl -sS --max-time 30 --noproxy "*" --cacert "$tls/ca.pem" \
		-o info.json -w "%{http_code}" "$base/api/models/$REPO" >code &&
	test "$(cat code)" = 200 &&
	json_check info.json "d[\"sha\"] == \"$main_sha\""
'
expect_success 'the certificate is verified: a client trusting another CA refuses it' '
	rc=0
	env -u CURL_CA_BUNDLE curl -sS --max-time 30 --noproxy "*" --cacert "$tmp/other/ca.pem" \
		-o /dev/null "$base/api/models/$REPO" 2>err || rc=$?
	test "$rc" = 60 || { echo "curl exit $rc"; cat err; false; }
'
expect_success 'absolute links use https:// without --public-url' '
	fetch l "$base/api/models?limit=1" && expect_status l 200 &&
	hdr l Link | grep -Eq "^<https://127\.0\.0\.1:$port/api/models\?[^>]*>; +rel=\"next\""
'
expect_success 'resolve of the 12 MiB LFS file: the same bytes' '
	fetch f "$base/$REPO/resolve/main/model.safetensors" -L &&
	expect_status f 200 && cmp "$(body f)" "$st"
'
expect_success 'a range request over TLS: 206 and the right bytes' '
	fetch r "$base/$REPO/resolve/main/model.safetensors" -L -r 1000000-1999999 &&
	expect_status r 206 &&
	expect_hdr r Content-Range "bytes 1000000-1999999/$st_size" &&
	tail -c +1000001 "$st" | head -c 1000000 >want &&
	cmp "$(body r)" want
'
expect_success 'HEAD over TLS: Content-Length, X-Linked-Size and X-Linked-Etag' '
	fetch_head h "$base/$REPO/resolve/main/model.safetensors" &&
	expect_status h 200 &&
	expect_hdr h Content-Length "$st_size" &&
	expect_hdr h X-Linked-Size "$st_size" &&
	expect_hdr h X-Linked-Etag "\"$st_sha\""
'
expect_success 'keep-alive over TLS: two requests, one connection' '
	hcurl -o /dev/null -o /dev/null -w "%{http_code} %{num_connects}\n" \
		"$base/api/models/$REPO" "$base/$REPO/resolve/main/config.json" >codes &&
	test "$(tr "\n" " " <codes)" = "200 1 200 0 "
'

# --- Clients that do not speak TLS -------------------------------------------

expect_success 'plain HTTP to the TLS port fails cleanly and fast' '
	start=$(date +%s)
	! curl -sS --max-time 10 --noproxy "*" -o out "http://127.0.0.1:$port/api/models" 2>err &&
	test $(($(date +%s) - start)) -lt 5 &&
	! grep -q "\"id\"" out
'
expect_success 'garbage and a silent client are cut within the header timeout' '
	"$PYTHON" - "$port" <<-PY
	import socket, sys, time
	port = int(sys.argv[1])
	def closed_within(sock, limit):
	    t0 = time.time()
	    sock.settimeout(limit + 2)
	    try:
	        while sock.recv(4096):
	            pass
	    except ConnectionResetError:
	        pass
	    return time.time() - t0 <= limit
	g = socket.create_connection(("127.0.0.1", port), timeout=5)
	g.sendall(bytes(range(256)) * 64)
	s = socket.create_connection(("127.0.0.1", port), timeout=5)
	h = socket.create_connection(("127.0.0.1", port), timeout=5)
	h.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello
	ok = closed_within(g, 2) and closed_within(s, 4) and closed_within(h, 4)
	sys.exit(0 if ok else 1)
	PY
'
expect_success 'meanwhile and afterwards, HTTPS is served' '
	fetch ok "$base/api/models/$REPO" && expect_status ok 200
'

# --- The JS client (NODE_EXTRA_CA_CERTS) ------------------------------------------

modules=${HAVEN_JS_MODULES:-$top_srcdir/tests/js/node_modules}
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "${node_major:-0}" -ge 18 ] 2>/dev/null &&
	[ -f "$modules/@huggingface/hub/package.json" ]; then
	mkdir -p "$tmp/js"
	ln -s "$modules" "$tmp/js/node_modules"
	printf '{"type": "module"}\n' >"$tmp/js/package.json"
	cat >"$tmp/js/tls.mjs" <<'EOF_JS'
import { readFile } from "node:fs/promises";
import { downloadFile, modelInfo } from "@huggingface/hub";
const { HAVEN_URL: hubUrl, HAVEN_REPO: name, HAVEN_SHA: sha, HAVEN_FILE: file } = process.env;
let n = 0;
const check = (ok, what) => console.log(`${ok ? "ok" : "not ok"} ${++n} - ${what}`);
const info = await modelInfo({ name, hubUrl, additionalFields: ["sha"] });
check(info.sha === sha, `modelInfo over https: sha ${info.sha}`);
const blob = await downloadFile({ repo: name, hubUrl, path: "model.safetensors" });
const got = Buffer.from(await blob.arrayBuffer());
check(got.equals(await readFile(file)), `downloadFile over https: ${got.length} bytes equal`);
EOF_JS
	HAVEN_URL=$base HAVEN_REPO=$REPO HAVEN_SHA=$main_sha HAVEN_FILE=$st \
		expect_tap_from '@huggingface/hub with NODE_EXTRA_CA_CERTS' \
		timeout 120 node "$tmp/js/tls.mjs"
else
	test_skip '@huggingface/hub with NODE_EXTRA_CA_CERTS' \
		"node >= 18 or @huggingface/hub in $modules is missing"
fi

# --- The Python client (SSL_CERT_FILE) ----------------------------------------------

py=${HAVEN_PYTHON:-$PYTHON}
if [ -n "${HAVEN_HF_HUB_SRC:-}" ] && [ -d "$HAVEN_HF_HUB_SRC/huggingface_hub" ]; then
	cat >"$tmp/tls_hf.py" <<'EOF_PY'
import filecmp, os
from huggingface_hub import HfApi, hf_hub_download
repo, sha, src = os.environ["HAVEN_REPO"], os.environ["HAVEN_SHA"], os.environ["HAVEN_FILE"]
info = HfApi().model_info(repo)
print("%s 1 - model_info over https: sha %s" % ("ok" if info.sha == sha else "not ok", info.sha))
path = hf_hub_download(repo, "model.safetensors")
same = filecmp.cmp(path, src, shallow=False)
print("%s 2 - hf_hub_download over https: bytes equal" % ("ok" if same else "not ok"))
EOF_PY
	HF_ENDPOINT=$base HAVEN_REPO=$REPO HAVEN_SHA=$main_sha HAVEN_FILE=$st \
	PYTHONPATH=$HAVEN_HF_HUB_SRC \
		expect_tap_from 'huggingface_hub with SSL_CERT_FILE' \
		timeout 120 "$py" "$tmp/tls_hf.py"
else
	test_skip 'huggingface_hub with SSL_CERT_FILE' "HAVEN_HF_HUB_SRC is not set"
fi

# --- Tokens never reach the log ----------------------------------------------------

# A real token when the account commands exist, else one in the Hub's
# format: either way the server sees it in every place a client puts it.
token=
if hv user create tlsuser >/dev/null 2>&1; then
	token=$(hv token create --user tlsuser --role write --name tls 2>/dev/null)
fi
case $token in
hf_*) say "a token made with haven token create" ;;
*) token=hf_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d " \n") ;;
esac
expect_success 'requests carrying a token (header, Basic auth, query) are answered' '
	hcurl -o /dev/null -H "Authorization: Bearer $token" "$base/api/whoami-v2" &&
	hcurl -o /dev/null -H "Authorization: Bearer $token" "$base/api/models/$REPO" &&
	hcurl -o /dev/null -u "tlsuser:$token" "$base/$REPO/resolve/main/config.json" &&
	hcurl -o /dev/null "$base/api/models/$REPO?token=$token&x=$token" &&
	hcurl -o /dev/null -H "Authorization: Bearer $token" "$base/no/such/$REPO/path" &&
	fetch ok "$base/api/models/$REPO" && expect_status ok 200
'

# --- git over HTTPS (http.sslCAInfo through GIT_SSL_CAINFO) ----------------------

# git smart HTTP may not be there yet: the row is skipped unless the
# advertisement comes back whole.
gitprobe=none
if CURL_MAX_TIME=10 fetch gitprobe "$base/$REPO.git/info/refs?service=git-upload-pack"; then
	gitprobe=$(status gitprobe)
fi
case $gitprobe in
200)
	expect_success 'git clone over https (GIT_SSL_CAINFO)' '
		GIT_LFS_SKIP_SMUDGE=1 timeout 120 git clone -q "$base/$REPO" clone 2>err &&
		cmp clone/config.json "$MODEL/config.json" &&
		lfs_pointer "$st" >ptr && cmp clone/model.safetensors ptr
	'
	if command -v git-lfs >/dev/null 2>&1; then
		expect_success 'git lfs pull over https: the LFS file, byte for byte' '
			cd clone && git lfs install --local >/dev/null &&
			timeout 120 git lfs pull >../lfs.out 2>&1 &&
			cmp model.safetensors "$st"
		'
	else
		test_skip 'git lfs pull over https' "git-lfs is not installed"
	fi
	expect_success 'git over https with the token as the Basic password' '
		timeout 60 git ls-remote "https://tlsuser:$token@127.0.0.1:$port/$REPO" >refs 2>err &&
		grep -q "$main_sha" refs
	'
	expect_success 'git with a CA it does not know refuses the server' '
		! GIT_SSL_CAINFO=$tmp/other/ca.pem timeout 60 git ls-remote "$base/$REPO" >out 2>err &&
		grep -qi "certificate\|SSL" err
	'
	;;
*)
	test_skip 'git clone over https (GIT_SSL_CAINFO)' \
		"no whole git smart HTTP answer here (status: $gitprobe)"
	test_skip 'git lfs pull over https' \
		"no whole git smart HTTP answer here (status: $gitprobe)"
	test_skip 'git over https with the token as the Basic password' \
		"no whole git smart HTTP answer here (status: $gitprobe)"
	test_skip 'git with a CA it does not know refuses the server' \
		"no whole git smart HTTP answer here (status: $gitprobe)"
	;;
esac

# Last, once every kind of request above has been logged.
expect_success 'the token appears nowhere in the server log (debug level)' '
	grep -q "event=request" server.log &&
	! grep -F "$token" server.log &&
	! grep -F "${token#hf_}" server.log
'
done_testing
