#!/bin/bash
# `haven blobs migrate` against a real Ceph RADOS Gateway on loopback
# (tests/s3/rgw.sh): a server on local blobs keeps answering downloads,
# each checked byte for byte, while its blobs move to S3 and back; every
# upload acknowledged during the move to S3 ends up there; after each
# move uploads (the LFS batch API and a PUT) land in the new store, old
# files still download, `haven fsck --deep` is clean, and a second run
# does nothing. Mid-migration reads fall back to the old store, and gc
# and another migration are refused; an interrupted move is finished by
# the same command, also with no server running. Bad input (a missing
# bucket, a bad URL, missing or wrong keys, no endpoint, a folder that is
# not the data folder's blobs/) is refused and changes nothing. When RGW
# cannot run here the script is skipped with the reason;
# HAVEN_REQUIRE_S3=1 makes that a failure.
. "$(dirname "$0")/lib.sh"

S3=$top_builddir/tests/s3/s3-tool
B=haven-t9103
URL=s3://$B/moved

[ "$scheme" = https ] && skip_all "the S3 checks run over plain HTTP (HAVEN_TEST_TLS=1)"
[ -n "${HAVEN_TEST_BLOBS:-}" ] && skip_all "runs its own S3 setup (HAVEN_TEST_BLOBS is set)"
[ -x "$S3" ] || skip_all "tests/s3/s3-tool is not built (run make first)"

rgw_start_or_skip
EP=$HAVEN_S3_ENDPOINT
"$S3" mb $B >/dev/null || { echo "Bail out! cannot create bucket $B"; exit 1; }

s3_keys() { "$S3" ls $B moved/sha256/ | cut -d' ' -f1 | sed 's|.*/||' | sort; }
local_keys() { find "$DATA/blobs/sha256" -type f -printf '%f\n' | sort; }
code_of() {
	"$@" >out 2>err
	echo $?
}

# --- a server on local blobs, with a model and a 20 MiB file -----------------

hv user create alice >/dev/null 2>&1 && hv repo create alice/up >/dev/null 2>&1 || {
	echo "Bail out! cannot create the user and repository"
	exit 1
}
WTOK=$(hv token create --user alice --role write 2>/dev/null)
setup_model_repo
head -c $((20 << 20)) /dev/urandom >"$tmp/big.bin"
mkdir -p "$tmp/bigrepo" && cp "$tmp/big.bin" "$tmp/bigrepo/big.bin"
hv import "$tmp/bigrepo" --repo haven-test/Big -m big >/dev/null 2>"$tmp/big.err" || {
	echo "Bail out! import of big.bin failed"
	sed 's/^/# /' "$tmp/big.err"
	exit 1
}
start_server
local_keys >"$tmp/keys.before"

# The downloader: until $tmp/stop exists, GET three LFS files and a small
# one over and over and compare every body with its source.
downloads() {
	local i=0 f rc
	while [ ! -e "$tmp/stop" ]; do
		for f in "$REPO/resolve/main/model.safetensors=$MODEL/model.safetensors" \
			"$REPO/resolve/main/sub/weights.bin=$MODEL/sub/weights.bin" \
			"haven-test/Big/resolve/main/big.bin=$tmp/big.bin" \
			"$REPO/resolve/main/config.json=$MODEL/config.json"; do
			i=$((i + 1))
			curl -sf --noproxy '*' --max-time 30 -o "$tmp/dl.body" "$base/${f%%=*}"
			rc=$?
			if [ $rc -ne 0 ] || ! cmp -s "$tmp/dl.body" "${f#*=}"; then
				echo "download $i of ${f%%=*}: curl status $rc, $(size_of "$tmp/dl.body") bytes, at $(date +%T.%N)" >>"$tmp/dl.failed"
			fi
			echo $i >"$tmp/dl.count"
		done
	done
}
downloads &
dl_pid=$!

# --- bad input changes nothing ----------------------------------------------

