#!/bin/bash
# `haven serve` refuses to start, with one clear line on stderr, a non-zero
# status and within seconds, when its port is taken, its data folder is
# unusable or its configuration is wrong.
. "$(dirname "$0")/lib.sh"

# refuses NAME ARGS...: run `haven serve ARGS...` (bounded); it must exit
# non-zero within 15 s and say something on stderr. Output in NAME.out/.err.
refuses() {
	local name=$1 rc
	shift
	timeout 15 "$HAVEN" serve "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
	rc=$?
	if [ $rc -eq 124 ]; then
		echo "haven serve $* was still running after 15 s"
		return 1
	fi
	if [ $rc -eq 0 ]; then
		echo "haven serve $* exited 0"
		return 1
	fi
	if [ ! -s "$tmp/$name.err" ]; then
		echo "haven serve $* exited $rc but said nothing on stderr"
		return 1
	fi
	echo "stderr: $(cat "$tmp/$name.err")"
	# One clear line: no more than two lines (allowing a usage hint).
	[ "$(grep -c . "$tmp/$name.err")" -le 2 ] || {
		echo "more than two lines on stderr"
		return 1
	}
}

start_server
expect_success 'a port taken by another haven: refused' '
	refuses taken --data "$tmp/data2" --listen "127.0.0.1:$port" --port-file "$tmp/p2" &&
	grep -Eiq "$port|in use|address|bind|listen" taken.err
'
expect_success 'the first server still answers' '
	fetch l "$base/api/models" && expect_status l 200
'

# A port held by a plain socket that is not haven's.
"$PYTHON" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(60)
' >"$tmp/other.port" 2>/dev/null &
other=$!
i=0
while [ ! -s "$tmp/other.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
other_port=$(cat "$tmp/other.port")
expect_success 'a port taken by another program: refused' '
	test -n "$other_port" &&
	refuses other --data "$tmp/data3" --listen "127.0.0.1:$other_port" --port-file "$tmp/p3"
'
kill $other 2>/dev/null
wait $other 2>/dev/null

touch "$tmp/a-file"
expect_success 'a data path that is a regular file: refused' '
	refuses datafile --data "$tmp/a-file" --listen 127.0.0.1:0 --port-file "$tmp/p4"
'
expect_success 'a data path below a regular file: refused' '
	refuses datasub --data "$tmp/a-file/sub" --listen 127.0.0.1:0 --port-file "$tmp/p5"
'
expect_success 'a port file that cannot be written: refused' '
	refuses portfile --data "$tmp/data6" --listen 127.0.0.1:0 --port-file "$tmp/a-file/port"
'
expect_success '--threads abc: refused' '
	refuses threads --data "$tmp/data7" --listen 127.0.0.1:0 --threads abc
'
expect_success '--listen without a port: refused' '
	refuses listen --data "$tmp/data8" --listen nonsense
'
expect_success '--listen with port 99999: refused' '
	refuses listen2 --data "$tmp/data8" --listen 127.0.0.1:99999
'
expect_success '--sync-interval that is not a duration: refused, naming the setting' '
	refuses sync1 --data "$tmp/data8" --sync-interval 5x &&
	grep -q "sync_interval" sync1.err &&
	refuses sync2 --data "$tmp/data8" --sync-interval 0 &&
	refuses sync3 --data "$tmp/data8" --sync-interval 400d
'
expect_success '--print-config writes a duration back as seconds' '
	"$HAVEN" serve --sync-interval 2h --print-config >pc &&
	grep -qx "#sync_interval 7200s" pc
'
printf 'listen 127.0.0.1:0\nthreads abc\n' >"$tmp/bad.conf"
expect_success 'threads abc in the config file: refused, naming the value' '
	refuses badconf --config "$tmp/bad.conf" --data "$tmp/data9" &&
	grep -Eq "threads|abc" badconf.err
'
expect_success 'a missing config file: refused' '
	refuses noconf --config "$tmp/no-such.conf" --data "$tmp/data10"
'
printf 'listen 127.0.0.1:0\nno_such_setting 1\n' >"$tmp/unknown.conf"
expect_success 'an unknown key in the config file: refused' '
	refuses unknownconf --config "$tmp/unknown.conf" --data "$tmp/data11"
'
expect_success 'the first server still answers after all that' '
	fetch l "$base/api/models" && expect_status l 200
'
done_testing
