#!/bin/bash
# Model cards and lineage: every shape of base_model in a README's front
# matter (one id, a list = merge, an explicit base_model_relation, an
# adapter inferred from adapter_config.json, quantized from a .gguf file)
# becomes edges of the lineage graph however the commit arrives (import,
# API commit, git push); a malformed card never blocks a commit; a card
# that drops its base drops the edge. Read through filter=base_model:...,
# expand=baseModels / childrenModelCount, GET .../lineage (a three-level
# tree with an external root) and `haven lineage`. A private child is
# invisible to a caller who cannot see it.
. "$(dirname "$0")/lib.sh"

setup_fail() {
	echo "Bail out! setup: $*"
	exit 1
}
hv user create alice >/dev/null 2>&1 || setup_fail "user create alice"
T_ALICE=$(hv token create --user alice --role write --name lin 2>/dev/null)
case $T_ALICE in hf_*) ;; *) setup_fail "token create printed '$T_ALICE'" ;; esac

# card NAME FRONT-MATTER [EXTRA-FILE]: imports alice/NAME with that card.
card() {
	local d=$tmp/src-$1
	rm -rf "$d" && mkdir -p "$d"
	printf -- '---\n%s\n---\n# %s\n' "$2" "$1" >"$d/README.md"
	printf '{"model_type": "haven-test"}\n' >"$d/config.json"
	[ -z "${3:-}" ] || printf 'x\n' >"$d/$3"
	hv import "$d" --repo "alice/$1" -m "Card of $1" >/dev/null 2>&1 ||
		setup_fail "import alice/$1"
}
card mid 'base_model: External/Root'
card leaf $'base_model: alice/mid\nbase_model_relation: adapter'
card quant $'base_model: alice/leaf\nbase_model_relation: quantized'
card merged $'base_model:\n- alice/mid\n- External/Other'
card lora 'base_model: alice/mid' adapter_config.json
card gguf 'base_model: alice/mid' model-Q4_K_M.gguf
card secret 'base_model: alice/mid'
card edited 'base_model: alice/mid'
card broken $'base_model: [alice/mid\nlicense: mit'
# The edit that removes the edge: imported again without base_model.
card edited 'license: mit'

start_server
A=$base/api/models
AUTH=(-H "Authorization: Bearer $T_ALICE")

expect_success 'setup: alice makes alice/secret private' '
	fetch set "${AUTH[@]}" -X PUT -H "Content-Type: application/json" \
		--data-binary "{\"private\": true}" "$A/alice/secret/settings" &&
	expect_status set 200
'

# ids_lineage NAME: the sorted ids of the descendants in a lineage answer.
ids_lineage() {
	"$PYTHON" -c 'import json,sys; print(" ".join(sorted(x["id"] for x in json.load(open(sys.argv[1]))["descendants"])))' "$(body "$1")"
}
# ids FILE: the sorted ids of a JSON list of repos (or of lineage entries).
ids() {
	"$PYTHON" -c 'import json,sys; print(" ".join(sorted(x["id"] for x in json.load(open(sys.argv[1])))))' "$1"
}

expect_success 'tags: base_model:<id> and base_model:<relation>:<id>, relation inferred or explicit' '
	fetch m "$A/alice/mid" && expect_status m 200 &&
	json_check "$(body m)" "\"base_model:External/Root\" in d[\"tags\"] and \"base_model:finetune:External/Root\" in d[\"tags\"]" &&
	fetch l "$A/alice/leaf" && json_check "$(body l)" "\"base_model:adapter:alice/mid\" in d[\"tags\"]" &&
	fetch q "$A/alice/quant" && json_check "$(body q)" "\"base_model:quantized:alice/leaf\" in d[\"tags\"]" &&
	fetch g "$A/alice/merged" && json_check "$(body g)" "\"base_model:merge:alice/mid\" in d[\"tags\"] and \"base_model:merge:External/Other\" in d[\"tags\"]" &&
	fetch a "$A/alice/lora" && json_check "$(body a)" "\"base_model:adapter:alice/mid\" in d[\"tags\"]" &&
	fetch f "$A/alice/gguf" && json_check "$(body f)" "\"base_model:quantized:alice/mid\" in d[\"tags\"]"
'
expect_success 'malformed front matter: the commit landed, cardData null, cardError says why, no edge' '
	fetch b "$A/alice/broken" && expect_status b 200 &&
	json_check "$(body b)" "d[\"cardData\"] is None and isinstance(d[\"cardError\"], str) and len(d[\"cardError\"]) > 0" &&
	fetch m "$A/alice/mid" && json_check "$(body m)" "d[\"cardError\"] is None"
