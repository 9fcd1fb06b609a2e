#!/bin/bash
# The write API with curl (hub-api.md 2.8 to 2.11, 2.13, 2.14): repo
# create, delete and move (with redirects from the old name), branches and
# tags, preupload, the NDJSON commit with every operation, parentCommit
# and racing writers (412), pull requests and discussions, validate-yaml,
# and the refusals: bad names, paths, NDJSON, base64, missing objects.
# What git holds is checked with git itself.
. "$(dirname "$0")/lib.sh"

setup_fail() {
	echo "Bail out! setup: $*"
	exit 1
}
for u in alice bob; do
	hv user create "$u" >/dev/null 2>&1 || setup_fail "user create $u"
done
W=$(hv token create --user alice --role write 2>/dev/null)
R=$(hv token create --user alice --role read 2>/dev/null)
B=$(hv token create --user bob --role write 2>/dev/null)
for t in "$W" "$R" "$B"; do
	case $t in hf_*) ;; *) setup_fail "token create printed '$t'" ;; esac
done
# An LFS object in the blob store, put there by an import.
mkdir -p "$tmp/seed"
head -c 200000 /dev/urandom >"$tmp/seed/weights.bin"
hv import "$tmp/seed" --repo alice/seed -m seed >/dev/null 2>&1 || setup_fail "import"
lfs_oid=$(sha256_of "$tmp/seed/weights.bin")
start_server

A=$base/api/models
AUTH=(-H "Authorization: Bearer $W")

# post NAME URL JSON [CURL-ARGS...]: a JSON POST as alice (writer).
post() {
	local name=$1 url=$2 data=$3
	shift 3
	fetch "$name" "${AUTH[@]}" -H 'Content-Type: application/json' \
		-X POST --data-binary "$data" "$url" "$@"
}
# ndjson FILE LINE...: writes the lines joined with \n (no trailing one).
ndjson() {
	local f=$1
	shift
	printf '%s' "$1" >"$f"
	shift
	for l in "$@"; do printf '\n%s' "$l" >>"$f"; done
}
commit() { # NAME REV FILE [QUERY]
	fetch "$1" "${AUTH[@]}" -H 'Content-Type: application/x-ndjson' \
		--data-binary "@$3" "$A/alice/m/commit/$2${4:-}"
}
b64() { printf '%s' "$1" | base64 -w0; }
hdr_line() { printf '{"key":"header","value":{"summary":"%s","description":"%s"%s}}' "$1" "${2:-}" "${3:+,\"parentCommit\":\"$3\"}"; }
file_line() { printf '{"key":"file","value":{"path":"%s","content":"%s","encoding":"base64"}}' "$1" "$(b64 "$2")"; }

# --- create ---------------------------------------------------------------------

expect_success 'create: 200 with url, name and id; namespace defaults to the token user' '
	post c "$base/api/repos/create" "{\"name\":\"m\",\"organization\":null}" &&
	expect_status c 200 &&
	json_check "$(body c)" "d[\"url\"] == \"$base/alice/m\" and d[\"name\"] == \"alice/m\" and re.match(r\"^[0-9a-f]{32}$\", d[\"id\"])" &&
	fetch i "$A/alice/m" && expect_status i 200 &&
	json_check "$(body i)" "d[\"id\"] == \"alice/m\" and not d[\"private\"] and [s[\"rfilename\"] for s in d[\"siblings\"]] == [\".gitattributes\"]"
'
main_sha=$(json "$tmp/i.body" 'd["sha"]' 2>/dev/null)
# Initial commits of repos made in the same second are the same object:
# find the git directory by the repo id.
GD=$DATA/git/$(json "$tmp/c.body" 'd["id"]' 2>/dev/null).git
expect_success 'create: the initial commit is the system commit adding .gitattributes' '
	test -n "$GD" &&
	test "$(git --git-dir="$GD" log -1 --format=%an:%s main)" = "system:initial commit"
'
expect_success 'create again: 409 with the url and the Hub message' '
	post c "$base/api/repos/create" "{\"name\":\"m\",\"organization\":\"alice\"}" &&
	expect_status c 409 &&
	json_check "$(body c)" "d[\"url\"] == \"$base/alice/m\" and d[\"error\"] == \"You already created this model repo\""
