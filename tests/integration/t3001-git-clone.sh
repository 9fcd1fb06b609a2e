#!/bin/bash
# git over HTTP, read side: clone (with and without ".git", model, dataset
# and space URLs), shallow clone, fetch of a commit made after the clone,
# ls-remote, both protocol versions, a gzip-compressed and a chunked
# request body, parallel clones, the errors git relies on (401 with a
# Basic challenge, dumb HTTP refused), and no child process left behind.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || skip_all "git is not installed"

setup_model_repo --small
DS=$tmp/ds
mkdir -p "$DS/data"
printf 'id,text\n1,hello\n2,world\n' >"$DS/data/train.csv"
printf -- '---\nlicense: mit\n---\n# A dataset\n' >"$DS/README.md"
ds_sha=$(hv import "$DS" --repo haven-test/tiny-ds --type dataset -m "Add data" 2>/dev/null)
sp_sha=$(hv import "$DS" --repo haven-test/tiny-space --type space -m "Add app" 2>/dev/null)
is_sha "$ds_sha" && is_sha "$sp_sha" || {
	echo "Bail out! haven import of the dataset or space failed"
	exit 1
}
start_server

# Git must never prompt, and never find a credential anywhere.
export GIT_LFS_SKIP_SMUDGE=1 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false
G="git -c credential.helper= -c protocol.version=2"

# same_tree DIR SRC: the clone's files are the source's, LFS files as
# their pointers (the clone does not smudge).
same_tree() {
	local f
	(cd "$1" && git -c core.quotePath=false ls-files | LC_ALL=C sort) >"$tmp/cloned.list" &&
		{ fixture_files "$2"; echo .gitattributes; } | LC_ALL=C sort >"$tmp/src.list" &&
		diff "$tmp/src.list" "$tmp/cloned.list" || return 1
	while IFS= read -r f; do
		[ "$f" = .gitattributes ] && continue
		if cmp -s "$1/$f" "$2/$f"; then
			continue
		fi
		lfs_pointer "$2/$f" >"$tmp/want.ptr"
		cmp "$1/$f" "$tmp/want.ptr" || { echo "differs: $f"; return 1; }
	done <"$tmp/src.list"
}

expect_success 'git clone <url> (no .git): HEAD is main and the files are the import' '
	$G clone -q "$base/$REPO" c1 &&
	test "$(git -C c1 rev-parse HEAD)" = "$main_sha" &&
	test "$(git -C c1 symbolic-ref --short HEAD)" = main &&
	same_tree c1 "$MODEL"
'
expect_success 'the LFS file arrives as its pointer (GIT_LFS_SKIP_SMUDGE=1)' '
	lfs_pointer "$MODEL/sub/weights.bin" >want.ptr &&
	cmp c1/sub/weights.bin want.ptr
'
expect_success 'git clone <url>.git, protocol v0: same commit and history' '
	git -c credential.helper= -c protocol.version=0 clone -q "$base/$REPO.git" c2 &&
	test "$(git -C c2 rev-parse HEAD)" = "$main_sha" &&
	git -C c2 rev-list --count HEAD >count && test "$(cat count)" = 2 &&
	git -C c2 fsck --strict --no-progress
'
expect_success 'remote branches and tags: dev, feature/x, v1.0' '
	test "$(git -C c2 rev-parse origin/dev)" = "$dev_sha" &&
	test "$(git -C c2 rev-parse origin/feature/x)" = "$feature_sha" &&
	test "$(git -C c2 rev-parse "v1.0^{commit}")" = "$main_sha"
'
expect_success 'git clone --branch dev' '
	$G clone -q --branch dev "$base/$REPO" c3 &&
	test "$(git -C c3 rev-parse HEAD)" = "$dev_sha" && test -f c3/DEV.md
'
expect_success 'datasets/ prefix, with and without .git' '
	$G clone -q "$base/datasets/haven-test/tiny-ds" d1 &&
	$G clone -q "$base/datasets/haven-test/tiny-ds.git" d2 &&
	test "$(git -C d1 rev-parse HEAD)" = "$ds_sha" &&
	test "$(git -C d2 rev-parse HEAD)" = "$ds_sha" &&
	cmp d1/data/train.csv "$DS/data/train.csv"
