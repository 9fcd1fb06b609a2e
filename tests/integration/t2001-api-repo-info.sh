#!/bin/bash
# GET /api/{models,datasets,spaces}/NS/NAME[/revision/REV]: the repo object
# clients parse (_id, id, sha, dates, cardData, siblings), every revision
# form, blobs=true, expand, case-insensitive ids, and the errors.
. "$(dirname "$0")/lib.sh"

setup_model_repo
mkdir -p "$tmp/ds"
printf -- '---\nlicense: mit\ntags:\n- tabular\n---\n# Data\n' >"$tmp/ds/README.md"
printf 'a,b\n1,2\n' >"$tmp/ds/data.csv"
ds_sha=$(hv import "$tmp/ds" --repo haven-test/Tiny-Data --type dataset -m "data" 2>/dev/null)
mkdir -p "$tmp/sp"
printf 'print("hi")\n' >"$tmp/sp/app.py"
sp_sha=$(hv import "$tmp/sp" --repo haven-test/tiny-space --type space -m "app" 2>/dev/null)
gd=$(git_dir_for "$main_sha")
start_server

A=$base/api/models/$REPO
DATE_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'

expect_success 'repo info: the fields every client needs' '
	fetch i "$A" && expect_status i 200 &&
	case $(hdr i Content-Type) in application/json*) ;; *) show i; false;; esac &&
	json_check "$(body i)" "