'
expect_success 'create: dataset and private repos; the url says datasets/' '
	post c "$base/api/repos/create" "{\"name\":\"d\",\"organization\":\"alice\",\"type\":\"dataset\",\"private\":true}" &&
	expect_status c 200 && json_check "$(body c)" "d[\"url\"] == \"$base/datasets/alice/d\"" &&
	fetch i "$base/api/datasets/alice/d" && expect_error i 401 RepoNotFound &&
	fetch i "${AUTH[@]}" "$base/api/datasets/alice/d" && expect_status i 200 &&
	json_check "$(body i)" "d[\"private\"] is True" &&
	post c "$base/api/repos/create" "{\"name\":\"s\",\"type\":\"space\",\"visibility\":\"private\",\"sdk\":\"static\"}" &&
	expect_status c 200 && json_check "$(body c)" "d[\"url\"] == \"$base/spaces/alice/s\""
'
expect_success 'create: invalid names and bodies are 400' '
	for n in "a--b" "-x" "x.git" "a b" "" "$(printf %0100d 0)"; do
		post c "$base/api/repos/create" "{\"name\":\"$n\"}" && expect_error c 400 - || return 1
	done &&
	post c "$base/api/repos/create" "{\"name\":\"x\",\"type\":\"kernelz\"}" && expect_error c 400 - &&
	post c "$base/api/repos/create" "not json" && expect_error c 400 - &&
	post c "$base/api/repos/create" "[1]" && expect_error c 400 -
'
expect_success 'create: refused without a token, with a read token, in another namespace' '
	fetch c -X POST --data-binary "{\"name\":\"z\"}" "$base/api/repos/create" && expect_error c 401 - &&
	fetch c -H "Authorization: Bearer $R" -X POST --data-binary "{\"name\":\"z\"}" "$base/api/repos/create" &&
	expect_error c 403 - &&
	post c "$base/api/repos/create" "{\"name\":\"z\",\"organization\":\"bob\"}" && is_4xx c &&
	fetch i "$A/bob/z" && expect_error i 401 RepoNotFound
'

# --- commit ---------------------------------------------------------------------

expect_success 'commit with a trailing newline (Python): files, nested folders, author' '
	{ hdr_line "Add files" "the body"; echo; file_line a.txt "hello"; echo;
	  file_line dir/b.txt "bee"; echo; file_line dir/sub/c.txt "sea"; echo; } >c1 &&
	commit c main c1 && expect_status c 200 &&
	sha=$(json "$(body c)" "d[\"commitOid\"]") && is_sha "$sha" &&
	json_check "$(body c)" "d[\"commitUrl\"] == \"$base/alice/m/commit/$sha\" and \"pullRequestUrl\" not in d" &&
	test "$(git --git-dir="$GD" rev-parse main)" = "$sha" &&
	test "$(git --git-dir="$GD" log -1 --format="%an <%ae>|%s|%b" main)" = "alice <alice@users.noreply.haven>|Add files|the body" &&
	test "$(git --git-dir="$GD" show main:dir/sub/c.txt)" = sea &&
	fetch f "$base/alice/m/resolve/main/dir/b.txt" && test "$(cat "$(body f)")" = bee
'
expect_success 'commit without a trailing newline (JS), utf-8 content' '
	ndjson c2 "$(hdr_line "JS style")" \
		"{\"key\":\"file\",\"value\":{\"path\":\"u.txt\",\"content\":\"h\\u00e9llo\",\"encoding\":\"utf-8\"}}" &&
	commit c main c2 && expect_status c 200 &&
	test "$(git --git-dir="$GD" show main:u.txt)" = "$(printf "h\303\251llo")"
'
# lfs_upload REPO FILE: uploads FILE through REPO's LFS batch API as alice.
lfs_upload() {
	local oid size href
	oid=$(sha256_of "$2")
	size=$(wc -c <"$2")
	fetch lb "${AUTH[@]}" -H "Content-Type: application/vnd.git-lfs+json" \
		-X POST --data-binary "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$oid\",\"size\":$size}]}" \
		"$base/$1.git/info/lfs/objects/batch" && expect_status lb 200 &&
	href=$(json "$(body lb)" "d[\"objects\"][0][\"actions\"][\"upload\"][\"href\"]") &&
	fetch lp -T "$2" "$href" && expect_status lp 200
}

