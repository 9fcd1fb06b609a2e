#!/bin/bash
# The S3 blob backend against a real Ceph RADOS Gateway on loopback
# (tests/s3/rgw.sh): `haven serve --blobs s3://BUCKET --s3-endpoint URL`
# records the store in <data>/blobs.conf and every command uses it; LFS
# objects are in the bucket and nowhere on disk; downloads stream from
# the store (ranges, a multipart-sized object, a missing object); another
# --blobs for the same data folder is refused; --blob-redirect answers
# 302 to a presigned URL with the Hub's headers on the redirect (curl -L,
# ranges); fsck --deep and gc work on the bucket. Then it runs existing
# read-path and write-path scripts (resolve, ranges, LFS batch, the write
# API, git push, git-lfs, import, the JS and Python clients) with their
# data folders on S3 (HAVEN_TEST_BLOBS in lib.sh), and the clients once
# more in redirect mode. RGW is stopped at the end, also on failure. When
# RGW cannot run here the script is skipped with the reason;
# HAVEN_REQUIRE_S3=1 makes that a failure.
. "$(dirname "$0")/lib.sh"

S3=$top_builddir/tests/s3/s3-tool
B=haven-t9102

[ "$scheme" = https ] && skip_all "the S3 backend checks run over plain HTTP (HAVEN_TEST_TLS=1)"
[ -n "${HAVEN_TEST_BLOBS:-}" ] && skip_all "runs its own S3 setup (HAVEN_TEST_BLOBS is set)"
[ -x "$S3" ] || skip_all "tests/s3/s3-tool is not built (run make first)"

rgw_start_or_skip

S3_URL=s3://$B/own
lfs_keys() { "$S3" ls $B own/sha256/ | cut -d' ' -f1 | sed 's|.*/||' | sort; }
code_of() {
	"$@" >/dev/null 2>err
	echo $?
}

# --- serve --blobs, import, downloads ------------------------------------------

start_server --blobs "$S3_URL" --s3-endpoint "$HAVEN_S3_ENDPOINT"
expect_success 'serve --blobs records the store in <data>/blobs.conf' '
	grep -qx "blobs $S3_URL" "$DATA/blobs.conf" &&
	grep -qx "s3_endpoint $HAVEN_S3_ENDPOINT" "$DATA/blobs.conf"
'
setup_model_repo
head -c $((40 << 20)) /dev/urandom >"$tmp/big.bin"
mkdir -p "$tmp/bigrepo" && cp "$tmp/big.bin" "$tmp/bigrepo/big.bin"
hv import "$tmp/bigrepo" --repo haven-test/Big -m big >/dev/null 2>"$tmp/big.err" ||
	sed 's/^/# /' "$tmp/big.err"
big_sha=$(sha256_of "$tmp/big.bin")

expect_success 'import puts the LFS objects in the bucket, none on disk' '
	lfs_keys >keys &&
	grep -qx "$(sha256_of "$MODEL/model.safetensors")" keys &&
	grep -qx "$big_sha" keys &&
	test "$(find "$DATA/blobs" -type f | wc -l)" = 0
'

expect_success 'a 40 MiB object (three multipart parts) streams back whole' '
	fetch g "$base/haven-test/Big/resolve/main/big.bin" && expect_status g 200 &&
	cmp "$(body g)" "$tmp/big.bin" &&
	expect_hdr g X-Linked-Etag "\"$big_sha\""
'

expect_success 'ranges across the 16 MiB fetch chunks come back exact' '
	for spec in 0-0 16777215-16777216 33554430-41943039 41943000-; do
		fetch r -H "Range: bytes=$spec" "$base/haven-test/Big/resolve/main/big.bin" &&
		expect_status r 206 || return 1
		a=${spec%-*} e=${spec#*-}
		[ -z "$e" ] && e=$(((40 << 20) - 1))
		tail -c +$((a + 1)) "$tmp/big.bin" | head -c $((e - a + 1)) >want &&
		cmp "$(body r)" want || return 1
	done
'

expect_success 'HEAD answers the size without reading the object' '
	hcurl -sI "$base/haven-test/Big/resolve/main/big.bin" >h &&
	grep -qi "^content-length: $((40 << 20))" h
'

expect_success 'a client that stops reading does not hold the server' '
	curl -s --max-time 1 --limit-rate 100k -o /dev/null \
		"$base/haven-test/Big/resolve/main/big.bin"; 
	fetch g2 "$base/$REPO/resolve/main/config.json" && expect_status g2 200
'

expect_success 'another --blobs for this data folder is refused, clearly' '
	! "$HAVEN" serve --data "$DATA" --listen 127.0.0.1:0 --blobs s3://$B/other \
		--s3-endpoint "$HAVEN_S3_ENDPOINT" >out 2>&1 &&
	grep -q "keeps its blobs in $S3_URL" out
'

expect_success 'wrong S3 keys make serve fail with the store named' '
	! AWS_SECRET_ACCESS_KEY=wrong "$HAVEN" serve --data "$DATA" --listen 127.0.0.1:0 >out 2>&1 &&
	grep -q "$S3_URL" out
'

# --- redirect mode ----------------------------------------------------------------

main_base=$base
start_server --blob-redirect
expect_success 'redirect: HEAD is a 302 carrying X-Repo-Commit, X-Linked-Etag, X-Linked-Size' '
	hcurl -sI "$base/haven-test/Big/resolve/main/big.bin" >h &&
	grep -q "^HTTP/1.1 302" h &&
	grep -qi "^x-repo-commit: [0-9a-f]\{40\}" h &&
	grep -qi "^x-linked-etag: \"$big_sha\"" h &&
	grep -qi "^x-linked-size: $((40 << 20))" h &&
	grep -qi "^location: $HAVEN_S3_ENDPOINT/$B/own/sha256/$big_sha?X-Amz-" h
'

expect_success 'redirect: curl -L gets the bytes from the object store' '
	hcurl -L -o got "$base/haven-test/Big/resolve/main/big.bin" && cmp got "$tmp/big.bin"
'

expect_success 'redirect: a range follows the redirect' '
	hcurl -L -H "Range: bytes=1000000-2999999" -o got "$base/haven-test/Big/resolve/main/big.bin" &&
	tail -c +1000001 "$tmp/big.bin" | head -c 2000000 >want && cmp got want
'

expect_success 'redirect: a tampered presigned URL is refused by the store' '
	loc=$(grep -i "^location:" h | tr -d "\r" | cut -d" " -f2) &&
	case $loc in *X-Amz-Signature=*) ;; *) false ;; esac &&
	test "$(hcurl -o /dev/null -w "%{http_code}" "${loc/X-Amz-Signature=/X-Amz-Signature=0}")" = 403
