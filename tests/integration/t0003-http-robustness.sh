#!/bin/bash
# The HTTP layer under hostile or broken clients: malformed request lines,
# oversized and too many headers, pipelining, bad bodies, and slow clients
# that stall half-way (they must not hold the only worker). Afterwards the
# server still answers and exits 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"

hv repo create haven-test/robust >/dev/null 2>&1
# One worker thread: a stalled client must not block it.
start_server --threads 1

expect_success 'a malformed request line gets 400' '
	raw_http "GARBAGE\r\n\r\n" >r1 &&
	test "$(raw_status r1)" = 400
'
expect_success 'a request line with a bad version gets 400 or 505' '
	raw_http "GET /api/models HTTP/x.y\r\nHost: a\r\n\r\n" >r2 &&
	case $(raw_status r2) in 400|505) ;; *) cat r2; false;; esac
'
expect_success 'a bare LF-free junk stream gets 400 or a closed connection' '
	raw_http "\x00\x01\x02\x03\xff\xfe\r\n\r\n" >r3 &&
	case $(raw_status r3) in 400|"") ;; *) cat r3; false;; esac
'
expect_success 'a 100 KB header gets 431' '
	big=$(head -c 102400 /dev/zero | tr "\0" a) &&
	raw_http "GET /api/models HTTP/1.1\r\nHost: a\r\nX-Big: $big\r\n\r\n" >r4 &&
	test "$(raw_status r4)" = 431
'
expect_success '5000 small headers get 431 (or 400)' '
	"$PYTHON" -c "
import sys
h = b\"\".join(b\"X-H%d: v\\r\\n\" % i for i in range(5000))
sys.stdout.buffer.write(b\"GET /api/models HTTP/1.1\\r\\nHost: a\\r\\n\" + h + b\"\\r\\n\")
" >flood &&
	raw_http @flood >r5 &&
	case $(raw_status r5) in 431|400) ;; *) head -c 300 r5; false;; esac
'
expect_success 'a 100 KB URL gets 414, 431 or 400' '
	long=$(head -c 102400 /dev/zero | tr "\0" a) &&
	raw_http "GET /$long HTTP/1.1\r\nHost: a\r\n\r\n" >r6 &&
	case $(raw_status r6) in 414|431|400) ;; *) head -c 300 r6; false;; esac
'
expect_success 'an unknown method gets 400, 404, 405 or 501' '
	raw_http "BREW /api/models HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" >r7 &&
	case $(raw_status r7) in 400|404|405|501) ;; *) head -c 300 r7; false;; esac
'
expect_success 'a garbage Content-Length gets 400' '
	raw_http "POST /api/models/haven-test/robust/paths-info/main HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n" >r8 &&
	test "$(raw_status r8)" = 400
'
expect_success 'a negative Content-Length gets 400' '
	raw_http "POST /api/models/haven-test/robust/paths-info/main HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n" >r9 &&
	test "$(raw_status r9)" = 400
'
expect_success 'two pipelined requests get two answers, in order' '
	raw_http --timeout 5 "GET /api/models/haven-test/robust HTTP/1.1\r\nHost: a\r\n\r\nGET /api/models/haven-test/nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" >r10 &&
	grep -ao "HTTP/1\.1 [0-9][0-9][0-9] " r10 | cut -d" " -f2 >codes &&
	test "$(tr "\n" " " <codes)" = "200 401 "
'
expect_success 'HTTP/1.0 without Host is answered' '
	raw_http "GET /api/models HTTP/1.0\r\n\r\n" >r11 &&
	test "$(raw_status r11)" = 200
'

# Slow clients: 20 connections that send half a request and stall, one
# that sends nothing, one that sends half a body. They stay open while
# other requests must still be answered promptly.
"$PYTHON" - "$port" >"$tmp/stall.log" 2>&1 <<'PY' &
import os, socket, ssl, sys, time
port = int(sys.argv[1])
def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if os.environ.get("HAVEN_TEST_TLS") == "1":
        ctx = ssl.create_default_context(cafile=os.environ["HAVEN_TEST_CA"])
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s
socks = []
for i in range(20):
    s = connect()
    s.sendall(b"GET /api/models HTTP/1.1\r\nHost: a\r\nX-Slow: ")
    socks.append(s)
s = connect()
socks.append(s)
s = connect()
s.sendall(b"POST /api/models/haven-test/robust/paths-info/main HTTP/1.1\r\nHost: a\r\n"
          b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"paths\":")
socks.append(s)
print("stalling", flush=True)
time.sleep(15)
PY
stall=$!
i=0
while ! grep -q stalling "$tmp/stall.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_success 'stalled clients are connected' 'grep -q stalling stall.log'
expect_success 'while 22 clients stall, requests are answered within 3 s' '
	for k in 1 2 3 4 5; do
		CURL_MAX_TIME=3 fetch s$k "$base/api/models/haven-test/robust" &&
		expect_status s$k 200 || exit 1
	done
'
expect_success 'a HEAD on resolve is answered while clients stall' '
	CURL_MAX_TIME=3 fetch_head h "$base/haven-test/robust/resolve/main/.gitattributes" &&
	expect_status h 200
'
kill $stall 2>/dev/null
wait $stall 2>/dev/null

expect_success 'a client that connects and closes at once does no harm' '
	for k in 1 2 3 4 5 6 7 8 9 10; do
		"$PYTHON" -c "import socket,sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1]))).close()" "$port"
	done &&
	fetch ok "$base/api/models" && expect_status ok 200
'
expect_success 'a client that resets mid-download does no harm' '
	"$PYTHON" - "$port" <<PY &&
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.sendall(b"GET /haven-test/robust/resolve/main/.gitattributes HTTP/1.1\r\nHost: a\r\n\r\n")
s.close()
PY
	fetch ok "$base/api/models" && expect_status ok 200
'
expect_success '50 parallel requests are all answered' '
	for k in $(seq 1 50); do
		hcurl -o /dev/null -w "%{http_code}\n" "$base/api/models/haven-test/robust" &
	done >par 2>&1; wait &&
	test "$(grep -c "^200$" par)" = 50
'
expect_success 'the server still answers' '
	fetch ok "$base/api/models/haven-test/robust" && expect_status ok 200
'
done_testing