'
expect_success 'spaces/ prefix' '
	$G clone -q "$base/spaces/haven-test/tiny-space" s1 &&
	test "$(git -C s1 rev-parse HEAD)" = "$sp_sha"
'
expect_success 'a dataset is not found under the model URL, nor a model under datasets/' '
	! $G clone -q "$base/haven-test/tiny-ds" nope1 2>err1 &&
	! $G clone -q "$base/datasets/$REPO" nope2 2>err2 &&
	test ! -e nope1 && test ! -e nope2
'
expect_success 'git clone --depth 1: one commit, shallow' '
	$G clone -q --depth 1 "$base/$REPO" sh1 &&
	test "$(git -C sh1 rev-list --count HEAD)" = 1 &&
	test "$(git -C sh1 rev-parse --is-shallow-repository)" = true &&
	test "$(git -C sh1 rev-parse HEAD)" = "$main_sha" &&
	git -c credential.helper= -c protocol.version=0 clone -q --depth 1 "$base/$REPO.git" sh0 &&
	test "$(git -C sh0 rev-list --count HEAD)" = 1
'
expect_success 'git fetch --unshallow completes the shallow clone' '
	$G -C sh1 fetch -q --unshallow &&
	test "$(git -C sh1 rev-list --count HEAD)" = 2
'
expect_success 'git ls-remote lists what the refs API lists' '
	$G ls-remote "$base/$REPO" >lsr &&
	grep -qx "$main_sha	HEAD" lsr &&
	grep -qx "$main_sha	refs/heads/main" lsr &&
	grep -qx "$dev_sha	refs/heads/dev" lsr &&
	grep -qx "$feature_sha	refs/heads/feature/x" lsr &&
	grep -q "	refs/tags/v1.0$" lsr
'

# A new commit made while the server runs (the CLI works beside it).
cp -R "$MODEL" "$tmp/model2"
printf 'a later file\n' >"$tmp/model2/LATER.md"
new_sha=$(hv import "$tmp/model2" --repo "$REPO" -m "Later" 2>/dev/null)
expect_success 'git fetch sees a commit made after the clone' '
	is_sha "$new_sha" &&
	$G -C c1 fetch -q origin &&
	test "$(git -C c1 rev-parse origin/main)" = "$new_sha" &&
	git -C c1 merge -q --ff-only origin/main && test -f c1/LATER.md &&
	test "$(git -C c1 rev-parse HEAD~1)" = "$main_sha"
'
expect_success 'git pull into the shallow clone' '
	$G -C sh0 pull -q --ff-only && test "$(git -C sh0 rev-parse HEAD)" = "$new_sha"
'

expect_success 'info/refs: the advertisement content type, never cached' '
	fetch a "$base/$REPO/info/refs?service=git-upload-pack" && expect_status a 200 &&
	expect_hdr a Content-Type application/x-git-upload-pack-advertisement &&
	case $(hdr a Cache-Control) in *no-cache*) ;; *) show a; false ;; esac &&
	head -c 30 "$(body a)" | grep -q "^001e# service=git-upload-pack"
'
expect_success 'info/refs with Git-Protocol: version=2 answers protocol v2' '
	fetch a2 -H "Git-Protocol: version=2" "$base/$REPO/info/refs?service=git-upload-pack" &&
	expect_status a2 200 && grep -q "version 2" "$(body a2)" && grep -q "ls-refs" "$(body a2)"
'
# A v0 upload-pack request (want + done) as a client could send it.
printf '0032want %s\n00000009done\n' "$main_sha" >"$tmp/upload.req"
expect_success 'git-upload-pack with a gzip-compressed body' '
	gzip -c "$tmp/upload.req" >upload.req.gz &&
	fetch u -X POST -H "Content-Type: application/x-git-upload-pack-request" \
		-H "Content-Encoding: gzip" --data-binary @upload.req.gz "$base/$REPO/git-upload-pack" &&
	expect_status u 200 && expect_hdr u Content-Type application/x-git-upload-pack-result &&
	head -c 8 "$(body u)" | grep -q "^0008NAK" && grep -q PACK "$(body u)"
