#!/bin/bash
# `haven mirror` from a second Haven on loopback acting as the upstream Hub:
# exact commit ids for every branch and tag, identical bytes, incremental
# runs, --revision and --include, private upstream repositories, an upstream
# that serves wrong bytes, one that is down, and --status.
. "$(dirname "$0")/lib.sh"

setup_model_repo
hv user create alice >/dev/null 2>&1 &&
	hv repo create alice/secret >/dev/null 2>&1 || {
	echo "Bail out! cannot create the private upstream repository"
	exit 1
}
ATOK=$(hv token create --user alice --role write 2>/dev/null)
start_server
up_pid=$server_pid
up=$base
UP_DATA=$DATA
M=$tmp/mirror
ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && ca=(--ca-bundle "$HAVEN_TEST_CA")

# mirror ARGS...: `haven mirror` into the mirror's data folder.
mirror() {
	"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$M" "$@"
}

# refs_of DATA REPO: "sha ref" lines of every branch and tag, sorted.
refs_of() {
	local g
	g=$(DATA=$1 git_dir_of_repo "$2") &&
		git --git-dir="$g" for-each-ref --format='%(objectname) %(refname)' \
			refs/heads refs/tags | LC_ALL=C sort
}

# git_dir_of_repo REPO: the bare git folder of REPO under $DATA (the
# folder whose config names it is not kept; find it through a commit).
git_dir_of_repo() {
	local sha
	hcurl -o "$tmp/rev.json" "$up/api/models/$1/revision/main" &&
		sha=$(json "$tmp/rev.json" 'd["sha"]') &&
		git_dir_for "$sha"
}

expect_success 'mirror copies every branch and tag with the upstream commit ids' '
	mirror "$REPO" >out 2>err &&
	grep -q "mirrored 1 of 1 repositories" out &&
	refs_of "$UP_DATA" "$REPO" >want && refs_of "$M" "$REPO" >got &&
	test -s want && diff want got
'
expect_success 'the mirror holds every LFS object of those revisions' '
	for f in model.safetensors extra/large.dat; do
		oid=$(sha256_of "$MODEL/$f") &&
		test -f "$M/blobs/sha256/${oid:0:2}/${oid:2:2}/$oid" || return 1
	done
'
expect_success 'haven fsck on the mirror is clean' '
	"$HAVEN" fsck --data "$M" >fsck.out 2>&1 && grep -q " 0 problems" fsck.out
'
expect_success 'a second run fetches nothing' '
	mirror "$REPO" --json >j 2>err &&
	json_check j "d[\"filesFetched\"] == 0 and d[\"repos\"][0][\"refsUpdated\"] == 0 and d[\"repos\"][0][\"filesPresent\"] >= 3"
'

# A new commit upstream, with a new LFS file, and a moved tag.
head -c $((11 << 20)) /dev/urandom >"$DEV/new.bin"
new_oid=$(sha256_of "$DEV/new.bin")
dev2=$(hv import "$DEV" --repo "$REPO" --revision dev -m "Add new.bin" 2>/dev/null)
expect_success 'an incremental run fetches only the new commit and file' '
	is_sha "$dev2" &&
	mirror "$REPO" --json >j 2>err &&
	json_check j "d[\"filesFetched\"] == 1 and d[\"bytesFetched\"] == $((11 << 20))" &&
	refs_of "$UP_DATA" "$REPO" >want && refs_of "$M" "$REPO" >got && diff want got &&
	test -f "$M/blobs/sha256/${new_oid:0:2}/${new_oid:2:2}/$new_oid"
'

sync_ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && sync_ca=(--upstream-ca-bundle "$HAVEN_TEST_CA")
DATA=$M start_server --sync-interval 1s ${sync_ca[@]+"${sync_ca[@]}"}
mbase=$base
expect_success 'the mirror serves the same bytes and commit as the upstream' '
	for f in model.safetensors config.json new.bin; do
		hcurl -D h -o got "$mbase/$REPO/resolve/dev/$f" &&
		cmp got "$DEV/$f" &&
		grep -qi "^x-repo-commit: $dev2" h || return 1
	done
'
expect_success 'git clone from the mirror gives the upstream history' '
	git clone -q "$mbase/$REPO" clone 2>err &&
	test "$(git -C clone rev-parse HEAD)" = "$main_sha" &&
	test "$(git -C clone rev-parse origin/dev)" = "$dev2"
