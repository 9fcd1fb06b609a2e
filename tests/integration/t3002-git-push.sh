#!/bin/bash
# git over HTTP, write side: push a commit, a branch and a tag with a
# token as the Basic password (or a Bearer header); what was pushed is
# what the API and /resolve serve at once. Refused: anonymous pushes (401,
# so git asks for credentials), pushes without the write role (403), a
# non-fast-forward, the loser of two racing pushes, refs outside
# refs/heads/ and refs/tags/, deleting the default branch, and an LFS
# pointer whose object the server does not hold.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || skip_all "git is not installed"
"$HAVEN" token --help >/dev/null 2>&1 ||
	skip_all "this haven has no 'token' command yet: pushes need tokens"

setup_fail() {
	echo "Bail out! setup: $*"
	exit 1
}
for u in alice bob; do
	hv user create "$u" >/dev/null 2>&1 || setup_fail "user create $u"
done
T_ALICE=$(hv token create --user alice --role write --name push 2>/dev/null)
T_ALICE_READ=$(hv token create --user alice --role read --name ro 2>/dev/null)
T_BOB=$(hv token create --user bob --role write --name other 2>/dev/null)
for t in "$T_ALICE" "$T_ALICE_READ" "$T_BOB"; do
	case $t in hf_*) ;; *) setup_fail "haven token create printed '$t'" ;; esac
done

REPO=alice/pushed
SRC=$tmp/src
mkdir -p "$SRC"
printf '# Pushed\n' >"$SRC/README.md"
printf '{"model_type": "haven-test"}\n' >"$SRC/config.json"
first_sha=$(hv import "$SRC" --repo "$REPO" -m "First" 2>/dev/null)
is_sha "$first_sha" || setup_fail "haven import"
# An LFS object that belongs to another repository only.
mkdir -p "$tmp/elsewhere"
head -c 4096 /dev/urandom >"$tmp/elsewhere/secret.bin"
hv import "$tmp/elsewhere" --repo bob/elsewhere -m "Bob's" >/dev/null 2>&1 ||
	setup_fail "haven import bob/elsewhere"
start_server

export GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false GIT_LFS_SKIP_SMUDGE=1
G="git -c credential.helper= -c user.name=Alice -c user.email=alice@example.com"

# url TOKEN [PATH]: the repository URL with user:TOKEN in it.
url() {
	printf '%s\n' "$base/${2:-$REPO}" | sed "s#://#://git:$1@#"
}
A=$base/api/models/$REPO

expect_success 'setup: clone with alice'"'"'s token' '
	$G clone -q "$(url "$T_ALICE")" w &&
	test "$(git -C w rev-parse HEAD)" = "$first_sha"
'
expect_success 'push a commit to main' '
	printf "new file\n" >w/NEW.md && printf "# Pushed, then changed\n" >w/README.md &&
	git -C w add -A && $G -C w commit -qm "Second, by git" &&
	$G -C w push -q origin main 2>err && cat err &&
	git -C w rev-parse HEAD >pushed.sha
'
expect_success 'the API shows the pushed commit at once' '
	fetch r "$A/revision/main" && expect_status r 200 &&
	json_check "$(body r)" "d[\"sha\"] == \"$(cat pushed.sha)\" and
		\"NEW.md\" in [s[\"rfilename\"] for s in d[\"siblings\"]]" &&
	fetch c "$A/commits/main" && expect_status c 200 &&
	json_check "$(body c)" "d[0][\"id\"] == \"$(cat pushed.sha)\" and d[0][\"title\"] == \"Second, by git\""
'
expect_success '/resolve serves the pushed files' '
	fetch f "$base/$REPO/resolve/main/NEW.md" && expect_status f 200 &&
	cmp "$(body f)" w/NEW.md &&
	expect_hdr f X-Repo-Commit "$(cat pushed.sha)" &&
	fetch f "$base/$REPO/resolve/main/README.md" && cmp "$(body f)" w/README.md