'

expect_success 'redirect: small ranges (client probes) are answered directly' '
	fetch p -H "Range: bytes=0-0" "$base/haven-test/Big/resolve/main/big.bin" &&
	expect_status p 206 && expect_hdr p ETag "\"$big_sha\""
'
stop_server TERM
base=$main_base
server_pid=$(echo $server_pids | awk "{print \$1}")

# --- fsck and gc ----------------------------------------------------------------------

w_sha=$(sha256_of "$MODEL/model.safetensors")
expect_success 'fsck --deep on the bucket is clean' 'hv fsck --deep >out 2>&1'

expect_success 'fsck --deep finds an object whose bytes changed' '
	"$S3" get $B own/sha256/$w_sha >orig &&
	printf "not the bytes" >bad && "$S3" put $B own/sha256/$w_sha bad >/dev/null &&
	! hv fsck --deep >out 2>&1 && grep -q "$w_sha" out &&
	"$S3" put $B own/sha256/$w_sha orig >/dev/null && hv fsck --deep >out 2>&1
'

expect_success 'fsck finds a missing object; a download of it is a clean error' '
	"$S3" get $B own/sha256/$w_sha >orig && "$S3" rm $B own/sha256/$w_sha &&
	! hv fsck >out 2>&1 && grep -q "$w_sha" out &&
	fetch m "$base/$REPO/resolve/main/model.safetensors" && expect_status m 500 &&
	"$S3" put $B own/sha256/$w_sha orig >/dev/null && hv fsck >out 2>&1
'

expect_success 'gc removes an unreferenced object and keeps the referenced ones' '
	printf "nobody points at me\n" >stray && st=$(sha256_of stray) &&
	"$S3" put $B own/sha256/$st stray >/dev/null &&
	hv gc --grace 3600 >out 2>&1 && lfs_keys | grep -qx "$st" &&
	hv gc --grace 0 >out 2>&1 && ! lfs_keys | grep -qx "$st" &&
	lfs_keys | grep -qx "$w_sha" && lfs_keys | grep -qx "$big_sha" &&
	hv fsck --deep >out 2>&1
'
stop_server TERM

# --- existing scripts with their data folders on S3 ----------------------------------

# run_script NAME [ENV...]: one TAP line for a whole script run with
# HAVEN_TEST_BLOBS; its failures are shown as comments.
run_script() {
	local name=$1 out rc
	shift
	out=$tmp/sub-$name${1:+-redirect}.out
	env HAVEN_TEST_BLOBS=s3://$B "$@" bash "$top_srcdir/tests/integration/$name.sh" >"$out" 2>&1
	rc=$?
	n=$((n + 1))
	if grep -q '^1\.\.0 # SKIP' "$out"; then
		echo "ok $n - $name on S3${1:+ ($*)} # SKIP $(sed -n 's/^1\.\.0 # SKIP //p' "$out")"
	elif [ $rc -eq 0 ] && ! grep -q '^not ok' "$out"; then
		echo "ok $n - $name on S3${1:+ ($*)}: $(grep -c '^ok' "$out") checks"
	else
		echo "not ok $n - $name on S3${1:+ ($*)} (status $rc)"
		grep -v '^ok' "$out" | head -n 40 | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
}

for s in t1001-resolve-download t1002-resolve-ranges t1101-lfs-batch \
	t2101-write-api t3002-git-push t3101-git-lfs t4002-import \
	t6001-client-js t6002-client-python t6003-client-js-upload; do
	run_script $s
done
run_script t6001-client-js HAVEN_TEST_BLOB_REDIRECT=1
run_script t6002-client-python HAVEN_TEST_BLOB_REDIRECT=1

done_testing
