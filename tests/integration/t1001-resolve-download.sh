#!/bin/bash
# File download through /resolve and /raw: every byte of every fixture file
# compared with its source, the metadata headers clients rely on (ETag,
# X-Repo-Commit, X-Linked-*, Content-Length on HEAD, Accept-Ranges, no
# compression, no Xet), every revision form, datasets and spaces, and the
# Hub's errors.
. "$(dirname "$0")/lib.sh"

setup_model_repo
mkdir -p "$tmp/ds" "$tmp/sp"
printf 'a,b\n1,2\n3,4\n' >"$tmp/ds/data.csv"
printf 'print("hello")\n' >"$tmp/sp/app.py"
ds_sha=$(hv import "$tmp/ds" --repo haven-test/tiny-data --type dataset -m "data" 2>/dev/null)
sp_sha=$(hv import "$tmp/sp" --repo haven-test/tiny-space --type space -m "app" 2>/dev/null)
start_server

# get_all REV SRC-DIR: GET every file of SRC-DIR at REV and compare bytes.
get_all() {
	local rev=$1 src=$2 f enc
	fixture_files "$src" >"$tmp/files"
	[ -s "$tmp/files" ] || return 1
	while IFS= read -r f; do
		enc=$(urlencode "$f")
		fetch dl "$base/$REPO/resolve/$rev/$enc" || return 1
		expect_status dl 200 || { echo "for $f"; return 1; }
		cmp "$(body dl)" "$src/$f" || { echo "bytes differ for $f"; return 1; }
	done <"$tmp/files"
}

expect_success 'GET main: every file, byte for byte' 'get_all main "$MODEL"'
expect_success 'GET dev: every file, byte for byte' 'get_all dev "$DEV"'
expect_success 'GET by tag v1.0: every file, byte for byte' 'get_all v1.0 "$MODEL"'
expect_success 'GET by full sha: every file, byte for byte' 'get_all "$main_sha" "$MODEL"'
expect_success 'GET with Accept-Encoding gzip is not compressed' '
	fetch gz -H "Accept-Encoding: gzip, br" "$base/$REPO/resolve/main/tokenizer.json" &&
	expect_status gz 200 && ! has_hdr gz Content-Encoding &&
	cmp "$(body gz)" "$MODEL/tokenizer.json"
'

cfg_oid=$(git hash-object "$MODEL/config.json")
st_sha=$(sha256_of "$MODEL/model.safetensors")
st_size=$(size_of "$MODEL/model.safetensors")

expect_success 'HEAD of a regular file: ETag is the quoted git blob sha1' '
	fetch_head h "$base/$REPO/resolve/main/config.json" &&
	expect_status h 200 &&
	expect_hdr h ETag "\"$cfg_oid\"" &&
	expect_hdr h X-Repo-Commit "$main_sha" &&
	expect_hdr h Content-Length "$(size_of "$MODEL/config.json")" &&
	expect_hdr h Accept-Ranges bytes
'
expect_success 'HEAD of an LFS file: sha256 ETag, X-Linked-Etag, X-Linked-Size, real Content-Length' '
	fetch_head h "$base/$REPO/resolve/main/model.safetensors" &&
	expect_status h 200 &&
	expect_hdr h ETag "\"$st_sha\"" &&
	expect_hdr h X-Linked-Etag "\"$st_sha\"" &&
	expect_hdr h X-Linked-Size "$st_size" &&
	expect_hdr h Content-Length "$st_size" &&
	expect_hdr h X-Repo-Commit "$main_sha" &&
	expect_hdr h Accept-Ranges bytes &&
	test ! -s "$(body h)"
'
expect_success 'GET of an LFS file carries the same headers' '
	fetch g "$base/$REPO/resolve/main/model.safetensors" &&
	expect_status g 200 &&
	expect_hdr g ETag "\"$st_sha\"" &&
	expect_hdr g Content-Length "$st_size" &&
	expect_hdr g X-Repo-Commit "$main_sha" &&
	cmp "$(body g)" "$MODEL/model.safetensors"
'
expect_success 'a 10 MiB file without an LFS pattern is served as LFS' '
	fetch_head h "$base/$REPO/resolve/main/extra/large.dat" &&
	expect_status h 200 &&
	expect_hdr h ETag "\"$(sha256_of "$MODEL/extra/large.dat")\"" &&
	expect_hdr h X-Linked-Size 10485760
'
expect_success 'a small *.bin file is served as LFS' '
	fetch_head h "$base/$REPO/resolve/main/sub/weights.bin" &&
	expect_hdr h ETag "\"$(sha256_of "$MODEL/sub/weights.bin")\""
'
expect_success 'no Xet headers, no Xet content type, no compression' '
	for f in config.json model.safetensors; do
		fetch_head x "$base/$REPO/resolve/main/$f" &&
		! has_hdr x X-Xet-Hash && ! has_hdr x X-Xet-Refresh-Route &&
		! has_hdr x Content-Encoding &&
		! hdr x Link | grep -q xet &&
		! hdr x Content-Type | grep -q xet || { show x; exit 1; }
	done
'
expect_success 'HEAD of a file with a space and a non-ASCII name' '
	fetch_head h "$base/$REPO/resolve/main/$(urlencode "docs/hello wörld.txt")" &&
	expect_status h 200 &&
	expect_hdr h Content-Length "$(size_of "$MODEL/docs/hello wörld.txt")"
