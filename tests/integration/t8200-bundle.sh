#!/bin/bash
# Air-gap bundles: `haven keygen`, `haven export`, `haven import-bundle`.
# A repo with branches, tags (one annotated) and LFS files is exported
# (as a folder and as a tar file) and imported into other data folders:
# same commit ids, same bytes through /resolve, same settings, fsck clean.
# A bundle with any byte of an object or of the manifest changed, a file
# missing, a truncated tar, a hostile entry name, a link instead of a file,
# or a signature by an untrusted key is refused, and nothing is left
# behind. An incremental bundle (--since) holds only the new objects and
# applies on the side that imported the first; without that base it is
# refused. An import that fails half-way completes when run again; a ref
# that would move backwards needs --force.
. "$(dirname "$0")/lib.sh"

setup_fail() {
	echo "Bail out! setup: $*"
	exit 1
}

# hvd DIR ARGS...: haven on another data folder.
hvd() {
	local d=$1
	shift
	"$HAVEN" "$@" --data "$d"
}

# nothing_in DIR: no repository, no blob, no stray file of the import.
nothing_in() {
	local d=$1
	if [ -d "$d/git" ] && [ -n "$(ls -A "$d/git")" ]; then
		echo "git folders left in $d: $(ls "$d/git")"
		return 1
	fi
	if [ -d "$d/blobs" ] && [ -n "$(find "$d/blobs" -type f)" ]; then
		echo "blobs left in $d"
		return 1
	fi
	if [ -d "$d/tmp" ] && [ -n "$(ls -A "$d/tmp")" ]; then
		echo "temporaries left in $d/tmp: $(ls "$d/tmp")"
		return 1
	fi
}

# refs_of GIT-DIR: every ref, its target and the target's type.
refs_of() {
	git --git-dir="$1" for-each-ref --format='%(refname) %(objectname) %(objecttype)'
}

setup_model_repo --small
# An LFS file of 1 MiB by the *.bin pattern, and an annotated tag.
"$PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 4096)' >"$MODEL/weights-a.bin"
main_sha=$(hv import "$MODEL" --repo "$REPO" -m "Add weights" 2>/dev/null)
is_sha "$main_sha" || setup_fail "import weights"
gd=$(git_dir_for "$main_sha") || setup_fail "git dir"
GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com \
	git --git-dir="$gd" tag -a v2.0 -m "Release 2.0" "$main_sha" || setup_fail "annotated tag"

# A private repo (settings travel with it).
hv user create alice >/dev/null 2>&1 || setup_fail "user create"
hv org create acme >/dev/null && hv org add acme alice --role admin >/dev/null || setup_fail "org"
TOK=$(hv token create --user alice --role write --name t 2>/dev/null)
SECRET=$tmp/secret
mkdir -p "$SECRET" && printf 'secret weights\n' >"$SECRET/w.bin" &&
	printf '{"model_type": "x"}\n' >"$SECRET/config.json"
hv import "$SECRET" --repo acme/secret -m "Secret" >/dev/null 2>&1 || setup_fail "import secret"
start_server
fetch set -H "Authorization: Bearer $TOK" -X PUT -H 'Content-Type: application/json' \
	--data-binary '{"private": true}' "$base/api/models/acme/secret/settings"
[ "$(status set)" = 200 ] || setup_fail "make acme/secret private"
stop_server

KEY=$tmp/keys/signer
mkdir -p "$tmp/keys"

expect_success 'keygen writes a private key (0600) and a public key' '
	"$HAVEN" keygen --out "$KEY" >kg.out &&
	test "$(stat -c %a "$KEY")" = 600 &&
	grep -q "BEGIN PRIVATE KEY" "$KEY" && grep -q "BEGIN PUBLIC KEY" "$KEY.pub" &&
	openssl pkey -in "$KEY" -noout -text 2>/dev/null | grep -qi ed25519 &&
	grep -Eq "fingerprint SHA256:[0-9a-f]{64}" kg.out
