#!/bin/bash
# tests/gpu/prepare.sh BUILD_DIR [DEST]: run on the build machine before the GPU
# check. Copies the haven binary, libhavenload.so and the shared libraries
# they need (found with ldd, glibc's own left out: the GPU machine has a
# newer one) into .gpu-carry/ at the top of the checkout, and makes git
# ignore that folder, so it can travel as a carried path.
set -eu
build=${1:?usage: prepare.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=${2:-$root/.gpu-carry}
rm -rf "$dest"
mkdir -p "$dest/lib"
cp "$build/haven" "$build/libhavenload.so" "$dest/"
for f in "$build/haven" "$build/libhavenload.so"; do
	ldd "$f" | awk '$3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
	case $(basename "$lib") in
	libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) ;;
	*) cp -L "$lib" "$dest/lib/" ;;
	esac
done
[ -n "${2:-}" ] || grep -qx '/.gpu-carry/' "$root/.git/info/exclude" 2>/dev/null ||
	echo '/.gpu-carry/' >>"$root/.git/info/exclude"
# Compressed: the carry and the checkout together must stay under 64 MiB.
tar -cJf "$dest.tar.xz" -C "$dest" .
rm -rf "$dest"
mkdir -p "$dest"
mv "$dest.tar.xz" "$dest/bundle.tar.xz"
du -sh "$dest"
echo "carry .gpu-carry; run: bash tests/gpu/run.sh"