'

# revision REV EXPECTED-SHA: resolve at REV answers for that commit.
revision() {
	fetch_head r "$base/$REPO/resolve/$1/config.json" &&
	expect_status r 200 && expect_hdr r X-Repo-Commit "$2"
}
short=$(echo "$main_sha" | cut -c1-7)
expect_success 'revision: branch main' 'revision main "$main_sha"'
expect_success 'revision: branch dev' 'revision dev "$dev_sha"'
expect_success 'revision: tag v1.0' 'revision v1.0 "$main_sha"'
expect_success 'revision: full sha' 'revision "$main_sha" "$main_sha"'
expect_success 'revision: 7-character short sha' 'revision "$short" "$main_sha"'
expect_success 'revision: HEAD' 'revision HEAD "$main_sha"'
expect_success 'revision: percent-encoded branch feature%2Fx' 'revision feature%2Fx "$feature_sha"'
expect_success 'revision: percent-encoded main (%6Dain)' 'revision %6Dain "$main_sha"'
expect_success 'dev serves the dev config, main the original' '
	fetch d "$base/$REPO/resolve/dev/config.json" && cmp "$(body d)" "$DEV/config.json" &&
	fetch m "$base/$REPO/resolve/main/config.json" && cmp "$(body m)" "$MODEL/config.json"
'
expect_success 'repo ids are case-insensitive on resolve' '
	fetch c "$base/HAVEN-TEST/tiny-model/resolve/main/config.json" &&
	expect_status c 200 && cmp "$(body c)" "$MODEL/config.json"
'
expect_success 'query strings such as ?download=true are ignored' '
	fetch q "$base/$REPO/resolve/main/config.json?download=true" &&
	expect_status q 200 && cmp "$(body q)" "$MODEL/config.json"
'

expect_success '/raw/ of an LFS file returns the pointer' '
	lfs_pointer "$MODEL/model.safetensors" >want &&
	fetch raw "$base/$REPO/raw/main/model.safetensors" &&
	expect_status raw 200 && cmp "$(body raw)" want
'
expect_success '/raw/ of a regular file returns the file' '
	fetch raw "$base/$REPO/raw/main/config.json" &&
	expect_status raw 200 && cmp "$(body raw)" "$MODEL/config.json"
'
expect_success 'HEAD /raw/ answers 200 for a file and 404 for a missing one' '
	fetch_head rh "$base/$REPO/raw/main/config.json" && expect_status rh 200 &&
	fetch_head rh2 "$base/$REPO/raw/main/nope.json" && expect_status rh2 404
'

expect_success 'datasets: /datasets/NS/NAME/resolve' '
	is_sha "$ds_sha" &&
	fetch d "$base/datasets/haven-test/tiny-data/resolve/main/data.csv" &&
	expect_status d 200 && cmp "$(body d)" "$tmp/ds/data.csv" &&
	expect_hdr d X-Repo-Commit "$ds_sha"
'
expect_success 'spaces: /spaces/NS/NAME/resolve' '
	is_sha "$sp_sha" &&
	fetch s "$base/spaces/haven-test/tiny-space/resolve/main/app.py" &&
	expect_status s 200 && cmp "$(body s)" "$tmp/sp/app.py"
'
expect_success 'a dataset is not a model' '
	fetch n "$base/haven-test/tiny-data/resolve/main/data.csv" &&
	expect_error n 401 RepoNotFound
'

expect_success 'missing repo: 401 RepoNotFound' '
	fetch e "$base/haven-test/no-such-model/resolve/main/config.json" &&
	expect_error e 401 RepoNotFound
'
expect_success 'missing repo on HEAD: the headers carry the error' '
	fetch_head e "$base/haven-test/no-such-model/resolve/main/config.json" &&
	expect_error e 401 RepoNotFound
'
expect_success 'missing revision: 404 RevisionNotFound, "Invalid rev id"' '
	fetch e "$base/$REPO/resolve/no-such-branch/config.json" &&
	expect_error e 404 RevisionNotFound &&
	hdr e X-Error-Message | grep -q "Invalid rev id"
'
expect_success 'missing revision on HEAD: RevisionNotFound' '
	fetch_head e "$base/$REPO/resolve/no-such-branch/config.json" &&
	expect_error e 404 RevisionNotFound
'
expect_success 'missing file: 404 EntryNotFound with X-Repo-Commit' '
	fetch e "$base/$REPO/resolve/main/no-such-file.json" &&
	expect_error e 404 EntryNotFound &&
	expect_hdr e X-Repo-Commit "$main_sha"
'
expect_success 'missing file on HEAD: EntryNotFound with X-Repo-Commit' '
	fetch_head e "$base/$REPO/resolve/dev/no-such-file.json" &&
	expect_error e 404 EntryNotFound &&
	expect_hdr e X-Repo-Commit "$dev_sha"
'
expect_success 'a file only on dev is missing on main' '
	fetch e "$base/$REPO/resolve/main/DEV.md" && expect_error e 404 EntryNotFound &&
	fetch e2 "$base/$REPO/resolve/dev/DEV.md" && expect_status e2 200
'
expect_success 'a folder is not a file: 404' '
	fetch e "$base/$REPO/resolve/main/sub/dir" && expect_status e 404
'
done_testing