'
expect_success 'expand=baseModels: the Hub shape, relation and models' '
	fetch e "$A/alice/merged?expand=baseModels" && expect_status e 200 &&
	json_check "$(body e)" "d[\"baseModels\"] == {\"relation\": \"merge\", \"models\": [{\"id\": \"External/Other\"}, {\"id\": \"alice/mid\"}]} or d[\"baseModels\"][\"relation\"] == \"merge\" and sorted(m[\"id\"] for m in d[\"baseModels\"][\"models\"]) == [\"External/Other\", \"alice/mid\"]" &&
	json_check "$(body e)" "set(d) == {\"_id\", \"id\", \"baseModels\"}" &&
	fetch e2 "$A/alice/leaf?expand=baseModels" &&
	json_check "$(body e2)" "d[\"baseModels\"] == {\"relation\": \"adapter\", \"models\": [{\"id\": \"alice/mid\"}]}" &&
	fetch e3 "$A/alice/edited?expand=baseModels" &&
	json_check "$(body e3)" "d[\"baseModels\"] is None"
'
expect_success 'expand=childrenModelCount: only the children the caller can see' '
	fetch c "$A/alice/mid?expand=childrenModelCount" &&
	json_check "$(body c)" "d[\"childrenModelCount\"] == 4" &&
	fetch c2 "${AUTH[@]}" "$A/alice/mid?expand=childrenModelCount" &&
	json_check "$(body c2)" "d[\"childrenModelCount\"] == 5"
'
expect_success 'filter=base_model:<id> lists the visible children' '
	fetch fl "$A?filter=base_model:alice/mid" && expect_status fl 200 &&
	test "$(ids "$(body fl)")" = "alice/gguf alice/leaf alice/lora alice/merged"
'
expect_success 'filter=base_model:<relation>:<id>' '
	fetch fa "$A?filter=base_model:adapter:alice/mid" &&
	test "$(ids "$(body fa)")" = "alice/leaf alice/lora" &&
	fetch ff "$A?filter=base_model:finetune:External/Root" &&
	test "$(ids "$(body ff)")" = "alice/mid" &&
	fetch fs "${AUTH[@]}" "$A?filter=base_model:finetune:alice/mid" &&
	test "$(ids "$(body fs)")" = "alice/secret"
'
expect_success 'lineage: ancestors and descendants of the middle of the tree, counts per relation' '
	fetch t "$A/alice/mid/lineage" && expect_status t 200 &&
	json_check "$(body t)" "d[\"id\"] == \"alice/mid\" and d[\"ancestors\"] == [{\"id\": \"External/Root\", \"relation\": \"finetune\", \"depth\": 1, \"inferred\": True, \"external\": True}]" &&
	json_check "$(body t)" "sorted((x[\"id\"], x[\"relation\"], x[\"depth\"], x[\"inferred\"], x[\"external\"]) for x in d[\"descendants\"]) == [(\"alice/gguf\", \"quantized\", 1, True, False), (\"alice/leaf\", \"adapter\", 1, False, False), (\"alice/lora\", \"adapter\", 1, True, False), (\"alice/merged\", \"merge\", 1, True, False), (\"alice/quant\", \"quantized\", 2, False, False)]" &&
	json_check "$(body t)" "d[\"counts\"] == {\"adapter\": 2, \"merge\": 1, \"quantized\": 1, \"finetune\": 0}"
'
expect_success 'lineage: the private child appears for its owner only' '
	fetch t2 "${AUTH[@]}" "$A/alice/mid/lineage?direction=descendants&depth=1" &&
	json_check "$(body t2)" "\"alice/secret\" in [x[\"id\"] for x in d[\"descendants\"]] and d[\"counts\"][\"finetune\"] == 1 and d[\"ancestors\"] == []" &&
	fetch t3 "$A/alice/secret/lineage" && expect_status t3 401
'
expect_success 'lineage: ancestors of the leaf of a three-level tree, depth limits' '
	fetch u "$A/alice/quant/lineage?direction=ancestors" &&
	json_check "$(body u)" "[(x[\"id\"], x[\"relation\"], x[\"depth\"], x[\"external\"]) for x in d[\"ancestors\"]] == [(\"alice/leaf\", \"quantized\", 1, False), (\"alice/mid\", \"adapter\", 2, False), (\"External/Root\", \"finetune\", 3, True)] and d[\"descendants\"] == []" &&
	fetch u2 "$A/alice/quant/lineage?direction=ancestors&depth=2" &&
	json_check "$(body u2)" "len(d[\"ancestors\"]) == 2" &&
	fetch u3 "$A/alice/mid/lineage?direction=descendants&depth=1" &&
	json_check "$(body u3)" "\"alice/quant\" not in [x[\"id\"] for x in d[\"descendants\"]] and len(d[\"descendants\"]) == 4"
'
expect_success 'lineage: bad parameters are 400, a missing model 404' '
	fetch v1 "$A/alice/mid/lineage?depth=11" && expect_status v1 400 &&
	fetch v2 "$A/alice/mid/lineage?depth=x" && expect_status v2 400 &&
	fetch v3 "$A/alice/mid/lineage?direction=up" && expect_status v3 400 &&
	fetch v4 "${AUTH[@]}" "$A/alice/nothing/lineage" && expect_status v4 404