unchanged() {
	test ! -e "$DATA/blobs.conf" && local_keys | cmp -s - "$tmp/keys.before" &&
		test -z "$(s3_keys)"
}

expect_success 'a bucket that does not exist is refused' '
	test "$(code_of hv blobs migrate --to s3://no-such-bucket-9103 --s3-endpoint "$EP")" = 1 &&
	grep -q "bucket .no-such-bucket-9103. does not exist" err &&
	! "$S3" ls no-such-bucket-9103 >/dev/null 2>&1 && unchanged
'

expect_success 'malformed targets are refused with what is expected' '
	test "$(code_of hv blobs migrate --to s3://AB --s3-endpoint "$EP")" = 1 &&
	grep -q "invalid bucket" err &&
	test "$(code_of hv blobs migrate --to ftp://x/y)" = 1 &&
	grep -q "local blobs live only in the data folder" err &&
	mkdir -p "$tmp/elsewhere" &&
	test "$(code_of hv blobs migrate --to "$tmp/elsewhere")" = 1 &&
	grep -q "expected local, that folder or s3://" err &&
	test "$(code_of hv blobs migrate)" = 1 && grep -q "needs --to" err &&
	test "$(code_of hv blobs migrate --to "$URL" --s3-endpoint "ftp://$EP")" = 1 &&
	unchanged
'

expect_success 'missing or wrong keys and a missing endpoint are refused' '
	test "$(code_of env -u AWS_ACCESS_KEY_ID "$HAVEN" blobs migrate --data "$DATA" --to "$URL" --s3-endpoint "$EP")" = 1 &&
	grep -q "no S3 keys" err &&
	test "$(code_of env AWS_SECRET_ACCESS_KEY=wrong "$HAVEN" blobs migrate --data "$DATA" --to "$URL" --s3-endpoint "$EP")" = 1 &&
	grep -q "SignatureDoesNotMatch" err &&
	test "$(code_of env -u HAVEN_S3_ENDPOINT "$HAVEN" blobs migrate --data "$DATA" --to "$URL")" = 1 &&
	grep -q "no S3 endpoint" err &&
	unchanged
'

# --- to S3 while serving ----------------------------------------------------