'
expect_success 'push a new branch: the refs API lists it' '
	git -C w checkout -qb feature &&
	printf "feature\n" >w/FEATURE.md && git -C w add -A && $G -C w commit -qm "Feature" &&
	$G -C w push -q origin feature &&
	fetch r "$A/refs" && expect_status r 200 &&
	json_check "$(body r)" "{b[\"name\"]: b[\"targetCommit\"] for b in d[\"branches\"]}.get(\"feature\") == \"$(git -C w rev-parse HEAD)\"" &&
	fetch f "$base/$REPO/resolve/feature/FEATURE.md" && expect_status f 200
'
expect_success 'push a tag' '
	$G -C w tag -a v1 -m "Version 1" main && $G -C w push -q origin v1 &&
	fetch r "$A/refs" &&
	json_check "$(body r)" "{t[\"name\"]: t[\"targetCommit\"] for t in d[\"tags\"]}.get(\"v1\") == \"$(cat pushed.sha)\""
'
expect_success 'a non-fast-forward push is rejected and main does not move' '
	$G clone -q "$(url "$T_ALICE")" w2 &&
	git -C w2 reset -q --hard HEAD~1 && printf "diverged\n" >w2/OTHER.md &&
	git -C w2 add -A && $G -C w2 commit -qm "Diverged" &&
	! $G -C w2 push origin main 2>err && cat err &&
	grep -Eq "rejected|non-fast-forward|fetch first" err &&
	fetch r "$A/revision/main" && json_check "$(body r)" "d[\"sha\"] == \"$(cat pushed.sha)\""
'
expect_success 'two pushes racing on main: one wins, the other is rejected, nothing is lost' '
	for i in 1 2; do
		$G clone -q "$(url "$T_ALICE")" race$i &&
		printf "race %s\n" $i >race$i/RACE.md && git -C race$i add -A &&
		$G -C race$i commit -qm "Race $i" || exit 1
	done &&
	{ $G -C race1 push -q origin main >race1.log 2>&1 & p1=$!; } &&
	{ $G -C race2 push -q origin main >race2.log 2>&1 & p2=$!; } &&
	ok=0 && wait $p1 && ok=$((ok + 1)); wait $p2 && ok=$((ok + 1));
	cat race1.log race2.log; test $ok = 1 &&
	fetch r "$A/revision/main" && expect_status r 200 &&
	win=$(json "$(body r)" "d[\"sha\"]") &&
	{ test "$win" = "$(git -C race1 rev-parse HEAD)" || test "$win" = "$(git -C race2 rev-parse HEAD)"; } &&
	git -C w fetch -q origin && test "$(git -C w rev-parse origin/main~1)" = "$(cat pushed.sha)"
'
expect_success 'refs/pr/* cannot be pushed (the API writes them): remote says why' '
	! $G -C w push origin HEAD:refs/pr/1 2>err && cat err &&
	grep -q "remote: haven: refusing refs/pr/1" err &&
	fetch r "$A/refs?include_prs=1" &&
	json_check "$(body r)" "not d.get(\"pullRequests\")"
'
expect_success 'deleting the default branch is refused, deleting another branch works' '
	! $G -C w push origin :main 2>err && cat err && grep -q "default branch" err &&
	fetch r "$A/revision/main" && expect_status r 200 &&
	$G -C w push -q origin :feature &&
	fetch r "$A/refs" && json_check "$(body r)" "\"feature\" not in [b[\"name\"] for b in d[\"branches\"]]"
'
expect_success 'a hand-written LFS pointer to an object never uploaded is refused' '
	git -C w checkout -q main && git -C w pull -q --ff-only &&
	printf "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 5\n" \
		"$(printf nope | sha256sum | cut -d" " -f1)" >w/missing.bin &&
	git -C w add missing.bin && $G -C w commit -qm "Pointer without object" &&
	fetch r "$A/revision/main" && before=$(json "$(body r)" "d[\"sha\"]") &&
	! $G -C w push origin main 2>err && cat err &&
	grep -q "was not uploaded to this repository" err &&
	fetch r "$A/revision/main" && json_check "$(body r)" "d[\"sha\"] == \"$before\"" &&
	git -C w reset -q --hard HEAD~1
'