expect_success 'lfsFile: an object stored for another repository is not this one'"'"'s' '
	ndjson c3x "$(hdr_line "Borrow weights")" \
		"{\"key\":\"lfsFile\",\"value\":{\"path\":\"w/weights.dat\",\"algo\":\"sha256\",\"oid\":\"$lfs_oid\"}}" &&
	commit c main c3x && expect_status c 400 && grep -q "was not uploaded" "$(body c)"
'
expect_success 'lfsFile: pointer in git, size looked up, .gitattributes line added when needed' '
	lfs_upload alice/m "$tmp/seed/weights.bin" &&
	ndjson c3 "$(hdr_line "Add weights")" \
		"{\"key\":\"lfsFile\",\"value\":{\"path\":\"w/weights.dat\",\"algo\":\"sha256\",\"oid\":\"$lfs_oid\"}}" \
		"{\"key\":\"lfsFile\",\"value\":{\"path\":\"model.bin\",\"algo\":\"sha256\",\"oid\":\"$lfs_oid\",\"size\":200000}}" &&
	commit c main c3 && expect_status c 200 &&
	git --git-dir="$GD" show main:w/weights.dat >ptr && lfs_pointer "$tmp/seed/weights.bin" | cmp - ptr &&
	git --git-dir="$GD" show main:.gitattributes >ga &&
	test "$(grep -c "^w/weights.dat filter=lfs diff=lfs merge=lfs -text$" ga)" = 1 &&
	! grep -q "^model.bin" ga &&
	fetch f "$base/alice/m/resolve/main/w/weights.dat" && cmp "$(body f)" "$tmp/seed/weights.bin"
'
expect_success 'lfsFile refused: never uploaded, wrong size, bad oid' '
	before=$(git --git-dir="$GD" rev-parse main) &&
	ndjson bad "$(hdr_line x)" "{\"key\":\"lfsFile\",\"value\":{\"path\":\"n.bin\",\"algo\":\"sha256\",\"oid\":\"$(printf %064d 0)\",\"size\":3}}" &&
	commit c main bad && expect_error c 400 - && grep -q "was not uploaded" "$(body c)" &&
	ndjson bad "$(hdr_line x)" "{\"key\":\"lfsFile\",\"value\":{\"path\":\"n.bin\",\"algo\":\"sha256\",\"oid\":\"$lfs_oid\",\"size\":5}}" &&
	commit c main bad && expect_error c 400 - &&
	ndjson bad "$(hdr_line x)" "{\"key\":\"lfsFile\",\"value\":{\"path\":\"n.bin\",\"oid\":\"XYZ\"}}" &&
	commit c main bad && expect_error c 400 - &&
	test "$(git --git-dir="$GD" rev-parse main)" = "$before"
'
expect_success 'deletedFile (a file, or a folder) and deletedFolder (trailing /)' '
	ndjson c4 "$(hdr_line "Delete")" "{\"key\":\"deletedFile\",\"value\":{\"path\":\"u.txt\"}}" \
		"{\"key\":\"deletedFolder\",\"value\":{\"path\":\"dir/sub/\"}}" \
		"{\"key\":\"deletedFile\",\"value\":{\"path\":\"w\"}}" &&
	commit c main c4 && expect_status c 200 &&
	git --git-dir="$GD" ls-tree -r --name-only main >names &&
	printf ".gitattributes\na.txt\ndir/b.txt\nmodel.bin\n" | diff - names
'
expect_success 'deleting a missing file: 404 EntryNotFound with the Hub message' '
	ndjson bad "$(hdr_line x)" "{\"key\":\"deletedFile\",\"value\":{\"path\":\"nope.txt\"}}" &&
	commit c main bad && expect_error c 404 EntryNotFound &&
	grep -q "A file with this name doesn" "$(body c)" &&
	ndjson bad "$(hdr_line x)" "{\"key\":\"deletedFolder\",\"value\":{\"path\":\"nope/\"}}" &&
	commit c main bad && expect_error c 404 EntryNotFound