'
expect_success 'an API commit that fixes the card adds its edge and clears cardError' '
	printf "%s\n%s" "{\"key\":\"header\",\"value\":{\"summary\":\"Fix card\",\"description\":\"\"}}" \
		"{\"key\":\"file\",\"value\":{\"path\":\"README.md\",\"content\":\"$(printf -- "---\nbase_model: alice/quant\n---\n" | base64 -w0)\",\"encoding\":\"base64\"}}" >fix.ndjson &&
	fetch fx "${AUTH[@]}" -H "Content-Type: application/x-ndjson" --data-binary @fix.ndjson "$A/alice/broken/commit/main" &&
	expect_status fx 200 &&
	fetch b2 "$A/alice/broken?expand=baseModels&expand=cardError" &&
	json_check "$(body b2)" "d[\"cardError\"] is None and d[\"baseModels\"][\"models\"] == [{\"id\": \"alice/quant\"}] and d[\"baseModels\"][\"relation\"] == \"finetune\"" &&
	fetch w "$A/alice/quant/lineage?direction=descendants" &&
	test "$(ids_lineage w)" = "alice/broken"
'
expect_success 'an API commit with a malformed card still lands and removes the edge' '
	printf "%s\n%s" "{\"key\":\"header\",\"value\":{\"summary\":\"Break card\",\"description\":\"\"}}" \
		"{\"key\":\"file\",\"value\":{\"path\":\"README.md\",\"content\":\"$(printf -- "---\nbase_model: [x\n---\n" | base64 -w0)\",\"encoding\":\"base64\"}}" >brk.ndjson &&
	fetch bk "${AUTH[@]}" -H "Content-Type: application/x-ndjson" --data-binary @brk.ndjson "$A/alice/broken/commit/main" &&
	expect_status bk 200 &&
	fetch b3 "$A/alice/broken?expand=baseModels&expand=cardData&expand=cardError" &&
	json_check "$(body b3)" "d[\"baseModels\"] is None and d[\"cardData\"] is None and d[\"cardError\"]"
'
if command -v git >/dev/null; then
	export GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false
	G="git -c credential.helper= -c user.name=Alice -c user.email=alice@example.com"
	expect_success 'a git push to main that adds a base adds the edge (post-receive)' '
		$G clone -q "$(printf "%s\n" "$base/alice/edited" | sed "s#://#://git:$T_ALICE@#")" ed &&
		printf -- "---\nbase_model: alice/leaf\nbase_model_relation: finetune\n---\n" >ed/README.md &&
		git -C ed add -A && $G -C ed commit -qm "Card by git" &&
		$G -C ed push -q origin main 2>err && cat err &&
		fetch p "$A/alice/leaf/lineage?direction=descendants&depth=1" &&
		json_check "$(body p)" "sorted(x[\"id\"] for x in d[\"descendants\"]) == [\"alice/edited\", \"alice/quant\"]"
	'
else
	test_skip 'a git push to main that adds a base adds the edge (post-receive)' 'git is not installed'
fi
expect_success 'moving a base keeps its children; deleting a child removes its edge' '
	fetch mv "${AUTH[@]}" -H "Content-Type: application/json" -X POST \
		--data-binary "{\"fromRepo\": \"alice/leaf\", \"toRepo\": \"alice/leaf2\", \"type\": \"model\"}" \
		"$base/api/repos/move" && expect_status mv 200 &&
	fetch an "$A/alice/quant/lineage?direction=ancestors&depth=1" &&
	json_check "$(body an)" "[x[\"id\"] for x in d[\"ancestors\"]] == [\"alice/leaf2\"]" &&
	fetch dl "${AUTH[@]}" -H "Content-Type: application/json" -X DELETE \
		--data-binary "{\"name\": \"gguf\", \"organization\": \"alice\", \"type\": \"model\"}" \
		"$base/api/repos/delete" && expect_status dl 200 &&
	fetch t4 "$A/alice/mid/lineage?direction=descendants&depth=1" &&
	test "$(ids_lineage t4)" = "alice/leaf2 alice/lora alice/merged"
'
expect_success 'haven lineage prints the tree with relations and external marks' '
	hv lineage alice/quant --ancestors >tree.out 2>&1 &&
	printf "%s\n" "alice/quant" "ancestors:" "  quantized alice/leaf2" \
		"    adapter alice/mid" "      finetune External/Root (external) (inferred)" >tree.want &&
	diff tree.want tree.out &&
	hv lineage alice/mid --descendants --depth 1 >d.out 2>&1 &&
	grep -qx "  merge alice/merged (inferred)" d.out &&
	grep -qx "  finetune alice/secret (inferred)" d.out &&
	hv lineage alice/mid --json >j.out && json_check j.out "d[\"id\"] == \"alice/mid\" and d[\"counts\"][\"adapter\"] == 2" &&
	! hv lineage alice/mid --depth 0 >/dev/null 2>&1 &&
	! hv lineage alice/nothing >/dev/null 2>&1
'
stop_server
done_testing
