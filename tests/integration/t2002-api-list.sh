#!/bin/bash
# GET /api/models (and /api/datasets, /api/spaces): search, author, filter,
# sort, limit, expand/full/cardData, and absolute Link pagination that stays
# correct while repos are added. Other repos may exist in the data folder
# (a demo model), so checks look at the repos this test made.
. "$(dirname "$0")/lib.sh"

make_model "$tmp/model" --small
hv import "$tmp/model" --repo haven-test/Tiny-Model -m "Add tiny model" >/dev/null 2>&1
for r in other-org/alpha other-org/beta other-org/gamma haven-test/zeta; do
	hv repo create "$r" >/dev/null 2>&1
done
hv repo create haven-test/a-dataset --type dataset >/dev/null 2>&1
hv repo create haven-test/a-space --type space >/dev/null 2>&1
start_server

# ids FILE: the sorted ids of a JSON array of repos.
ids() {
	json "$1" "\"\\n\".join(sorted(x[\"id\"] for x in d))"
}

expect_success 'GET /api/models: an array of repo objects with _id and id' '
	fetch l "$base/api/models" && expect_status l 200 &&
	json_check "$(body l)" "isinstance(d, list) and all(isinstance(x.get(\"_id\"), str) and isinstance(x.get(\"id\"), str) for x in d)" &&
	ids "$(body l)" >got &&
	for r in haven-test/Tiny-Model other-org/alpha other-org/beta other-org/gamma haven-test/zeta; do
		grep -qx "$r" got || { echo "missing $r"; cat got; exit 1; }
	done &&
	! grep -qx haven-test/a-dataset got && ! grep -qx haven-test/a-space got
'
expect_success 'author=other-org: exactly that namespace' '
	fetch l "$base/api/models?author=other-org" && expect_status l 200 &&
	test "$(ids "$(body l)" | tr "\n" " ")" = "other-org/alpha other-org/beta other-org/gamma "
'
expect_success 'author is case-insensitive' '
	fetch l "$base/api/models?author=OTHER-ORG" && expect_status l 200 &&
	test "$(ids "$(body l)" | wc -l | tr -d " ")" = 3
'
expect_success 'search=alp: substring of the id' '
	fetch l "$base/api/models?search=alp" && expect_status l 200 &&
	ids "$(body l)" >got && grep -qx other-org/alpha got && ! grep -qx other-org/beta got
'
expect_success 'search matches across namespace and name (other-org/ga)' '
	fetch l "$base/api/models?search=other-org%2Fga" && expect_status l 200 &&
	test "$(ids "$(body l)")" = other-org/gamma
'
expect_success 'search is case-insensitive' '
	fetch l "$base/api/models?search=TINY" && expect_status l 200 &&
	ids "$(body l)" | grep -qx haven-test/Tiny-Model
'
expect_success 'search and author combine' '
	fetch l "$base/api/models?search=a&author=haven-test" && expect_status l 200 &&
	ids "$(body l)" >got && grep -qx haven-test/zeta got && ! grep -q other-org got
'
expect_success 'filter=test: repos with that tag' '
	fetch l "$base/api/models?filter=test" && expect_status l 200 &&
	ids "$(body l)" >got && grep -qx haven-test/Tiny-Model got && ! grep -qx other-org/alpha got
'
expect_success 'filter=test&filter=no-such-tag: tags combine with AND' '
	fetch l "$base/api/models?filter=test&filter=no-such-tag" && expect_status l 200 &&
	json_check "$(body l)" "d == []"
'
expect_success 'no match: an empty array' '
	fetch l "$base/api/models?search=no-such-thing-anywhere" && expect_status l 200 &&
	json_check "$(body l)" "d == []"
'
expect_success 'limit=2: two repos and an absolute Link to the next page' '
	fetch l "$base/api/models?limit=2" && expect_status l 200 &&
	json_check "$(body l)" "len(d) == 2" &&
	hdr l Link | grep -Eq "^<$base/api/models\?[^>]*>; +rel=\"next\""
'
expect_success 'limit=1: following Link visits every repo exactly once' '
	follow_pages "$base/api/models?limit=1" all &&
	json_check all "len(d) == len(set(x[\"id\"] for x in d))" &&
	ids all >got &&
	for r in haven-test/Tiny-Model other-org/alpha other-org/beta other-org/gamma haven-test/zeta; do
		grep -qx "$r" got || { echo "missing $r"; cat got; exit 1; }
	done &&
	test "$(cat all.pages)" -ge 5
