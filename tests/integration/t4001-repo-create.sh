#!/bin/bash
# `haven repo create|branch|tag`: a new repo is a bare git repository whose
# first commit is the Hub's: author system, title "initial commit", only a
# .gitattributes with the LFS patterns. Duplicates and invalid ids are
# refused. The server shows what the CLI made.
. "$(dirname "$0")/lib.sh"

expect_success 'repo create --help exits 0' '"$HAVEN" repo create --help >out 2>&1'
expect_success 'repo create NS/NAME exits 0' 'hv repo create haven-test/Fresh >out 2>err'
gd=
for g in "$DATA"/git/*.git; do [ -d "$g" ] && gd=$g; done
expect_success 'one bare git repository under DATA/git' '
	test "$(ls "$DATA/git" | grep -c "\.git$")" = 1 &&
	test "$(git --git-dir="$gd" rev-parse --is-bare-repository)" = true
'
expect_success 'the initial commit: author system, title "initial commit", empty message' '
	test "$(git --git-dir="$gd" rev-list --count refs/heads/main)" = 1 &&
	test "$(git --git-dir="$gd" log -1 --format=%an refs/heads/main)" = system &&
	test "$(git --git-dir="$gd" log -1 --format=%s refs/heads/main)" = "initial commit" &&
	test -z "$(git --git-dir="$gd" log -1 --format=%b refs/heads/main)"
'
expect_success 'HEAD of the bare repository is main' '
	test "$(git --git-dir="$gd" symbolic-ref HEAD)" = refs/heads/main
'
expect_success 'the initial tree holds only .gitattributes' '
	test "$(git --git-dir="$gd" ls-tree -r --name-only refs/heads/main)" = .gitattributes
'
expect_success '.gitattributes marks the Hub'"'"'s LFS patterns' '
	git --git-dir="$gd" show refs/heads/main:.gitattributes >ga &&
	for p in "*.safetensors" "*.bin" "*.pt" "*.pth" "*.ckpt" "*.h5" "*.onnx" "*.msgpack" \
		"*.pkl" "*.zip" "*.gz" "*.tar" "*.parquet" "*.arrow" "*.npy" "*tfevents*"; do
		grep -qxF "$p filter=lfs diff=lfs merge=lfs -text" ga || { echo "no line for $p"; cat ga; exit 1; }
	done
'
expect_success 'git fsck finds nothing wrong' 'git --git-dir="$gd" fsck --strict >out 2>&1'
init_sha=$(git --git-dir="$gd" rev-parse refs/heads/main 2>/dev/null)

expect_success 'creating it again fails with a message' '
	! hv repo create haven-test/Fresh >out 2>err && test -s err
'
expect_success 'creating it again in another case fails (ids are case-insensitive)' '
	! hv repo create HAVEN-TEST/fresh >out 2>err && test -s err
'
expect_success 'the same name as a dataset and as a space is another repo' '
	hv repo create haven-test/Fresh --type dataset >out 2>&1 &&
	hv repo create haven-test/Fresh --type space >out 2>&1 &&
	test "$(ls "$DATA/git" | grep -c "\.git$")" = 3
'
expect_success 'a dataset repo gets a .gitattributes with LFS patterns too' '
	for g in "$DATA"/git/*.git; do
		git --git-dir="$g" show refs/heads/main:.gitattributes | grep -q "^\*\.parquet filter=lfs" || exit 1
	done
'
expect_success '--type bogus is refused' '! hv repo create haven-test/x --type bogus >out 2>err && test -s err'
long=$(head -c 200 /dev/zero | tr "\0" a)
for id in "a--b/model" "ns/a--b" "-x/model" "ns/-x" "ns/x-" "ns/.x" "ns/x." "ns/a..b" \
	"ns/$long" "noslash" "ns/a/b" "ns/" "/x" "ns/x.git" "ns/a b" "ns/a%b" "../x" "ns/.."; do
	expect_success "invalid repo id '$id' is refused" "! hv repo create '$id' >out 2>err && test -s err"
done
expect_success 'no repository was made for the refused ids' '
	test "$(ls "$DATA/git" | grep -c "\.git$")" = 3
'

expect_success 'repo branch NS/NAME BRANCH: from main' '
	hv repo branch haven-test/Fresh dev >out 2>&1 &&
	test "$(git --git-dir="$gd" rev-parse refs/heads/dev)" = "$init_sha"
'
expect_success 'repo branch --from a sha' '
	hv repo branch haven-test/Fresh from-sha --from "$init_sha" >out 2>&1 &&
	test "$(git --git-dir="$gd" rev-parse refs/heads/from-sha)" = "$init_sha"
'
expect_success 'repo tag NS/NAME TAG' '
	hv repo tag haven-test/Fresh v0 >out 2>&1 &&
	test "$(git --git-dir="$gd" rev-parse "refs/tags/v0^{commit}")" = "$init_sha"
'
expect_success 'an existing branch or tag is refused' '
	! hv repo branch haven-test/Fresh dev >out 2>err && test -s err &&
	! hv repo tag haven-test/Fresh v0 >out 2>err && test -s err
'
expect_success 'a branch from a missing revision is refused' '
	! hv repo branch haven-test/Fresh b2 --from no-such >out 2>err && test -s err
'
expect_success 'a branch of a missing repo is refused' '
	! hv repo branch haven-test/no-such b2 >out 2>err && test -s err
'
expect_success 'invalid ref names are refused' '
	for r in "a..b" "a b" "-x" "x.lock" "a~b" "a:b" "HEAD"; do
		! hv repo branch haven-test/Fresh "$r" >out 2>err || { echo "accepted branch $r"; exit 1; }
	done
'

start_server
expect_success 'the server shows the new repo' '
	fetch i "$base/api/models/haven-test/Fresh" && expect_status i 200 &&
	json_check "$(body i)" "d[\"id\"] == \"haven-test/Fresh\" and d[\"sha\"] == \"$init_sha\" and [s[\"rfilename\"] for s in d[\"siblings\"]] == [\".gitattributes\"]"
'
expect_success 'its commits: one, by system' '
	fetch c "$base/api/models/haven-test/Fresh/commits/main" && expect_status c 200 &&
	expect_hdr c X-Total-Count 1 &&
	json_check "$(body c)" "len(d) == 1 and d[0][\"id\"] == \"$init_sha\" and d[0][\"title\"] == \"initial commit\" and d[0][\"authors\"][0][\"user\"] == \"system\""
'
expect_success 'its .gitattributes downloads as git has it' '
	fetch g "$base/haven-test/Fresh/resolve/main/.gitattributes" && expect_status g 200 &&
	git --git-dir="$gd" show refs/heads/main:.gitattributes >ga && cmp ga "$(body g)"
'
expect_success 'its refs: main, dev, from-sha and tag v0' '
	fetch r "$base/api/models/haven-test/Fresh/refs" && expect_status r 200 &&
	json_check "$(body r)" "{\"dev\", \"from-sha\", \"main\"} <= set(b[\"name\"] for b in d[\"branches\"]) and [t[\"name\"] for t in d[\"tags\"]] == [\"v0\"]"
'
expect_success 'the dataset and the space of the same name' '
	fetch d "$base/api/datasets/haven-test/Fresh" && expect_status d 200 &&
	fetch s "$base/api/spaces/haven-test/Fresh" && expect_status s 200
'
expect_success 'a repo created while the server runs is visible at once' '
	hv repo create haven-test/Later >out 2>&1 &&
	fetch l "$base/api/models/haven-test/Later" && expect_status l 200
'
done_testing