expect_success 'a pointer to an object stored for another repository is refused' '
	printf "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 4096\n" \
		"$(sha256sum <"$tmp/elsewhere/secret.bin" | cut -d" " -f1)" >w/borrowed.bin &&
	git -C w add borrowed.bin && $G -C w commit -qm "Borrow an object" &&
	! $G -C w push origin main 2>err && cat err &&
	grep -q "was not uploaded to this repository" err &&
	git -C w reset -q --hard HEAD~1
'

expect_success 'a push of 24 MiB of regular files arrives intact' '
	for i in 1 2 3; do head -c 8388608 /dev/urandom >w/big$i.dat || exit 1; done &&
	git -C w add big1.dat big2.dat big3.dat && $G -C w commit -qm "Big regular files" &&
	$G -C w push -q origin main &&
	fetch r "$A/revision/main" && json_check "$(body r)" "d[\"sha\"] == \"$(git -C w rev-parse HEAD)\"" &&
	fetch f "$base/$REPO/resolve/main/big3.dat" && expect_status f 200 && cmp "$(body f)" w/big3.dat &&
	git --git-dir="$(git_dir_for "$(git -C w rev-parse HEAD)")" fsck --no-progress --connectivity-only
'

# --- who may push ---------------------------------------------------------------------

expect_success 'anonymous push: git is asked for credentials (401) and gives up' '
	$G clone -q "$base/$REPO" anon &&
	printf "x\n" >anon/ANON.md && git -C anon add -A && $G -C anon commit -qm anon &&
	! $G -C anon push origin main 2>err && cat err &&
	grep -Eq "could not read Username|Authentication failed" err
'
expect_success 'push with a token of another user: 403' '
	! $G -C anon push "$(url "$T_BOB")" main 2>err && cat err && grep -q 403 err &&
	fetch p -u "git:$T_BOB" "$base/$REPO/info/refs?service=git-receive-pack" &&
	expect_status p 403
'
expect_success 'push with a read-only token of the owner: 403' '
	! $G -C anon push "$(url "$T_ALICE_READ")" main 2>err && cat err && grep -q 403 err
'
expect_success 'a wrong token: 401' '
	fetch p -u "git:hf_wrongwrongwrongwrongwrongwrongwron" \
		"$base/$REPO/info/refs?service=git-receive-pack" && expect_status p 401
'
expect_success 'push with Authorization: Bearer (http.extraHeader) works' '
	git -C w pull -q --ff-only &&
	printf "bearer\n" >w/BEARER.md && git -C w add -A && $G -C w commit -qm "By bearer" &&
	$G -c http.extraHeader="Authorization: Bearer $T_ALICE" -C w push -q "$base/$REPO" main &&
	fetch r "$A/revision/main" && json_check "$(body r)" "d[\"sha\"] == \"$(git -C w rev-parse HEAD)\""
'

# Private repositories, when the settings endpoint can make one.
fetch s -u "git:$T_ALICE" -X PUT -H "Content-Type: application/json" \
	--data-binary '{"private": true}' "$base/api/models/$REPO/settings" >/dev/null 2>&1
if [ "$(status s)" = 200 ]; then
	expect_success 'private repo: anonymous clone gets 401, the owner clones and pushes' '
		! $G clone -q "$base/$REPO" p-anon 2>err && test ! -e p-anon &&
		fetch m "$base/$REPO/info/refs?service=git-upload-pack" && expect_status m 401 &&
		$G clone -q "$(url "$T_ALICE")" p-own &&
		printf "private\n" >p-own/PRIVATE.md && git -C p-own add -A &&
		$G -C p-own commit -qm private && $G -C p-own push -q origin main
	'
	expect_success 'private repo: another user gets 404 on clone and push' '
		fetch m -u "git:$T_BOB" "$base/$REPO/info/refs?service=git-upload-pack" && expect_status m 404 &&
		fetch m -u "git:$T_BOB" "$base/$REPO/info/refs?service=git-receive-pack" && expect_status m 404 &&
		! $G clone -q "$(url "$T_BOB")" p-bob 2>err && cat err && grep -qi "not found" err
	'
else
	test_skip 'private repo: clone and push' "PUT settings answered $(status s)"
	test_skip 'private repo: another user' "PUT settings answered $(status s)"
fi

done_testing
