#!/bin/bash
# git-lfs against Haven: a clone smudges LFS files through the batch API
# (download); a push of a commit with a new LFS file uploads it through the
# batch API (git-lfs's pre-push hook) and /resolve then serves its bytes;
# a push whose LFS object never reached the server (GIT_LFS_SKIP_PUSH=1)
# is refused by the server's pre-receive hook and changes nothing.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || skip_all "git is not installed"
git lfs version >/dev/null 2>&1 || skip_all "git-lfs is not installed (Debian: git-lfs)"
"$HAVEN" token --help >/dev/null 2>&1 ||
	skip_all "this haven has no 'token' command yet: pushes need tokens"

hv user create haven-test >/dev/null 2>&1 || { echo "Bail out! user create"; exit 1; }
TOKEN=$(hv token create --user haven-test --role write 2>/dev/null)
case $TOKEN in hf_*) ;; *) echo "Bail out! token create printed '$TOKEN'"; exit 1 ;; esac
setup_model_repo
start_server

# The batch endpoint is a prerequisite, not the subject of this test.
printf '{"operation":"download","transfers":["basic"],"objects":[{"oid":"%s","size":%s}]}' \
	"$(sha256_of "$MODEL/sub/weights.bin")" "$(size_of "$MODEL/sub/weights.bin")" >"$tmp/probe.json"
fetch probe -X POST -H "Accept: application/vnd.git-lfs+json" \
	-H "Content-Type: application/vnd.git-lfs+json" --data-binary @"$tmp/probe.json" \
	"$base/$REPO.git/info/lfs/objects/batch"
if grep -q "not implemented" "$tmp/probe.body" || [ "$(status probe)" != 200 ]; then
	skip_all "the LFS batch endpoint is not there yet (answered $(status probe))"
fi

export GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false
unset GIT_LFS_SKIP_SMUDGE GIT_LFS_SKIP_PUSH
G="git -c credential.helper= -c user.name=Tester -c user.email=tester@example.com"
git lfs install --skip-repo >/dev/null 2>&1 || { echo "Bail out! git lfs install"; exit 1; }
# lfs.url is derived by git-lfs from the remote: <url>.git/info/lfs.
auth_url=$(printf '%s\n' "$base/$REPO" | sed "s#://#://git:$TOKEN@#")

expect_success 'git clone smudges every LFS file through the batch API' '
	$G clone -q "$base/$REPO" c1 2>err; cat err &&
	cmp c1/model.safetensors "$MODEL/model.safetensors" &&
	cmp c1/extra/large.dat "$MODEL/extra/large.dat" &&
	cmp c1/sub/weights.bin "$MODEL/sub/weights.bin" &&
	git -C c1 lfs ls-files | grep -q model.safetensors
'
expect_success 'git lfs fetch/checkout after a pointer-only clone' '
	GIT_LFS_SKIP_SMUDGE=1 $G clone -q "$base/$REPO.git" c2 &&
	grep -q "^version https://git-lfs" c2/model.safetensors &&
	git -C c2 lfs pull 2>err; cat err;
	cmp c2/model.safetensors "$MODEL/model.safetensors"
'
expect_success 'push a commit with a new LFS file: uploaded, then /resolve serves it' '
	$G clone -q "$auth_url" w &&
	head -c 3000000 /dev/urandom >w/new-weights.bin &&
	git -C w add new-weights.bin && $G -C w commit -qm "Add new weights" &&
	git -C w lfs ls-files | grep -q new-weights.bin &&
	$G -C w push -q origin main 2>err; cat err &&
	test -f "$(blob_path "$(sha256_of w/new-weights.bin)")" &&
	fetch r "$base/$REPO/resolve/main/new-weights.bin" && expect_status r 200 &&
	cmp "$(body r)" w/new-weights.bin &&
	fetch i "$base/api/models/$REPO/revision/main" &&
	json_check "$(body i)" "d[\"sha\"] == \"$(git -C w rev-parse HEAD)\""
'
expect_success 'the pushed file is LFS in the tree API (size and sha256)' '
	fetch t "$base/api/models/$REPO/tree/main" && expect_status t 200 &&
	json_check "$(body t)" "[e for e in d if e[\"path\"] == \"new-weights.bin\"][0][\"lfs\"][\"oid\"] == \"$(sha256_of w/new-weights.bin)\""
'
expect_success 'a push whose LFS object was never uploaded is refused' '
	head -c 100000 /dev/urandom >w/skipped.bin &&
	git -C w add skipped.bin && $G -C w commit -qm "LFS file not uploaded" &&
	! GIT_LFS_SKIP_PUSH=1 $G -C w push origin main 2>err && cat err &&
	grep -q "was not uploaded to this repository" err &&
	test ! -e "$(blob_path "$(sha256_of w/skipped.bin)")" &&
	fetch i "$base/api/models/$REPO/revision/main" &&
	json_check "$(body i)" "d[\"sha\"] == \"$(git -C w rev-parse HEAD~1)\""
'
expect_success 'the same push with git-lfs allowed to upload goes through' '
	$G -C w push -q origin main 2>err; cat err &&
	fetch r "$base/$REPO/resolve/main/skipped.bin" && expect_status r 200 &&
	cmp "$(body r)" w/skipped.bin
'
expect_success 'a fresh clone smudges the pushed LFS files' '
	$G clone -q "$base/$REPO" c3 &&
	cmp c3/new-weights.bin w/new-weights.bin && cmp c3/skipped.bin w/skipped.bin
'

done_testing