'
expect_success 'parentCommit: the head (full or short) is accepted, a stale one is 412' '
	head=$(git --git-dir="$GD" rev-parse main) &&
	{ hdr_line "With parent" "" "$head"; echo; file_line p.txt p; echo; } >c5 &&
	commit c main c5 && expect_status c 200 &&
	{ hdr_line "Short parent" "" "$(git --git-dir="$GD" rev-parse main | cut -c1-7)"; echo; file_line p2.txt p; } >c6 &&
	commit c main c6 && expect_status c 200 &&
	new=$(git --git-dir="$GD" rev-parse main) &&
	commit c main c5 && expect_error c 412 - &&
	grep -q "The branch was updated since you opened this page. Please refresh and try again." "$(body c)" &&
	test "$(git --git-dir="$GD" rev-parse main)" = "$new"
'
expect_success 'malformed NDJSON, JSON, base64 and paths: 400 naming the line, nothing written' '
	before=$(git --git-dir="$GD" rev-parse main) &&
	ndjson bad "$(hdr_line x)" "$(file_line ok.txt ok)" "{not json" &&
	commit c main bad && expect_error c 400 - && grep -q "line 3" "$(body c)" &&
	ndjson bad "$(file_line a.txt a)" && commit c main bad && expect_error c 400 - &&
	grep -q "line 1" "$(body c)" &&
	ndjson bad "$(hdr_line x)" "{\"key\":\"file\",\"value\":{\"path\":\"b.txt\",\"content\":\"@@@@\",\"encoding\":\"base64\"}}" &&
	commit c main bad && expect_error c 400 - && grep -q "line 2" "$(body c)" &&
	ndjson bad "$(hdr_line x)" "{\"key\":\"teleport\",\"value\":{}}" &&
	commit c main bad && expect_error c 400 - &&
	: >empty && commit c main empty && expect_error c 400 - &&
	for p in "../x" "a/../../x" ".git/config" "a/.git/x" "a//b" "/abs" "./a" "..\\\\ddd" "a/./b"; do
		ndjson bad "$(hdr_line x)" "$(file_line "$p" evil)" &&
		commit c main bad && expect_error c 400 - || return 1
	done &&
	ndjson bad "$(hdr_line x)" "$(file_line "$(printf %04100d 0)" long)" &&
	commit c main bad && expect_error c 400 - &&
	ndjson bad "$(hdr_line x)" "$(file_line a.txt/inside x)" &&
	commit c main bad && expect_error c 400 - &&
	test "$(git --git-dir="$GD" rev-parse main)" = "$before" &&
	fetch h "$base/api/health" && expect_status h 200
'
expect_success 'the Hub accepts folder/..\\..\\file (backslashes are ordinary)' '
	ndjson ok "$(hdr_line x)" "$(file_line "folder/..\\\\..\\\\file" fine)" &&
	commit c main ok && expect_status c 200 &&
	git --git-dir="$GD" ls-tree -r -z --name-only main | tr "\\0" "\\n" | grep -qxF "folder/..\\..\\file"
'
expect_success 'commit to a missing revision: 404 RevisionNotFound; to a tag or sha: 400' '
	ndjson ok "$(hdr_line x)" "$(file_line z.txt z)" &&
	commit c nope ok && expect_error c 404 RevisionNotFound &&
	commit c "$(git --git-dir="$GD" rev-parse main)" ok && expect_error c 400 -
'
expect_success 'commit: refused with a read token, by another user, for a missing repo' '
	ndjson ok "$(hdr_line x)" "$(file_line z.txt z)" &&
	fetch c -H "Authorization: Bearer $R" --data-binary @ok "$A/alice/m/commit/main" && expect_error c 403 - &&
	fetch c -H "Authorization: Bearer $B" --data-binary @ok "$A/alice/m/commit/main" && expect_error c 403 - &&
	fetch c --data-binary @ok "$A/alice/m/commit/main" && is_4xx c &&
	fetch c "${AUTH[@]}" --data-binary @ok "$A/alice/none/commit/main" && expect_error c 404 RepoNotFound
'
expect_success 'an oversized commit body is 413' '
	out=$(raw_http "POST /api/models/alice/m/commit/main HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $W\r\nContent-Length: 600000000\r\n\r\n") &&
	echo "$out" >resp && test "$(raw_status resp)" = 413
