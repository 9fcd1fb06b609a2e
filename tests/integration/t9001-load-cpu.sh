#!/bin/bash
# `haven load` without a GPU: a small synthetic safetensors model (with a
# manifest and offload blocks) and a torch.save checkpoint are imported
# through the CLI, then loaded with --dry-run and without, from the data
# folder (--data) and over HTTP (--endpoint, parallel ranged GETs):
# integrity (sha256 = LFS oid), structure, manifest and plan are reported;
# a tampered blob, a manifest mismatch, a refused plan and a pickle that
# calls os.system are all refused with a clear message; the CUDA steps are
# skipped cleanly when no driver is present. `haven convert` writes the
# safetensors twin of the checkpoint with the same bytes.
. "$(dirname "$0")/lib.sh"

GEN="$PYTHON $top_srcdir/tests/integration/make_torch_fixture.py"
M=$tmp/manifests
mkdir -p "$M" "$tmp/st" "$tmp/pt" "$tmp/evil"
$GEN st "$tmp/st/model.safetensors" big
echo '{"model_type": "tiny"}' >"$tmp/st/config.json"
$GEN pt "$tmp/pt/model.pt"
$GEN evil "$tmp/evil/model.pt"
cat >"$M/tiny.manifest" <<'MANIFEST'
name  tiny
repo  haven-test/tiny-st
files *.safetensors
block blocks.{i}. 2
tensor embed.weight BF16 16 8
tensor blocks.{0..1}.attn.weight BF16 8 8
tensor blocks.{0..1}.attn.bias BF16 8
tensor head.weight BF16 4 8
tensor big.weight BF16 2560 4096
MANIFEST
sed -e 's/^name  tiny/name  wrong/' -e 's/head.weight BF16 4 8/head.weight BF16 4 9/' \
	"$M/tiny.manifest" >"$tmp/wrong.manifest"

hv import "$tmp/st" --repo haven-test/tiny-st -m st >/dev/null 2>&1
hv import "$tmp/pt" --repo haven-test/tiny-pt -m pt >/dev/null 2>&1
hv import "$tmp/evil" --repo haven-test/evil-pt -m evil >/dev/null 2>&1
ST_SHA=$(sha256_of "$tmp/st/model.safetensors")

