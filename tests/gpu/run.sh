#!/bin/bash
# tests/gpu/run.sh: the GPU checks of Haven's loaders, one prepared script
# for one call on a lent machine (tests/gpu/README.md). It needs the build
# carried in .gpu-carry/ (tests/gpu/prepare.sh), python3, and, for the
# baselines and the end-to-end check, torch, safetensors and transformers.
#
# For each featured model (Voxtral, NitroGen as torch zip and as its
# converted twin, the Helios transformer) it generates a full-size synthetic
# checkpoint with the model's tensor layout, imports it into a Haven data
# folder, and loads it warm (sha256 checked, and --trust-blobs), cold
# (after dropping the page cache, beside the disk's parallel read rate
# measured in the same run) and, for Helios, under --vram-limit 6G with the
# offload plan; safetensors + torch load the same files in the same run.
# Then a tiny transformers model goes through `haven serve` and
# from_pretrained(HF_ENDPOINT) and, separately, through the Python binding:
# the outputs must be identical. Figures go to $OUT/RESULTS.md (and
# $OUT/results.json, $OUT/run.log); nothing is invented: a step that did
# not run says so.
#
# Environment: HAVEN_GPU_SCALE (default 1; 0.01 for a smoke run),
# HAVEN_GPU_MODELS (default "voxtral nitrogen helios"), HAVEN_GPU_BUDGET
# (seconds, default 540: later models are skipped past it), HAVEN_GPU_WORK
# (scratch, default /tmp/haven-gpu), HAVEN_GPU_READERS (default 12).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
carry=${HAVEN_GPU_CARRY:-$root/.gpu-carry}
out=${OUT:-$root/tests/gpu/out}
work=${HAVEN_GPU_WORK:-/tmp/haven-gpu}
scale=${HAVEN_GPU_SCALE:-1}
models=${HAVEN_GPU_MODELS:-voxtral nitrogen helios}
budget=${HAVEN_GPU_BUDGET:-540}
readers=${HAVEN_GPU_READERS:-12}
start=$(date +%s)
mkdir -p "$out" "$work/json"
exec > >(tee -a "$out/run.log") 2>&1

export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export HAVEN_LOADER_LIB=$carry/libhavenload.so
export HAVEN_MANIFESTS=$root/loaders/manifests
H=$carry/haven
PY=${PYTHON:-python3}
J=$work/json
# Scaled-down checkpoints cannot match the manifests' shapes.
soft=()
[ "$scale" = 1 ] || soft=(--manifest-report-only)
# A compressed carry (prepare.sh) is unpacked first.
if [ -f "$carry/bundle.tar.xz" ]; then
	mkdir -p "$work/carry" && tar -xJf "$carry/bundle.tar.xz" -C "$work/carry" && carry=$work/carry
	export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export HAVEN_LOADER_LIB=$carry/libhavenload.so
	H=$carry/haven
fi
say() { echo "[$(($(date +%s) - start))s] $*"; }
left() { echo $((budget - ($(date +%s) - start))); }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || say "cannot drop caches (not root?)"; }

say "haven GPU check, scale $scale, models: $models"
if ! "$H" --version; then
	say "the carried haven does not run here:"; ldd "$H"; exit 1
fi
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current \
		--format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
	echo "cpus: $(nproc), memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
	df -h "$work" | tail -1 | sed 's/^/disk: /'
	$PY -c 'import torch, safetensors; print("torch", torch.__version__, "safetensors", safetensors.__version__)' 2>/dev/null ||
		echo "torch/safetensors: not importable (baselines skipped)"
} | tee "$J/env.txt"

# 1. Smoke: a tiny model, every check, before anything large.
mkdir -p "$work/tiny"
$PY "$root/tests/integration/make_torch_fixture.py" st "$work/tiny/model.safetensors" big
"$H" import "$work/tiny" --repo gpu-check/tiny --data "$work/data-tiny" -m tiny >/dev/null
"$H" load gpu-check/tiny --data "$work/data-tiny" --require-gpu --json >"$J/tiny.json"
say "tiny: exit $? ($(grep -c '"ok": true' "$J/tiny.json") ok lines)"

# Disk rate: 8 dd readers over the given files' ranges, cold.
disk_rate() {
	local total=0 f n=0 t0 t1 pids=()
	drop_caches
	t0=$(date +%s.%N)
	for f in "$@"; do
		local sz; sz=$(stat -c %s "$f"); total=$((total + sz))
		local part=$(( (sz / 8 / 16777216) + 1 )) k
		for k in 0 1 2 3 4 5 6 7; do
			dd if="$f" of=/dev/null bs=16M skip=$((k * part)) count=$part status=none &
			pids+=($!)
		done
		n=$((n + 1))
	done
	wait "${pids[@]}"
	t1=$(date +%s.%N)
	$PY -c "print('%.3f' % ($total / ($t1 - $t0) / 1e9))"
}

