#!/bin/bash
# Authorisation: every endpoint family against every kind of caller and
# every kind of repository, from one table, so that a leak anywhere fails.
#
# Callers (columns):
#   anon     no Authorization header
#   reader   carol, member of acme with the read role
#   writer   bob, member of acme with the write role
#   rtoken   bob again, with a token whose own role is read
#   other    dave, member of another organisation only
#   revoked  a revoked token of alice (acme's admin)
# Repositories (rows): acme/public, acme/private, acme/gated (manual), and
# acme/nothing-here, which must answer exactly as a private one does.
#
# Endpoint families: the read API (info, list, tree, paths-info, refs,
# commits, discussions), file content (resolve, raw, LFS download, git
# clone), the write API (settings, create, preupload, commit, branches,
# tags, pull requests, delete, move), LFS upload, git push, and gated
# access requests (ask-access, the request list).
#
# Expected cells:
#   200            that status (for a 4xx: and no X-Error-Code)
#   404:CODE       that status with X-Error-Code CODE and the error shape
#   bad            401 "Invalid credentials in Authorization header"
#   L / H          a 200 listing that shows / hides the repository
# A row whose endpoint still answers "not implemented" is skipped.
#
# To add an endpoint family: write req_FAMILY (NAME REPO CALLER; curl
# arguments for the caller are in "${AUTH[@]}"), then add its rows to a
# table. Writes that succeed must leave nothing another cell looks at;
# families that change shared state (access requests, delete, move) are
# in the second table, which runs after the gating checks.
. "$(dirname "$0")/lib.sh"

BAD_CREDS='Invalid credentials in Authorization header'

# --- accounts, tokens and repositories ----------------------------------------

setup_fail() {
	echo "Bail out! setup: $*"
	exit 1
}

for u in alice bob carol dave eve; do
	hv user create "$u" >/dev/null 2>&1 || setup_fail "user create $u"
done
hv org create acme >/dev/null && hv org create other >/dev/null || setup_fail "org create"
hv org add acme alice --role admin >/dev/null &&
	hv org add acme bob --role write >/dev/null &&
	hv org add acme carol --role read >/dev/null &&
	hv org add other dave --role write >/dev/null || setup_fail "org add"

declare -A TOK
new_token() { # KEY USER ROLE [LABEL]
	TOK[$1]=$(hv token create --user "$2" --role "$3" --name "${4:-$1}" 2>/dev/null)
	printf '%s' "${TOK[$1]}" | grep -Eqx 'hf_[A-Za-z0-9]{34}' ||
		setup_fail "token create for $2 printed '${TOK[$1]}'"
}
new_token alice alice write
new_token reader carol write
new_token writer bob write
new_token rtoken bob read
new_token other dave write
new_token eve eve read
new_token revoked alice admin
revoked_id=$(hv token list --user alice --json | "$PYTHON" -c '
import json, sys
print([t["id"] for t in json.load(sys.stdin) if t["name"] == "revoked"][0])')
hv token revoke "${revoked_id:0:8}" >/dev/null || setup_fail "token revoke"

CALLERS="anon reader writer rtoken other revoked"

# weights.bin is an LFS file, so every repo holds an LFS object to ask for.
SRC=$tmp/src
mkdir -p "$SRC"
printf '{"model_type": "haven-test"}\n' >"$SRC/config.json"
printf 'weights\n' >"$SRC/weights.bin"
printf '*.bin filter=lfs diff=lfs merge=lfs -text\n' >"$SRC/.gitattributes"
WEIGHTS_OID=$(sha256_of "$SRC/weights.bin")
WEIGHTS_SIZE=$(size_of "$SRC/weights.bin")
for r in public private gated auto flip; do
	hv import "$SRC" --repo "acme/$r" -m "Add files" >/dev/null 2>&1 ||
		setup_fail "import acme/$r"
done
# A branch and a tag per caller for the deletion rows to aim at.
for r in public private gated; do
	for c in $CALLERS; do
		hv repo branch "acme/$r" "del-$c" --from main >/dev/null 2>&1 &&
			hv repo tag "acme/$r" "del-$c" --from main >/dev/null 2>&1 ||
			setup_fail "branch and tag del-$c in acme/$r"
	done
done

start_server

# auth_for CALLER: sets AUTH to the curl arguments of that caller.
auth_for() {
	AUTH=()
	[ "$1" = anon ] || AUTH=(-H "Authorization: Bearer ${TOK[$1]}")
}

# settings REPO JSON [CALLER]: PUT the settings (alice by default).
settings() {
	auth_for "${3:-alice}"
	fetch set "${AUTH[@]}" -X PUT -H 'Content-Type: application/json' \
		--data-binary "$2" "$base/api/models/acme/$1/settings"
}

expect_success 'settings: alice makes acme/private private and gates acme/gated' '
	settings private "{\"private\": true}" && expect_status set 200 &&
	settings gated "{\"gated\": \"manual\"}" && expect_status set 200 &&
	settings auto "{\"gated\": \"auto\"}" && expect_status set 200 &&
	fetch i -H "Authorization: Bearer ${TOK[alice]}" "$base/api/models/acme/private" &&
	json_check "$(body i)" "d[\"private\"] is True and d[\"gated\"] is False" &&
	fetch i "$base/api/models/acme/gated" &&
	json_check "$(body i)" "d[\"private\"] is False and d[\"gated\"] == \"manual\"" &&
	fetch i "$base/api/models/acme/auto" &&
	json_check "$(body i)" "d[\"gated\"] == \"auto\""
'

# --- the matrix ------------------------------------------------------------------

req_info() { fetch "$1" "${AUTH[@]}" "$base/api/models/acme/$2"; }
req_list() { fetch "$1" "${AUTH[@]}" "$base/api/models?author=acme&limit=1000"; }
req_tree() { fetch "$1" "${AUTH[@]}" "$base/api/models/acme/$2/tree/main"; }
req_paths_info() {
	fetch "$1" "${AUTH[@]}" -X POST --data-urlencode paths=config.json \
		"$base/api/models/acme/$2/paths-info/main"
}
req_refs() { fetch "$1" "${AUTH[@]}" "$base/api/models/acme/$2/refs"; }
req_commits() { fetch "$1" "${AUTH[@]}" "$base/api/models/acme/$2/commits/main"; }
req_resolve() { fetch "$1" "${AUTH[@]}" "$base/acme/$2/resolve/main/config.json"; }
req_raw() { fetch "$1" "${AUTH[@]}" "$base/acme/$2/raw/main/config.json"; }
req_create() {
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"name\": \"made-by-$3-$RANDOM\", \"organization\": \"acme\"}" \
		"$base/api/repos/create"
}
# Sends the value the repository has already, so the matrix changes nothing.
req_settings() {
	local v='{"private": false}'
	case $2 in
	private) v='{"private": true}' ;;
	gated) v='{"gated": "manual"}' ;;
	esac
	fetch "$1" "${AUTH[@]}" -X PUT -H 'Content-Type: application/json' \
		--data-binary "$v" "$base/api/models/acme/$2/settings"
}

