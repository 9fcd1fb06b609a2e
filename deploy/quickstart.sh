#!/bin/sh
# Installs the build dependencies, builds Haven in build/, and serves
# ./haven-data on http://127.0.0.1:8080 with a small demo model in it.
set -eu
cd "$(dirname "$0")/.."
sh deploy/install-deps.sh
./autogen.sh
mkdir -p build
(cd build && ../configure -q && make -j"$(nproc)")
echo "Haven is starting on http://127.0.0.1:8080 (Ctrl-C stops it)."
echo "Try: HF_ENDPOINT=http://127.0.0.1:8080 hf download haven-demo/tiny-model config.json"
exec build/haven serve --demo
