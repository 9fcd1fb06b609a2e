#!/bin/bash
# The Python client, huggingface_hub, with HF_ENDPOINT set to Haven:
# tests/py/hf_client_check.py online, then again offline (HF_HUB_OFFLINE=1,
# endpoint unreachable) from the cache the first pass filled.
# huggingface_hub is not packaged by Debian: point HAVEN_HF_HUB_SRC at the
# src/ folder of a huggingface_hub checkout (v1.x) to run this test; it is
# skipped otherwise. Runs with Debian's python3 (python3-httpx,
# python3-filelock, python3-yaml, python3-tqdm, python3-fsspec,
# python3-packaging) unless HAVEN_PYTHON names another interpreter.
. "$(dirname "$0")/lib.sh"

py=${HAVEN_PYTHON:-$PYTHON}
[ -n "${HAVEN_HF_HUB_SRC:-}" ] ||
	skip_all "HAVEN_HF_HUB_SRC is not set (a huggingface_hub checkout's src/ folder)"
[ -d "$HAVEN_HF_HUB_SRC/huggingface_hub" ] ||
	skip_all "no huggingface_hub package in HAVEN_HF_HUB_SRC=$HAVEN_HF_HUB_SRC"
if ! ver=$(cd "$tmp" && PYTHONPATH=$HAVEN_HF_HUB_SRC "$py" -c \
	'import huggingface_hub, fsspec; print(huggingface_hub.__version__)' 2>"$tmp/import.err"); then
	skip_all "huggingface_hub from $HAVEN_HF_HUB_SRC does not import with $py: $(tail -n 1 "$tmp/import.err")"
fi
say "huggingface_hub $ver from $HAVEN_HF_HUB_SRC, $("$py" --version 2>&1)"

setup_model_repo
mkdir -p "$tmp/ds"
printf 'a,b\n1,2\n' >"$tmp/ds/data.csv"
hv import "$tmp/ds" --repo haven-test/tiny-data --type dataset -m data >/dev/null 2>&1
start_server

check=$top_srcdir/tests/py/hf_client_check.py
export HAVEN_REPO=$REPO HAVEN_MODEL_DIR=$MODEL HAVEN_DEV_DIR=$DEV
export HAVEN_MAIN_SHA=$main_sha HAVEN_DEV_SHA=$dev_sha
export HAVEN_DATASET=haven-test/tiny-data HAVEN_DATASET_DIR=$tmp/ds
export HF_HUB_ETAG_TIMEOUT=20 HF_HUB_DOWNLOAD_TIMEOUT=20

HF_ENDPOINT=$base expect_tap_from 'huggingface_hub online' \
	timeout 300 "$py" "$check" online
# HF_HUB_OFFLINE is read when huggingface_hub is imported: a new process.
# The endpoint is a closed port, so any request would fail.
HF_ENDPOINT=http://127.0.0.1:9 HF_HUB_OFFLINE=1 expect_tap_from 'huggingface_hub offline' \
	timeout 120 "$py" "$check" offline
done_testing
