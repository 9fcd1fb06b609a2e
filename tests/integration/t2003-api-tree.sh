#!/bin/bash
# GET /api/models/NS/NAME/tree/REV[/PATH] (recursive or not, expand with
# lastCommit, Link pagination over many entries) and POST paths-info with
# form-encoded and JSON bodies. git's own view of the commit is the
# reference for every oid and path.
. "$(dirname "$0")/lib.sh"

setup_model_repo
gd=$(git_dir_for "$main_sha")
# A repo with many files in one folder, for pagination.
mkdir -p "$tmp/many/files"
for i in $(seq -w 1 1200); do
	echo "file $i" >"$tmp/many/files/f$i.txt"
done
echo top >"$tmp/many/top.txt"
many_sha=$(hv import "$tmp/many" --repo haven-test/many -m "many files" 2>/dev/null)
start_server

T=$base/api/models/$REPO/tree

# git_entries REV [PATH] [-r]: the expected tree entries from git, as lines
# "type path oid" (type file|directory), sorted.
git_entries() {
	local rev=$1 path=${2:-} rec=${3:-}
	local spec=$rev
	[ -n "$path" ] && spec="$rev:$path"
	if [ -n "$rec" ]; then
		git --git-dir="$gd" ls-tree -r -t -z "$spec"
	else
		git --git-dir="$gd" ls-tree -z "$spec"
	fi | tr "\0" "\n" | awk -v p="$path" -F "\t" '{
		split($1, a, " "); t = (a[2] == "tree") ? "directory" : "file"
		print t " " (p == "" ? "" : p "/") $2 " " a[3] }' | LC_ALL=C sort
}

# api_entries FILE: the same lines from a tree or paths-info answer.
api_entries() {
	json "$1" "\"\\n\".join(sorted(\"%s %s %s\" % (e[\"type\"], e[\"path\"], e[\"oid\"]) for e in d))" | LC_ALL=C sort
}

expect_success 'tree/main: the root entries, as git has them' '
	fetch t "$T/main" && expect_status t 200 &&
	git_entries "$main_sha" >want && api_entries "$(body t)" >got && diff want got
'
expect_success 'tree/main?recursive=false&expand=false (what Python sends)' '
	fetch t "$T/main?recursive=false&expand=false" && expect_status t 200 &&
	git_entries "$main_sha" >want && api_entries "$(body t)" >got && diff want got
'
expect_success 'tree/main?recursive=true: every file and every folder' '
	fetch t "$T/main?recursive=true" && expect_status t 200 &&
	git_entries "$main_sha" "" -r >want && api_entries "$(body t)" >got && diff want got &&
	grep -q "^directory sub/dir " got
'
expect_success 'recursive=True and recursive=1 are accepted' '
	fetch t1 "$T/main?recursive=True" && fetch t2 "$T/main?recursive=1" &&
	git_entries "$main_sha" "" -r >want &&
	api_entries "$(body t1)" >got1 && diff want got1 &&
	api_entries "$(body t2)" >got2 && diff want got2
'
expect_success 'file entries: size, and lfs{oid,size,pointerSize} for LFS files' '
	fetch t "$T/main?recursive=true" &&
	json_check "$(body t)" "
