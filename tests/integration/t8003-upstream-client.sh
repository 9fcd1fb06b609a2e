#!/bin/bash
# `haven mirror` against an upstream that misbehaves the way real networks
# do. A small HTTP stub stands between the mirror and a real Haven upstream
# on loopback: it passes every request on, except those its fault list
# names, and logs each request it sees. Checked through the CLI: 429 and
# 503 answers are retried after the wait that Retry-After or the Hub's
# RateLimit header asks for, and the run then succeeds or fails for the
# real reason; --retries 0 fails at once; the proxy from the environment
# is used (http_proxy and NO_PROXY for an http:// upstream's API and file
# requests; HTTPS_PROXY, as a CONNECT tunnel, for everything an https://
# upstream is asked, the git fetch included); an LFS download cut halfway
# resumes with a Range request, also when the upstream answers it with
# the whole file; wrong bytes are refused and no ref is published.
. "$(dirname "$0")/lib.sh"

[ "$scheme" = https ] && skip_all "the stub upstream speaks plain HTTP"
REPO=haven-test/up
mkdir -p "$tmp/src"
head -c $((20 << 20)) /dev/urandom >"$tmp/src/weights.bin"
echo '{"model_type": "haven-test"}' >"$tmp/src/config.json"
oid=$(sha256_of "$tmp/src/weights.bin")
hv import "$tmp/src" --repo "$REPO" >/dev/null 2>&1 || {
	echo "Bail out! cannot seed the upstream"
	exit 1
}
start_server
up_port=$port
# Sanitizer reports from the haven processes started from here on (in a
# sanitizer build) go to files, checked at the end: a run that is meant
# to fail must not hide one.
ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$tmp/san"
UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$tmp/san"

# The stub: an HTTP/1.1 server on 127.0.0.1 (port 0, written to a file)
# that forwards to the upstream. It also accepts a proxy's absolute-URI
# requests ("GET http://host/path"). Before each request it reads
# $tmp/faults.json: a list of [REGEX, [FAULT...]] rules; the first rule
# whose REGEX matches the path takes its next unused FAULT (the counters
# start over when the file changes):
#   {"status": N, "headers": {...}}  answer N itself, nothing forwarded
#   {"cut": N}      forward, but close the connection after N body bytes
#   {"full": 1}     forward without the Range header: 200, whole body
#   {"flip": 1}     forward with one byte of the body changed
#   {"pass": 1}     forward as it is
# A CONNECT is logged and tunnelled to the port in $tmp/tunnel.port,
# whatever host it names.
# A rule whose last fault has "repeat" keeps applying that one. Every
# request is logged to $tmp/stub.log as one JSON line.
cat >"$tmp/stub.py" <<'EOF_PY'
import http.client, http.server, json, os, re, select, socket, socketserver, sys, threading, time

port_file, upstream_port, faults_file, log_file, tunnel_file = sys.argv[1:6]
lock = threading.Lock()
state = {"text": None, "used": {}}
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
       "content-length", "te", "trailer", "upgrade", "host"}

def next_fault(path):
    with lock:
        try:
            text = open(faults_file).read()
        except OSError:
            text = "[]"
        if text != state["text"]:
            state["text"], state["used"] = text, {}
        for i, (rx, faults) in enumerate(json.loads(text)):
            if not re.search(rx, path):
                continue
            k = state["used"].get(i, 0)
            if k < len(faults):
                state["used"][i] = k + 1
                return faults[k]
            if faults and faults[-1].get("repeat"):
                return faults[-1]
            return None
    return None

class Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body_in(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else None

    def handle_any(self):
        target = self.path
        path = re.sub(r"^[a-z]+://[^/]*", "", target) or "/"
        body = self.body_in()
        fault = next_fault(path) or {}
        with lock, open(log_file, "a") as f:
            f.write(json.dumps({"t": time.time(), "method": self.command,
                                "target": target, "path": path,
                                "range": self.headers.get("Range"),
                                "fault": fault}) + "\n")
        if "status" in fault:
            msg = b'{"error": "stub says %d"}' % fault["status"]
            self.send_response(fault["status"])
            for k, v in fault.get("headers", {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP and not k.lower().startswith("proxy-")}
        if fault.get("full"):
            headers.pop("Range", None)
        c = http.client.HTTPConnection("127.0.0.1", int(upstream_port), timeout=30)
        c.request(self.command, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        if fault.get("flip") and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xff]) + data[i + 1:]
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if "cut" in fault:
            self.wfile.write(data[:fault["cut"]])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = do_PUT = handle_any

    def do_CONNECT(self):
        # a tunnel, to the port named in tunnel.port whatever the host
        with lock, open(log_file, "a") as f:
            f.write(json.dumps({"t": time.time(), "method": "CONNECT",
                                "target": self.path, "path": "",
                                "range": None, "fault": {}}) + "\n")
        up = socket.create_connection(("127.0.0.1", int(open(tunnel_file).read())))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        socks = [self.connection, up]
        while True:
            ready, _, _ = select.select(socks, [], [], 30)
            if not ready:
                break
            for s in ready:
                data = s.recv(65536)
                if not data:
                    up.close()
                    self.close_connection = True
                    return
                (up if s is self.connection else self.connection).sendall(data)
        up.close()
        self.close_connection = True

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

srv = Server(("127.0.0.1", 0), Stub)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
EOF_PY
echo '[]' >"$tmp/faults.json"
"$PYTHON" "$tmp/stub.py" "$tmp/stub.port" "$up_port" "$tmp/faults.json" \
	"$tmp/stub.log" "$tmp/tunnel.port" >"$tmp/stub.err" 2>&1 </dev/null &
stub_pid=$!
server_pids="$server_pids $stub_pid"
i=0
while [ ! -s "$tmp/stub.port" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -s "$tmp/stub.port" ] || {
	echo "Bail out! the stub upstream did not start"
	sed -e 's/^/#   /' "$tmp/stub.err"
	exit 1
}
stub=http://127.0.0.1:$(cat "$tmp/stub.port")

# faults JSON: the stub's rules for the next run; clears its log.
faults() {
	printf '%s\n' "$1" >"$tmp/faults.json" && : >"$tmp/stub.log"
}

# stub_log EXPR: evaluate a Python expression over the stub's log, with
# r = the list of requests (dicts) and g(rx) = those whose path matches.
stub_log() {
	"$PYTHON" - "$tmp/stub.log" "$1" <<'EOF_PY'
import json, re, sys
r = [json.loads(l) for l in open(sys.argv[1])]
g = lambda rx: [x for x in r if re.search(rx, x["path"])]
gap = lambda a, b: b["t"] - a["t"]
ok = eval(sys.argv[2])
if not ok:
    print("stub log check failed: " + sys.argv[2])
    for x in r:
        print("  %.2f %s %s range=%s fault=%s" % (x["t"] - r[0]["t"], x["method"],
              x["target"], x["range"], x["fault"]))
sys.exit(0 if ok else 1)
EOF_PY
}

# mirror DATA ARGS...: `haven mirror` through the stub, timed: the
# seconds go to $tmp/secs. Output in $tmp/out and $tmp/err.
mirror() {
	local d=$1 t0 rc
	shift
	t0=$(date +%s.%N)
	"$HAVEN" mirror --from "$stub" --data "$d" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }' >"$tmp/secs"
	return $rc
}

# secs_between LOW HIGH: the last mirror run took LOW to HIGH seconds.
secs_between() {
	local s
	s=$(cat "$tmp/secs")
	awk -v s="$s" -v lo="$1" -v hi="$2" 'BEGIN { exit !(s >= lo && s < hi) }' ||
		{ echo "took $s s, expected $1 to $2"; return 1; }
}