'
expect_success 'the next URL keeps the query (author=other-org&limit=1)' '
	follow_pages "$base/api/models?author=other-org&limit=1" all &&
	test "$(ids all | tr "\n" " ")" = "other-org/alpha other-org/beta other-org/gamma " &&
	test "$(cat all.pages)" -ge 3
'
expect_success 'pagination stays correct while repos are added' '
	fetch p1 "$base/api/models?author=other-org&limit=1" && expect_status p1 200 &&
	next=$(hdr p1 Link | sed -n -E "s/.*<([^>]*)>;[[:space:]]+rel=\"next\".*/\1/p") &&
	test -n "$next" &&
	"$HAVEN" repo create other-org/aaa-added --data "$DATA" >/dev/null 2>&1 &&
	"$HAVEN" repo create other-org/zzz-added --data "$DATA" >/dev/null 2>&1 &&
	follow_pages "$next" rest &&
	"$PYTHON" - "$(body p1)" rest <<PY
import json, sys
first = json.load(open(sys.argv[1]))
rest = json.load(open(sys.argv[2]))
ids = [x["id"] for x in first + rest]
dups = set(i for i in ids if ids.count(i) > 1)
missing = {"other-org/alpha", "other-org/beta", "other-org/gamma"} - set(ids)
if dups or missing:
    print("duplicates:", dups, "missing:", missing, "ids:", ids)
    sys.exit(1)
PY
'
expect_success 'sort=lastModified: newest first' '
	fetch l "$base/api/models?sort=lastModified&expand=lastModified" && expect_status l 200 &&
	json_check "$(body l)" "[x[\"lastModified\"] for x in d] == sorted([x[\"lastModified\"] for x in d], reverse=True)"
'
expect_success 'sort=downloads, sort=likes, sort=createdAt, sort=id and direction=-1 are accepted' '
	for s in downloads likes createdAt id trendingScore; do
		fetch l "$base/api/models?sort=$s&direction=-1" && expect_status l 200 || exit 1
	done
'
expect_success 'full=true: siblings are included' '
	fetch l "$base/api/models?full=true&author=haven-test&search=tiny" && expect_status l 200 &&
	json_check "$(body l)" "len(d) == 1 and \"README.md\" in [s[\"rfilename\"] for s in d[0][\"siblings\"]]"
'
expect_success 'cardData=true: the model card data is included' '
	fetch l "$base/api/models?cardData=true&search=tiny-model" && expect_status l 200 &&
	json_check "$(body l)" "d[0][\"cardData\"][\"license\"] == \"apache-2.0\""
'
expect_success 'expand=author: only _id, id and author' '
	fetch l "$base/api/models?expand=author&author=other-org" && expect_status l 200 &&
	json_check "$(body l)" "len(d) >= 3 and all(set(x) == {\"_id\", \"id\", \"author\"} for x in d)"
'
expect_success 'the expand list of JS listModels is accepted' '
	fetch l "$base/api/models?limit=500&expand=pipeline_tag&expand=private&expand=gated&expand=downloads&expand=likes&expand=lastModified&search=tiny" &&
	expect_status l 200 &&
	json_check "$(body l)" "len(d) == 1 and d[0][\"private\"] is False and \"_id\" in d[0] and isinstance(d[0][\"downloads\"], int)"
'
expect_success 'an unknown expand value is a 400' '
	fetch l "$base/api/models?expand=noSuchField" && expect_status l 400
'
expect_success 'a bad limit is a 400 (or ignored), never a 5xx' '
	for v in abc -1 99999999999999999999; do
		fetch l "$base/api/models?limit=$v" &&
		case $(status l) in 200|400|422) ;; *) show l; exit 1;; esac
	done
'
expect_success '/api/datasets lists datasets only' '
	fetch l "$base/api/datasets" && expect_status l 200 &&
	ids "$(body l)" >got && grep -qx haven-test/a-dataset got && ! grep -qx other-org/alpha got
'
expect_success '/api/spaces lists spaces only' '
	fetch l "$base/api/spaces" && expect_status l 200 &&
	ids "$(body l)" >got && grep -qx haven-test/a-space got && ! grep -qx other-org/alpha got
'
done_testing