# Baselines: safetensors load_file(device="cuda") or torch.load, same files.
baseline() { # NAME FILE...
	local name=$1; shift
	$PY - "$J/base-$name.json" "$@" <<'PY' || say "baseline $name failed"
import json, sys, time
try:
    import torch
    from safetensors.torch import load_file
except Exception as e:
    json.dump({"skipped": str(e)}, open(sys.argv[1], "w")); sys.exit(0)
files, n, t0 = sys.argv[2:], 0, time.time()
for f in files:
    with open(f, "rb") as fh:
        magic = fh.read(2)
    if magic == b"PK":
        sd = torch.load(f, map_location="cuda", weights_only=True)
        sd = sd.get("model", sd) if isinstance(sd, dict) else {"t": sd}
    else:
        sd = load_file(f, device="cuda")
    n += sum(t.numel() * t.element_size() for t in sd.values())
    del sd
torch.cuda.synchronize()
dt = time.time() - t0
json.dump({"bytes": n, "seconds": dt, "gbps": n / dt / 1e9}, open(sys.argv[1], "w"))
print("baseline: %.3f GB in %.3f s = %.2f GB/s" % (n / 1e9, dt, n / dt / 1e9))
PY
}

load_json() { # TAG REPO DATA ARGS...
	local tag=$1 repo=$2 data=$3; shift 3
	"$H" load "$repo" --data "$data" --require-gpu --json --readers "$readers" "${soft[@]}" "$@" \
		>"$J/$tag.json" 2>"$J/$tag.err"
	local rc=$?
	say "$tag: exit $rc $($PY -c 'import json,sys; g=json.load(open(sys.argv[1])).get("gpu",{}); print("%.2f GB/s, eff %.2f, vram %.2f GB, checksums %s, gemv %s" % (g.get("gbps",0), g.get("efficiency",0), g.get("vram_used",0)/1e9, g.get("checksums"), g.get("gemv",{}).get("ok")))' "$J/$tag.json" 2>/dev/null)"
	[ $rc = 0 ] || tail -3 "$J/$tag.err"
}

blobs_of() { find "$1/blobs" -type f | sort; }

for m in $models; do
	if [ "$(left)" -lt 60 ]; then say "$m: skipped, budget spent"; echo "$m" >>"$J/skipped.txt"; continue; fi
	case $m in
	voxtral) repo=mistralai/Voxtral-4B-TTS-2603 ;;
	nitrogen) repo=nvidia/NitroGen ;;
	helios) repo=BestWishYsh/Helios-Distilled ;;
	esac
	src=$work/src-$m data=$work/data-$m
	rm -rf "$src" "$data"
	# The source and its imported blob exist together for a while.
	case $m in voxtral) gb=8 ;; nitrogen) gb=6 ;; helios) gb=29 ;; esac
	avail=$(df -BG --output=avail "$work" | tail -1 | tr -dc 0-9)
	if $PY -c "import sys; sys.exit(0 if $avail >= 2.1 * $gb * $scale + 1 else 1)"; then :; else
		say "$m: skipped, $avail GB free on the scratch disk, about $(($gb * 21 / 10)) GB needed"
		echo "$m (disk)" >>"$J/skipped.txt"
		continue
	fi
	say "$m: generating (scale $scale)"
	$PY "$root/tests/gpu/make_checkpoints.py" "$m" "$src" --scale "$scale" || continue
	if [ "$m" = nitrogen ]; then
		"$H" convert "$src/ng.pt" --to "$work/ng.safetensors" || say "convert failed"
		mkdir -p "$work/twin" && mv "$work/ng.safetensors" "$work/twin/" 2>/dev/null
	fi
	say "$m: importing"
	"$H" import "$src" --repo "$repo" --data "$data" -m synthetic >/dev/null || { say "$m: import failed"; continue; }
	rm -rf "$src"
	only=()
	[ "$m" = helios ] && only=(--only helios-transformer)
	load_json "$m-warm-sha" "$repo" "$data" "${only[@]}"
	load_json "$m-warm" "$repo" "$data" --trust-blobs "${only[@]}"
	mapfile -t files < <(blobs_of "$data" | while read -r b; do [ "$(stat -c %s "$b")" -gt 1000000 ] && echo "$b"; done)
	baseline "$m-warm" "${files[@]}"
	rate=$(disk_rate "${files[@]}")
	echo "$rate" >"$J/$m-disk-gbps.txt"
	say "$m: disk, 8 parallel readers, cold: $rate GB/s"
	drop_caches
	load_json "$m-cold" "$repo" "$data" --trust-blobs "${only[@]}"
	drop_caches
	baseline "$m-cold" "${files[@]}"
	if [ "$m" = helios ]; then
		load_json "$m-offload6g" "$repo" "$data" --trust-blobs --plan offload --vram-limit 6G "${only[@]}"
	fi
	if [ "$m" = nitrogen ] && [ -f "$work/twin/ng.safetensors" ]; then
		"$H" import "$work/twin" --repo nvidia/NitroGen-twin --data "$data" -m twin >/dev/null
		load_json "nitrogen-twin-warm" nvidia/NitroGen-twin "$data" --trust-blobs \
			--manifest "$root/loaders/manifests/nitrogen.manifest"
		$PY - "$work/twin/ng.safetensors" "$(blobs_of "$data" | head -n 100)" <<'PY' >"$J/twin-equal.txt" 2>&1 || true
