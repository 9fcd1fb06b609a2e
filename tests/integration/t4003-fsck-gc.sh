#!/bin/bash
# `haven fsck [--deep]` proves that every reference resolves (LMDB to git
# to blobs) and, deep, that every blob hashes to its name; `haven gc`
# removes only unreferenced blobs older than the grace period.
. "$(dirname "$0")/lib.sh"

MODEL=$tmp/model
make_model "$MODEL"
REPO=haven-test/Checked
main_sha=$(hv import "$MODEL" --repo "$REPO" -m "Add the model" 2>/dev/null)
gd=$(git_dir_for "$main_sha" 2>/dev/null)
wb_sha=$(sha256_of "$MODEL/sub/weights.bin")
wb_blob=$(blob_path "$wb_sha")
st_blob=$(blob_path "$(sha256_of "$MODEL/model.safetensors")")

expect_success 'the import made three blobs' 'is_sha "$main_sha" && test "$(count_blobs)" = 3'
expect_success 'fsck --help exits 0' '"$HAVEN" fsck --help >out 2>&1'
expect_success 'fsck on a healthy data folder exits 0' 'hv fsck >out 2>&1'
expect_success 'fsck --deep on a healthy data folder exits 0' 'hv fsck --deep >out 2>&1'
expect_success 'fsck on a fresh, empty data folder exits 0' '
	"$HAVEN" repo create haven-test/empty --data "$tmp/other" >out 2>&1 &&
	"$HAVEN" fsck --deep --data "$tmp/other" >out 2>&1
'

# A flipped byte: same size, wrong hash.
cp "$wb_blob" "$tmp/wb.orig"
flip_byte "$wb_blob" 100
expect_success 'fsck --deep finds a corrupted blob, names it, exits non-zero' '
	! hv fsck --deep >out 2>&1 && grep -q "$wb_sha" out
'
cp "$tmp/wb.orig" "$wb_blob"
expect_success 'after repair, fsck --deep exits 0 again' 'hv fsck --deep >out 2>&1'

# A truncated blob: plain fsck may see the size is wrong; deep must.
cp "$st_blob" "$tmp/st.orig"
chmod u+w "$st_blob" 2>/dev/null
truncate -s 1000 "$st_blob"
expect_success 'fsck --deep finds a truncated blob' '! hv fsck --deep >out 2>&1'
cp "$tmp/st.orig" "$st_blob"

mv "$wb_blob" "$tmp/wb.moved"
expect_success 'fsck finds a missing blob, names it, exits non-zero' '
	! hv fsck >out 2>&1 && grep -q "$wb_sha" out
'
mv "$tmp/wb.moved" "$wb_blob"
expect_success 'after restoring it, fsck exits 0' 'hv fsck >out 2>&1'

mv "$gd" "$tmp/moved.git"
expect_success 'fsck finds a missing git repository' '! hv fsck >out 2>&1 && test -s out'
mv "$tmp/moved.git" "$gd"
expect_success 'after restoring it, fsck exits 0' 'hv fsck >out 2>&1'

obj=$(find "$gd/objects" -type f -path "*/objects/[0-9a-f][0-9a-f]/*" | head -n 1)
if [ -n "$obj" ]; then
	mv "$obj" "$tmp/obj.moved"
	expect_success 'fsck finds a missing git object' '! hv fsck >out 2>&1 && test -s out'
	mv "$tmp/obj.moved" "$obj"
else
	test_skip 'fsck finds a missing git object' 'objects are packed'
fi
expect_success 'fsck exits 0 after every repair' 'hv fsck --deep >out 2>&1'

# Unreferenced blobs: one old, one fresh. Referenced blobs made old too.
put_blob() { # put_blob FILE: store FILE under its sha256 name, print the path
	local p
	p=$(blob_path "$(sha256_of "$1")")
	mkdir -p "$(dirname "$p")" && cp "$1" "$p" && echo "$p"
}
echo "an orphan nobody references" >"$tmp/orphan-old"
echo "a fresh orphan nobody references" >"$tmp/orphan-new"
old_blob=$(put_blob "$tmp/orphan-old")
new_blob=$(put_blob "$tmp/orphan-new")
touch -d "3 days ago" "$old_blob"
for f in model.safetensors sub/weights.bin extra/large.dat; do
	touch -d "3 days ago" "$(blob_path "$(sha256_of "$MODEL/$f")")"
done
expect_success 'gc --help exits 0' '"$HAVEN" gc --help >out 2>&1'
expect_success 'gc --grace 3600 exits 0' 'hv gc --grace 3600 >out 2>&1'
expect_success 'gc removed the old unreferenced blob' 'test ! -e "$old_blob"'
expect_success 'gc kept the unreferenced blob younger than the grace period' 'test -f "$new_blob"'
expect_success 'gc kept every referenced blob, even old ones' '
	for f in model.safetensors sub/weights.bin extra/large.dat; do
		cmp "$(blob_path "$(sha256_of "$MODEL/$f")")" "$MODEL/$f" || exit 1
	done
'
expect_success 'fsck --deep is clean after gc' 'hv fsck --deep >out 2>&1'
expect_success 'a blob referenced only by another branch is kept' '
	cp -R "$MODEL" side && head -c 7000 /dev/zero | tr "\0" z >side/side.bin &&
	s=$(hv import side --repo "$REPO" --revision side -m side 2>/dev/null) && is_sha "$s" &&
	b=$(blob_path "$(sha256_of side/side.bin)") && touch -d "3 days ago" "$b" &&
	hv gc --grace 60 >out 2>&1 && test -f "$b"
'
expect_success 'a blob referenced only by an old commit is kept' '
	cp -R "$MODEL" v2 && rm v2/sub/weights.bin &&
	s=$(hv import v2 --repo "$REPO" -m "drop weights" 2>/dev/null) && is_sha "$s" &&
	hv gc --grace 0 >out 2>&1 && cmp "$wb_blob" "$MODEL/sub/weights.bin"
'

start_server
expect_success 'after fsck and gc, the server serves every LFS file' '
	for f in model.safetensors extra/large.dat; do
		fetch d "$base/$REPO/resolve/$main_sha/$f" && expect_status d 200 &&
		cmp "$(body d)" "$MODEL/$f" || exit 1
	done
'
done_testing