# Writes. Each cell names its own branch, tag or file after the caller, so
# a write that succeeds changes nothing another cell looks at, and the
# checks after the table can tell which writes went through.
API=$base/api/models/acme
req_preupload() {
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary '{"files": [{"path": "notes.txt", "size": 6, "sample": "aGVsbG8K"}]}' \
		"$API/$2/preupload/main"
}
req_commit() {
	printf '%s\n%s\n' '{"key": "header", "value": {"summary": "Matrix cell"}}' \
		"{\"key\": \"file\", \"value\": {\"path\": \"matrix/$3.txt\", \"content\": \"aGVsbG8K\", \"encoding\": \"base64\"}}" \
		>"$tmp/cell.ndjson"
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/x-ndjson' \
		--data-binary @"$tmp/cell.ndjson" "$API/$2/commit/main"
}
req_branch_create() {
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary '{"startingPoint": "main"}' "$API/$2/branch/new-$3"
}
req_branch_delete() { fetch "$1" "${AUTH[@]}" -X DELETE "$API/$2/branch/del-$3"; }
req_tag_create() {
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"tag\": \"new-$3\"}" "$API/$2/tag/main"
}
req_tag_delete() { fetch "$1" "${AUTH[@]}" -X DELETE "$API/$2/tag/del-$3"; }
req_pr_create() {
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"title\": \"Matrix $3\", \"pullRequest\": true}" \
		"$API/$2/discussions"
}
req_discussions() { fetch "$1" "${AUTH[@]}" "$API/$2/discussions"; }
# The pull request the writer's pr-create cell opened.
req_discussion() { fetch "$1" "${AUTH[@]}" "$API/$2/discussions/1"; }
req_access_list() { fetch "$1" "${AUTH[@]}" "$API/$2/user-access-request/pending"; }
# A decision about a user who does not exist: it gets as far as the
# lookup (404) only for those who may decide, and changes nothing.
req_access_handle() {
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary '{"user": "nobody-such", "status": "accepted"}' \
		"$API/$2/user-access-request/handle"
}
req_ask_access() { fetch "$1" "${AUTH[@]}" -X POST -d "reason=matrix" "$API/$2/ask-access"; }