'
expect_success 'keygen refuses to overwrite a key' '
	! "$HAVEN" keygen --out "$KEY" 2>err && grep -q "already exists" err
'
"$HAVEN" keygen --out "$tmp/keys/other" >/dev/null || setup_fail "keygen other"

B1=$tmp/b1
expect_success 'export: every branch and tag of two repos to a folder' '
	hv export "$REPO" acme/secret --to "$B1" --key "$KEY" >exp.out &&
	grep -q "exported 2 repositories" exp.out &&
	test -f "$B1/manifest.json" && test "$(size_of "$B1/manifest.sig")" = 64 &&
	json_check "$B1/manifest.json" "d[\"format\"] == \"haven-bundle\" and d[\"version\"] == 1 and
		sorted(d[\"repos\"][0][\"refs\"]) == [\"refs/heads/dev\", \"refs/heads/feature/x\", \"refs/heads/main\", \"refs/tags/v1.0\", \"refs/tags/v2.0\"] and
		d[\"repos\"][0][\"refs\"][\"refs/heads/main\"] == \"$main_sha\" and
		d[\"repos\"][1][\"private\"] is True and d[\"since\"] is None"
'
expect_success 'the manifest lists every file of the bundle with its size and sha256' '
	(cd "$B1" && find git lfs -type f | sort) >files &&
	json "$B1/manifest.json" "\"\\n\".join(sorted(o[\"path\"] for o in d[\"objects\"]))" >listed &&
	diff files listed &&
	for p in $(cat files); do
		json_check "$B1/manifest.json" "[o for o in d[\"objects\"] if o[\"path\"] == \"$p\"][0][\"sha256\"] == \"$(sha256_of "$B1/$p")\" and [o for o in d[\"objects\"] if o[\"path\"] == \"$p\"][0][\"size\"] == $(size_of "$B1/$p")" || exit 1
	done
'
expect_success 'the LFS objects of the bundle are the LFS files of the repos' '
	for f in weights-a.bin sub/weights.bin; do
		test -f "$B1/lfs/$(sha256_of "$MODEL/$f")" || exit 1
	done &&
	test -f "$B1/lfs/$(sha256_of "$SECRET/w.bin")" &&
	test "$(ls "$B1/lfs" | wc -l)" = 3
'
expect_success 'the signature verifies with openssl and the public key' '
	openssl pkeyutl -verify -pubin -inkey "$KEY.pub" -rawin \
		-in "$B1/manifest.json" -sigfile "$B1/manifest.sig" >v.out 2>&1 &&
	grep -q "Signature Verified Successfully" v.out
'
expect_success 'export refuses an existing destination and an unknown repo' '
	! hv export "$REPO" --to "$B1" --key "$KEY" 2>e1 && grep -q "already exists" e1 &&
	! hv export nobody/nothing --to "$tmp/x" --key "$KEY" 2>e2 && grep -q "nobody/nothing" e2 &&
	test ! -e "$tmp/x"
'

D2=$tmp/data2
expect_success 'import-bundle: verified and imported into a new data folder' '
	hvd "$D2" import-bundle "$B1" --trust "$KEY.pub" --json >imp.json &&
	json_check imp.json "d[\"repos\"] == 2 and d[\"repos_created\"] == 2 and d[\"lfs_stored\"] == 3 and d[\"refs_updated\"] == 6"
'
expect_success 'the imported repo has the same refs, commit ids and tag objects' '
	g2=$(DATA=$D2 git_dir_for "$main_sha") &&
	refs_of "$gd" | sort >want && refs_of "$g2" | sort >got &&
	diff want got && grep -q "refs/tags/v2.0 .* tag" got &&
	test "$(git --git-dir="$g2" rev-parse main)" = "$main_sha" &&
	test "$(git --git-dir="$g2" rev-parse dev)" = "$dev_sha" &&
	git --git-dir="$g2" fsck --strict >/dev/null 2>&1
'
expect_success 'haven fsck is clean on the imported data' '
	hvd "$D2" fsck >f.out 2>&1 && grep -q " 0 problems" f.out
'
expect_success 'no temporaries are left in the data folder' '
	test -z "$(ls -A "$D2/tmp" 2>/dev/null)"
'

# Serve the imported data and read it the way clients do.
DATA1=$DATA
DATA=$D2
start_server
expect_success 'the imported files resolve to the same bytes over HTTP' '
	for f in weights-a.bin sub/weights.bin config.json README.md; do
		fetch dl "$base/$REPO/resolve/main/$f" && expect_status dl 200 &&
		cmp "$(body dl)" "$MODEL/$f" || exit 1
	done &&
	fetch dl "$base/$REPO/resolve/v2.0/weights-a.bin" && cmp "$(body dl)" "$MODEL/weights-a.bin" &&
	fetch dl "$base/$REPO/resolve/dev/DEV.md" && cmp "$(body dl)" "$DEV/DEV.md"
'
expect_success 'the private setting travelled: acme/secret is hidden from anonymous callers' '
	fetch pi "$base/api/models/acme/secret" && is_4xx pi &&
	fetch pu "$base/api/models/$REPO" && expect_status pu 200 &&
	json_check "$(body pu)" "d[\"sha\"] == \"$main_sha\""
'
expect_success 'the lineage of the imported card was recorded' '
	hvd "$D2" lineage "$REPO" >lin.out 2>&1; grep -q "haven-test/base" lin.out
'
stop_server
DATA=$DATA1

expect_success 'importing the same bundle again changes nothing' '
	hvd "$D2" import-bundle "$B1" --trust "$KEY.pub" --json >again.json &&
	json_check again.json "d[\"repos_created\"] == 0 and d[\"refs_updated\"] == 0 and d[\"lfs_stored\"] == 0 and d[\"lfs_present\"] == 3"
'

# --- a tar bundle --------------------------------------------------------------

TAR=$tmp/b1.tar
D3=$tmp/data3
expect_success 'export to a .tar file and import it: the same commits' '
	hv export "$REPO" --to "$TAR" --key "$KEY" >/dev/null &&
	tar tf "$TAR" >list && head -n 1 list | grep -qx manifest.json &&
	hvd "$D3" import-bundle "$TAR" --trust "$KEY.pub" >/dev/null &&
	DATA=$D3 && g=$(git_dir_for "$main_sha") &&
	test "$(git --git-dir="$g" rev-parse refs/tags/v1.0)" = "$(git --git-dir="$gd" rev-parse refs/tags/v1.0)" &&
	hvd "$D3" fsck >/dev/null 2>&1 &&
	test -z "$(ls -A "$D3/tmp")"
'

# --- refusals: each into a fresh data folder, which must stay empty -----------------

# refused NAME BUNDLE MESSAGE-REGEX [TRUST]: import fails, says why, leaves nothing.
refused() {
	local d=$tmp/refused-$1
	if hvd "$d" import-bundle "$2" --trust "${4:-$KEY.pub}" >"$tmp/$1.out" 2>"$tmp/$1.err"; then
		echo "import of $1 succeeded"
		return 1
	fi
	cat "$tmp/$1.err"
	grep -Eq "$3" "$tmp/$1.err" && nothing_in "$d"
}

# copy NAME: a copy of the folder bundle to damage.
copy() {
	rm -rf "$tmp/$1" && cp -R "$B1" "$tmp/$1"
}

LFS_A=$(sha256_of "$MODEL/weights-a.bin")
copy t-lfs && flip_byte "$tmp/t-lfs/lfs/$LFS_A" 500000
expect_success 'one byte of an LFS object changed: refused, nothing imported' '
	refused t-lfs "$tmp/t-lfs" "lfs/$LFS_A.*sha256"
'
copy t-pack && flip_byte "$tmp/t-pack/git/0.pack" 100
expect_success 'one byte of the pack changed: refused, nothing imported' '
	refused t-pack "$tmp/t-pack" "git/0.pack.*sha256"
'
copy t-man && sed -i "s/\"private\": false/\"private\": true /" "$tmp/t-man/manifest.json"
expect_success 'one byte of the manifest changed: refused by the signature' '
	cmp -s "$B1/manifest.json" "$tmp/t-man/manifest.json"; test $? = 1 &&
	refused t-man "$tmp/t-man" "signature does not verify"
'
copy t-sig && flip_byte "$tmp/t-sig/manifest.sig" 10
expect_success 'one byte of the signature changed: refused' '
	refused t-sig "$tmp/t-sig" "signature does not verify"
'
expect_success 'signed by a key that is not trusted: refused, naming the key' '
	refused t-untrusted "$B1" "signature does not verify.*SHA256:[0-9a-f]{64}" "$tmp/keys/other.pub"
'
copy t-missing && rm "$tmp/t-missing/lfs/$LFS_A"
expect_success 'an object missing from the bundle: refused' '
	refused t-missing "$tmp/t-missing" "lfs/$LFS_A. is missing"
'
copy t-nosig && rm "$tmp/t-nosig/manifest.sig"
expect_success 'no signature: refused' '
	refused t-nosig "$tmp/t-nosig" "manifest.sig. is missing"
'
copy t-link && rm "$tmp/t-link/lfs/$LFS_A" && cp "$MODEL/weights-a.bin" "$tmp/outside.bin" &&
	ln -s "$tmp/outside.bin" "$tmp/t-link/lfs/$LFS_A"
expect_success 'an object that is a symbolic link (even to the right bytes): refused' '
	refused t-link "$tmp/t-link" "lfs/$LFS_A"
'
head -c $(( $(size_of "$TAR") / 2 )) "$TAR" >"$tmp/t-trunc.tar"
expect_success 'a truncated tar file: refused' '
	refused t-trunc "$tmp/t-trunc.tar" "truncated|missing"
'
head -c 700000 "$TAR" >"$tmp/t-trunc2.tar"
expect_success 'a tar file cut inside an LFS object: refused' '
	refused t-trunc2 "$tmp/t-trunc2.tar" "truncated|missing|bytes"
'
"$PYTHON" - "$TAR" "$tmp/t-evil.tar" <<'EOF'
import io, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t, tarfile.open(dst, "w") as out:
    for m in t.getmembers():
        out.addfile(m, t.extractfile(m))
    data = b"pwned\n"
    ti = tarfile.TarInfo("../../evil.txt")
    ti.size = len(data)
    out.addfile(ti, io.BytesIO(data))
EOF
expect_success 'a tar entry that names a path outside the bundle: refused, nothing written' '
	refused t-evil "$tmp/t-evil.tar" "may not hold" &&
	test ! -e "$tmp/evil.txt" && test ! -e "$tmp/refused-t-evil/evil.txt"
'
# sign_hostile NAME PYTHON-EXPR: a copy of the bundle whose manifest m was
# changed by the expression, then signed again with the trusted key, so
# only Haven's own checks stand between the names in it and the disk.
sign_hostile() {
	copy "$1" &&
		"$PYTHON" - "$tmp/$1/manifest.json" "$2" <<'EOF' &&
import json, sys
p = sys.argv[1]
m = json.load(open(p))
exec(sys.argv[2])
open(p, "w").write(json.dumps(m, indent=1))
EOF
		openssl pkeyutl -sign -inkey "$KEY" -rawin -in "$tmp/$1/manifest.json" \
			-out "$tmp/$1/manifest.sig"
}
sign_hostile t-escape 'm["objects"][1]["path"] = "lfs/../../../../tmp/escape"'
expect_success 'a signed manifest naming a path outside the bundle: refused' '
	refused t-escape "$tmp/t-escape" "not allowed"
'
sign_hostile t-badref 'm["repos"][0]["refs"]["refs/heads/../../config"] = m["repos"][0]["refs"]["refs/heads/main"]'
expect_success 'a signed manifest naming a ref outside refs/heads and refs/tags: refused' '
	refused t-badref "$tmp/t-badref" "not allowed"
'
sign_hostile t-badname 'm["repos"][0]["name"] = "../../etc"'
expect_success 'a signed manifest with an invalid repository name: refused' '
	refused t-badname "$tmp/t-badname" "not a valid model name"
'
expect_success 'import without --trust is a usage error' '
	hvd "$tmp/refused-usage" import-bundle "$B1" >/dev/null 2>&1; test $? = 2
'

# --- incremental ------------------------------------------------------------------

cp -R "$MODEL" "$tmp/model2"
"$PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes(range(255, -1, -1)) * 2048)' >"$tmp/model2/weights-b.bin"
printf 'new notes\n' >"$tmp/model2/NEW.md"
new_sha=$(hv import "$tmp/model2" --repo "$REPO" -m "Add weights-b" 2>/dev/null)
is_sha "$new_sha" || setup_fail "second import"
LFS_B=$(sha256_of "$tmp/model2/weights-b.bin")
B2=$tmp/b2
expect_success 'export --since the first manifest' '
	hv export "$REPO" acme/secret --to "$B2" --key "$KEY" --since "$B1/manifest.json" --json >b2.json &&
	json_check b2.json "d[\"lfs_objects\"] == 1 and d[\"packs\"] == 1" &&
	json_check "$B2/manifest.json" "d[\"since\"] == \"$(sha256_of "$B1/manifest.json")\" and
		d[\"repos\"][0][\"requires\"] and d[\"repos\"][1][\"pack\"] is None"
'
expect_success 'the incremental bundle holds only the new LFS object' '
	test "$(ls "$B2/lfs")" = "$LFS_B" &&
	test "$(ls "$B2/git")" = 0.pack
'
expect_success 'the incremental pack holds exactly the new git objects' '
	git --git-dir="$gd" rev-list --objects "$new_sha" --not "$main_sha" | cut -c1-40 | sort >want &&
	mkdir -p ip && cp "$B2/git/0.pack" ip/p.pack &&
	git index-pack ip/p.pack >/dev/null 2>&1 &&
	git verify-pack -v ip/p.idx | grep -E "^[0-9a-f]{40} " | cut -c1-40 | sort >got &&
	diff want got && test "$(wc -l <got)" -ge 3
'
expect_success 'incremental import on the side that has the first: same commits and bytes' '
	hvd "$D2" import-bundle "$B2" --trust "$KEY.pub" --json >inc.json &&
	json_check inc.json "d[\"repos_created\"] == 0 and d[\"refs_updated\"] == 1 and d[\"lfs_stored\"] == 1" &&
	DATA=$D2 && g2=$(git_dir_for "$new_sha") &&
	test "$(git --git-dir="$g2" rev-parse main)" = "$new_sha" &&
	git --git-dir="$g2" cat-file blob "$new_sha:NEW.md" | cmp - "$tmp/model2/NEW.md" &&
	hvd "$D2" fsck >f.out 2>&1 && grep -q " 0 problems" f.out
'
DATA=$D2
start_server
expect_success 'the new LFS file resolves over HTTP on the importing side' '
	fetch dl "$base/$REPO/resolve/main/weights-b.bin" && expect_status dl 200 &&
	cmp "$(body dl)" "$tmp/model2/weights-b.bin"
'
stop_server
DATA=$DATA1
expect_success 'the incremental bundle alone, on a Haven without the first: refused' '
	refused t-inc "$B2" "incremental bundle refused"
'

# --- an import that fails half-way completes when run again ----------------------------

D4=$tmp/data4
hvd "$D4" import-bundle "$B1" --trust "$KEY.pub" >/dev/null 2>&1 || setup_fail "import into data4"
g4=$(DATA=$D4 git_dir_for "$main_sha")
: >"$g4/refs/heads/main.lock"
expect_success 'a failure while moving refs: blobs are stored, refs unchanged' '
	! hvd "$D4" import-bundle "$B2" --trust "$KEY.pub" >o 2>e && cat e &&
	test "$(git --git-dir="$g4" rev-parse main)" = "$main_sha" &&
	test -f "$D4/blobs/sha256/$(echo "$LFS_B" | cut -c1-2)/$(echo "$LFS_B" | cut -c3-4)/$LFS_B"
'
rm -f "$g4/refs/heads/main.lock"
expect_success 'run again: it completes, skipping what is stored' '
	hvd "$D4" import-bundle "$B2" --trust "$KEY.pub" --json >r.json &&
	json_check r.json "d[\"lfs_stored\"] == 0 and d[\"lfs_present\"] == 1" &&
	test "$(git --git-dir="$g4" rev-parse main)" = "$new_sha" &&
	hvd "$D4" fsck >/dev/null 2>&1 && test -z "$(ls -A "$D4/tmp")"
'

D6=$tmp/data6
"$HAVEN" import-bundle "$TAR" --trust "$KEY.pub" --data "$D6" >/dev/null 2>&1 &
kpid=$!
sleep 0.1
kill -KILL $kpid 2>/dev/null
wait $kpid 2>/dev/null
expect_success 'killed during an import, run again: it completes and fsck is clean' '
	hvd "$D6" import-bundle "$TAR" --trust "$KEY.pub" >/dev/null &&
	hvd "$D6" import-bundle "$TAR" --trust "$KEY.pub" --json >k.json &&
	json_check k.json "d[\"refs_updated\"] == 0 and d[\"lfs_stored\"] == 0" &&
	hvd "$D6" fsck >f.out 2>&1 && grep -q " 0 problems" f.out &&
	test -z "$(ls "$D6/tmp" | grep "^bundle-")"
'
mkdir -p "$D6/tmp/bundle-import-dead01/bundle" && : >"$D6/tmp/bundle-import-dead01/.lock" &&
	printf junk >"$D6/tmp/bundle-import-dead01/bundle/manifest.json"
expect_success 'the scratch folder of an import that died is removed by the next one' '
	hvd "$D6" import-bundle "$B1" --trust "$KEY.pub" >/dev/null &&
	test ! -e "$D6/tmp/bundle-import-dead01"
'

# --- refs that would move backwards -------------------------------------------------------

expect_success 'an older bundle would move main backwards: refused' '
	! hvd "$D4" import-bundle "$B1" --trust "$KEY.pub" >o 2>e &&
	grep -q "not a fast-forward" e &&
	test "$(git --git-dir="$g4" rev-parse main)" = "$new_sha"
'
expect_success 'with --force it moves' '
	hvd "$D4" import-bundle "$B1" --trust "$KEY.pub" --force >/dev/null &&
	test "$(git --git-dir="$g4" rev-parse main)" = "$main_sha" &&
	hvd "$D4" import-bundle "$B2" --trust "$KEY.pub" >/dev/null &&
	test "$(git --git-dir="$g4" rev-parse main)" = "$new_sha"
'

# --- export of named revisions ------------------------------------------------------------

expect_success 'export REPO@REV carries only that branch or tag' '
	hv export "$REPO@dev" "$REPO@v1.0" --to "$tmp/b-rev" --key "$KEY" >/dev/null &&
	json_check "$tmp/b-rev/manifest.json" "sorted(d[\"repos\"][0][\"refs\"]) == [\"refs/heads/dev\", \"refs/tags/v1.0\"] and len(d[\"objects\"]) == 2" &&
	! hv export "$REPO@$main_sha" --to "$tmp/b-sha" --key "$KEY" 2>e && grep -q "branches and tags" e
'
expect_success 'imported alone, that bundle makes a repo whose default branch is dev' '
	hvd "$tmp/data5" import-bundle "$tmp/b-rev" --trust "$KEY.pub" >/dev/null &&
	g5=$(DATA=$tmp/data5 git_dir_for "$dev_sha") &&
	test "$(git --git-dir="$g5" symbolic-ref HEAD)" = refs/heads/dev &&
	hvd "$tmp/data5" fsck >/dev/null 2>&1
'

done_testing
