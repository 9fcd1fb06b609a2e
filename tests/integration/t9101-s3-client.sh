#!/bin/bash
# Haven's S3 client (storage/s3_client.c, driven by tests/s3/s3-tool)
# against a real Ceph RADOS Gateway started on loopback by tests/s3/rgw.sh:
# buckets, a small and an empty object, keys that need encoding, a ~100 MiB
# multipart upload in bounded memory, ranged GETs, HEAD, delete, listing
# across continuation tokens, presigned URLs fetched with curl (tampered
# and expired ones refused), and wrong keys refused with S3's error code.
# RGW is stopped at the end, also when a check fails. When RGW cannot run
# here (no ceph packages and no way to install them) the script is skipped
# with the reason; HAVEN_REQUIRE_S3=1 makes that a failure instead.
. "$(dirname "$0")/lib.sh"

S3=$top_builddir/tests/s3/s3-tool

# The client speaks to RGW, not to a Haven server: HTTPS runs add nothing.
[ "$scheme" = https ] && skip_all "the S3 client test does not involve Haven's HTTPS (HAVEN_TEST_TLS=1)"
[ -x "$S3" ] || S3=$(dirname "$HAVEN")/tests/s3/s3-tool
[ -x "$S3" ] || skip_all "tests/s3/s3-tool is not built (run make first)"

rgw_start_or_skip

B=haven-t9101
sha() { sha256sum "$1" | cut -d' ' -f1; }
# code_of CMD...: CMD's exit status, its stderr in ./err (in the check's folder)
code_of() {
	"$@" >/dev/null 2>err
	echo $?
}

expect_success 'a bucket is created, and creating it again is no error' '
	"$S3" mb $B && "$S3" mb $B
'

expect_success 'a small object goes up in one PUT and comes back whole' '
	printf "hello, object store\n" >small &&
	"$S3" put $B dir/small.txt small >put.out &&
	read -r sum size etag parts <put.out &&
	test "$sum" = "$(sha small)" && test "$size" = 20 && test "$parts" = 0 &&
	test "$etag" = "$(md5sum <small | cut -d" " -f1)" &&
	"$S3" get $B dir/small.txt >back && cmp small back
'

expect_success 'an empty object round-trips' '
	: >empty &&
	"$S3" put $B empty <empty >put.out &&
	test "$(cut -d" " -f2 put.out)" = 0 &&
	"$S3" get $B empty >back && test ! -s back &&
	test "$("$S3" head $B empty | cut -d" " -f1)" = 0
'

odd_key='models/org name/ü+&=%?#~ x.bin'
expect_success 'a key with spaces, UTF-8 and reserved characters round-trips' '
	"$S3" put $B "$odd_key" small >/dev/null &&
	"$S3" get $B "$odd_key" >back && cmp small back &&
	"$S3" ls $B "models/org name/" >ls.out && test "$(wc -l <ls.out)" = 1 &&
	case "$(cat ls.out)" in "$odd_key 20 "*) ;; *) false ;; esac
'

# ~100 MiB in 8 MiB parts: 13 parts, the last one short; the client holds
# one part at a time (peak RSS well under the object's size).
head -c $((100 * 1024 * 1024 + 12345)) /dev/urandom >"$tmp/big"
BIG_SHA=$(sha "$tmp/big")
expect_success 'a ~100 MiB object goes up as a multipart upload in bounded memory' '
	HAVEN_S3_PART_MIB=8 /usr/bin/time -f "%M" -o rss.kb "$S3" put $B big big >put.out &&
	read -r sum size etag parts <put.out &&
	test "$sum" = "$BIG_SHA" && test "$size" = $((100 * 1024 * 1024 + 12345)) &&
	test "$parts" = 13 && case $etag in *-13) ;; *) false ;; esac &&
	echo "peak RSS $(tail -n 1 rss.kb) KiB" && test "$(tail -n 1 rss.kb)" -lt $((64 * 1024))
'

expect_success 'an upload whose source fails midway is aborted: no object, no parts left' '
	test "$(HAVEN_S3_PART_MIB=5 HAVEN_S3_FAIL_AFTER_MIB=12 code_of "$S3" put $B broken big)" = 1 &&
	grep "input failed after" err &&
	test "$(code_of "$S3" head $B broken)" = 3 &&
	curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$HAVEN_S3_ENDPOINT/$B?uploads=" >uploads &&
	grep -q "<ListMultipartUploadsResult" uploads && ! grep -q "<Upload>" uploads
'

expect_success 'HEAD gives the size and the multipart ETag' '
	"$S3" head $B big >head.out &&
	test "$(cat head.out)" = "$(cut -d" " -f2-3 put.out)"
'

expect_success 'GET of the multipart object gives the same bytes' '
	test "$("$S3" get $B big | sha256sum | cut -d" " -f1)" = "$BIG_SHA"
'

expect_success 'ranged GETs: across a part boundary, and to the end' '
	off=$((8 * 1024 * 1024 - 100)) &&
	"$S3" get $B big $off 200 >part &&
	tail -c +$((off + 1)) big | head -c 200 | cmp - part &&
	"$S3" get $B big $((100 * 1024 * 1024)) >tail &&
	test "$(wc -c <tail)" = 12345 && tail -c 12345 big | cmp - tail