(lambda e: e[\"model.safetensors\"][\"size\"] == $(size_of "$MODEL/model.safetensors") and
 e[\"model.safetensors\"][\"lfs\"] == {\"oid\": \"$(sha256_of "$MODEL/model.safetensors")\", \"size\": $(size_of "$MODEL/model.safetensors"), \"pointerSize\": $(lfs_pointer "$MODEL/model.safetensors" | wc -c)} and
 e[\"config.json\"][\"size\"] == $(size_of "$MODEL/config.json") and \"lfs\" not in e[\"config.json\"] and
 e[\"sub/weights.bin\"][\"lfs\"][\"oid\"] == \"$(sha256_of "$MODEL/sub/weights.bin")\" and
 e[\"extra/large.dat\"][\"lfs\"][\"size\"] == 10485760 and
 e[\"sub\"][\"type\"] == \"directory\" and e[\"sub\"][\"size\"] == 0 and
 all(\"xetHash\" not in x for x in d) and all(not x[\"path\"].startswith(\"/\") for x in d))({x[\"path\"]: x for x in d})"
'
expect_success 'tree/main/sub: the children of a folder, full paths' '
	fetch t "$T/main/sub" && expect_status t 200 &&
	git_entries "$main_sha" sub >want && api_entries "$(body t)" >got && diff want got
'
expect_success 'tree/main/sub%2Fdir (Python quotes the slash) and tree/main/sub/dir' '
	fetch t1 "$T/main/sub%2Fdir" && expect_status t1 200 &&
	fetch t2 "$T/main/sub/dir" && expect_status t2 200 &&
	git_entries "$main_sha" sub/dir >want &&
	api_entries "$(body t1)" >got1 && diff want got1 &&
	api_entries "$(body t2)" >got2 && diff want got2
'
expect_success 'tree of a folder with a space and a non-ASCII letter' '
	fetch t "$T/main/docs" && expect_status t 200 &&
	json_check "$(body t)" "[e[\"path\"] for e in d] == [\"docs/hello w\u00f6rld.txt\"]"
'
expect_success 'tree/main/sub?recursive=true' '
	fetch t "$T/main/sub?recursive=true" && expect_status t 200 &&
	git_entries "$main_sha" sub -r >want && api_entries "$(body t)" >got && diff want got
'
expect_success 'tree/dev, tree/v1.0, tree/<sha>, tree/<short sha>, tree/feature%2Fx' '
	fetch t "$T/dev" && git_entries "$dev_sha" >want && api_entries "$(body t)" >got && diff want got &&
	fetch t "$T/v1.0" && git_entries "$main_sha" >want && api_entries "$(body t)" >got && diff want got &&
	fetch t "$T/$dev_sha" && git_entries "$dev_sha" >want && api_entries "$(body t)" >got && diff want got &&
	fetch t "$T/$(echo $dev_sha | cut -c1-7)" && api_entries "$(body t)" >got && diff want got &&
	fetch t "$T/feature%2Fx" && git_entries "$main_sha" >want && api_entries "$(body t)" >got && diff want got
'
expect_success 'expand=true: lastCommit {id, title, date}' '
	fetch t "$T/dev?expand=true" && expect_status t 200 &&
	json_check "$(body t)" "
(lambda e: e[\"DEV.md\"][\"lastCommit\"][\"id\"] == \"$dev_sha\" and
 e[\"DEV.md\"][\"lastCommit\"][\"title\"] == \"Dev changes\" and
 e[\"README.md\"][\"lastCommit\"][\"id\"] == \"$main_sha\" and
 e[\"README.md\"][\"lastCommit\"][\"title\"] == \"Add tiny model\" and
 e[\"sub\"][\"lastCommit\"][\"id\"] == \"$main_sha\" and
 all(re.match(r\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$\", x[\"lastCommit\"][\"date\"]) for x in d))({x[\"path\"]: x for x in d})"
'
expect_success 'a missing folder: 404 EntryNotFound' '
	fetch e "$T/main/no-such-dir" && expect_error e 404 EntryNotFound
'
expect_success 'a file instead of a folder: 404 EntryNotFound' '
	fetch e "$T/main/config.json" && expect_error e 404 EntryNotFound
'
expect_success 'a missing revision: 404 RevisionNotFound' '
	fetch e "$T/no-such-branch" && expect_error e 404 RevisionNotFound
'
expect_success 'a missing repo: 401 RepoNotFound' '
	fetch e "$base/api/models/haven-test/no-such/tree/main" && expect_error e 401 RepoNotFound
'

M=$base/api/models/haven-test/many/tree/main
expect_success 'many files: recursive listing is paginated with absolute Links' '
	is_sha "$many_sha" &&
	follow_pages "$M?recursive=true" all &&
	test "$(cat all.pages)" -ge 2 &&
	json_check all "len(d) == len(set(e[\"path\"] for e in d))" &&
	json "all" "\"\\n\".join(sorted(e[\"path\"] for e in d))" >got &&
	git --git-dir="$(git_dir_for "$many_sha")" ls-tree -r -t --name-only "$many_sha" | LC_ALL=C sort >want &&
	diff want got
'
expect_success 'many files: the folder listing is paginated too' '
	follow_pages "$M/files" files &&
	test "$(cat files.pages)" -ge 2 &&
	json_check files "len(d) == 1200 and len(set(e[\"path\"] for e in d)) == 1200"
'
expect_success 'many files: expand=true pages are complete too' '
	follow_pages "$M/files?expand=true" ex &&
	json_check ex "len(d) == 1200 and all(e[\"lastCommit\"][\"id\"] == \"$many_sha\" for e in d)"
'

P=$base/api/models/$REPO/paths-info
expect_success 'paths-info, form body (Python): existing paths only, folders as folders' '
	fetch p -X POST -H "Content-Type: application/x-www-form-urlencoded" \
		--data "paths=config.json&paths=model.safetensors&paths=no-such&paths=sub&expand=false" "$P/main" &&
	expect_status p 200 &&
	(git_entries "$main_sha" | grep -E " (config\.json|model\.safetensors|sub) ") >want &&
	api_entries "$(body p)" >got && diff want got &&
	json_check "$(body p)" "[e for e in d if e[\"path\"] == \"model.safetensors\"][0][\"lfs\"][\"oid\"] == \"$(sha256_of "$MODEL/model.safetensors")\""
'
expect_success 'paths-info, form body with expand=True (huggingface_hub 0.x)' '
	fetch p -X POST --data "paths=sub%2Fdir%2Fnotes.txt&expand=True" "$P/main" &&
	expect_status p 200 &&
	json_check "$(body p)" "len(d) == 1 and d[0][\"path\"] == \"sub/dir/notes.txt\" and d[0][\"lastCommit\"][\"id\"] == \"$main_sha\""
'
expect_success 'paths-info, JSON body (JS) with expand' '
	fetch p -X POST -H "Content-Type: application/json" \
		--data "{\"paths\": [\"config.json\", \"sub/dir/notes.txt\", \"DEV.md\"], \"expand\": true}" "$P/dev" &&
	expect_status p 200 &&
	json_check "$(body p)" "sorted(e[\"path\"] for e in d) == [\"DEV.md\", \"config.json\", \"sub/dir/notes.txt\"] and
all(\"lastCommit\" in e for e in d) and [e for e in d if e[\"path\"] == \"config.json\"][0][\"lastCommit\"][\"id\"] == \"$dev_sha\" and
[e for e in d if e[\"path\"] == \"config.json\"][0][\"oid\"] == \"$(git hash-object "$DEV/config.json")\""
'
expect_success 'paths-info: a non-ASCII path, a percent-encoded revision' '
	fetch p -X POST -H "Content-Type: application/json" \
		--data "{\"paths\": [\"docs/hello w\\u00f6rld.txt\"]}" "$P/feature%2Fx" &&
	expect_status p 200 &&
	json_check "$(body p)" "len(d) == 1 and d[0][\"size\"] == $(size_of "$MODEL/docs/hello wörld.txt")"
'
expect_success 'paths-info: only missing paths gives []' '
	fetch p -X POST --data "paths=nope&paths=sub/nope" "$P/main" &&
	expect_status p 200 && json_check "$(body p)" "d == []"
'
expect_success 'paths-info: 500 paths in one form body' '
	seq -w 1 1200 | head -n 500 | sed "s/^/paths=files%2Ff/; s/$/.txt/" | paste -s -d "&" - >form &&
	fetch p -X POST --data @form "$base/api/models/haven-test/many/paths-info/main" &&
	expect_status p 200 && json_check "$(body p)" "len(d) == 500 and all(e[\"type\"] == \"file\" for e in d)"
'
expect_success 'paths-info: a missing revision is a 404 RevisionNotFound' '
	fetch p -X POST --data "paths=config.json" "$P/no-such-branch" &&
	expect_error p 404 RevisionNotFound
'
expect_success 'paths-info: a bad JSON body is a 400' '
	fetch p -X POST -H "Content-Type: application/json" --data "{\"paths\": [" "$P/main" &&
	expect_status p 400 400
'
done_testing
