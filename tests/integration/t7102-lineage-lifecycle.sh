#!/bin/bash
# Likes, download counters and lineage across the life of a repository:
# GET /api/users/{user}/likes (huggingface_hub's list_liked_repos) never
# shows a private repository to someone who cannot see it; deleting a
# model removes its counters, likes and outgoing edges, and the edges of
# its children stay, shown as external, so a model created again under
# the same name starts from nothing; a move keeps everything;
# `haven lineage --rebuild` re-derives the edges from the cards (for data
# written behind Haven's back) and says what changed, once; and
# @huggingface/hub's listModels({search: {tags: ["base_model:..."]}}).
. "$(dirname "$0")/lib.sh"

setup_fail() {
	echo "Bail out! setup: $*"
	exit 1
}
hv user create alice >/dev/null 2>&1 || setup_fail "user create alice"
hv user create bob >/dev/null 2>&1 || setup_fail "user create bob"
hv org create acme >/dev/null 2>&1 || setup_fail "org create acme"
T_ALICE=$(hv token create --user alice --role write --name t 2>/dev/null)
T_BOB=$(hv token create --user bob --role write --name t 2>/dev/null)
case $T_ALICE$T_BOB in hf_*hf_*) ;; *) setup_fail "token create" ;; esac

# card NAME FRONT-MATTER: imports alice/NAME with that card and a
# config.json; prints the commit.
card() {
	local d=$tmp/src-$1
	rm -rf "$d" && mkdir -p "$d"
	[ -z "$2" ] || printf -- '---\n%s\n---\n' "$2" >"$d/README.md"
	printf '# %s\n' "$1" >>"$d/README.md"
	printf '{"model_type": "haven-test"}\n' >"$d/config.json"
	hv import "$d" --repo "alice/$1" -m "Card of $1" 2>/dev/null ||
		setup_fail "import alice/$1"
}
card gone 'base_model: Outside/Up' >/dev/null
card kid 'base_model: alice/gone' >/dev/null
card grandkid 'base_model: alice/kid' >/dev/null
card secret 'base_model: alice/gone' >/dev/null
card mover 'license: mit' >/dev/null
card follower 'base_model: alice/mover' >/dev/null
late_sha=$(card late 'license: mit')
is_sha "$late_sha" || setup_fail "import alice/late printed '$late_sha'"
mkdir -p "$tmp/ds" && printf 'a\n1\n' >"$tmp/ds/a.csv"
hv import "$tmp/ds" --repo alice/data --type dataset -m d >/dev/null 2>&1 ||
	setup_fail "import alice/data"

start_server
A=$base/api/models
AA=(-H "Authorization: Bearer $T_ALICE")
AB=(-H "Authorization: Bearer $T_BOB")
JSON=(-H "Content-Type: application/json")

# info REPO FIELD [curl args]: one expand field of a model, as Python prints it.
info() {
	local r=$1 f=$2
	shift 2
	hcurl "$@" "$A/$r?expand=$f" >"$tmp/info.json" &&
		json "$tmp/info.json" "str(d[\"$f\"])"
}
# liked USER [curl args]: "type:name ..." of a user's likes, sorted.
liked() {
	local u=$1
	shift
	fetch likes "$@" "$base/api/users/$u/likes" && expect_status likes 200 &&
		json "$(body likes)" '" ".join(sorted(x["repo"]["type"] + ":" + x["repo"]["name"] for x in d))'
}
# ids FILE: the sorted ids of a JSON list.
ids() {
	json "$1" '" ".join(sorted(x["id"] for x in d))'
}
# heads REPO N: N counted HEADs of config.json, each answered 200.
heads() {
	local i=0
	while [ $i -lt "$2" ]; do
		test "$(hcurl -I -o /dev/null -w '%{http_code}' "$base/$1/resolve/main/config.json")" = 200 || return 1
		i=$((i + 1))
	done
}
# wait_downloads REPO N: until repo info shows N downloads (batched writes).
wait_downloads() {
	local i=0
	until [ "$(info "$1" downloads)" = "$2" ]; do
		i=$((i + 1)); [ $i -lt 60 ] || return 1; sleep 0.2
	done
}
like() {
	fetch lk "$@" && expect_status lk 200
}

