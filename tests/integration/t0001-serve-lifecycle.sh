#!/bin/bash
# Lifecycle of `haven serve`: help texts, start on port 0 with a port file,
# configuration file and flag precedence, public URL in absolute links,
# SIGINT and SIGTERM with a download in flight, clean exit (leak checks).
. "$(dirname "$0")/lib.sh"

expect_success 'haven --help exits 0 and lists serve' '
	"$HAVEN" --help >out 2>&1 && grep -q serve out
'
expect_success 'haven serve --help exits 0 and names its flags' '
	"$HAVEN" serve --help >out 2>&1 &&
	grep -q -- --listen out && grep -q -- --data out && grep -q -- --public-url out
'
expect_success 'an unknown subcommand exits non-zero with a message' '
	! "$HAVEN" no-such-command >out 2>err && test -s err
'
expect_success 'an unknown serve flag exits non-zero' '
	! timeout 10 "$HAVEN" serve --no-such-flag --data "$DATA" >out 2>err && test -s err
'

# Two empty repos, so that listing with limit=1 has a next page.
hv repo create haven-test/first >/dev/null 2>&1
hv repo create haven-test/second >/dev/null 2>&1
mkdir -p "$tmp/big"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$tmp/big/model.safetensors"
hv import "$tmp/big" --repo haven-test/big -m "big file" >/dev/null 2>&1

start_server
expect_success 'the port file holds the bound port and the server answers' '
	fetch l "$base/api/models" && expect_status l 200 &&
	json_check "$(body l)" "isinstance(d, list) and len(d) >= 3"
'
expect_success 'without --public-url, Link URLs use the bound address' '
	fetch l "$base/api/models?limit=1" && expect_status l 200 &&
	hdr l Link | grep -Eq "^<$scheme://127\.0\.0\.1:$port/api/models\?[^>]*>; +rel=\"next\""
'
stop_server INT

# Configuration file; flags override it.
cat >"$tmp/haven.conf" <<CONF
# Haven test configuration
listen 127.0.0.1:0
data $DATA
public_url http://config.example:8080
threads 2
log_level info
CONF
pf=$tmp/port.conf
"$HAVEN" serve --config "$tmp/haven.conf" --port-file "$pf" >>"$tmp/server.log" 2>&1 </dev/null &
server_pid=$!
server_pids=" $server_pid"
i=0
while [ ! -s "$pf" ] && [ $i -lt 300 ] && kill -0 "$server_pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
port=$(tr -d " \r\n" <"$pf" 2>/dev/null)
base=http://127.0.0.1:$port
expect_success 'serve --config reads listen, data and public_url from the file' '
	fetch l "$base/api/models?limit=1" && expect_status l 200 &&
	hdr l Link | grep -Eq "^<http://config\.example:8080/api/models\?[^>]*>; +rel=\"next\""
'
# A download that takes a minute at this rate is in flight at SIGTERM.
# (curl itself, not the hcurl function, so that $! is curl's pid.)
curl -sS --max-time 120 --noproxy '*' -o /dev/null --limit-rate 200k \
	"$base/haven-test/big/resolve/main/model.safetensors" >/dev/null 2>&1 </dev/null &
slow=$!
sleep 1
expect_success 'the slow download is still in flight' 'kill -0 $slow'
stop_server TERM
kill $slow 2>/dev/null
wait $slow 2>/dev/null

start_server --config "$tmp/haven.conf" --public-url http://flag.example:9090 --threads 1
expect_success '--public-url and --listen on the command line override the file' '
	fetch l "$base/api/models?limit=1" && expect_status l 200 &&
	hdr l Link | grep -Eq "^<http://flag\.example:9090/api/models\?[^>]*>; +rel=\"next\""
'
expect_success 'keep-alive: two requests on one connection' '
	hcurl -o /dev/null -o /dev/null -w "%{http_code}\n" "$base/api/models" "$base/api/models/haven-test/first" >codes &&
	test "$(cat codes | tr "\n" " ")" = "200 200 "
'
done_testing
