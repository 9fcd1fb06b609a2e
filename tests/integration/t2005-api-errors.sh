#!/bin/bash
# The Hub's error contract on every read route: status, X-Error-Code,
# X-Error-Message, X-Request-Id and a JSON {"error": ...} body; 401 for a
# missing repo asked anonymously, 404 RevisionNotFound ("Invalid rev id"),
# 404 EntryNotFound with X-Repo-Commit; unknown routes; no Xet tokens.
. "$(dirname "$0")/lib.sh"

setup_model_repo --small
start_server

for url in \
	"/api/models/haven-test/no-such" \
	"/api/models/haven-test/no-such/revision/main" \
	"/api/models/haven-test/no-such/tree/main" \
	"/api/models/haven-test/no-such/tree/main/sub" \
	"/api/models/haven-test/no-such/refs" \
	"/api/models/haven-test/no-such/commits/main" \
	"/haven-test/no-such/resolve/main/config.json" \
	"/haven-test/no-such/raw/main/config.json" \
	"/api/datasets/haven-test/no-such" \
	"/datasets/haven-test/no-such/resolve/main/data.csv" \
	"/api/spaces/haven-test/no-such" \
	"/spaces/haven-test/no-such/resolve/main/app.py" \
	"/no-such-namespace/no-such/resolve/main/config.json"; do
	expect_success "RepoNotFound: GET $url" "fetch e '$base$url' && expect_error e 401 RepoNotFound"
done
expect_success 'RepoNotFound: POST paths-info' '
	fetch e -X POST --data "paths=config.json" "$base/api/models/haven-test/no-such/paths-info/main" &&
	expect_error e 401 RepoNotFound
'
expect_success 'RepoNotFound: HEAD resolve carries the headers' '
	fetch_head e "$base/haven-test/no-such/resolve/main/config.json" &&
	expect_error e 401 RepoNotFound
'
expect_success 'RepoNotFound message is "Repository not found"' '
	fetch e "$base/api/models/haven-test/no-such" &&
	hdr e X-Error-Message | grep -qi "repository not found"
'

for url in \
	"/api/models/$REPO/revision/nope" \
	"/api/models/$REPO/tree/nope" \
	"/api/models/$REPO/commits/nope" \
	"/$REPO/resolve/nope/config.json" \
	"/$REPO/raw/nope/config.json" \
	"/$REPO/resolve/nope%2Fdeeper/config.json" \
	"/$REPO/resolve/0000000/config.json"; do
	expect_success "RevisionNotFound: GET $url" "
		fetch e '$base$url' && expect_error e 404 RevisionNotFound &&
		hdr e X-Error-Message | grep -q 'Invalid rev id'
	"
done
expect_success 'RevisionNotFound: POST paths-info' '
	fetch e -X POST --data "paths=config.json" "$base/api/models/$REPO/paths-info/nope" &&
	expect_error e 404 RevisionNotFound
'

for url in \
	"/$REPO/resolve/main/no-such.json" \
	"/$REPO/resolve/main/sub/no-such.bin" \
	"/$REPO/raw/main/no-such.json" \
	"/$REPO/resolve/$main_sha/no-such.json"; do
	expect_success "EntryNotFound with X-Repo-Commit: GET $url" "
		fetch e '$base$url' && expect_error e 404 EntryNotFound &&
		expect_hdr e X-Repo-Commit '$main_sha'
	"
done
expect_success 'EntryNotFound: tree of a missing folder' '
	fetch e "$base/api/models/$REPO/tree/main/no-such" && expect_error e 404 EntryNotFound
'

expect_success 'X-Request-Id differs between requests' '
	fetch a "$base/api/models/haven-test/no-such" && fetch b "$base/api/models/haven-test/no-such" &&
	test -n "$(hdr a X-Request-Id)" && test "$(hdr a X-Request-Id)" != "$(hdr b X-Request-Id)"
'
expect_success 'an unknown route: 404 with a JSON error' '
	fetch u "$base/api/no-such-route" && expect_error u 404 -
'
expect_success 'an unknown repo sub-route: 404' '
	fetch u "$base/api/models/$REPO/no-such-route/main" && is_4xx u
'
expect_success 'a wrong method on a read route: 4xx with a JSON error' '
	fetch u -X DELETE "$base/api/models/$REPO/tree/main" && is_4xx u &&
	test -n "$(hdr u X-Request-Id)"
'
expect_success 'Xet tokens are refused (no Xet on Haven)' '
	fetch x "$base/api/models/$REPO/xet-read-token/main" &&
	case $(status x) in 4??|501) ;; *) show x; false;; esac &&
	json_check "$(body x)" "isinstance(d.get(\"error\"), str)"
'
expect_success 'no error route leaks a stack trace or a path of the data folder' '
	for u in "/api/models/haven-test/no-such" "/$REPO/resolve/nope/x" "/$REPO/resolve/main/nope"; do
		fetch e "$base$u" && ! grep -q "$DATA" "$(body e)" && ! grep -q "$DATA" "$tmp/e.hdr" || exit 1
	done
'
done_testing
