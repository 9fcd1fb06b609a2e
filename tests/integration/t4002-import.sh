#!/bin/bash
# `haven import DIR --repo NS/NAME`: one new commit on the branch (the repo
# is created when missing, the branch from main), the commit sha on stdout,
# LFS by .gitattributes pattern or by size (>= 10 MiB) with the pointer in
# git and the bytes in DATA/blobs/sha256/ab/cd/<hex>, regular files as git
# blobs, and content-addressed storage: the same bytes are stored once.
. "$(dirname "$0")/lib.sh"

MODEL=$tmp/model
make_model "$MODEL"
REPO=haven-test/Imported

expect_success 'import --help exits 0' '"$HAVEN" import --help >out 2>&1'
hv import "$MODEL" --repo "$REPO" -m "Add the model" >"$tmp/import.out" 2>"$tmp/import.err"
import_rc=$?
main_sha=$(cat "$tmp/import.out")
expect_success 'import exits 0 and prints only the new commit sha' '
	test $import_rc = 0 && test "$(wc -l <import.out | tr -d " ")" = 1 && is_sha "$main_sha"
'
gd=$(git_dir_for "$main_sha" 2>/dev/null)
expect_success 'the repo was created: one bare repository holding the commit' '
	test -n "$gd" && test "$(ls "$DATA/git" | grep -c "\.git$")" = 1
'
expect_success 'main points at the printed commit' '
	test "$(git --git-dir="$gd" rev-parse refs/heads/main)" = "$main_sha"
'
expect_success 'history: the system initial commit, then the import with its message' '
	test "$(git --git-dir="$gd" rev-list --count "$main_sha")" = 2 &&
	test "$(git --git-dir="$gd" log -1 --format=%s "$main_sha")" = "Add the model" &&
	test "$(git --git-dir="$gd" log -1 --format=%an "$main_sha~1")" = system &&
	test "$(git --git-dir="$gd" log -1 --format=%s "$main_sha~1")" = "initial commit"
'
expect_success 'every fixture file is in the commit' '
	git --git-dir="$gd" ls-tree -r -z --name-only "$main_sha" | tr "\0" "\n" | sort >tree &&
	fixture_files "$MODEL" | sort >want && comm -23 want tree >missing &&
	test ! -s missing
'
expect_success 'git fsck --strict is clean' 'git --git-dir="$gd" fsck --strict >out 2>&1'

# in_git PATH: the git blob of PATH at main.
in_git() {
	git --git-dir="$gd" cat-file blob "$main_sha:$1"
}
expect_success 'regular files are git blobs with the same bytes' '
	for f in README.md config.json tokenizer.json sub/dir/notes.txt "docs/hello wörld.txt"; do
		in_git "$f" >b && cmp b "$MODEL/$f" || { echo "differs: $f"; exit 1; }
	done
'
expect_success 'model.safetensors (pattern and size): an LFS pointer in git' '
	in_git model.safetensors >p && lfs_pointer "$MODEL/model.safetensors" >want && cmp p want
'
expect_success 'sub/weights.bin (the *.bin pattern, 4 KiB): an LFS pointer in git' '
	in_git sub/weights.bin >p && lfs_pointer "$MODEL/sub/weights.bin" >want && cmp p want
'
expect_success 'extra/large.dat (no pattern, exactly 10 MiB): an LFS pointer in git' '
	in_git extra/large.dat >p && lfs_pointer "$MODEL/extra/large.dat" >want && cmp p want
'
expect_success 'the LFS bytes are in the blob store under their sha256' '
	for f in model.safetensors sub/weights.bin extra/large.dat; do
		b=$(blob_path "$(sha256_of "$MODEL/$f")") &&
		test -f "$b" && cmp "$b" "$MODEL/$f" || { echo "no blob for $f at $b"; exit 1; }
	done &&
	test "$(count_blobs)" = 3
'
expect_success 'no temporary files are left behind' '
	test -z "$(find "$DATA" -name "*.tmp" -o -name "*.incomplete" | head -n 1)" &&
	{ test ! -d "$DATA/tmp" || test -z "$(ls -A "$DATA/tmp")"; }
'

hv import "$MODEL" --repo "$REPO" -m "Same again" >"$tmp/again.out" 2>&1
again_rc=$?
expect_success 'importing the unchanged folder again exits 0 and prints a sha' '
	test $again_rc = 0 && is_sha "$(tail -n 1 again.out)"
'
expect_success '... and stores no new blob' 'test "$(count_blobs)" = 3'
expect_success '... and leaves the tree unchanged' '
	test "$(git --git-dir="$gd" rev-parse "refs/heads/main^{tree}")" = "$(git --git-dir="$gd" rev-parse "$main_sha^{tree}")"
