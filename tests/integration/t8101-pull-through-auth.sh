#!/bin/bash
# Pull-through access follows the upstream: a private upstream repository
# is served only to a client whose own token the upstream accepts for it,
# a gated one's files only to a client the upstream lets through, and the
# deployment token (here one that could read the private repository) is
# used for public repositories only. One client's access never becomes
# another's. Haven's own repositories keep Haven's rules.
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/secret"
printf 'private notes\n' >"$tmp/secret/README.md"
head -c $((3 << 20)) /dev/urandom >"$tmp/secret/model.safetensors"
hv user create alice >/dev/null 2>&1 &&
	hv user create bob >/dev/null 2>&1 &&
	hv import "$tmp/secret" --repo alice/secret -m secret >/dev/null 2>&1 &&
	hv import "$tmp/secret" --repo alice/gated -m gated >/dev/null 2>&1 || {
	echo "Bail out! cannot seed the upstream"
	exit 1
}
ATOK=$(hv token create --user alice --role write 2>/dev/null)
BTOK=$(hv token create --user bob --role read 2>/dev/null)
start_server
up=$base
up_pid=$server_pid
for s in 'secret {"private": true}' 'gated {"gated": "manual"}'; do
	hcurl -X PUT -H "Authorization: Bearer $ATOK" -H "Content-Type: application/json" \
		-d "${s#* }" -o /dev/null "$up/api/models/alice/${s%% *}/settings"
done

# The cache's own data: one repository of its own and one local account.
PT=$tmp/pt
mkdir -p "$tmp/own"
printf 'local\n' >"$tmp/own/README.md"
DATA=$PT hv import "$tmp/own" --repo local/own -m own >/dev/null 2>&1 &&
	DATA=$PT hv user create carol >/dev/null 2>&1 || {
	echo "Bail out! cannot seed the cache's own data"
	exit 1
}
CTOK=$(DATA=$PT hv token create --user carol --role write 2>/dev/null)
uphost=127.0.0.1
ca=()
[ -n "${HAVEN_TEST_CA:-}" ] && ca=(--upstream-ca-bundle "$HAVEN_TEST_CA")
# The deployment token could read alice/secret: it must not be used for it.
HAVEN_UPSTREAM_TOKEN=$ATOK DATA=$PT start_server --upstream "$scheme://$uphost:${up##*:}" \
	${ca[@]+"${ca[@]}"}
pt=$base
want=$(sha256_of "$tmp/secret/model.safetensors")

# get NAME PATH [TOKEN]: GET from the cache, with a Bearer token if given.
get() {
	if [ -n "${3:-}" ]; then
		fetch "$1" -H "Authorization: Bearer $3" "$pt$2"
	else
		fetch "$1" "$pt$2"
	fi
}

expect_success 'a private upstream repository is not served without a token' '
	get a /api/models/alice/secret && test "$(status a)" = 401 &&
	get f /alice/secret/resolve/main/model.safetensors && test "$(status f)" = 401 &&
	test "$(hdr f X-Error-Code)" = RepoNotFound
'
expect_success 'nor with a token the upstream does not know' '
	get a /api/models/alice/secret not-a-real-token &&
	test "$(status a)" = 404 -o "$(status a)" = 401
'
expect_success 'nor with an upstream token that has no access to it' '
	get a /api/models/alice/secret "$BTOK" && test "$(status a)" = 404 &&
	get f /alice/secret/resolve/main/model.safetensors "$BTOK" &&
	test "$(status f)" = 404
'
expect_success 'nor with a token of the cache'"'"'s own accounts' '
	get a /api/models/alice/secret "$CTOK" && test "$(status a)" = 404
'
expect_success 'it is served to a client with the upstream'"'"'s token for it' '
	get a /api/models/alice/secret "$ATOK" && test "$(status a)" = 200 &&
	json_check "$(body a)" "d[\"private\"] is True" &&
	get f /alice/secret/resolve/main/model.safetensors "$ATOK" &&
	test "$(status f)" = 200 && test "$(sha256_of "$(body f)")" = "$want"
'
expect_success 'after that, still not to anyone else' '
	get a /api/models/alice/secret && test "$(status a)" = 401 &&
	get f /alice/secret/resolve/main/model.safetensors "$BTOK" &&
	test "$(status f)" = 404 &&
	get f /alice/secret/resolve/main/README.md "$CTOK" && test "$(status f)" = 404 &&
	get l /api/models && ! grep -q alice/secret "$(body l)"
'
expect_success 'a gated upstream repository shows its card to anyone' '
	get a /api/models/alice/gated && test "$(status a)" = 200 &&
	json_check "$(body a)" "d[\"gated\"] == \"manual\""
'
expect_success 'its files need a token the upstream lets through' '
	get f /alice/gated/resolve/main/model.safetensors && test "$(status f)" = 401 &&
	test "$(hdr f X-Error-Code)" = GatedRepo &&
	get f /alice/gated/resolve/main/model.safetensors "$BTOK" &&
	test "$(status f)" = 403 && test "$(hdr f X-Error-Code)" = GatedRepo &&
	get f /alice/gated/resolve/main/model.safetensors "$ATOK" &&
	test "$(status f)" = 200 && test "$(sha256_of "$(body f)")" = "$want" &&
	get f /alice/gated/resolve/main/model.safetensors "$BTOK" &&
	test "$(status f)" = 403
'
expect_success 'the cache'"'"'s own repositories keep their rules' '
	get o /local/own/resolve/main/README.md && test "$(status o)" = 200 &&
	get o /local/own/resolve/main/README.md not-a-real-token &&
	test "$(status o)" = 401 &&
	get o /local/own/resolve/main/README.md "$CTOK" && test "$(status o)" = 200 &&
	get w /api/whoami-v2 not-a-real-token && test "$(status w)" = 401
'
# The upstream too exits 0 on SIGTERM (leak checks run at exit).
stop_server
server_pid=$up_pid
done_testing