'
expect_success 'eight writers racing on one branch: each 200 or 412, every 200 is on main' '
	start=$(git --git-dir="$GD" rev-parse main) &&
	for i in 1 2 3 4 5 6 7 8; do
		ndjson "race$i" "$(hdr_line "race $i")" "$(file_line "race/$i.txt" "$i")"
		( fetch "r$i" "${AUTH[@]}" --data-binary "@race$i" "$A/alice/m/commit/main" ) &
	done; wait &&
	ok=0 && for i in 1 2 3 4 5 6 7 8; do
		case $(status "r$i") in
		200) ok=$((ok + 1)); git --git-dir="$GD" merge-base --is-ancestor "$(json "$(body "r$i")" "d[\"commitOid\"]")" main || return 1 ;;
		412) ;;
		*) show "r$i"; return 1 ;;
		esac
	done &&
	test "$ok" -ge 1 &&
	test "$(git --git-dir="$GD" rev-list --count "$start..main")" = "$ok" &&
	git --git-dir="$GD" fsck --no-dangling >/dev/null 2>&1
'

# --- preupload --------------------------------------------------------------------

expect_success 'preupload: lfs by .gitattributes, size and binary sample; oid; every path' '
	printf "ignored/\n*.log\n!keep.log\n" >gi &&
	{ hdr_line "ignore"; echo; file_line .gitignore "$(cat gi)"; echo; } >c7 &&
	commit c main c7 && expect_status c 200 &&
	sample_txt=$(b64 "plain text") && sample_bin=$(printf "a\000b" | base64 -w0) &&
	post p "$A/alice/m/preupload/main" "{\"files\":[
		{\"path\":\"x.bin\",\"sample\":\"$sample_txt\",\"size\":7},
		{\"path\":\"big.txt\",\"sample\":\"$sample_txt\",\"size\":10485760},
		{\"path\":\"blob.dat\",\"sample\":\"$sample_bin\",\"size\":3},
		{\"path\":\"a.txt\",\"sample\":\"$sample_txt\",\"size\":5},
		{\"path\":\"model.bin\",\"sample\":\"\",\"size\":200000},
		{\"path\":\"ignored/x.txt\",\"sample\":\"\",\"size\":1},
		{\"path\":\"run.log\",\"sample\":\"\",\"size\":1},
		{\"path\":\"keep.log\",\"sample\":\"\",\"size\":1}]}" &&
	expect_status p 200 &&
	a_oid=$(git --git-dir="$GD" rev-parse main:a.txt) &&
	json_check "$(body p)" "
{f[\"path\"]: (f[\"uploadMode\"], f[\"shouldIgnore\"], f[\"oid\"]) for f in d[\"files\"]} == {
 \"x.bin\": (\"lfs\", False, None), \"big.txt\": (\"lfs\", False, None),
 \"blob.dat\": (\"lfs\", False, None), \"a.txt\": (\"regular\", False, \"$a_oid\"),
 \"model.bin\": (\"lfs\", False, \"$lfs_oid\"), \"ignored/x.txt\": (\"regular\", True, None),
 \"run.log\": (\"regular\", True, None), \"keep.log\": (\"regular\", False, None)} and len(d[\"files\"]) == 8"
'
expect_success 'preupload: the request gitAttributes and gitIgnore win over the repo files' '
	post p "$A/alice/m/preupload/main" "{\"gitAttributes\":\"*.png filter=lfs diff=lfs merge=lfs -text\\n\",\"gitIgnore\":\"*.png\\n\",
		\"files\":[{\"path\":\"i.png\",\"sample\":\"\",\"size\":3},{\"path\":\"x.bin\",\"sample\":\"\",\"size\":3},{\"path\":\"run.log\",\"sample\":\"\",\"size\":1}]}" &&
	expect_status p 200 &&
	json_check "$(body p)" "[(f[\"uploadMode\"], f[\"shouldIgnore\"]) for f in d[\"files\"]] == [(\"lfs\", True), (\"regular\", False), (\"regular\", False)]"
'
expect_success 'preupload errors: missing repo, missing revision, bad body, read token' '
	post p "$A/alice/none/preupload/main" "{\"files\":[]}" && expect_error p 404 RepoNotFound &&
	post p "$A/alice/m/preupload/nope" "{\"files\":[]}" && expect_error p 404 RevisionNotFound &&
	post p "$A/alice/m/preupload/main" "{\"files\":[{\"size\":1}]}" && expect_error p 400 - &&
	post p "$A/alice/m/preupload/main" "{\"files\":3}" && expect_error p 400 - &&
	fetch p -H "Authorization: Bearer $R" --data-binary "{\"files\":[]}" "$A/alice/m/preupload/main" &&
	expect_error p 403 -
'

# --- branches and tags ------------------------------------------------------------

expect_success 'branch: create from main and from a tag, 409 when it exists' '
	post b "$A/alice/m/branch/dev" "{}" && expect_status b 200 &&
	test "$(git --git-dir="$GD" rev-parse dev)" = "$(git --git-dir="$GD" rev-parse main)" &&
	post b "$A/alice/m/branch/dev" "{}" && expect_error b 409 - &&
	grep -q "Reference refs/heads/dev already exists" "$(body b)" &&
	git --git-dir="$GD" tag t0 "$main_sha" &&
	post b "$A/alice/m/branch/feature%2Fold" "{\"startingPoint\":\"t0\"}" && expect_status b 200 &&
	test "$(git --git-dir="$GD" rev-parse feature/old)" = "$main_sha" &&
	post b "$A/alice/m/branch/from-sha" "{\"startingPoint\":\"$(echo "$main_sha" | cut -c1-7)\"}" && expect_status b 200
'
expect_success 'branch: bad names 400, missing startingPoint 404 RevisionNotFound' '
	post b "$A/alice/m/branch/refs%2Fpr%2F5" "{}" && expect_error b 400 - &&
	grep -q "Invalid reference for a branch" "$(body b)" &&
	post b "$A/alice/m/branch/a..b" "{}" && is_4xx b &&
	post b "$A/alice/m/branch/x" "{\"startingPoint\":\"nope\"}" && expect_error b 404 RevisionNotFound
'
expect_success 'branch: emptyBranch has no history, overwrite moves an existing branch' '
	post b "$A/alice/m/branch/empty" "{\"emptyBranch\":true}" && expect_status b 200 &&
	test "$(git --git-dir="$GD" rev-list --count empty)" = 1 &&
	test -z "$(git --git-dir="$GD" ls-tree empty)" &&
	post b "$A/alice/m/branch/dev" "{\"startingPoint\":\"$main_sha\",\"overwrite\":true}" && expect_status b 200 &&
	test "$(git --git-dir="$GD" rev-parse dev)" = "$main_sha"
'
expect_success 'branch delete: 200, then 404 RevisionNotFound; main is refused' '
	fetch b "${AUTH[@]}" -X DELETE "$A/alice/m/branch/dev" && expect_status b 200 &&
	! git --git-dir="$GD" rev-parse --verify -q refs/heads/dev &&
	fetch b "${AUTH[@]}" -X DELETE "$A/alice/m/branch/dev" && expect_error b 404 RevisionNotFound &&
	grep -q "Invalid rev id" "$(body b)" &&
	fetch b "${AUTH[@]}" -X DELETE "$A/alice/m/branch/main" && is_4xx b &&
	grep -q "Cannot delete refs/heads/main" "$(body b)" &&
	git --git-dir="$GD" rev-parse --verify -q refs/heads/main >/dev/null
'
expect_success 'tag: lightweight and annotated, 409 when it exists, 400 for a bad name' '
	post t "$A/alice/m/tag/main" "{\"tag\":\"v1\"}" && expect_status t 200 &&
	test "$(git --git-dir="$GD" cat-file -t v1)" = commit &&
	post t "$A/alice/m/tag/$(echo "$main_sha" | cut -c1-7)" "{\"tag\":\"v0\",\"message\":\"first release\"}" &&
	expect_status t 200 && test "$(git --git-dir="$GD" cat-file -t v0)" = tag &&
	test "$(git --git-dir="$GD" rev-parse "v0^{commit}")" = "$main_sha" &&
	post t "$A/alice/m/tag/main" "{\"tag\":\"v1\"}" && expect_error t 409 - &&
	post t "$A/alice/m/tag/main" "{\"tag\":\"bad name\"}" && expect_error t 400 - &&
	post t "$A/alice/m/tag/nope" "{\"tag\":\"v9\"}" && expect_error t 404 RevisionNotFound &&
	fetch r "$A/alice/m/refs" && json_check "$(body r)" "sorted(t[\"name\"] for t in d[\"tags\"]) == [\"t0\", \"v0\", \"v1\"]"
'
expect_success 'tag delete: 200, then 404 RevisionNotFound' '
	fetch t "${AUTH[@]}" -X DELETE "$A/alice/m/tag/v1" && expect_status t 200 &&
	fetch t "${AUTH[@]}" -X DELETE "$A/alice/m/tag/v1" && expect_error t 404 RevisionNotFound
'

# --- pull requests and discussions ---------------------------------------------------

expect_success 'create_pr=1: refs/pr/1 then refs/pr/2, main untouched, pullRequestUrl' '
	before=$(git --git-dir="$GD" rev-parse main) &&
	ndjson pr "$(hdr_line "My PR")" "$(file_line pr.txt pr)" &&
	commit c main pr "?create_pr=1" && expect_status c 200 &&
	json_check "$(body c)" "d[\"pullRequestUrl\"] == \"$base/alice/m/discussions/1\"" &&
	test "$(git --git-dir="$GD" rev-parse refs/pr/1)" = "$(json "$(body c)" "d[\"commitOid\"]")" &&
	test "$(git --git-dir="$GD" rev-parse main)" = "$before" &&
	commit c main pr "?create_pr=1" && expect_status c 200 &&
	json_check "$(body c)" "d[\"pullRequestUrl\"] == \"$base/alice/m/discussions/2\"" &&
	ndjson pr2 "$(hdr_line "More")" "$(file_line pr2.txt pr2)" &&
	commit c refs%2Fpr%2F1 pr2 && expect_status c 200 &&
	git --git-dir="$GD" show refs/pr/1:pr2.txt >/dev/null &&
	fetch f "$base/alice/m/resolve/refs%2Fpr%2F1/pr.txt" && test "$(cat "$(body f)")" = pr
'
expect_success 'discussions: list, details, and POST making refs/pr/3 at main' '
	fetch d "$A/alice/m/discussions" && expect_status d 200 &&
	json_check "$(body d)" "d[\"count\"] == 2 and d[\"start\"] == 0 and [x[\"num\"] for x in d[\"discussions\"]] == [2, 1] and
all(x[\"isPullRequest\"] and x[\"status\"] == \"open\" and x[\"title\"] == \"My PR\" and x[\"author\"][\"name\"] == \"alice\" and
    x[\"repo\"] == {\"name\": \"alice/m\", \"type\": \"model\"} and x[\"createdAt\"].endswith(\"Z\") for x in d[\"discussions\"])" &&
	fetch d "$A/alice/m/discussions/1?diff=1" && expect_status d 200 &&
	json_check "$(body d)" "d[\"num\"] == 1 and d[\"changes\"][\"base\"] == \"refs/heads/main\" and d[\"events\"] == [] and d[\"filesWithConflicts\"] == []" &&
	fetch d "$A/alice/m/discussions/9" && expect_error d 404 - &&
	post d "$A/alice/m/discussions" "{\"title\":\"Upload\",\"description\":\"x\",\"pullRequest\":true}" &&
	expect_status d 200 && json_check "$(body d)" "d[\"num\"] == 3 and d[\"title\"] == \"Upload\"" &&
	test "$(git --git-dir="$GD" rev-parse refs/pr/3)" = "$(git --git-dir="$GD" rev-parse main)" &&
	fetch d -H "Authorization: Bearer $R" -X POST --data-binary "{\"title\":\"t\",\"pullRequest\":true}" "$A/alice/m/discussions" &&
	expect_error d 403 -
'

# --- validate-yaml -------------------------------------------------------------------

expect_success 'validate-yaml: valid, no front matter (warning), bad model-index, bad YAML' '
	post v "$base/api/validate-yaml" "{\"content\":\"---\\nlicense: mit\\n---\\n# Card\\n\",\"repoType\":\"model\"}" &&
	expect_status v 200 && json_check "$(body v)" "d == {\"errors\": [], \"warnings\": []}" &&
	post v "$base/api/validate-yaml" "{\"content\":\"# Card only\\n\",\"repoType\":\"model\"}" &&
	expect_status v 200 && json_check "$(body v)" "d[\"errors\"] == [] and len(d[\"warnings\"]) == 1 and d[\"warnings\"][0][\"message\"]" &&
	post v "$base/api/validate-yaml" "{\"content\":\"---\\nmodel-index: foo\\n---\\n\",\"repoType\":\"model\"}" &&
	expect_status v 400 && json_check "$(body v)" "d[\"errors\"][0][\"message\"]" &&
	post v "$base/api/validate-yaml" "{\"content\":\"---\\na: [1\\n---\\n\",\"repoType\":\"model\"}" &&
	expect_status v 400 && json_check "$(body v)" "d[\"errors\"][0][\"message\"]" &&
	post v "$base/api/validate-yaml" "{{" && expect_status v 400 && json_check "$(body v)" "d[\"error\"]"
'

# --- move and delete -----------------------------------------------------------------

expect_success 'move: 200; the old name redirects (relative 307), the git dir stays' '
	post m "$base/api/repos/move" "{\"fromRepo\":\"alice/m\",\"toRepo\":\"alice/m2\",\"type\":\"model\"}" &&
	expect_status m 200 &&
	fetch i "$A/alice/m2" && expect_status i 200 && json_check "$(body i)" "d[\"id\"] == \"alice/m2\"" &&
	test -d "$GD" &&
	fetch i "$A/alice/m?expand=sha" && expect_status i 307 &&
	expect_hdr i Location "/api/models/alice/m2?expand=sha" &&
	fetch_head f "$base/alice/M/resolve/main/a.txt" && expect_status f 307 &&
	expect_hdr f Location "/alice/m2/resolve/main/a.txt" &&
	fetch f -L "$base/alice/m/resolve/main/a.txt" && expect_status f 200 && test "$(cat "$(body f)")" = hello
'
expect_success 'move: target exists is 409 with the Hub message; missing source 404' '
	post m "$base/api/repos/move" "{\"fromRepo\":\"alice/m2\",\"toRepo\":\"alice/seed\",\"type\":\"model\"}" &&
	expect_error m 409 - && grep -q "A model repository called alice/seed already exists" "$(body m)" &&
	post m "$base/api/repos/move" "{\"fromRepo\":\"alice/none\",\"toRepo\":\"alice/x\",\"type\":\"model\"}" &&
	expect_error m 404 RepoNotFound &&
	post m "$base/api/repos/move" "{\"fromRepo\":\"alice/m2\",\"toRepo\":\"bob/m2\",\"type\":\"model\"}" && is_4xx m
'
expect_success 'delete: 200, record and git dir gone, redirects gone, then 404 RepoNotFound' '
	fetch x "${AUTH[@]}" -X DELETE --data-binary "{\"name\":\"m2\",\"organization\":\"alice\",\"type\":\"model\"}" "$base/api/repos/delete" &&
	expect_status x 200 &&
	fetch i "${AUTH[@]}" "$A/alice/m2" && expect_error i 404 RepoNotFound &&
	fetch i "${AUTH[@]}" "$A/alice/m" && expect_error i 404 RepoNotFound &&
	test ! -e "$GD" && test -z "$(ls "$DATA/tmp" | grep deleted)" &&
	fetch x "${AUTH[@]}" -X DELETE --data-binary "{\"name\":\"m2\",\"organization\":\"alice\"}" "$base/api/repos/delete" &&
	expect_error x 404 RepoNotFound &&
	fetch x -H "Authorization: Bearer $B" -X DELETE --data-binary "{\"name\":\"seed\",\"organization\":\"alice\"}" "$base/api/repos/delete" &&
	expect_error x 403 - && fetch i "$A/alice/seed" && expect_status i 200
'
expect_success 'a new repo may take a deleted name' '
	post c "$base/api/repos/create" "{\"name\":\"m\"}" && expect_status c 200 &&
	fetch i "$A/alice/m" && expect_status i 200
'
done_testing