expect_success 'setup: alice/secret is private; likes by alice and bob' '
	fetch set "${AA[@]}" "${JSON[@]}" -X PUT --data-binary "{\"private\": true}" "$A/alice/secret/settings" &&
	expect_status set 200 &&
	like "${AA[@]}" -X POST "$A/alice/gone/like" &&
	like "${AA[@]}" -X POST "$A/alice/secret/like" &&
	like "${AA[@]}" -X POST "$base/api/datasets/alice/data/like" &&
	like "${AA[@]}" -X POST "$A/alice/kid/like" &&
	like "${AB[@]}" -X POST "$A/alice/gone/like" &&
	like "${AB[@]}" -X POST "$A/alice/mover/like"
'
expect_success 'users/{user}/likes: the Hub shape, models and datasets, newest fields' '
	fetch l "$base/api/users/alice/likes" && expect_status l 200 &&
	json_check "$(body l)" "isinstance(d, list) and all(set(x) == {\"createdAt\", \"repo\"} and set(x[\"repo\"]) == {\"name\", \"type\"} and re.match(r\"^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$\", x[\"createdAt\"]) for x in d)" &&
	test "$(liked alice)" = "dataset:alice/data model:alice/gone model:alice/kid"
'
expect_success 'users/{user}/likes: a private repo only for who may see it' '
	test "$(liked alice "${AA[@]}")" = "dataset:alice/data model:alice/gone model:alice/kid model:alice/secret" &&
	test "$(liked alice "${AB[@]}")" = "dataset:alice/data model:alice/gone model:alice/kid" &&
	test "$(liked Alice)" = "dataset:alice/data model:alice/gone model:alice/kid" &&
	test "$(liked bob)" = "model:alice/gone model:alice/mover"
'
expect_success 'users/{user}/likes: unlike removes it; an organisation likes nothing; nobody is 404' '
	like "${AB[@]}" -X DELETE "$A/alice/mover/like" &&
	test "$(liked bob)" = "model:alice/gone" &&
	like "${AB[@]}" -X POST "$A/alice/mover/like" &&
	test "$(liked acme)" = "" &&
	fetch nu "$base/api/users/nobody/likes" && expect_status nu 404 &&
	fetch bad "$base/api/users/a..b/likes" && expect_status bad 404
'
if [ -n "${HAVEN_HF_HUB_SRC:-}" ] && [ -d "$HAVEN_HF_HUB_SRC/huggingface_hub" ]; then
	expect_success 'huggingface_hub list_liked_repos reads it (with and without a token)' '
		HF_ENDPOINT=$base HF_HUB_DISABLE_XET=1 HF_HOME=$tmp/hf PYTHONPATH=$HAVEN_HF_HUB_SRC \
		"$PYTHON" -c "