# refs_in DATA: the branches and tags of the mirrored repository.
refs_in() {
	local g
	for g in "$1"/git/*.git; do
		[ -d "$g" ] && git --git-dir="$g" for-each-ref refs/heads refs/tags
	done
}

# blob_ok DATA: the mirrored LFS object is the source's, byte for byte.
blob_ok() {
	cmp "$1/blobs/sha256/${oid:0:2}/${oid:2:2}/$oid" "$tmp/src/weights.bin"
}

API='^/api/models/'
RESOLVE='/resolve/'

# --- Retries ---------------------------------------------------------------

faults '[["'$API'", [{"status": 429, "headers": {"Retry-After": "2"}}, {"status": 503}]]]'
expect_success 'a 429 with Retry-After: 2 and a 503 are retried, then the mirror succeeds' '
	mirror "$tmp/m1" "$REPO" &&
	grep -q "mirrored 1 of 1 repositories" out &&
	blob_ok "$tmp/m1" && test -n "$(refs_in "$tmp/m1")" &&
	stub_log "len(g(\"$API\")) == 3"
'
expect_success 'the first retry waited the 2 s of Retry-After, not the 1 s backoff' '
	stub_log "2.0 <= gap(g(\"$API\")[0], g(\"$API\")[1]) < 3.5" &&
	stub_log "1.5 <= gap(g(\"$API\")[1], g(\"$API\")[2]) < 3.5"
'

faults '[["'$RESOLVE'", [{"status": 429, "headers": {"RateLimit": "\"api\";r=0;t=2", "RateLimit-Policy": "\"fixed window\";\"api\";q=500;w=300"}}]]]'
expect_success 'a file download answered 429 with RateLimit r=0;t=2 waits 2 s, then succeeds' '
	mirror "$tmp/m2" "$REPO" && blob_ok "$tmp/m2" &&
	stub_log "len(g(\"$RESOLVE\")) == 2 and 2.0 <= gap(*g(\"$RESOLVE\")) < 3.5"
'

faults '[["'$API'", [{"status": 503, "headers": {"RateLimit": "\"api\";r=450;t=40"}}]]]'
expect_success 'a 503 whose RateLimit leaves quota is retried after the short backoff' '
	mirror "$tmp/m3" "$REPO" && blob_ok "$tmp/m3" &&
	stub_log "len(g(\"$API\")) == 2 and gap(*g(\"$API\")) < 3" &&
	secs_between 0.5 10
'

faults '[["'$API'", [{"status": 503}]]]'
expect_success 'after a retried 503 the run fails for the real reason: not found' '
	! mirror "$tmp/m4" haven-test/nope &&
	grep -q "not found" err && ! grep -q 503 err &&
	stub_log "len(g(\"$API\")) == 2" &&
	test -z "$(refs_in "$tmp/m4")"
'

faults '[["'$API'", [{"status": 503, "repeat": 1}]]]'
expect_success 'a 503 that persists fails after --retries 2, with the status in the message' '
	! mirror "$tmp/m5" "$REPO" --retries 2 &&
	grep -q "503" err && stub_log "len(g(\"$API\")) == 3" &&
	secs_between 2.5 8
'
faults '[["'$API'", [{"status": 503, "repeat": 1}]]]'
expect_success 'with --retries 0 a 503 fails at once, with a clear message' '
	! mirror "$tmp/m6" "$REPO" --retries 0 &&
	grep -q "upstream answered 503" err &&
	stub_log "len(r) == 1" && secs_between 0 1
'
faults '[]'

# --- Proxies from the environment ----------------------------------------------

faults '[]'
expect_success 'with http_proxy set, API and file requests go to the proxy as absolute URIs' '
	env -u NO_PROXY -u no_proxy http_proxy="$stub" \
		"$HAVEN" mirror --from "$base" --data "$tmp/p1" "$REPO" >out 2>err &&
	blob_ok "$tmp/p1" &&
	stub_log "len(g(\"$API\")) == 1 and len(g(\"$RESOLVE\")) == 1" &&
	stub_log "all(x[\"target\"].startswith(\"$base/\") for x in r)"
'
faults '[]'
expect_success 'NO_PROXY naming the upstream host bypasses the proxy' '
	env -u no_proxy http_proxy="$stub" NO_PROXY=127.0.0.1 \
		"$HAVEN" mirror --from "$base" --data "$tmp/p2" "$REPO" >out 2>err &&
	blob_ok "$tmp/p2" && test ! -s "$tmp/stub.log"
'

# An https upstream behind HTTPS_PROXY, as in an enterprise network: a
# second upstream speaks TLS with a certificate for upstream.invalid, a
# name that does not resolve, so only the proxy's tunnel can reach it.
# (libgit2 1.5 uses the proxy for https:// remotes only, which is why this
# is the case that proves the git fetch goes through it.)
tls=$tmp/tls-up
mkdir -p "$tls" &&
	printf 'subjectAltName=DNS:upstream.invalid\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$tls/ext.cnf" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/ca.key" \
		-out "$tls/ca.pem" -days 2 -subj "/CN=Haven Test CA" >"$tls/log" 2>&1 &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/server.key" \
		-out "$tls/server.csr" -subj "/CN=upstream.invalid" >>"$tls/log" 2>&1 &&
	openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
		-out "$tls/server.pem" -days 2 -extfile "$tls/ext.cnf" >>"$tls/log" 2>&1 &&
	"$HAVEN" import "$tmp/src" --repo "$REPO" --data "$tmp/up2" >/dev/null 2>&1 || {
	echo "Bail out! cannot set up the https upstream"
	sed -e 's/^/#   /' "$tls/log"
	exit 1
}
"$HAVEN" serve --data "$tmp/up2" --listen 127.0.0.1:0 --port-file "$tmp/tunnel.port" \
	--tls-cert "$tls/server.pem" --tls-key "$tls/server.key" >>"$tmp/server.log" 2>&1 </dev/null &
tls_pid=$!
server_pids="$server_pids $tls_pid"
i=0
while [ ! -s "$tmp/tunnel.port" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
faults '[]'
expect_success 'with HTTPS_PROXY set, the API calls, the git fetch and the files all go through its tunnel' '
	env -u NO_PROXY -u no_proxy -u https_proxy HTTPS_PROXY="$stub" \
		"$HAVEN" mirror --from https://upstream.invalid --ca-bundle "$tls/ca.pem" \
		--data "$tmp/p3" "$REPO" >out 2>err &&
	blob_ok "$tmp/p3" &&
	g=$(ls -d "$tmp"/up2/git/*.git) &&
	test "$(refs_in "$tmp/p3")" = "$(git --git-dir="$g" for-each-ref refs/heads refs/tags)" &&
	stub_log "len(r) >= 2 and all(x[\"method\"] == \"CONNECT\" and x[\"target\"] == \"upstream.invalid:443\" for x in r)"
'
kill "$tls_pid" 2>/dev/null
wait "$tls_pid" 2>/dev/null
server_pids=$(echo "$server_pids" | sed "s/ $tls_pid\b//")

# --- Interrupted and wrong downloads ----------------------------------------------

faults '[["'$RESOLVE'", [{"cut": 7340032}]]]'
expect_success 'a download cut after 7 MiB resumes with a Range request from there' '
	mirror "$tmp/d1" "$REPO" --json >/dev/null && blob_ok "$tmp/d1" &&
	stub_log "len(g(\"$RESOLVE\")) == 2 and g(\"$RESOLVE\")[1][\"range\"] == \"bytes=7340032-$(((20 << 20) - 1))\"" &&
	json_check out "d[\"failed\"] == 0 and d[\"bytesFetched\"] == $((20 << 20))"
'

faults '[["'$RESOLVE'", [{"cut": 5000000}, {"full": 1}]]]'
expect_success 'a resumed download answered 200 with the whole file keeps the right bytes' '
	mirror "$tmp/d2" "$REPO" && blob_ok "$tmp/d2" &&
	stub_log "len(g(\"$RESOLVE\")) == 2 and g(\"$RESOLVE\")[1][\"range\"].startswith(\"bytes=5000000-\")" &&
	"$HAVEN" fsck --data "$tmp/d2" >fsck.out 2>&1 && grep -q " 0 problems" fsck.out
'

faults '[["'$RESOLVE'", [{"flip": 1}]]]'
expect_success 'wrong bytes are refused with a clear message, no ref and no object kept' '
	! mirror "$tmp/d3" "$REPO" &&
	grep -q "weights.bin: upstream bytes hash to" err &&
	test -z "$(refs_in "$tmp/d3")" &&
	test ! -e "$tmp/d3/blobs/sha256/${oid:0:2}/${oid:2:2}/$oid" &&
	test -z "$(ls "$tmp/d3/tmp" 2>/dev/null | grep "^mirror-")"
'
faults '[]'
expect_success 'the next run over the same folder fetches the right bytes and publishes' '
	mirror "$tmp/d3" "$REPO" && blob_ok "$tmp/d3" &&
	test "$(refs_in "$tmp/d3" | wc -l)" -eq 1
'

expect_success 'no sanitizer reports from the haven processes' '
	test -z "$(ls "$tmp"/san.* 2>/dev/null)" || { head -n 40 "$tmp"/san.*; false; }
'
kill "$stub_pid" 2>/dev/null
wait "$stub_pid" 2>/dev/null
server_pids=$(echo "$server_pids" | sed "s/ $stub_pid\b//")
done_testing