isinstance(d.get(\"_id\"), str) and d[\"_id\"] != \"\" and
d[\"id\"] == \"$REPO\" and d[\"author\"] == \"haven-test\" and
d[\"sha\"] == \"$main_sha\" and
re.match(r\"$DATE_RE\", d[\"lastModified\"]) and re.match(r\"$DATE_RE\", d[\"createdAt\"]) and
d[\"private\"] is False and d[\"gated\"] is False and d.get(\"disabled\", False) is False and
isinstance(d[\"downloads\"], int) and isinstance(d[\"likes\"], int) and
isinstance(d[\"tags\"], list) and \"xetHash\" not in json.dumps(d)"
'
expect_success 'repo info: cardData from the README front matter' '
	json_check "$(body i)" "
d[\"cardData\"][\"license\"] == \"apache-2.0\" and
d[\"cardData\"][\"library_name\"] == \"transformers\" and
d[\"cardData\"][\"base_model\"] == \"haven-test/base\" and
\"test\" in d[\"cardData\"][\"tags\"] and \"test\" in d[\"tags\"] and
d.get(\"library_name\") == \"transformers\""
'
expect_success 'repo info: siblings list every file of main' '
	(fixture_files "$MODEL"; echo .gitattributes) | sort >want &&
	json "$(body i)" "\"\\n\".join(sorted(s[\"rfilename\"] for s in d[\"siblings\"]))" >got &&
	git --git-dir="$gd" ls-tree -r -z --name-only "$main_sha" | tr "\0" "\n" | sort >git-files &&
	diff git-files got && comm -23 want got >missing && test ! -s missing
'
expect_success 'repo info: the same object at /revision/main' '
	fetch r "$A/revision/main" && expect_status r 200 &&
	json_check "$(body r)" "d[\"sha\"] == \"$main_sha\" and d[\"id\"] == \"$REPO\""
'

# at REV SHA: /revision/REV describes commit SHA.
at() {
	fetch r "$A/revision/$1" && expect_status r 200 &&
	json_check "$(body r)" "d[\"sha\"] == \"$2\" and d[\"id\"] == \"$REPO\""
}
short=$(echo "$main_sha" | cut -c1-7)
expect_success 'revision: dev' 'at dev "$dev_sha"'
expect_success 'revision: tag v1.0' 'at v1.0 "$main_sha"'
expect_success 'revision: full sha' 'at "$main_sha" "$main_sha"'
expect_success 'revision: full sha of dev' 'at "$dev_sha" "$dev_sha"'
expect_success 'revision: short sha' 'at "$short" "$main_sha"'
expect_success 'revision: HEAD' 'at HEAD "$main_sha"'
expect_success 'revision: percent-encoded feature%2Fx' 'at feature%2Fx "$feature_sha"'
expect_success 'revision dev: siblings include DEV.md, lastModified is a date' '
	fetch r "$A/revision/dev" &&
	json_check "$(body r)" "\"DEV.md\" in [s[\"rfilename\"] for s in d[\"siblings\"]] and re.match(r\"$DATE_RE\", d[\"lastModified\"])" &&
	fetch r2 "$A/revision/main" &&
	json_check "$(body r2)" "\"DEV.md\" not in [s[\"rfilename\"] for s in d[\"siblings\"]]"
'

st_ptr_oid=$(lfs_pointer "$MODEL/model.safetensors" | git hash-object --stdin)
st_ptr_size=$(lfs_pointer "$MODEL/model.safetensors" | wc -c | tr -d " ")
expect_success 'blobs=true: size, blobId and lfs{sha256,size,pointerSize}' '
	fetch b "$A/revision/main?blobs=true" && expect_status b 200 &&
	json_check "$(body b)" "
(lambda s: s[\"model.safetensors\"][\"size\"] == $(size_of "$MODEL/model.safetensors") and
 s[\"model.safetensors\"][\"blobId\"] == \"$st_ptr_oid\" and
 s[\"model.safetensors\"][\"lfs\"] == {\"sha256\": \"$(sha256_of "$MODEL/model.safetensors")\", \"size\": $(size_of "$MODEL/model.safetensors"), \"pointerSize\": $st_ptr_size} and
 s[\"config.json\"][\"size\"] == $(size_of "$MODEL/config.json") and
 s[\"config.json\"][\"blobId\"] == \"$(git hash-object "$MODEL/config.json")\" and
 s[\"config.json\"].get(\"lfs\") is None and
 s[\"sub/weights.bin\"][\"lfs\"][\"sha256\"] == \"$(sha256_of "$MODEL/sub/weights.bin")\" and
 s[\"extra/large.dat\"][\"lfs\"][\"size\"] == 10485760)({x[\"rfilename\"]: x for x in d[\"siblings\"]})"
'
expect_success 'blobs=True (huggingface_hub 0.x spelling) is accepted' '
	fetch b "$A?blobs=True" && expect_status b 200 &&
	json_check "$(body b)" "all(\"size\" in s for s in d[\"siblings\"])"
'
expect_success 'expand=sha&expand=author: only those plus _id and id' '
	fetch e "$A?expand=sha&expand=author" && expect_status e 200 &&
	json_check "$(body e)" "set(d) == {\"_id\", \"id\", \"sha\", \"author\"} and d[\"sha\"] == \"$main_sha\""
'
expect_success 'expand[]=likes is the same as expand=likes' '
	fetch e "$A?expand%5B%5D=likes" && expect_status e 200 &&
	json_check "$(body e)" "set(d) == {\"_id\", \"id\", \"likes\"}"
'
expect_success 'the expand list of JS modelInfo is accepted' '
	fetch e "$A/revision/HEAD?expand=pipeline_tag&expand=private&expand=gated&expand=downloads&expand=likes&expand=lastModified&expand=sha&expand=siblings&expand=cardData&expand=tags" &&
	expect_status e 200 &&
	json_check "$(body e)" "d[\"sha\"] == \"$main_sha\" and d[\"private\"] is False and \"_id\" in d and isinstance(d[\"siblings\"], list)"
'
expect_success 'expand=xetEnabled answers false' '
	fetch e "$A/revision/main?expand=xetEnabled" && expect_status e 200 &&
	json_check "$(body e)" "d[\"xetEnabled\"] is False"
'
expect_success 'an unknown expand value is a 400' '
	fetch e "$A?expand=noSuchField" && expect_status e 400 &&
	test -n "$(hdr e X-Error-Message)"
'
expect_success 'repo ids are case-insensitive, the original case is kept' '
	fetch c1 "$base/api/models/HAVEN-TEST/tiny-model" && expect_status c1 200 &&
	fetch c2 "$base/api/models/haven-test/TINY-MODEL/revision/main" && expect_status c2 200 &&
	json_check "$(body c1)" "d[\"id\"] == \"$REPO\" and d[\"sha\"] == \"$main_sha\"" &&
	json_check "$(body c2)" "d[\"id\"] == \"$REPO\" and d[\"sha\"] == \"$main_sha\""
'
expect_success 'full=true is accepted on repo info' '
	fetch f "$A?full=true" && expect_status f 200
'

expect_success 'datasets: /api/datasets/NS/NAME' '
	is_sha "$ds_sha" &&
	fetch d "$base/api/datasets/haven-test/Tiny-Data" && expect_status d 200 &&
	json_check "$(body d)" "d[\"id\"] == \"haven-test/Tiny-Data\" and d[\"sha\"] == \"$ds_sha\" and \"_id\" in d and
sorted(s[\"rfilename\"] for s in d[\"siblings\"]) == sorted([\".gitattributes\", \"README.md\", \"data.csv\"]) and d[\"cardData\"][\"license\"] == \"mit\""
'
expect_success 'datasets: /revision/main and case-insensitive ids' '
	fetch d "$base/api/datasets/HAVEN-TEST/tiny-data/revision/main" && expect_status d 200 &&
	json_check "$(body d)" "d[\"sha\"] == \"$ds_sha\""
'
expect_success 'spaces: /api/spaces/NS/NAME' '
	is_sha "$sp_sha" &&
	fetch s "$base/api/spaces/haven-test/tiny-space" && expect_status s 200 &&
	json_check "$(body s)" "d[\"id\"] == \"haven-test/tiny-space\" and d[\"sha\"] == \"$sp_sha\""
'
expect_success 'a dataset is not a model, a model is not a dataset' '
	fetch x1 "$base/api/models/haven-test/Tiny-Data" && expect_error x1 401 RepoNotFound &&
	fetch x2 "$base/api/datasets/$REPO" && expect_error x2 401 RepoNotFound
'
expect_success 'missing repo: 401 RepoNotFound with the Hub headers and body' '
	fetch m "$base/api/models/haven-test/no-such" && expect_error m 401 RepoNotFound
'
expect_success 'missing repo with a revision: 401 RepoNotFound' '
	fetch m "$base/api/models/haven-test/no-such/revision/main" && expect_error m 401 RepoNotFound
'
expect_success 'missing revision: 404 RevisionNotFound, "Invalid rev id"' '
	fetch m "$A/revision/no-such-branch" && expect_error m 404 RevisionNotFound &&
	hdr m X-Error-Message | grep -q "Invalid rev id" &&
	json "$(body m)" "d[\"error\"]" | grep -q "Invalid rev id"
'
expect_success 'a sha that is not in the repo: RevisionNotFound' '
	fetch m "$A/revision/0123456789abcdef0123456789abcdef01234567" && expect_error m 404 RevisionNotFound
'
done_testing