'

expect_success 'a range past the end is refused as unsatisfiable' '
	test "$(code_of "$S3" get $B dir/small.txt 1000 10)" = 1 &&
	grep "range not satisfiable" err && grep "416 InvalidRange" err
'

expect_success 'HEAD and GET of a missing key say not found' '
	test "$(code_of "$S3" head $B nope)" = 3 && grep "not found" err &&
	test "$(code_of "$S3" get $B nope)" = 3 && grep "NoSuchKey" err
'

expect_success 'listing follows continuation tokens and honours the prefix' '
	for i in 1 2 3 4 5; do "$S3" put $B "list/k$i" small >/dev/null || exit 1; done &&
	HAVEN_S3_LIST_PAGE=2 "$S3" ls $B list/ >ls.out &&
	test "$(cut -d" " -f1 ls.out | tr "\n" " ")" = "list/k1 list/k2 list/k3 list/k4 list/k5 " &&
	test "$(cut -d" " -f2 ls.out | sort -u)" = 20 &&
	"$S3" ls $B >all.out && test "$(wc -l <all.out)" = 9
'

expect_success 'a presigned URL is fetched with plain curl' '
	url=$("$S3" presign $B big 300) &&
	case $url in "$HAVEN_S3_ENDPOINT/$B/big?"*X-Amz-Expires=300*) ;; *) false ;; esac &&
	curl -sf "$url" | cmp - big &&
	url=$("$S3" presign $B "$odd_key" 60) && curl -sf "$url" | cmp - small
'

expect_success 'a tampered or expired presigned URL is refused' '
	url=$("$S3" presign $B big 300) &&
	case $url in *0) bad=${url%?}1 ;; *) bad=${url%?}0 ;; esac &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$bad")" = 403 &&
	other=$(echo "$url" | sed "s|/big?|/dir/small.txt?|") &&
	test "$(curl -s -o /dev/null -w "%{http_code}" "$other")" = 403 &&
	url=$("$S3" presign $B big 1) && sleep 2 &&
	test "$(curl -s -o body -w "%{http_code}" "$url")" = 403 &&
	grep -q AccessDenied body &&
	test "$(code_of "$S3" presign $B big 0)" = 1 && grep "7 days" err
'

expect_success 'a wrong secret or an unknown access key is refused' '
	test "$(AWS_SECRET_ACCESS_KEY=wrong-secret code_of "$S3" get $B dir/small.txt)" = 4 &&
	grep "SignatureDoesNotMatch" err &&
	test "$(AWS_ACCESS_KEY_ID=NOSUCHKEY0000000000 code_of "$S3" ls $B)" = 4 &&
	grep "InvalidAccessKeyId" err &&
	test "$(AWS_SECRET_ACCESS_KEY=wrong-secret code_of "$S3" put $B denied small)" = 4 &&
	test "$(code_of "$S3" head $B denied)" = 3
'

expect_success 'RGW checks the signed payload hash (why parts are sent with theirs)' '
	printf hello >h &&
	curl -s -o body -w "%{http_code}" --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: $(printf hellx | sha256sum | cut -d" " -f1)" \
		-T h "$HAVEN_S3_ENDPOINT/$B/mismatch" >code && test "$(cat code)" = 400 &&
	grep -q XAmzContentSHA256Mismatch body && test "$(code_of "$S3" head $B mismatch)" = 3
'

expect_success 'missing keys, bad names and a dead endpoint are clear errors' '
	test "$(code_of env -u AWS_ACCESS_KEY_ID "$S3" ls $B)" = 4 && grep "AWS_ACCESS_KEY_ID" err &&
	test "$(code_of "$S3" mb Bad_Bucket)" = 1 && grep "invalid S3 bucket name" err &&
	test "$(HAVEN_S3_ENDPOINT=ftp://x code_of "$S3" ls $B)" = 1 && grep "not an http" err &&
	test "$(HAVEN_S3_ENDPOINT=http://127.0.0.1:1 code_of "$S3" ls $B)" = 1 &&
	grep "unavailable" err
'

expect_success 'objects are deleted; deleting a missing key is no error' '
	"$S3" rm $B big && test "$(code_of "$S3" head $B big)" = 3 &&
	"$S3" rm $B big &&
	"$S3" ls $B | sed "s/ [^ ]* [^ ]*\$//" | while read -r k; do "$S3" rm $B "$k" || exit 1; done &&
	test -z "$("$S3" ls $B)" && "$S3" rb $B
'

expect_success 'rgw.sh stop leaves no daemon running' '
	pids=$(cat "$RGW_DIR"/run/*.pid) &&
	bash "$RGW" stop "$RGW_DIR" 2>/dev/null && test ! -e "$RGW_DIR" &&
	for p in $pids; do
		test ! -e /proc/$p || test "$(cut -d" " -f3 /proc/$p/stat)" = Z || exit 1
	done
'

done_testing