# LFS and git, the way their clients call them: the batch upload with a
# Bearer token as huggingface_hub does, the download and git itself with
# the token as the Basic password as git and git-lfs do.
basic_for() {
	BASIC=()
	[ "$1" = anon ] || BASIC=(-u "hf_user:${TOK[$1]}")
}
lfs_batch() { # NAME REPO CURL-ARGS...: POSTs $tmp/cell.json
	local name=$1 repo=$2
	shift 2
	fetch "$name" "$@" -X POST -H 'Accept: application/vnd.git-lfs+json' \
		-H 'Content-Type: application/vnd.git-lfs+json; charset=utf-8' \
		--data-binary @"$tmp/cell.json" "$base/acme/$repo.git/info/lfs/objects/batch"
}
req_lfs_upload() {
	# A fresh object: only the batch answer is asked for, nothing is sent.
	printf '{"operation": "upload", "transfers": ["basic", "multipart"], "objects": [{"oid": "%s", "size": 6}], "hash_algo": "sha256", "ref": {"name": "main"}}' \
		"$(printf '%s' "$2-$3" | sha256sum | cut -d' ' -f1)" >"$tmp/cell.json"
	lfs_batch "$1" "$2" "${AUTH[@]}"
}
req_lfs_download() {
	printf '{"operation": "download", "transfers": ["basic"], "objects": [{"oid": "%s", "size": %s}]}' \
		"$WEIGHTS_OID" "$WEIGHTS_SIZE" >"$tmp/cell.json"
	basic_for "$3"
	lfs_batch "$1" "$2" "${BASIC[@]}"
}
req_git_upload() {
	basic_for "$3"
	fetch "$1" "${BASIC[@]}" "$base/acme/$2.git/info/refs?service=git-upload-pack"
}
req_git_receive() {
	basic_for "$3"
	fetch "$1" "${BASIC[@]}" "$base/acme/$2/info/refs?service=git-receive-pack"
}
# The POSTs that follow the advertisement are checked on their own: an
# empty request (a flush packet) is a no-op for git, so a writer's cell
# is a plain 200 and changes nothing.
git_post() { # NAME REPO CALLER SERVICE
	basic_for "$3"
	printf '0000' >"$tmp/cell.pkt"
	fetch "$1" "${BASIC[@]}" -X POST \
		-H "Content-Type: application/x-$4-request" --data-binary @"$tmp/cell.pkt" \
		"$base/acme/$2.git/$4"
}
req_git_upload_post() { git_post "$1" "$2" "$3" git-upload-pack; }
req_git_receive_post() { git_post "$1" "$2" "$3" git-receive-pack; }

# Deletion and renaming, each cell on a repository of its own that alice
# makes first (made as REPO-CALLER, with REPO's visibility and gating).
throwaway() { # NAME KIND REPO CALLER: sets THROWAWAY
	local priv=false
	THROWAWAY=$3
	[ "$3" = nothing-here ] && return 0
	THROWAWAY=$2-$3-$4
	[ "$3" = private ] && priv=true
	fetch "$1" -H "Authorization: Bearer ${TOK[alice]}" -X POST \
		-H 'Content-Type: application/json' \
		--data-binary "{\"name\": \"$THROWAWAY\", \"organization\": \"acme\", \"private\": $priv}" \
		"$base/api/repos/create" && [ "$(status "$1")" = 200 ] || return 1
	[ "$3" = gated ] || return 0
	fetch "$1" -H "Authorization: Bearer ${TOK[alice]}" -X PUT \
		-H 'Content-Type: application/json' --data-binary '{"gated": "manual"}' \
		"$API/$THROWAWAY/settings" && [ "$(status "$1")" = 200 ]
}
req_delete() {
	throwaway "$1" del "$2" "$3" || return 1
	fetch "$1" "${AUTH[@]}" -X DELETE -H 'Content-Type: application/json' \
		--data-binary "{\"name\": \"$THROWAWAY\", \"organization\": \"acme\", \"type\": \"model\"}" \
		"$base/api/repos/delete"
}
req_move() {
	throwaway "$1" mv "$2" "$3" || return 1
	fetch "$1" "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"fromRepo\": \"acme/$THROWAWAY\", \"toRepo\": \"acme/$THROWAWAY-moved\", \"type\": \"model\"}" \
		"$base/api/repos/move"
}

# check_cell NAME REPO EXPECTED
check_cell() {
	local name=$1 repo=$2 want=$3
	case $want in
	L | H)
		expect_status "$name" 200 || return 1
		local present=False
		[ "$want" = L ] && present=True
		json_check "$(body "$name")" "(\"acme/$repo\" in [m[\"id\"] for m in d]) is $present"
		;;
	bad)
		expect_error "$name" 401 - && expect_hdr "$name" X-Error-Message "$BAD_CREDS"
		;;
	*:*)
		expect_error "$name" "${want%%:*}" "${want#*:}"
		;;
	[45]??)
		expect_error "$name" "$want" - || return 1
		if has_hdr "$name" X-Error-Code; then
			echo "unexpected X-Error-Code $(hdr "$name" X-Error-Code)"
			show "$name"
			return 1
		fi
		;;
	*)
		expect_status "$name" "$want"
		;;
	esac
}

# matrix_row FAMILY REPO CELL...: one TAP line for the row; every caller's
# cell is checked and each mismatch is named.
matrix_row() {
	local family=$1 repo=$2 i=0 caller want fails='' skipped=''
	shift 2
	for caller in $CALLERS; do
		i=$((i + 1))
		want=${!i}
		auth_for "$caller"
		"req_${family//-/_}" "m" "$repo" "$caller" >/dev/null 2>&1
		if [ "$(status m)" = 404 ] &&
			[ "$(hdr m X-Error-Message)" = "not implemented" ]; then
			skipped=1
			break
		fi
		if ! check_cell m "$repo" "$want" >"$tmp/cell.out" 2>&1; then
			fails="$fails$caller: expected $want, got $(status m)"$'\n'
			sed -e 's/^/    /' "$tmp/cell.out" | head -n 12 >>"$tmp/cell.all"
		fi
	done
	n=$((n + 1))
	if [ -n "$skipped" ]; then
		echo "ok $n - $family on acme/$repo # SKIP endpoint not implemented yet"
	elif [ -z "$fails" ]; then
		echo "ok $n - $family on acme/$repo: $CALLERS"
	else
		echo "not ok $n - $family on acme/$repo"
		printf '%s' "$fails" | sed -e 's/^/#   /'
		sed -e 's/^/#   /' "$tmp/cell.all" 2>/dev/null | head -n 40
		failed=$((failed + 1))
	fi
	rm -f "$tmp/cell.all"
}