load() {
	"$HAVEN" load "$@" --manifests "$M"
}
jq_py() { # FILE EXPR: evaluates EXPR with r = the JSON report
	"$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}

expect_success 'load --help exits 0 and shows the usage' '
	"$HAVEN" load --help >out && grep -q "haven load REPO" out
'
expect_success 'load without --data or --endpoint is a usage error' '
	"$HAVEN" load haven-test/tiny-st >out 2>&1; test $? = 2
'

load haven-test/tiny-st --data "$DATA" --dry-run --vram-limit 1G --json >"$tmp/d1.json" 2>"$tmp/d1.err"
rc=$?
expect_success '--data --dry-run: exit 0, ok, the commit named' '
	test $rc = 0 && jq_py d1.json "r[\"ok\"] and len(r[\"commit\"]) == 40 and r[\"source\"] == \"data\""
'
expect_success '... integrity: the sha256 read equals the LFS oid' '
	jq_py d1.json "r[\"files\"][0][\"integrity\"] == \"ok\" and r[\"files\"][0][\"sha256\"] == \"$ST_SHA\""
'
expect_success '... structure ok, 7 tensors; manifest: 7 matched, nothing else' '
	jq_py d1.json "r[\"files\"][0][\"structure\"] == \"ok\" and r[\"files\"][0][\"tensors\"] == 7" &&
	jq_py d1.json "r[\"components\"][0][\"check\"][\"ok\"] and r[\"components\"][0][\"check\"][\"matched\"] == 7"
'
expect_success '... plan: resident under 1 GiB, with the arithmetic' '
	jq_py d1.json "r[\"plan\"][\"kind\"] == \"resident\" and r[\"plan\"][\"free_from\"] == \"--vram-limit\"" &&
	jq_py d1.json "r[\"plan\"][\"budget\"] == (1<<30) - (256<<20)"
'
expect_success '... the GPU steps say they were skipped (dry run)' '
	jq_py d1.json "r[\"gpu\"][\"status\"] == \"skipped\" and r[\"gpu\"][\"reason\"] == \"dry run\""
'

load haven-test/tiny-st --data "$DATA" --dry-run --vram-limit 300M --plan offload --json >"$tmp/d2.json" 2>/dev/null
expect_success '--plan offload under 300M: blocks stream, peak within the budget' '
	jq_py d2.json "r[\"plan\"][\"kind\"] == \"offload\" and r[\"plan\"][\"streamed_blocks\"] >= 1" &&
	jq_py d2.json "r[\"plan\"][\"device_bytes\"] <= r[\"plan\"][\"budget\"]"
'
load haven-test/tiny-st --data "$DATA" --dry-run --vram-limit 100M --plan resident >"$tmp/d3.out" 2>&1
rc=$?
expect_success 'a plan that cannot fit is refused with the numbers (exit 1)' '
	test $rc = 1 && grep -q "refused: .* GB of tensors do not fit in a .* GB budget" d3.out
'

"$HAVEN" load haven-test/tiny-st --data "$DATA" --dry-run --manifest "$tmp/wrong.manifest" >"$tmp/d4.out" 2>&1
rc=$?
expect_success 'a manifest mismatch is reported tensor by tensor (exit 1)' '
	test $rc = 1 && grep -q "different head.weight: BF16 \[4, 8\], expected BF16 \[4, 9\]" d4.out &&
	grep -q "does not match its manifest" d4.out
'

load haven-test/tiny-st --data "$DATA" --vram-limit 1G >"$tmp/g1.out" 2>"$tmp/g1.err"
rc=$?
expect_success 'no --dry-run on a machine without a driver: exit 0, GPU steps skipped, said so' '
	test $rc = 0 && grep -q "^gpu: skipped: no CUDA" g1.out && grep -q "GPU steps skipped" g1.err
'
load haven-test/tiny-st --data "$DATA" --require-gpu >"$tmp/g2.out" 2>&1
rc=$?
expect_success '--require-gpu without a driver: exit 1 with the reason' '
	test $rc = 1 && grep -q "haven: no CUDA" g2.out
'

load haven-test/tiny-pt --data "$DATA" --dry-run --json >"$tmp/p1.json" 2>&1
rc=$?
expect_success 'a torch.save checkpoint: read without unpickling, 4 tensors, integrity ok' '
	test $rc = 0 && jq_py p1.json "r[\"files\"][0][\"format\"] == \"torch-zip\" and r[\"files\"][0][\"tensors\"] == 4" &&
	jq_py p1.json "r[\"files\"][0][\"integrity\"] == \"ok\" and r[\"plan\"][\"kind\"] == \"none\""
'
load haven-test/evil-pt --data "$DATA" --dry-run >"$tmp/e1.out" 2>&1
rc=$?
expect_success 'a pickle that calls os.system is refused by name (exit 1)' '
	test $rc = 1 && grep -q "refused global .os.system." e1.out && test ! -e /tmp/pwn
'

expect_success 'convert: the safetensors twin holds the same bytes' '
	"$HAVEN" convert "$tmp/pt/model.pt" --to "$tmp/twin.safetensors" >out 2>&1 &&
	grep -q "4 tensors written" out &&
	"$PYTHON" - "$tmp/twin.safetensors" "$($GEN raw x enc.weight)" <<PY
import json, struct, sys
d = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", d[:8])[0]
h = json.loads(d[8:8 + n])
a, b = h["model.enc.weight"]["data_offsets"]
assert h["model.enc.weight"]["dtype"] == "F32" and h["model.enc.weight"]["shape"] == [4, 4]
assert d[8 + n + a:8 + n + b].hex() == sys.argv[2]
assert (8 + n) % 8 == 0
PY
'
expect_success 'convert refuses the os.system pickle and writes nothing' '
	! "$HAVEN" convert "$tmp/evil/model.pt" --to "$tmp/evil.safetensors" >out 2>&1 &&
	grep -q "os.system" out && test ! -e "$tmp/evil.safetensors" && test ! -e "$tmp/evil.safetensors.tmp"
'

# The Python binding (ctypes over libhavenload.so): a dry run in-process.
# A sanitizer build's library cannot be loaded into a plain python3.
if [ ! -e "$top_builddir/libhavenload.so" ]; then
	test_skip 'python binding: dry run through libhavenload.so' 'library not built'
elif ldd "$top_builddir/libhavenload.so" 2>/dev/null | grep -q libasan; then
	test_skip 'python binding: dry run through libhavenload.so' 'sanitizer build'
else
	expect_success 'python binding: dry run through libhavenload.so, errors raised' '
		HAVEN_LOADER_LIB="$top_builddir/libhavenload.so" "$PYTHON" \
			"$top_srcdir/python/test_haven_loader.py" "$DATA" haven-test/tiny-st "$M" >py.out 2>&1 ||
			{ cat py.out; false; }
	'
fi

start_server
load haven-test/tiny-st --endpoint "$base" --cache "$tmp/cache" --parallel 4 --dry-run \
	--vram-limit 1G --json >"$tmp/h1.json" 2>"$tmp/h1.err"
rc=$?
expect_success '--endpoint: downloaded with ranged GETs, hashed on the way, same report' '
	test $rc = 0 && jq_py h1.json "r[\"ok\"] and r[\"source\"] == \"endpoint\" and r[\"files\"][0][\"integrity\"] == \"ok\"" &&
	jq_py h1.json "r[\"components\"][0][\"check\"][\"matched\"] == 7 and r[\"plan\"][\"kind\"] == \"resident\"" &&
	cmp "$tmp/cache/$ST_SHA" "$tmp/st/model.safetensors"
'
expect_success '... the same commit as --data' '
	jq_py h1.json "r[\"commit\"] == json.load(open(\"d1.json\"))[\"commit\"]"
'
load haven-test/tiny-pt --endpoint "$base" --cache "$tmp/cache" --dry-run >"$tmp/h2.out" 2>&1
expect_success '--endpoint with the torch checkpoint: ok' 'grep -q "^ok$" h2.out'
load nobody/nothing --endpoint "$base" --cache "$tmp/cache" --dry-run >"$tmp/h3.out" 2>&1
rc=$?
expect_success 'a repository that does not exist: exit 1, said so' '
	test $rc = 1 && grep -q "not found or not readable" h3.out
'

# Tamper with the stored blob: same size, one byte changed, first in the
# tensor bytes (found by the read pass), then in the header (found by the
# parser, blamed on the digest).
blob=$(blob_path "$ST_SHA")
flip_byte "$blob" 1000000
load haven-test/tiny-st --data "$DATA" --dry-run >"$tmp/t1.out" 2>&1
rc=$?
expect_success 'a tampered blob is refused from --data (sha256 named)' '
	test $rc = 1 && grep -q "refused: .model.safetensors. has sha256 .* the registry lists $ST_SHA" t1.out
'
flip_byte "$blob" 200
load haven-test/tiny-st --data "$DATA" --dry-run >"$tmp/t1b.out" 2>&1
rc=$?
expect_success '... also when the header was hit: the digest is blamed, not the format' '
	test $rc = 1 && grep -q "refused: .model.safetensors. has sha256 .* the registry lists $ST_SHA" t1b.out
'
load haven-test/tiny-st --endpoint "$base" --cache "$tmp/cache2" --dry-run >"$tmp/t2.out" 2>&1
rc=$?
expect_success '... and over HTTP, leaving nothing in the cache' '
	test $rc = 1 && grep -q "sha256 of the bytes served is" t2.out &&
	test -z "$(ls -A "$tmp/cache2")"
'
stop_server
done_testing