import sys
from huggingface_hub import HfApi
anon = HfApi(endpoint=sys.argv[1], token=False).list_liked_repos(\"alice\")
mine = HfApi(endpoint=sys.argv[1], token=sys.argv[2]).list_liked_repos()
assert anon.user == \"alice\" and anon.total == 3, anon
assert sorted(anon.models) == [\"alice/gone\", \"alice/kid\"] and anon.datasets == [\"alice/data\"] and anon.spaces == [], anon
assert mine.total == 4 and \"alice/secret\" in mine.models, mine
" "$base" "$T_ALICE"
	'
else
	test_skip 'huggingface_hub list_liked_repos reads it (with and without a token)' 'HAVEN_HF_HUB_SRC is not set'
fi

expect_success 'setup: downloads of alice/gone and alice/mover are counted' '
	heads alice/gone 3 && heads alice/mover 2 && heads alice/kid 1 &&
	wait_downloads alice/gone 3 && wait_downloads alice/mover 2 &&
	wait_downloads alice/kid 1 &&
	test "$(info alice/gone likes)" = 2 &&
	test "$(info alice/gone childrenModelCount)" = 1 &&
	test "$(info alice/gone childrenModelCount "${AA[@]}")" = 2
'
expect_success 'a move keeps downloads, likes and children (same repository)' '
	fetch mv "${AA[@]}" "${JSON[@]}" -X POST \
		--data-binary "{\"fromRepo\": \"alice/mover\", \"toRepo\": \"alice/moved\", \"type\": \"model\"}" \
		"$base/api/repos/move" && expect_status mv 200 &&
	test "$(info alice/moved downloads)" = 2 &&
	test "$(info alice/moved downloadsAllTime)" = 2 &&
	test "$(info alice/moved likes)" = 1 &&
	test "$(info alice/moved childrenModelCount)" = 1 &&
	test "$(liked bob)" = "model:alice/gone model:alice/moved" &&
	fetch fm "$A?filter=base_model:alice/mover" && test "$(ids "$(body fm)")" = "alice/follower" &&
	fetch fn "$A?filter=base_model:alice/moved" && test "$(ids "$(body fn)")" = ""
'
expect_success 'delete: the children of the deleted model keep their edge, now external' '
	fetch dl "${AA[@]}" "${JSON[@]}" -X DELETE \
		--data-binary "{\"name\": \"gone\", \"organization\": \"alice\", \"type\": \"model\"}" \
		"$base/api/repos/delete" && expect_status dl 200 &&
	fetch up "$A/alice/kid/lineage?direction=ancestors" && expect_status up 200 &&
	json_check "$(body up)" "d[\"ancestors\"] == [{\"id\": \"alice/gone\", \"relation\": \"finetune\", \"depth\": 1, \"inferred\": True, \"external\": True}]" &&
	test "$(liked alice)" = "dataset:alice/data model:alice/kid" &&
	test "$(liked bob)" = "model:alice/moved"
'
expect_success 'a model created again under that name starts from nothing' '
	fetch cr "${AA[@]}" "${JSON[@]}" -X POST \
		--data-binary "{\"name\": \"gone\", \"organization\": \"alice\", \"type\": \"model\"}" \
		"$base/api/repos/create" && expect_status cr 200 &&
	test "$(info alice/gone downloads)" = 0 &&
	test "$(info alice/gone downloadsAllTime)" = 0 &&
	test "$(info alice/gone likes)" = 0 &&
	test "$(info alice/gone childrenModelCount "${AA[@]}")" = 0 &&
	test "$(info alice/gone baseModels)" = None &&
	fetch lk2 "$A/alice/gone/likers" && json_check "$(body lk2)" "d == []" &&
	fetch t "${AA[@]}" "$A/alice/gone/lineage" && expect_status t 200 &&
	json_check "$(body t)" "d[\"ancestors\"] == [] and d[\"descendants\"] == [] and d[\"counts\"] == {\"adapter\": 0, \"merge\": 0, \"quantized\": 0, \"finetune\": 0}" &&
	fetch up2 "$A/alice/kid/lineage?direction=ancestors&depth=1" &&
	json_check "$(body up2)" "d[\"ancestors\"][0][\"external\"] is True" &&
	test "$(liked alice)" = "dataset:alice/data model:alice/kid"
'
expect_success 'the tag filter still finds the cards that name it (a tag, as on the Hub)' '
	fetch ft "$A?filter=base_model:alice/gone" && expect_status ft 200 &&
	test "$(ids "$(body ft)")" = "alice/kid" &&
	fetch ft2 "${AA[@]}" "$A?filter=base_model:finetune:alice/gone" &&
	test "$(ids "$(body ft2)")" = "alice/kid alice/secret" &&
	fetch ft3 "$A?filter=base_model:adapter:alice/gone" && test "$(ids "$(body ft3)")" = ""
'
expect_success 'downloads of the new model count from zero; other counters untouched' '
	fetch cm "${AA[@]}" -H "Content-Type: application/x-ndjson" --data-binary @- \
		"$A/alice/gone/commit/main" <<-EOF &&
	{"key":"header","value":{"summary":"config","description":""}}
	{"key":"file","value":{"path":"config.json","content":"e30K","encoding":"base64"}}
	EOF
	expect_status cm 200 &&
	heads alice/gone 1 && wait_downloads alice/gone 1 &&
	test "$(info alice/gone downloadsAllTime)" = 1 &&
	test "$(info alice/kid downloads)" = 1
'

# Commit a card into alice/late with plain git, as if the server had
# crashed between the ref update and the lineage transaction.
expect_success 'setup: a card written behind Haven'"'"'s back has no edge yet' '
	g=$(git_dir_for "$late_sha") &&
	blob=$(printf -- "---\nbase_model: alice/kid\nbase_model_relation: adapter\n---\n" | git --git-dir="$g" hash-object -w --stdin) &&
	tree=$( (git --git-dir="$g" ls-tree "$late_sha" | grep -v "	README.md\$"; printf "100644 blob %s\tREADME.md\n" "$blob") | git --git-dir="$g" mktree) &&
	c=$(GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@b git --git-dir="$g" commit-tree "$tree" -p "$late_sha" -m card) &&
	git --git-dir="$g" update-ref refs/heads/main "$c" "$late_sha" &&
	test "$(info alice/late baseModels)" = None
'
expect_success 'haven lineage --rebuild adds the missing edge and re-attaches the re-created base, saying so' '
	hv lineage --rebuild >rb.out 2>rb.err && cat rb.out &&
	grep -qx "alice/late: \[\] -> \[adapter alice/kid\]" rb.out &&
	grep -qx "alice/kid: \[finetune alice/gone (external) (inferred)\] -> \[finetune alice/gone (inferred)\]" rb.out &&
	grep -qx "alice/secret: \[finetune alice/gone (external) (inferred)\] -> \[finetune alice/gone (inferred)\]" rb.out &&
	grep -qx "lineage: 7 models read, 3 changed" rb.out &&
	test "$(info alice/gone childrenModelCount)" = 1 &&
	fetch d "$A/alice/kid/lineage?direction=descendants" &&
	json_check "$(body d)" "sorted((x[\"id\"], x[\"relation\"], x[\"depth\"]) for x in d[\"descendants\"]) == [(\"alice/grandkid\", \"finetune\", 1), (\"alice/late\", \"adapter\", 1)]"
'
expect_success 'haven lineage --rebuild is idempotent; one model; bad use' '
	hv lineage --rebuild >rb2.out && test "$(cat rb2.out)" = "lineage: 7 models read, 0 changed" &&
	hv lineage --rebuild alice/late >rb3.out && test "$(cat rb3.out)" = "lineage: 1 model read, 0 changed" &&
	! hv lineage --rebuild alice/nothing >/dev/null 2>&1 &&
	! hv lineage --rebuild --ancestors >/dev/null 2>&1 &&
	! hv lineage --rebuild a/b c/d >/dev/null 2>&1
'

# @huggingface/hub: listModels sends search.tags as filter=<tag>.
if command -v node >/dev/null 2>&1 &&
	[ -f "$top_srcdir/tests/js/node_modules/@huggingface/hub/package.json" ]; then
	mkdir -p "$tmp/js" && ln -s "$top_srcdir/tests/js/node_modules" "$tmp/js/node_modules" &&
		printf '{"type": "module"}\n' >"$tmp/js/package.json"
	cat >"$tmp/js/list.mjs" <<-'EOF'
	import { listModels } from "@huggingface/hub";
	const [hubUrl, tag, token] = process.argv.slice(2);
	const out = [];
	for await (const m of listModels({ hubUrl, search: { tags: [tag] }, accessToken: token || undefined }))
		out.push(m.name);
	console.log(out.sort().join(" "));
	EOF
	expect_success '@huggingface/hub listModels with a base_model tag, relation and visibility' '
		test "$(cd "$tmp/js" && timeout 60 node list.mjs "$base" base_model:alice/kid)" = "alice/grandkid alice/late" &&
		test "$(cd "$tmp/js" && timeout 60 node list.mjs "$base" base_model:adapter:alice/kid)" = "alice/late" &&
		test "$(cd "$tmp/js" && timeout 60 node list.mjs "$base" base_model:alice/gone)" = "alice/kid" &&
		test "$(cd "$tmp/js" && timeout 60 node list.mjs "$base" base_model:alice/gone "$T_ALICE")" = "alice/kid alice/secret"
	'
else
	test_skip '@huggingface/hub listModels with a base_model tag, relation and visibility' 'node or tests/js/node_modules missing'
fi
stop_server
done_testing