'
expect_success 'git-upload-pack with a chunked body' '
	fetch u -X POST -H "Content-Type: application/x-git-upload-pack-request" \
		-H "Transfer-Encoding: chunked" --data-binary @"$tmp/upload.req" \
		"$base/$REPO.git/git-upload-pack" &&
	expect_status u 200 && head -c 8 "$(body u)" | grep -q "^0008NAK"
'
expect_success 'git-upload-pack with the wrong content type: 415 from git, no crash' '
	fetch u -X POST -H "Content-Type: text/plain" --data-binary @"$tmp/upload.req" \
		"$base/$REPO/git-upload-pack" && expect_status u 415
'
expect_success 'git-upload-pack with a garbage body: an error answer, not a hang' '
	head -c 3000 /dev/zero | tr "\0" "x" >garbage &&
	fetch u -X POST -H "Content-Type: application/x-git-upload-pack-request" \
		--data-binary @garbage "$base/$REPO/git-upload-pack" &&
	case $(status u) in 200 | 4??) ;; *) show u; false ;; esac
'

expect_success 'a missing repository: 401 with a Basic challenge, so git asks for credentials' '
	fetch m "$base/haven-test/no-such-repo/info/refs?service=git-upload-pack" &&
	expect_error m 401 RepoNotFound &&
	case $(hdr m WWW-Authenticate) in Basic*) ;; *) show m; false ;; esac
'
expect_success 'git clone of a missing repository fails cleanly' '
	! $G clone "$base/haven-test/no-such-repo" gone 2>err &&
	test ! -e gone && cat err &&
	grep -Eqi "could not read Username|Authentication failed|not found" err
'
expect_success 'dumb HTTP (info/refs without service) is refused' '
	fetch d "$base/$REPO/info/refs" && expect_status d 403 &&
	fetch d "$base/$REPO/HEAD" && is_4xx d &&
	fetch d "$base/$REPO/objects/info/packs" && is_4xx d
'
expect_success 'an unknown service: 400' '
	fetch d "$base/$REPO/info/refs?service=git-upload-archive" && expect_status d 400 &&
	fetch d -X POST --data-binary x "$base/$REPO/git-upload-archive" && is_4xx d
'
expect_success 'pushing anonymously: 401 with a Basic challenge' '
	fetch p "$base/$REPO/info/refs?service=git-receive-pack" && expect_status p 401 &&
	case $(hdr p WWW-Authenticate) in Basic*) ;; *) show p; false ;; esac &&
	fetch p -X POST -H "Content-Type: application/x-git-receive-pack-request" \
		--data-binary @"$tmp/upload.req" "$base/$REPO/git-receive-pack" && expect_status p 401
'

expect_success 'eight clones in parallel all succeed' '
	pids= &&
	for i in 1 2 3 4 5 6 7 8; do
		$G clone -q "$base/$REPO" "par$i" >"par$i.log" 2>&1 &
		pids="$pids $!"
	done &&
	for p in $pids; do wait "$p" || exit 1; done &&
	for i in 1 2 3 4 5 6 7 8; do
		test "$(git -C "par$i" rev-parse HEAD)" = "$new_sha" || exit 1
	done
'
expect_success 'a client that leaves mid-request does not stop the server' '
	printf "POST /%s/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: 100000\r\n\r\n0032want %s\n" \
		"$REPO" "$main_sha" >partial.req &&
	raw_http --timeout 1 @partial.req >/dev/null &&
	$G ls-remote "$base/$REPO" >lsr2 && grep -q refs/heads/main lsr2
'
expect_success 'no git child is left behind (running or unreaped)' '
	i=0 &&
	while [ -n "$(ps -o pid= --ppid "$server_pid")" ] && [ $i -lt 50 ]; do
		sleep 0.1; i=$((i + 1))
	done &&
	ps -o pid=,stat=,comm= --ppid "$server_pid" >kids; cat kids; test ! -s kids
'

done_testing