import sys
try:
    import torch
    from safetensors.torch import load_file
except Exception as e:
    print("skipped:", e); sys.exit(0)
twin = load_file(sys.argv[1])
for b in sys.argv[2].split():
    with open(b, "rb") as f:
        if f.read(2) != b"PK":
            continue
    sd = torch.load(b, map_location="cpu", weights_only=True)["model"]
    bad = [k for k, v in sd.items() if not torch.equal(v, twin["model." + k])]
    print("torch.load(ng.pt) vs converted twin: %d tensors, %d differ" % (len(sd), len(bad)))
PY
		cat "$J/twin-equal.txt"
		rm -rf "$work/twin"
	fi
	rm -rf "$data"
done

# 3. End to end: from_pretrained through Haven vs the Python binding.
if [ "$(left)" -gt 30 ]; then
	say "end to end: tiny transformers model"
	$PY - "$work" "$H" "$root" >"$J/e2e.txt" 2>&1 <<'PY' || true
import os, subprocess, sys, time, json
work, H, root = sys.argv[1:]
try:
    import torch, transformers
except Exception as e:
    print("skipped:", e); sys.exit(0)
sys.path.insert(0, os.path.join(root, "python"))
import haven_loader
torch.manual_seed(0)
cfg = transformers.LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=256,
                               num_hidden_layers=2, num_attention_heads=4,
                               num_key_value_heads=2, tie_word_embeddings=False)
m = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16)
d = os.path.join(work, "e2e-model")
m.save_pretrained(d, safe_serialization=True)
data = os.path.join(work, "data-e2e")
subprocess.run([H, "import", d, "--repo", "gpu-check/tiny-llama", "--data", data, "-m", "e2e"], check=True)
pf = os.path.join(work, "port")
srv = subprocess.Popen([H, "serve", "--data", data, "--listen", "127.0.0.1:0", "--port-file", pf])
try:
    for _ in range(100):
        if os.path.exists(pf) and open(pf).read().strip():
            break
        time.sleep(0.1)
    ep = "http://127.0.0.1:" + open(pf).read().strip()
    os.environ["HF_ENDPOINT"] = ep
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HOME"] = os.path.join(work, "hf-home")
    ids = torch.tensor([[1, 5, 9, 42, 77, 300]], device="cuda")
    a = transformers.AutoModelForCausalLM.from_pretrained("gpu-check/tiny-llama", torch_dtype=torch.bfloat16).cuda().eval()
    with torch.no_grad():
        ya = a(ids).logits
    lm = haven_loader.load("gpu-check/tiny-llama", endpoint=ep, device=0,
                           cache=os.path.join(work, "cache"))
    sd = lm.state_dict()
    b = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16).cuda().eval()
    res = b.load_state_dict(sd, assign=True, strict=False)
    same_ptr = all(sd[k].data_ptr() == dict(b.named_parameters())[k].data_ptr()
                   for k in sd if k in dict(b.named_parameters()))
    with torch.no_grad():
        yb = b(ids).logits
    print(json.dumps({"identical": bool(torch.equal(ya, yb)), "missing": res.missing_keys,
                      "unexpected": res.unexpected_keys, "zero_copy": same_ptr,
                      "loader_gbps": lm.report["gpu"].get("gbps"),
                      "tensors": len(sd)}))
finally:
    srv.terminate()
    srv.wait(timeout=10)
PY
	cat "$J/e2e.txt"
else
	echo "skipped: budget spent" >"$J/e2e.txt"
fi

say "writing RESULTS.md"
$PY "$root/tests/gpu/summarize.py" "$J" "$out/RESULTS.md" "$out/results.json"
cat "$out/RESULTS.md"
