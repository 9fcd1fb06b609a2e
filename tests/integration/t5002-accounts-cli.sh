#!/bin/bash
# The account admin commands: haven user, org, token and access, their
# output and exit codes, and that what they change a running server sees
# at once (they share the data directory).
. "$(dirname "$0")/lib.sh"

# run_cli NAME ARGS...: run haven on this test's data; stdout, stderr and
# the exit status land in $tmp/NAME.{out,err,rc}.
run_cli() {
	local name=$1
	shift
	hv "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	echo $? >"$tmp/$name.rc"
}
rc_is() {
	local got
	got=$(cat "$tmp/$1.rc")
	[ "$got" = "$2" ] && return 0
	echo "exit status $got, expected $2"
	sed -e 's/^/stdout: /' "$tmp/$1.out"
	sed -e 's/^/stderr: /' "$tmp/$1.err"
	return 1
}

expect_success 'user create, org create, org add' '
	run_cli c user create alice && rc_is c 0 && grep -q "alice" "$tmp/c.out" &&
	run_cli c user create root --admin && rc_is c 0 &&
	run_cli c user create bob && rc_is c 0 &&
	run_cli c org create acme && rc_is c 0 &&
	run_cli c org add acme bob --role write && rc_is c 0 &&
	run_cli c org add Acme Bob --role read && rc_is c 0
'
expect_success 'names are unique across users and organisations, case-insensitively' '
	run_cli c user create ALICE && rc_is c 1 && grep -q "^haven: .*already taken" "$tmp/c.err" &&
	run_cli c org create Alice && rc_is c 1 &&
	run_cli c user create acme && rc_is c 1
'
expect_success 'invalid names and roles are refused with a message' '
	run_cli c user create "bad name" && rc_is c 1 && grep -q "^haven: invalid name" "$tmp/c.err" &&
	run_cli c user create a/b && rc_is c 1 &&
	run_cli c org add acme bob --role owner && rc_is c 2 &&
	run_cli c org add acme bob && rc_is c 2 &&
	run_cli c org add acme nobody --role read && rc_is c 1 && grep -q "nobody" "$tmp/c.err" &&
	run_cli c org add nothing bob --role read && rc_is c 1
'
expect_success 'usage errors exit 2, --help exits 0' '
	run_cli c user && rc_is c 2 &&
	run_cli c user delete alice && rc_is c 2 &&
	run_cli c token && rc_is c 2 &&
	run_cli c token create --role read && rc_is c 2 &&
	run_cli c token create --user bob && rc_is c 2 &&
	run_cli c access list && rc_is c 2 &&
	run_cli c access approve acme/x && rc_is c 2 &&
	run_cli c org --bogus && rc_is c 2 &&
	run_cli c token --help && rc_is c 0 && grep -q "usage: haven token" "$tmp/c.out"
'

expect_success 'token create prints the token alone on stdout' '
	run_cli t token create --user bob --role write --name laptop && rc_is t 0 &&
	test "$(wc -l <"$tmp/t.out" | tr -d " ")" = 1 &&
	grep -Eqx "hf_[A-Za-z0-9]{34}" "$tmp/t.out" &&
	! grep -qF "$(cat "$tmp/t.out")" "$tmp/t.err"
'
BOB=$(cat "$tmp/t.out")
expect_success 'token create: unknown user, organisation, bad role or label' '
	run_cli c token create --user carol --role read && rc_is c 1 &&
	run_cli c token create --user acme --role read && rc_is c 1 &&
	run_cli c token create --user bob --role owner && rc_is c 2 &&
	run_cli c token create --user bob --role read --name "$(printf "a\tb")" && rc_is c 1 &&
	test ! -s "$tmp/c.out"
'
expect_success 'token list: ids, users, roles and labels, never the token' '
	run_cli r token create --user alice --role read && rc_is r 0 &&
	run_cli l token list && rc_is l 0 &&
	grep -q "laptop" "$tmp/l.out" && grep -q "alice" "$tmp/l.out" &&
	! grep -q "hf_" "$tmp/l.out" &&
	run_cli l token list --user bob --json && rc_is l 0 &&
	json_check "$tmp/l.out" "
