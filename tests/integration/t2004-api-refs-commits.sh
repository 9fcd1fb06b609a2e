#!/bin/bash
# GET /api/models/NS/NAME/refs and /commits/REV: branches, tags, converts,
# the system's initial commit, newest-first order, X-Total-Count and Link
# pagination, all checked against git.
. "$(dirname "$0")/lib.sh"

setup_model_repo --small
gd=$(git_dir_for "$main_sha")
# Five more commits on branch long, for pagination.
cp -R "$MODEL" "$tmp/long"
for i in 1 2 3 4 5; do
	echo "step $i" >"$tmp/long/step.txt"
	hv import "$tmp/long" --repo "$REPO" --revision long -m "Step $i" >/dev/null 2>&1
done
long_sha=$(git --git-dir="$gd" rev-parse refs/heads/long 2>/dev/null)
start_server

A=$base/api/models/$REPO

expect_success 'refs: branches, tags and converts, as git has them' '
	fetch r "$A/refs" && expect_status r 200 &&
	json_check "$(body r)" "
isinstance(d[\"branches\"], list) and isinstance(d[\"tags\"], list) and isinstance(d[\"converts\"], list) and
{b[\"name\"]: (b[\"ref\"], b[\"targetCommit\"]) for b in d[\"branches\"]} == {
  \"main\": (\"refs/heads/main\", \"$main_sha\"), \"dev\": (\"refs/heads/dev\", \"$dev_sha\"),
  \"feature/x\": (\"refs/heads/feature/x\", \"$feature_sha\"), \"long\": (\"refs/heads/long\", \"$long_sha\")} and
{t[\"name\"]: (t[\"ref\"], t[\"targetCommit\"]) for t in d[\"tags\"]} == {\"v1.0\": (\"refs/tags/v1.0\", \"$main_sha\")}"
'
expect_success 'refs?include_prs=1 adds pullRequests' '
	fetch r "$A/refs?include_prs=1" && expect_status r 200 &&
	json_check "$(body r)" "isinstance(d[\"pullRequests\"], list)"
'
expect_success 'refs of a missing repo: 401 RepoNotFound' '
	fetch r "$base/api/models/haven-test/no-such/refs" && expect_error r 401 RepoNotFound
'

# commit_ids FILE: the ids of a commits answer, one a line.
commit_ids() {
	json "$1" "\"\\n\".join(c[\"id\"] for c in d)"
}
expect_success 'commits/main: newest first, as git log has them' '
	fetch c "$A/commits/main" && expect_status c 200 &&
	git --git-dir="$gd" rev-list "$main_sha" >want &&
	commit_ids "$(body c)" >got && diff want got &&
	expect_hdr c X-Total-Count "$(wc -l <want | tr -d " ")"
'
expect_success 'commits/main: the import commit and the initial system commit' '
	json_check "$(body c)" "
len(d) == 2 and d[0][\"title\"] == \"Add tiny model\" and
d[-1][\"title\"] == \"initial commit\" and d[-1][\"authors\"][0][\"user\"] == \"system\" and
all(isinstance(x[\"message\"], str) and re.match(r\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$\", x[\"date\"]) and
    isinstance(x[\"authors\"], list) and x[\"authors\"][0][\"user\"] for x in d)"
'
expect_success 'commits/dev, commits/v1.0, commits/<sha>, commits/feature%2Fx' '
	fetch c "$A/commits/dev" && git --git-dir="$gd" rev-list "$dev_sha" >want &&
	commit_ids "$(body c)" >got && diff want got &&
	fetch c "$A/commits/v1.0" && git --git-dir="$gd" rev-list "$main_sha" >want &&
	commit_ids "$(body c)" >got && diff want got &&
	fetch c "$A/commits/$dev_sha" && git --git-dir="$gd" rev-list "$dev_sha" >want &&
	commit_ids "$(body c)" >got && diff want got &&
	fetch c "$A/commits/feature%2Fx" && git --git-dir="$gd" rev-list "$main_sha" >want &&
	commit_ids "$(body c)" >got && diff want got
'
expect_success 'commits/long: seven commits, X-Total-Count 7' '
	is_sha "$long_sha" &&
	fetch c "$A/commits/long" && expect_status c 200 &&
	expect_hdr c X-Total-Count 7 &&
	json_check "$(body c)" "[x[\"title\"] for x in d][:5] == [\"Step 5\", \"Step 4\", \"Step 3\", \"Step 2\", \"Step 1\"]"
'
expect_success 'commits?limit=1 (JS countCommits): X-Total-Count is the total' '
	fetch c "$A/commits/long?limit=1" && expect_status c 200 &&
	expect_hdr c X-Total-Count 7 && json_check "$(body c)" "len(d) == 1"
'
expect_success 'commits?limit=2: following Link gives every commit once, in order' '
	follow_pages "$A/commits/long?limit=2" all &&
	test "$(cat all.pages)" -ge 4 &&
	git --git-dir="$gd" rev-list "$long_sha" >want &&
	commit_ids all >got && diff want got
'
expect_success 'commits?expand[]=formatted is accepted' '
	fetch c "$A/commits/main?expand%5B%5D=formatted" && expect_status c 200 &&
	commit_ids "$(body c)" | grep -qx "$main_sha"
'
expect_success 'commits of a missing revision: 404 RevisionNotFound' '
	fetch c "$A/commits/no-such-branch" && expect_error c 404 RevisionNotFound
'
expect_success 'commits of a missing repo: 401 RepoNotFound' '
	fetch c "$base/api/models/haven-test/no-such/commits/main" && expect_error c 401 RepoNotFound
'
done_testing