# The uploader: until $tmp/stop.up exists, new objects through the LFS
# batch API and a PUT; the sha256 of each acknowledged one goes to up.ok.
# Those that land in the old store around the switch must be copied too.
uploads() {
	local i=0 f oid href
	while [ ! -e "$tmp/stop.up" ]; do
		i=$((i + 1))
		f=$tmp/up.$i
		head -c 50000 /dev/urandom >"$f"
		oid=$(sha256_of "$f")
		href=$(curl -sf --noproxy '*' -X POST -H "Authorization: Bearer $WTOK" \
			-H "Accept: application/vnd.git-lfs+json" \
			-H "Content-Type: application/vnd.git-lfs+json" \
			--data-binary "{\"operation\":\"upload\",\"objects\":[{\"oid\":\"$oid\",\"size\":50000}]}" \
			"$base/alice/up.git/info/lfs/objects/batch" |
			"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["objects"][0]["actions"]["upload"]["href"])') &&
			curl -sf --noproxy '*' -o /dev/null -T "$f" "$href" &&
			echo "$oid" >>"$tmp/up.ok" ||
			echo "upload $i failed" >>"$tmp/up.failed"
	done
}
uploads &
up_pid=$!
sleep 0.5

expect_success 'migrate --to s3:// copies every object, verified, while serving' '
	test "$(code_of hv blobs migrate --to "$URL" --s3-endpoint "$EP")" = 0 &&
	grep -q "moved blobs from local to $URL: [0-9]* objects" out &&
	grep -q "the running server switched over" out &&
	grep -q "^haven: copied [0-9a-f]\{64\} (" err &&
	s3_keys | comm -23 "$tmp/keys.before" - | ( ! grep . ) &&
	grep -qx "blobs $URL" "$DATA/blobs.conf" &&
	grep -qx "s3_endpoint $EP" "$DATA/blobs.conf" &&
	! grep -q "^previous" "$DATA/blobs.conf" &&
	grep -q "event=blob_store_switch location=$URL" "$tmp/server.log"
'

touch "$tmp/stop.up"
wait "$up_pid"
expect_success 'every upload acknowledged during the move is in S3' '
	if test -e "$tmp/up.failed"; then cat "$tmp/up.failed"; false; fi &&
	test "$(wc -l <"$tmp/up.ok")" -ge 3 && s3_keys >s3.now &&
	! sort "$tmp/up.ok" | comm -23 - s3.now | grep .
'
say "$(wc -l <"$tmp/up.ok") uploads during the move to S3"
n_up=$(wc -l <"$tmp/up.ok")

expect_success 'the local files are left in place' '
	local_keys | comm -23 "$tmp/keys.before" - | ( ! grep . )
'

# upload NAME FILE: the LFS batch upload of FILE to alice/up and its PUT.
upload() {
	local oid size href
	oid=$(sha256_of "$2")
	size=$(size_of "$2")
	fetch "$1" -X POST -H "Authorization: Bearer $WTOK" \
		-H "Accept: application/vnd.git-lfs+json" \
		-H "Content-Type: application/vnd.git-lfs+json; charset=utf-8" \
		--data-binary "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$oid\",\"size\":$size}],\"hash_algo\":\"sha256\"}" \
		"$base/alice/up.git/info/lfs/objects/batch" && expect_status "$1" 200 || return 1
	href=$(json "$(body "$1")" 'd["objects"][0]["actions"]["upload"]["href"]')
	fetch "$1.put" -T "$2" "$href" && expect_status "$1.put" 200
}

head -c 300000 /dev/urandom >"$tmp/new1.bin"
expect_success 'after it, an upload through the server lands in S3, not on disk' '
	upload u1 "$tmp/new1.bin" &&
	s3_keys | grep -qx "$(sha256_of "$tmp/new1.bin")" &&
	! local_keys | grep -qx "$(sha256_of "$tmp/new1.bin")"
'

expect_success 'haven import after it writes to S3 too, and the file downloads' '
	mkdir -p "$tmp/r2" && head -c 200000 /dev/urandom >"$tmp/r2/w.bin" &&
	hv import "$tmp/r2" --repo haven-test/After -m after >/dev/null &&
	s3_keys | grep -qx "$(sha256_of "$tmp/r2/w.bin")" &&
	fetch a1 "$base/haven-test/After/resolve/main/w.bin" && expect_status a1 200 &&
	cmp "$(body a1)" "$tmp/r2/w.bin"
'

expect_success 'fsck --deep re-hashes the objects in S3: clean' '
	hv fsck --deep >fsck.out 2>&1 && cat fsck.out &&
	grep -q ": 0 problems" fsck.out &&
	grep -q "$(( $(wc -l <"$tmp/keys.before") + n_up + 2 )) blobs re-hashed" fsck.out
'

expect_success 'status says where the blobs are and how many' '
	hv blobs status --json >st.json &&
	json_check st.json "d[\"location\"] == \"$URL\" and d[\"migrating_from\"] is None and d[\"objects\"] == $(( $(wc -l <"$tmp/keys.before") + n_up + 2 ))"
'

expect_success 'a second run does nothing' '
	test "$(code_of hv blobs migrate --to "$URL" --s3-endpoint "$EP" --json)" = 0 &&
	json_check out "d[\"noop\"] and d[\"copied\"] == 0"
'

# Mid-migration by hand: blobs.conf names an empty store, with the real
# one as `previous`. Every read misses there and must fall back (the
# downloader goes on meanwhile); gc and another migration are refused.
cp "$DATA/blobs.conf" "$tmp/conf.saved"
printf "blobs %s\ns3_endpoint %s\nprevious %s\nprevious_s3_endpoint %s\nserial 99\n" \
	"s3://$B/empty" "$EP" "$URL" "$EP" >"$DATA/blobs.conf.new"
mv "$DATA/blobs.conf.new" "$DATA/blobs.conf"
expect_success 'mid-migration, reads that miss on the new store come from the old one' '
	for i in $(seq 50); do
		test "$(cat "$DATA/blobs.seen")" = 99 && break
		sleep 0.1
	done &&
	grep -q "event=blob_store_switch location=s3://$B/empty previous=$URL" "$tmp/server.log" &&
	fetch m1 "$base/haven-test/After/resolve/main/w.bin" && expect_status m1 200 &&
	cmp "$(body m1)" "$tmp/r2/w.bin" &&
	hv fsck >fsck.mid 2>&1 && grep -q ": 0 problems" fsck.mid
'

expect_success 'gc and another migration refuse to run meanwhile' '
	test "$(code_of hv gc --grace 0)" = 1 &&
	grep -q "a blob migration is in progress" err &&
	test "$(code_of hv blobs migrate --to local)" = 1 &&
	grep -q "finish it first" err
'
cp "$tmp/conf.saved" "$DATA/blobs.conf.new" && mv "$DATA/blobs.conf.new" "$DATA/blobs.conf"

# --- and back to the local folder while serving ------------------------------

expect_success 'migrate --to DATA/blobs brings back what only S3 has' '
	test "$(code_of hv blobs migrate --to "$DATA/blobs/")" = 0 &&
	grep -q "moved blobs from $URL to local: .* [1-9][0-9]* copied" out &&
	grep -q "the running server switched over" out &&
	grep -qx "blobs local" "$DATA/blobs.conf" &&
	local_keys >now && s3_keys | cmp - now &&
	cmp "$(blob_path "$(sha256_of "$tmp/new1.bin")")" "$tmp/new1.bin"
'

head -c 250000 /dev/urandom >"$tmp/new2.bin"
expect_success 'after it, uploads land on disk and not in S3' '
	upload u2 "$tmp/new2.bin" &&
	local_keys | grep -qx "$(sha256_of "$tmp/new2.bin")" &&
	! s3_keys | grep -qx "$(sha256_of "$tmp/new2.bin")"
'

expect_success 'old and new files download, fsck --deep is clean, a rerun is a no-op' '
	fetch a2 "$base/haven-test/After/resolve/main/w.bin" && expect_status a2 200 &&
	cmp "$(body a2)" "$tmp/r2/w.bin" &&
	hv fsck --deep >fsck2.out 2>&1 && cat fsck2.out &&
	grep -q ": 0 problems" fsck2.out &&
	test "$(code_of hv blobs migrate --to local)" = 0 &&
	grep -q "already in local: nothing to do" out
'

touch "$tmp/stop"
wait "$dl_pid"
expect_success 'every download during both migrations succeeded, byte for byte' '
	if test -e "$tmp/dl.failed"; then cat "$tmp/dl.failed"; false; fi &&
	test "$(cat "$tmp/dl.count")" -ge 8
'
say "$(cat "$tmp/dl.count") downloads checked during the migrations"

stop_server

# An interrupted move to S3 (blobs.conf already names it, with local as
# previous) and no server running: the same command finishes it.
printf "blobs %s\ns3_endpoint %s\nprevious local\nserial 7\n" "$URL" "$EP" >"$DATA/blobs.conf"
expect_success 'with no server, the same command finishes an interrupted move' '
	test "$(code_of hv blobs migrate --to "$URL" --s3-endpoint "$EP")" = 0 &&
	grep -q "moved blobs from local to $URL: .* 1 copied" out &&
	! grep -q "switched over" out &&
	grep -qx "blobs $URL" "$DATA/blobs.conf" &&
	! grep -q "^previous" "$DATA/blobs.conf" &&
	s3_keys | grep -qx "$(sha256_of "$tmp/new2.bin")" &&
	hv fsck --deep >fsck3.out 2>&1 && grep -q ": 0 problems" fsck3.out
'
done_testing