len(d) == 1 and d[0][\"user\"] == \"bob\" and d[0][\"role\"] == \"write\" and d[0][\"name\"] == \"laptop\" and
re.match(r\"^[0-9a-f]{16}$\", d[0][\"id\"]) and d[0][\"revoked\"] is False and d[0][\"createdAt\"].endswith(\"Z\")" &&
	run_cli l token list --json && json_check "$tmp/l.out" "len(d) == 2" &&
	run_cli l token list --user nobody --json && json_check "$tmp/l.out" "d == []"
'
# The id is the start of the token's SHA-256.
BOB_ID=$(printf '%s' "$BOB" | sha256sum | cut -c1-16)
expect_success 'the token id is the start of the token hash' '
	run_cli l token list --user bob --json &&
	json_check "$tmp/l.out" "d[0][\"id\"] == \"$BOB_ID\""
'

start_server
expect_success 'accounts made while the server runs work at once' '
	run_cli c user create carol && rc_is c 0 &&
	run_cli t2 token create --user carol --role read && rc_is t2 0 &&
	fetch w -H "Authorization: Bearer $(cat "$tmp/t2.out")" "$base/api/whoami-v2" &&
	expect_status w 200 && json_check "$(body w)" "d[\"name\"] == \"carol\" and d[\"orgs\"] == []" &&
	run_cli c org add acme carol --role read && rc_is c 0 &&
	fetch w -H "Authorization: Bearer $(cat "$tmp/t2.out")" "$base/api/whoami-v2" &&
	json_check "$(body w)" "[o[\"name\"] for o in d[\"orgs\"]] == [\"acme\"]"
'
expect_success 'token revoke by id prefix: the next request is 401' '
	fetch w -H "Authorization: Bearer $BOB" "$base/api/whoami-v2" && expect_status w 200 &&
	run_cli v token revoke "${BOB_ID:0:10}" && rc_is v 0 &&
	fetch w -H "Authorization: Bearer $BOB" "$base/api/whoami-v2" && expect_status w 401 &&
	expect_hdr w X-Error-Message "Invalid credentials in Authorization header" &&
	run_cli l token list --user bob --json && json_check "$tmp/l.out" "d[0][\"revoked\"] is True"
'
expect_success 'token revoke: unknown, too short or malformed ids' '
	run_cli v token revoke 000000000000 && rc_is v 1 &&
	run_cli v token revoke abc && rc_is v 1 &&
	run_cli v token revoke not-hex-at-all && rc_is v 1 &&
	run_cli v token revoke && rc_is v 2
'

# A gated dataset, so the type flag is exercised too.
mkdir -p "$tmp/ds"
printf 'a,b\n1,2\n' >"$tmp/ds/data.csv"
hv import "$tmp/ds" --repo acme/gated-data --type dataset -m "Add data" >/dev/null 2>&1
run_cli t3 token create --user root --role admin
ROOT=$(cat "$tmp/t3.out")
CAROL=$(cat "$tmp/t2.out")
expect_success 'a site administrator gates the dataset; carol (a member) still reads it' '
	fetch s -X PUT -H "Authorization: Bearer $ROOT" -H "Content-Type: application/json" \
		--data-binary "{\"gated\": \"manual\"}" "$base/api/datasets/acme/gated-data/settings" &&
	expect_status s 200 &&
	fetch f -H "Authorization: Bearer $CAROL" "$base/datasets/acme/gated-data/resolve/main/data.csv" &&
	expect_status f 200
'
run_cli c user create dave
run_cli t4 token create --user dave --role read
DAVE=$(cat "$tmp/t4.out")
dave_get() {
	fetch f -H "Authorization: Bearer $DAVE" "$base/datasets/acme/gated-data/resolve/main/data.csv"
}
expect_success 'access list|approve|reject from the command line' '
	dave_get && expect_error f 403 GatedRepo &&
	expect_hdr f X-Error-Message "Access to dataset acme/gated-data is restricted and you are not in the authorized list. Visit $base/datasets/acme/gated-data to ask for access." &&
	fetch a -X POST -H "Authorization: Bearer $DAVE" "$base/api/datasets/acme/gated-data/ask-access" &&
	expect_status a 200 &&
	run_cli al access list acme/gated-data --type dataset && rc_is al 0 &&
	grep -Eq "^dave +pending " "$tmp/al.out" &&
	run_cli ap access approve acme/gated-data dave --type dataset && rc_is ap 0 &&
	dave_get && expect_status f 200 &&
	run_cli al access list acme/gated-data --type dataset && grep -Eq "^dave +accepted " "$tmp/al.out" &&
	run_cli rj access reject acme/gated-data dave --type dataset && rc_is rj 0 &&
	dave_get && expect_error f 403 GatedRepo
'
expect_success 'access: unknown repository, wrong type or unknown user' '
	run_cli x access list acme/gated-data && rc_is x 1 &&
	grep -q "^haven: no model repository" "$tmp/x.err" &&
	run_cli x access list acme/none --type dataset && rc_is x 1 &&
	run_cli x access approve acme/gated-data nobody --type dataset && rc_is x 1
'
expect_success 'no token text in the server log' '
	for t in "$BOB" "$ROOT" "$CAROL" "$DAVE"; do
		if grep -F "$t" "$tmp/server.log"; then exit 1; fi
	done
'

done_testing
