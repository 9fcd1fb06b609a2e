#!/bin/bash
# `haven mirror` killed in the middle of a large file, then run again: it
# resumes from the pieces already on disk (it does not fetch them twice),
# the bytes are the upstream's, and `haven fsck` is clean. Also --list and
# a dataset.
. "$(dirname "$0")/lib.sh"

REPO=haven-test/big
mkdir -p "$tmp/src" "$tmp/ds"
head -c $((200 << 20)) /dev/urandom >"$tmp/src/weights.bin"
echo '{"model_type": "haven-test"}' >"$tmp/src/config.json"
big_oid=$(sha256_of "$tmp/src/weights.bin")
printf 'a,b\n1,2\n' >"$tmp/ds/data.csv"
head -c $((11 << 20)) /dev/urandom >"$tmp/ds/train.bin"
hv import "$tmp/src" --repo "$REPO" >/dev/null 2>&1 &&
	hv import "$tmp/ds" --repo haven-test/ds --type dataset >/dev/null 2>&1 || {
	echo "Bail out! cannot seed the upstream"
	exit 1
}
start_server
up=$base
M=$tmp/mirror
ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && ca=(--ca-bundle "$HAVEN_TEST_CA")

# Slowed to 40 MiB/s so that the run is still going when it is killed.
"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$M" "$REPO" \
	--parallel 1 --limit-rate 40M >"$tmp/first.out" 2>&1 &
mpid=$!
i=0
while [ $i -lt 300 ] && [ ! -s "$M/tmp/mirror-$big_oid.pieces" ]; do
	sleep 0.05
	i=$((i + 1))
done
kill -KILL $mpid 2>/dev/null
wait $mpid 2>/dev/null

expect_success 'the killed run left finished pieces and no visible ref' '
	test -s "$M/tmp/mirror-$big_oid.pieces" &&
	test ! -e "$M/blobs/sha256/${big_oid:0:2}/${big_oid:2:2}/$big_oid" &&
	g=$(ls -d "$M"/git/*.git) &&
	test -z "$(git --git-dir="$g" for-each-ref refs/heads refs/tags)"
'
expect_success 'running it again resumes: the finished pieces are not fetched again' '
	"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$M" "$REPO" --json >j 2>err &&
	json_check j "d[\"failed\"] == 0 and 0 < d[\"bytesFetched\"] < (200 << 20)" &&
	test ! -e "$M/tmp/mirror-$big_oid.pieces" && test ! -e "$M/tmp/mirror-$big_oid.part"
'
expect_success 'the mirrored file is the upstream'"'"'s, byte for byte' '
	cmp "$M/blobs/sha256/${big_oid:0:2}/${big_oid:2:2}/$big_oid" "$tmp/src/weights.bin"
'
expect_success 'haven fsck --deep on the mirror is clean' '
	"$HAVEN" fsck --deep --data "$M" >fsck.out 2>&1 && grep -q " 0 problems" fsck.out
'
expect_success '--list mirrors the repositories it names, datasets included' '
	printf "# what we need\n%s\n\ndatasets/haven-test/ds\n" "$REPO" >list &&
	"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$M" --list list --json >j 2>err &&
	json_check j "d[\"failed\"] == 0 and [r[\"id\"] for r in d[\"repos\"]] == [\"$REPO\", \"haven-test/ds\"] and d[\"repos\"][1][\"type\"] == \"dataset\" and d[\"repos\"][1][\"filesFetched\"] == 1"
'
expect_success 'the dataset mirror has the upstream commit' '
	hcurl -o a.json "$up/api/datasets/haven-test/ds" &&
	"$HAVEN" mirror --status --json --data "$M" >s &&
	json_check s "sorted(x[\"id\"] for x in d) == [\"$REPO\", \"haven-test/ds\"]" &&
	sha=$(json a.json "d[\"sha\"]") && is_sha "$sha" &&
	DATA=$M git_dir_for "$sha" >/dev/null
'
expect_success '--author mirrors every repository of a namespace' '
	"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$tmp/m2" --author haven-test --json >j 2>err &&
	json_check j "d[\"failed\"] == 0 and [r[\"id\"] for r in d[\"repos\"]] == [\"$REPO\"]" &&
	"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$tmp/m2" --author haven-test --type dataset --json >j 2>err &&
	json_check j "[r[\"id\"] for r in d[\"repos\"]] == [\"haven-test/ds\"]"
'
done_testing
