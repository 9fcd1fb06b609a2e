#!/bin/sh
# Installs what building Haven needs (and, with --test, what its test suite
# needs) from the distribution's packages, on Debian 12 or Ubuntu 24.04.
# Packages already present are not asked for again, so a second run is fast.
set -eu

# git is also a runtime dependency: the server runs `git http-backend`
# for clone and push.
build="build-essential autoconf automake libtool pkg-config git \
  libevent-dev liblmdb-dev libgit2-dev libssl-dev libhttp-parser-dev \
  libjansson-dev libyaml-dev libcurl4-openssl-dev libarchive-dev"
test="curl ca-certificates git-lfs nodejs npm python3 time \
  python3-httpx python3-filelock python3-yaml python3-tqdm python3-fsspec \
  python3-packaging \
  ceph-mon ceph-osd radosgw ceph-common \
  nginx"

want=$build
[ "${1:-}" = "--test" ] && want="$build $test"

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

# npm and nodejs may already come from elsewhere (a newer Node.js).
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
	[ -z "$(echo "$missing" | tr -d ' ')" ] && exit 0
fi

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