'
# The server syncs every second: a status read during a sync says
# "running"; the next one says how it went.
expect_success 'mirror --status reports the repository as synced' '
	i=0 &&
	while "$HAVEN" mirror --status --json --data "$M" >s &&
		grep -q "\"status\": \"running\"" s && [ $i -lt 50 ]; do
		sleep 0.2
		i=$((i + 1))
	done &&
	json_check s "len(d) == 1 and d[0][\"id\"] == \"$REPO\" and d[0][\"status\"] == \"ok\" and d[0][\"mode\"] == \"mirror\" and d[0][\"upstream\"] == \"$up\""
'

M2=$tmp/mirror2
expect_success '--revision main mirrors that branch only' '
	"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$M2" "$REPO" --revision main >/dev/null 2>err &&
	refs_of "$M2" "$REPO" >got &&
	test "$(cat got)" = "$main_sha refs/heads/main" &&
	test ! -e "$M2/blobs/sha256/${new_oid:0:2}/${new_oid:2:2}/$new_oid"
'
M3=$tmp/mirror3
expect_success '--exclude leaves the matching LFS files out, the history stays whole' '
	oid=$(sha256_of "$MODEL/model.safetensors") &&
	"$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$M3" "$REPO" --exclude "*.safetensors" >/dev/null 2>err &&
	test ! -e "$M3/blobs/sha256/${oid:0:2}/${oid:2:2}/$oid" &&
	big=$(sha256_of "$MODEL/extra/large.dat") &&
	test -f "$M3/blobs/sha256/${big:0:2}/${big:2:2}/$big" &&
	refs_of "$UP_DATA" "$REPO" >want && refs_of "$M3" "$REPO" >got && diff want got &&
	"$HAVEN" fsck --data "$M3" >fsck.out 2>&1 && grep -q " 0 problems" fsck.out &&
	grep -q "LFS references not fetched" fsck.out
'
expect_success 'a revision the upstream lacks fails clearly' '
	! "$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$tmp/m4" "$REPO" --revision nope >out 2>err &&
	grep -q "revision .nope. not found upstream" err
'

# A private upstream repository: the token decides.
hcurl -X PUT -H "Authorization: Bearer $ATOK" -H "Content-Type: application/json" \
	-d '{"private": true}' "$up/api/models/alice/secret/settings" >/dev/null
expect_success 'a private upstream repository needs a token the upstream accepts' '
	! mirror alice/secret >out 2>err &&
	grep -q "alice/secret" err &&
	! mirror alice/secret --token hf_not_a_token >out 2>err
'
expect_success 'with the owner'"'"'s token it is mirrored, and stays private here' '
	HF_TOKEN=$ATOK mirror alice/secret >out 2>err &&
	fetch r "$mbase/api/models/alice/secret" && expect_status r 401
'

# An upstream whose stored bytes were damaged: the mirror refuses them.
expect_success 'bytes that do not match the LFS pointer are refused, refs stay' '
	oid=$(sha256_of "$DEV/new.bin") &&
	flip_byte "$UP_DATA/blobs/sha256/${oid:0:2}/${oid:2:2}/$oid" 1000 &&
	! "$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$tmp/m5" "$REPO" >out 2>err &&
	grep -q "hash" err &&
	test -z "$(refs_of "$tmp/m5" "$REPO" 2>/dev/null)" &&
	test ! -e "$tmp/m5/blobs/sha256/${oid:0:2}/${oid:2:2}/$oid"
'

expect_success 'an upstream that is down fails clearly, without hanging' '
	! "$HAVEN" mirror --from http://127.0.0.1:9 --retries 1 --data "$tmp/m6" "$REPO" >out 2>err &&
	grep -q "unreachable" err
'
expect_success 'a local repository that is not a mirror is never overwritten' '
	"$HAVEN" repo create "$REPO" --data "$tmp/m7" >/dev/null 2>&1 &&
	! "$HAVEN" mirror --from "$up" ${ca[@]+"${ca[@]}"} --data "$tmp/m7" "$REPO" >out 2>err &&
	grep -q "is not a mirror" err
'

echo "# a change upstream" >>"$MODEL/README.md"
main2=$(hv import "$MODEL" --repo "$REPO" -m "Edit the card" 2>/dev/null)
expect_success 'serve --sync-interval brings the new upstream commit by itself' '
	is_sha "$main2" && i=0 &&
	while [ $i -lt 100 ]; do
		hcurl -o rev.json "$mbase/api/models/$REPO/revision/main" &&
			[ "$(json rev.json "d[\"sha\"]")" = "$main2" ] && break
		sleep 0.2
		i=$((i + 1))
	done &&
	[ "$(json rev.json "d[\"sha\"]")" = "$main2" ] &&
	hcurl -o got "$mbase/$REPO/resolve/main/README.md" && cmp got "$MODEL/README.md"
'

stop_server
server_pid=$up_pid
done_testing