# run_table: the rows on stdin, one TAP line each.
run_table() {
	local family repo c1 c2 c3 c4 c5 c6
	while read -r family repo c1 c2 c3 c4 c5 c6; do
		case $family in '' | '#'*) continue ;; esac
		matrix_row "$family" "$repo" "$c1" "$c2" "$c3" "$c4" "$c5" "$c6"
	done
}

# Rows on acme/nothing-here show that a missing repository answers as a
# private one does, so that existence is never revealed.
NR=404:RepoNotFound
AR=401:RepoNotFound
GA=401:GatedRepo
GF=403:GatedRepo
run_table <<EOF
# family    repo     anon  reader writer rtoken other revoked
info        public   200   200    200    200    200   bad
info        private  $AR   200    200    200    $NR   bad
info        gated    200   200    200    200    200   bad
list        public   L     L      L      L      L     bad
list        private  H     L      L      L      H     bad
list        gated    L     L      L      L      L     bad
tree        public   200   200    200    200    200   bad
tree        private  $AR   200    200    200    $NR   bad
tree        gated    200   200    200    200    200   bad
paths-info  public   200   200    200    200    200   bad
paths-info  private  $AR   200    200    200    $NR   bad
paths-info  gated    200   200    200    200    200   bad
refs        public   200   200    200    200    200   bad
refs        private  $AR   200    200    200    $NR   bad
refs        gated    200   200    200    200    200   bad
commits     public   200   200    200    200    200   bad
commits     private  $AR   200    200    200    $NR   bad
commits     gated    200   200    200    200    200   bad
resolve     public   200   200    200    200    200   bad
resolve     private  $AR   200    200    200    $NR   bad
resolve     gated    $GA   200    200    200    $GF   bad
raw         public   200   200    200    200    200   bad
raw         private  $AR   200    200    200    $NR   bad
raw         gated    $GA   200    200    200    $GF   bad
settings    public   401   403    200    403    403   bad
settings    private  $AR   403    200    403    $NR   bad
settings    gated    401   403    200    403    403   bad
create      -        401   403    200    403    403   bad
info        nothing-here $AR $NR  $NR    $NR    $NR   bad
resolve     nothing-here $AR $NR  $NR    $NR    $NR   bad
# family          repo     anon  reader writer rtoken other revoked
preupload         public   401   403    200    403    403   bad
preupload         private  $AR   403    200    403    $NR   bad
preupload         gated    401   403    200    403    403   bad
preupload         nothing-here $AR $NR  $NR    $NR    $NR   bad
commit            public   401   403    200    403    403   bad
commit            private  $AR   403    200    403    $NR   bad
commit            gated    401   403    200    403    403   bad
commit            nothing-here $AR $NR  $NR    $NR    $NR   bad
branch-create     public   401   403    200    403    403   bad
branch-create     private  $AR   403    200    403    $NR   bad
branch-create     gated    401   403    200    403    403   bad
branch-create     nothing-here $AR $NR  $NR    $NR    $NR   bad
branch-delete     public   401   403    200    403    403   bad
branch-delete     private  $AR   403    200    403    $NR   bad
branch-delete     gated    401   403    200    403    403   bad
tag-create        public   401   403    200    403    403   bad
tag-create        private  $AR   403    200    403    $NR   bad
tag-create        gated    401   403    200    403    403   bad
tag-delete        public   401   403    200    403    403   bad
tag-delete        private  $AR   403    200    403    $NR   bad
tag-delete        gated    401   403    200    403    403   bad
discussions       public   200   200    200    200    200   bad
discussions       private  $AR   200    200    200    $NR   bad
discussions       gated    200   200    200    200    200   bad
pr-create         public   401   403    200    403    403   bad
pr-create         private  $AR   403    200    403    $NR   bad
pr-create         gated    401   403    200    403    403   bad
discussion        public   200   200    200    200    200   bad
discussion        private  $AR   200    200    200    $NR   bad
discussion        gated    200   200    200    200    200   bad
access-list       public   401   403    400    403    403   bad
access-list       private  $AR   403    400    403    $NR   bad
access-list       gated    401   403    200    403    403   bad
access-list       nothing-here $AR $NR  $NR    $NR    $NR   bad
access-handle     public   401   403    400    403    403   bad
access-handle     private  $AR   403    400    403    $NR   bad
access-handle     gated    401   403    404    403    403   bad
lfs-upload        public   401   403    200    403    403   bad
lfs-upload        private  $AR   403    200    403    $NR   bad
lfs-upload        gated    401   403    200    403    403   bad
lfs-upload        nothing-here $AR $NR  $NR    $NR    $NR   bad
lfs-download      public   200   200    200    200    200   bad
lfs-download      private  $AR   200    200    200    $NR   bad
lfs-download      gated    $GA   200    200    200    $GF   bad
lfs-download      nothing-here $AR $NR  $NR    $NR    $NR   bad
git-upload        public   200   200    200    200    200   bad
git-upload        private  $AR   200    200    200    $NR   bad
git-upload        gated    $GA   200    200    200    $GF   bad
git-upload        nothing-here $AR $NR  $NR    $NR    $NR   bad
git-upload-post   public   200   200    200    200    200   bad
git-upload-post   private  $AR   200    200    200    $NR   bad
git-upload-post   gated    $GA   200    200    200    $GF   bad
git-receive       public   401   403    200    403    403   bad
git-receive       private  $AR   403    200    403    $NR   bad
git-receive       gated    401   403    200    403    403   bad
git-receive       nothing-here $AR $NR  $NR    $NR    $NR   bad
git-receive-post  public   401   403    200    403    403   bad
git-receive-post  private  $AR   403    200    403    $NR   bad
git-receive-post  gated    401   403    200    403    403   bad
EOF