'
expect_success 'the same files in another repo are stored once' '
	hv import "$MODEL" --repo haven-test/copy -m copy >out 2>&1 && is_sha "$(cat out)" &&
	test "$(count_blobs)" = 3
'

cp -R "$MODEL" "$tmp/dev"
echo '{"hidden_size": 2048}' >"$tmp/dev/config.json"
head -c 5000 /dev/zero | tr "\0" x >"$tmp/dev/sub/more.bin"
dev_sha=$(hv import "$tmp/dev" --repo "$REPO" --revision dev -m "Dev work" 2>"$tmp/dev.err")
expect_success 'import --revision dev creates dev from main' '
	is_sha "$dev_sha" &&
	test "$(git --git-dir="$gd" rev-parse refs/heads/dev)" = "$dev_sha" &&
	test "$(git --git-dir="$gd" rev-parse "$dev_sha~1")" = "$(git --git-dir="$gd" rev-parse refs/heads/main)" &&
	test "$(git --git-dir="$gd" log -1 --format=%s "$dev_sha")" = "Dev work"
'
expect_success 'main did not move' '
	git --git-dir="$gd" cat-file blob "refs/heads/main:config.json" >c && cmp c "$MODEL/config.json"
'
expect_success 'dev has the new bytes: one new blob for the new *.bin file' '
	git --git-dir="$gd" cat-file blob "$dev_sha:config.json" >c && cmp c "$tmp/dev/config.json" &&
	test "$(count_blobs)" = 4 &&
	cmp "$(blob_path "$(sha256_of "$tmp/dev/sub/more.bin")")" "$tmp/dev/sub/more.bin"
'
expect_success 'a second import onto dev makes one more commit on dev' '
	echo more >"$tmp/dev/NOTES.md" &&
	s=$(hv import "$tmp/dev" --repo "$REPO" --revision dev -m "More" 2>/dev/null) && is_sha "$s" &&
	test "$(git --git-dir="$gd" rev-parse "$s~1")" = "$dev_sha"
'

mkdir -p "$tmp/ds"
printf 'a,b\n1,2\n' >"$tmp/ds/data.csv"
head -c 3000 /dev/zero | tr "\0" y >"$tmp/ds/data.parquet"
expect_success 'import --type dataset' '
	s=$(hv import "$tmp/ds" --repo haven-test/Imported --type dataset -m data 2>/dev/null) && is_sha "$s" &&
	g=$(git_dir_for "$s") && test "$g" != "$gd" &&
	git --git-dir="$g" cat-file blob "$s:data.parquet" | grep -q "^oid sha256:$(sha256_of "$tmp/ds/data.parquet")$"
'

expect_success 'importing a missing folder fails with a message' '
	! hv import "$tmp/no-such-dir" --repo haven-test/x >out 2>err && test -s err
'
expect_success 'importing a file instead of a folder fails' '
	! hv import "$MODEL/config.json" --repo haven-test/x >out 2>err && test -s err
'
expect_success 'importing to an invalid repo id fails' '
	! hv import "$MODEL" --repo "bad--id/x" >out 2>err && test -s err &&
	! hv import "$MODEL" --repo noslash >out 2>err && test -s err
'
expect_success 'import without --repo fails' '
	! hv import "$MODEL" >out 2>err && test -s err
'
if [ "$(id -u)" = 0 ]; then
	test_skip 'an unreadable file makes the import fail and change nothing' 'running as root'
else
	expect_success 'an unreadable file makes the import fail and change nothing' '
		cp -R "$MODEL" "$tmp/bad" && chmod 000 "$tmp/bad/config.json" &&
		before=$(git --git-dir="$gd" rev-parse refs/heads/main) &&
		! hv import "$tmp/bad" --repo "$REPO" -m bad >out 2>err && test -s err &&
		test "$(git --git-dir="$gd" rev-parse refs/heads/main)" = "$before"
	'
fi
# While a server runs, an import is visible through the API at once.
start_server
echo '{"hidden_size": 4096}' >"$tmp/dev/config.json"
live_sha=$(hv import "$tmp/dev" --repo "$REPO" -m "Live import" 2>/dev/null)
expect_success 'an import while the server runs is served at once' '
	is_sha "$live_sha" &&
	fetch i "$base/api/models/$REPO" && json_check "$(body i)" "d[\"sha\"] == \"$live_sha\"" &&
	fetch c "$base/$REPO/resolve/main/config.json" && cmp "$(body c)" "$tmp/dev/config.json" &&
	expect_hdr c X-Repo-Commit "$live_sha"
'
expect_success 'the imported LFS file downloads byte for byte' '
	fetch m "$base/$REPO/resolve/main/model.safetensors" && expect_status m 200 &&
	cmp "$(body m)" "$MODEL/model.safetensors"
'
done_testing