# --- what the write rows left behind ------------------------------------------------

# Only bob's write token may have changed anything: his branch, tag, file
# and pull request are there, every other caller's are not, and the
# branches and tags the others tried to delete are still there.
expect_success 'refused writes changed nothing, the writer'"'"'s went through' '
	for r in public private gated; do
		fetch rf -H "Authorization: Bearer ${TOK[alice]}" "$API/$r/refs" &&
		expect_status rf 200 &&
		json_check "$(body rf)" "
(lambda want: sorted(b[\"name\"] for b in d[\"branches\"] if b[\"name\"][:4] in (\"new-\", \"del-\")) == want and
 sorted(t[\"name\"] for t in d[\"tags\"] if t[\"name\"][:4] in (\"new-\", \"del-\")) == want)(
 sorted([\"new-writer\"] + [\"del-\" + c for c in \"$CALLERS\".split() if c != \"writer\"]))" &&
		fetch tr -H "Authorization: Bearer ${TOK[alice]}" "$API/$r/tree/main/matrix" &&
		expect_status tr 200 &&
		json_check "$(body tr)" "[e[\"path\"] for e in d] == [\"matrix/writer.txt\"]" &&
		fetch ds -H "Authorization: Bearer ${TOK[alice]}" "$API/$r/discussions" &&
		json_check "$(body ds)" "d[\"count\"] == 1 and d[\"discussions\"][0][\"author\"][\"name\"] == \"bob\"" ||
		{ echo "in acme/$r"; exit 1; }
	done
'
expect_success 'git and LFS refusals of anonymous callers ask for credentials' '
	fetch g "$base/acme/private.git/info/refs?service=git-upload-pack" &&
	expect_status g 401 && has_hdr g WWW-Authenticate &&
	fetch g "$base/acme/public.git/info/refs?service=git-receive-pack" &&
	expect_status g 401 && has_hdr g WWW-Authenticate &&
	fetch g "$base/acme/gated.git/info/refs?service=git-upload-pack" &&
	expect_status g 401 && has_hdr g WWW-Authenticate &&
	req_lfs_upload g public anon && expect_status g 401 && has_hdr g LFS-Authenticate
'

# git itself, with the token as the password in the URL. git sends those
# only when the server asks (401), so a revoked token is shown to a public
# repo through http.extraHeader.
git_url() { # CALLER REPO
	echo "$scheme://hf_user:${TOK[$1]}@127.0.0.1:$port/acme/$2"
}
# git_fails GIT-ARGS...: true when git fails; its output is in $tmp/git.out.
git_fails() {
	if git "$@" >"$tmp/git.out" 2>&1; then
		echo "git $* succeeded"
		return 1
	fi
}
# git_said TEXT: the failing git's output has TEXT.
git_said() {
	grep -q "$1" "$tmp/git.out" || { echo "git did not say '$1':"; cat "$tmp/git.out"; return 1; }
}
expect_success 'git: members clone a private repo; outsiders, anonymous and revoked callers cannot' '
	git clone -q "$(git_url reader private)" c-private && test -s c-private/config.json &&
	git ls-remote "$(git_url rtoken private)" refs/heads/main >lr && grep -q refs/heads/main lr &&
	git_fails ls-remote "$(git_url other private)" &&
	git_said "not found" &&
	git_fails ls-remote "$base/acme/private" &&
	git_fails ls-remote "$(git_url revoked private)" &&
	git_fails -c http.extraHeader="Authorization: Bearer ${TOK[revoked]}" \
		ls-remote "$base/acme/public" &&
	git_fails ls-remote "$(git_url other gated)" &&
	git_said 403 &&
	git_fails ls-remote "$base/acme/gated" &&
	git ls-remote "$(git_url reader gated)" refs/heads/main >lr && grep -q refs/heads/main lr &&
	git ls-remote "$base/acme/public" refs/heads/main >lr && grep -q refs/heads/main lr
'
expect_success 'git: only a write token pushes' '
	cd c-private && printf "pushed\n" >pushed.txt && git add pushed.txt &&
	git -c user.name=Carol -c user.email=carol@example.com commit -q -m "Push attempt" &&
	before=$(git ls-remote "$(git_url writer private)" refs/heads/main) &&
	git_fails push "$(git_url reader private)" HEAD:refs/heads/pushed &&
	git_said 403 &&
	git_fails push "$(git_url rtoken private)" HEAD:refs/heads/pushed &&
	git_fails push "$(git_url other private)" HEAD:refs/heads/pushed &&
	git_fails push "$base/acme/public" HEAD:refs/heads/pushed &&
	git_fails push "$(git_url revoked private)" HEAD:refs/heads/pushed &&
	test "$(git ls-remote "$(git_url writer private)" refs/heads/main)" = "$before" &&
	test -z "$(git ls-remote "$(git_url writer private)" refs/heads/pushed)" &&
	git push -q "$(git_url writer private)" HEAD:refs/heads/pushed &&
	test -n "$(git ls-remote "$(git_url writer private)" refs/heads/pushed)"
'

expect_success 'HEAD resolve follows the same rules as GET' '
	auth_for other && fetch_head h "${AUTH[@]}" "$base/acme/private/resolve/main/config.json" &&
	expect_status h 404 && expect_hdr h X-Error-Code RepoNotFound &&
	fetch_head h "$base/acme/gated/resolve/main/config.json" &&
	expect_status h 401 && expect_hdr h X-Error-Code GatedRepo &&
	auth_for reader && fetch_head h "${AUTH[@]}" "$base/acme/private/resolve/main/config.json" &&
	expect_status h 200
'
expect_success 'a private repo is absent from search for outsiders, present for members' '
	fetch s "$base/api/models?search=private" && expect_status s 200 &&
	json_check "$(body s)" "\"acme/private\" not in [m[\"id\"] for m in d]" &&
	auth_for other && fetch s "${AUTH[@]}" "$base/api/models?search=private" &&
	json_check "$(body s)" "\"acme/private\" not in [m[\"id\"] for m in d]" &&
	auth_for reader && fetch s "${AUTH[@]}" "$base/api/models?search=private" &&
	json_check "$(body s)" "\"acme/private\" in [m[\"id\"] for m in d]"
'
expect_success 'a gated answer names the repo and where to ask for access' '
	auth_for other && fetch g "${AUTH[@]}" "$base/acme/gated/resolve/main/config.json" &&
	expect_hdr g X-Error-Message "Access to model acme/gated is restricted and you are not in the authorized list. Visit $base/acme/gated to ask for access."
'

# --- whoami ------------------------------------------------------------------------

# whoami_is CALLER NAME ROLE ORGS: ORGS is a Python dict literal name->role.
whoami_is() {
	auth_for "$1" && fetch w "${AUTH[@]}" "$base/api/whoami-v2" && expect_status w 200 &&
		json_check "$(body w)" "
d[\"type\"] == \"user\" and d[\"name\"] == \"$2\" and isinstance(d[\"id\"], str) and d[\"id\"] and
isinstance(d[\"fullname\"], str) and \"email\" in d and isinstance(d[\"emailVerified\"], bool) and
isinstance(d[\"avatarUrl\"], str) and d[\"isPro\"] is False and d[\"canPay\"] is False and
isinstance(d[\"orgs\"], list) and all(o[\"type\"] == \"org\" and isinstance(o[\"fullname\"], str) for o in d[\"orgs\"]) and
{o[\"name\"]: o[\"roleInOrg\"] for o in d[\"orgs\"]} == $4 and
d[\"auth\"][\"type\"] == \"access_token\" and d[\"auth\"][\"accessToken\"][\"displayName\"] == \"$1\" and
d[\"auth\"][\"accessToken\"][\"role\"] == \"$3\" and
re.match(r\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$\", d[\"auth\"][\"accessToken\"][\"createdAt\"])"
}
expect_success 'whoami-v2: alice, admin of acme' 'whoami_is alice alice write "{\"acme\": \"admin\"}"'
expect_success 'whoami-v2: carol, reader in acme' 'whoami_is reader carol write "{\"acme\": \"read\"}"'
expect_success 'whoami-v2: bob with a write token and with a read token' '
	whoami_is writer bob write "{\"acme\": \"write\"}" &&
	whoami_is rtoken bob read "{\"acme\": \"write\"}"
'
expect_success 'whoami-v2: dave, in another organisation; eve, in none' '
	whoami_is other dave write "{\"other\": \"write\"}" &&
	whoami_is eve eve read "{}"
'
expect_success 'whoami-v2: anonymous and revoked get 401' '
	fetch w "$base/api/whoami-v2" && expect_error w 401 - &&
	auth_for revoked && fetch w "${AUTH[@]}" "$base/api/whoami-v2" && check_cell w - bad
'

# --- credentials in their several forms ---------------------------------------------

expect_success 'Basic credentials: the password is the token, the username anything' '
	fetch w -u "hf_user:${TOK[writer]}" "$base/api/whoami-v2" && expect_status w 200 &&
	json_check "$(body w)" "d[\"name\"] == \"bob\"" &&
	fetch w -u "${TOK[reader]}:" "$base/api/whoami-v2" && expect_status w 200 &&
	json_check "$(body w)" "d[\"name\"] == \"carol\"" &&
	fetch p -u "git:${TOK[reader]}" "$base/api/models/acme/private" && expect_status p 200
'
expect_success 'malformed or unknown credentials: 401 Invalid credentials' '
	for h in "Bearer hf_notatokenatall000000000000000000" "Bearer" "Bearer " \
		"Basic !!!notbase64" "Basic $(printf "x:hf_nope" | base64)" \
		"Token ${TOK[alice]}" "${TOK[alice]}"; do
		fetch b -H "Authorization: $h" "$base/api/models/acme/public" &&
		check_cell b - bad || { echo "header: $h"; exit 1; }
	done
'
expect_success 'a bad token is refused even where anonymous callers are welcome' '
	fetch b -H "Authorization: Bearer hf_x" "$base/acme/public/resolve/main/config.json" &&
	check_cell b - bad
'

# --- settings ----------------------------------------------------------------------

expect_success 'settings: malformed bodies and values are 400, nothing changes' '
	settings public "not json" && expect_error set 400 - &&
	settings public "[1]" && expect_error set 400 - &&
	settings public "{\"gated\": \"yes\"}" && expect_error set 400 - &&
	settings public "{\"gated\": true}" && expect_error set 400 - &&
	settings public "{\"private\": \"yes\"}" && expect_error set 400 - &&
	settings public "{\"visibility\": \"protected\"}" && expect_error set 400 - &&
	fetch i "$base/api/models/acme/public" &&
	json_check "$(body i)" "d[\"private\"] is False and d[\"gated\"] is False"
'
expect_success 'settings: visibility private/public flips who can see the repo' '
	settings flip "{\"visibility\": \"private\"}" && expect_status set 200 &&
	fetch f "$base/api/models/acme/flip" && expect_error f 401 RepoNotFound &&
	settings flip "{\"visibility\": \"public\"}" && expect_status set 200 &&
	fetch f "$base/api/models/acme/flip" && expect_status f 200 &&
	settings flip "{\"gated\": \"manual\"}" && expect_status set 200 &&
	settings flip "{\"gated\": false, \"private\": false}" && expect_status set 200 &&
	fetch f "$base/acme/flip/resolve/main/config.json" && expect_status f 200
'
expect_success 'settings of a missing repo: 404 RepoNotFound' '
	settings nothing-here "{\"private\": true}" && expect_error set 404 RepoNotFound
'

# --- gated access requests -------------------------------------------------------------

A=$base/api/models/acme/gated
# access_list CALLER STATUS: GET the list into response "al".
access_list() {
	auth_for "$1" && fetch al "${AUTH[@]}" "$A/user-access-request/$2"
}
# handle CALLER JSON [grant]
handle() {
	auth_for "$1" && fetch hd "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
		--data-binary "$2" "$A/user-access-request/${3:-handle}"
}
other_resolve() {
	auth_for other && fetch o "${AUTH[@]}" "$base/acme/gated/resolve/main/config.json"
}

expect_success 'ask-access: dave files a request, it is pending, files stay closed' '
	auth_for other && fetch ask "${AUTH[@]}" -X POST -d "reason=research" "$A/ask-access" &&
	expect_status ask 200 &&
	other_resolve && expect_error o 403 GatedRepo &&
	access_list alice pending && expect_status al 200 &&
	json_check "$(body al)" "
len(d) == 1 and d[0][\"user\"][\"user\"] == \"dave\" and isinstance(d[0][\"user\"][\"fullname\"], str) and
d[0][\"status\"] == \"pending\" and re.match(r\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$\", d[0][\"timestamp\"])" &&
	access_list alice accepted && json_check "$(body al)" "d == []"
'
expect_success 'ask-access: anonymous is 401, a repo that is not gated is 400' '
	fetch ask -X POST "$A/ask-access" && expect_status ask 401 &&
	auth_for other && fetch ask "${AUTH[@]}" -X POST "$base/api/models/acme/public/ask-access" &&
	expect_error ask 400 - &&
	fetch ask "${AUTH[@]}" -X POST "$base/api/models/acme/private/ask-access" &&
	expect_error ask 404 RepoNotFound
'
expect_success 'access lists: readers and outsiders may not see them' '
	access_list reader pending && expect_error al 403 - &&
	access_list rtoken pending && expect_error al 403 - &&
	access_list other pending && expect_error al 403 - &&
	access_list anon pending && expect_status al 401 &&
	access_list writer pending && expect_status al 200 &&
	access_list alice bogus && expect_status al 404
'
expect_success 'handle accepted opens the files to dave; rejected closes them' '
	handle alice "{\"user\": \"dave\", \"status\": \"accepted\"}" && expect_status hd 200 &&
	other_resolve && expect_status o 200 &&
	access_list alice accepted && json_check "$(body al)" "[r[\"user\"][\"user\"] for r in d] == [\"dave\"]" &&
	handle writer "{\"user\": \"dave\", \"status\": \"rejected\", \"rejectionReason\": \"no\"}" &&
	expect_status hd 200 &&
	other_resolve && expect_error o 403 GatedRepo &&
	access_list alice rejected && json_check "$(body al)" "[r[\"status\"] for r in d] == [\"rejected\"]"
'
expect_success 'handle: bad bodies, unknown users and missing requests' '
	handle alice "{\"user\": \"dave\", \"status\": \"maybe\"}" && expect_error hd 400 - &&
	handle alice "nonsense" && expect_error hd 400 - &&
	handle alice "{\"user\": \"nobody\", \"status\": \"accepted\"}" && expect_error hd 404 - &&
	handle alice "{\"user\": \"eve\", \"status\": \"accepted\"}" && expect_error hd 404 - &&
	handle reader "{\"user\": \"dave\", \"status\": \"accepted\"}" && expect_error hd 403 - &&
	other_resolve && expect_error o 403 GatedRepo
'
expect_success 'grant gives eve access without a request; granting twice is 400' '
	auth_for eve && fetch e "${AUTH[@]}" "$base/acme/gated/resolve/main/config.json" &&
	expect_error e 403 GatedRepo &&
	handle alice "{\"user\": \"eve\"}" grant && expect_status hd 200 &&
	json_check "$(body hd)" "isinstance(d, dict)" &&
	fetch e "${AUTH[@]}" "$base/acme/gated/raw/main/config.json" && expect_status e 200 &&
	handle alice "{\"user\": \"eve\"}" grant && expect_error hd 400 -
'
expect_success 'auto gating accepts a request at once' '
	auth_for other && fetch o "${AUTH[@]}" "$base/acme/auto/resolve/main/config.json" &&
	expect_error o 403 GatedRepo &&
	fetch ask "${AUTH[@]}" -X POST -H "Content-Type: application/json" -d "{}" \
		"$base/api/models/acme/auto/ask-access" && expect_status ask 200 &&
	fetch o "${AUTH[@]}" "$base/acme/auto/resolve/main/config.json" && expect_status o 200
'
# --- the second table: families that change shared state -------------------------------

# Asking for access files a request for any caller who can see a gated
# repo (a decision already made stands: dave's rejection above); delete
# and move work on repositories of their own (see throwaway).
run_table <<EOF
# family    repo     anon  reader writer rtoken other revoked
ask-access  public   401   400    400    400    400   bad
ask-access  private  $AR   400    400    400    $NR   bad
ask-access  gated    401   200    200    200    200   bad
ask-access  nothing-here $AR $NR  $NR    $NR    $NR   bad
delete      public   401   403    200    403    403   bad
delete      private  $AR   403    200    403    $NR   bad
delete      gated    401   403    200    403    403   bad
delete      nothing-here $AR $NR  $NR    $NR    $NR   bad
move        public   401   403    200    403    403   bad
move        private  $AR   403    200    403    $NR   bad
move        gated    401   403    200    403    403   bad
move        nothing-here $AR $NR  $NR    $NR    $NR   bad
EOF

expect_success 'ask-access by dave after his rejection leaves it rejected' '
	access_list alice rejected && json_check "$(body al)" "[r[\"user\"][\"user\"] for r in d] == [\"dave\"]" &&
	other_resolve && expect_error o 403 GatedRepo
'
expect_success 'refused deletes and moves left the repositories where they were' '
	auth_for alice &&
	for r in public private gated; do
		for who in $CALLERS; do
			if [ "$who" = writer ]; then
				fetch x "${AUTH[@]}" "$API/del-$r-$who" && expect_error x 404 RepoNotFound &&
				fetch x "${AUTH[@]}" "$API/mv-$r-$who-moved" && expect_status x 200 &&
				fetch x "${AUTH[@]}" "$API/mv-$r-$who" && expect_status x 307
			else
				fetch x "${AUTH[@]}" "$API/del-$r-$who" && expect_status x 200 &&
				fetch x "${AUTH[@]}" "$API/mv-$r-$who" && expect_status x 200 &&
				fetch x "${AUTH[@]}" "$API/mv-$r-$who-moved" && expect_error x 404 RepoNotFound
			fi || { echo "acme/*-$r-$who"; exit 1; }
		done
	done
'
expect_success 'the old name of a moved private repo redirects members only' '
	fetch x "$API/mv-private-writer" && expect_error x 401 RepoNotFound &&
	! has_hdr x Location &&
	auth_for other && fetch x "${AUTH[@]}" "$API/mv-private-writer" &&
	expect_error x 404 RepoNotFound && ! has_hdr x Location &&
	auth_for reader && fetch x "${AUTH[@]}" "$API/mv-private-writer" &&
	expect_status x 307 && expect_hdr x Location /api/models/acme/mv-private-writer-moved
'
expect_success 'tokens never reach the server log' '
	for t in "${TOK[@]}"; do
		if grep -F "$t" "$tmp/server.log"; then echo "token in log"; exit 1; fi
	done
'

# --- a deployment that requires a token --------------------------------------------------

stop_server
start_server --require-auth

expect_success '--require-auth: anonymous callers get 401 everywhere but /api/health' '
	for u in /api/models /api/models/acme/public /api/models/acme/public/tree/main \
		/api/models/acme/public/refs /api/models/acme/public/commits/main \
		/acme/public/resolve/main/config.json /acme/public/raw/main/config.json \
		/api/whoami-v2 /acme/public.git/info/refs?service=git-upload-pack; do
		fetch r "$base$u" && expect_status r 401 || { echo "url: $u"; exit 1; }
	done &&
	fetch r -X POST --data-urlencode paths=config.json "$base/api/models/acme/public/paths-info/main" &&
	expect_status r 401 &&
	fetch r "$base/api/health" && expect_status r 200
'
expect_success '--require-auth: any valid token reads public repos, revoked ones do not' '
	auth_for eve && fetch r "${AUTH[@]}" "$base/acme/public/resolve/main/config.json" &&
	expect_status r 200 &&
	auth_for revoked && fetch r "${AUTH[@]}" "$base/api/models/acme/public" && check_cell r - bad
'

done_testing
