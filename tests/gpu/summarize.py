#!/usr/bin/env python3
"""Turns the JSON left by tests/gpu/run.sh into RESULTS.md (and one
results.json). Only measured figures appear; missing runs say "not run"."""
import glob
import json
import os
import sys

jdir, md, allj = sys.argv[1:4]
runs = {}
for f in glob.glob(os.path.join(jdir, "*.json")):
    try:
        runs[os.path.basename(f)[:-5]] = json.load(open(f))
    except Exception as e:  # a run that died mid-output
        runs[os.path.basename(f)[:-5]] = {"unreadable": str(e)}
texts = {}
for f in glob.glob(os.path.join(jdir, "*.txt")):
    texts[os.path.basename(f)[:-4]] = open(f).read().strip()
json.dump({"runs": runs, "notes": texts}, open(allj, "w"), indent=1)


def g(r, *path):
    for p in path:
        if not isinstance(r, dict):
            return None
        r = r.get(p)
    return r


lines = ["# GPU loader results (tests/gpu/run.sh)", "",
         "Written by tests/gpu/summarize.py from one run; every figure below was",
         "measured in that run. Environment:", "", "```", texts.get("env", "?"), "```", "",
         "| model | run | GB | seconds | GB/s | of PCIe ceiling | device checksums | GEMV | VRAM used GB | ok |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
bars = []
for m in ("tiny", "voxtral", "nitrogen", "nitrogen-twin", "helios"):
    for mode in ("", "-warm-sha", "-warm", "-cold", "-offload6g"):
        r = runs.get(m + mode)
        if r is None:
            continue
        gpu = g(r, "gpu") or {}
        cs = gpu.get("checksums") or {}
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            m, mode.lstrip("-") or "all checks",
            "%.3f" % (gpu["bytes"] / 1e9) if "bytes" in gpu else "-",
            "%.3f" % gpu["seconds"] if "seconds" in gpu else "-",
            "%.2f" % gpu["gbps"] if "gbps" in gpu else "-",
            "%.0f%% of %.1f" % (100 * gpu.get("efficiency", 0), gpu.get("h2d_ceiling_gbps", 0))
            if "efficiency" in gpu else "-",
            "%s/%s" % (cs.get("checked", "-"), cs.get("mismatched", "-")),
            g(gpu, "gemv", "ok"), "%.3f" % (gpu.get("vram_used", 0) / 1e9),
            r.get("ok", r.get("error"))))
    base = [(k, runs[k]) for k in ("base-%s-warm" % m, "base-%s-cold" % m) if k in runs]
    for k, b in base:
        if "gbps" in b:
            lines.append("| %s | safetensors/torch %s | %.3f | %.3f | %.2f | - | - | - | - | - |" % (
                m, k.rsplit("-", 1)[1], b["bytes"] / 1e9, b["seconds"], b["gbps"]))
        else:
            lines.append("| %s | baseline %s | not run: %s |||||||| " % (m, k, b.get("skipped")))
    warm = g(runs.get(m + "-warm"), "gpu", "gbps")
    if warm is not None:
        bars.append("- %s warm: %.2f GB/s, bar 50 GB/s: %s" % (m, warm, "met" if warm >= 50 else "NOT met"))
    cold, disk = g(runs.get(m + "-cold"), "gpu", "gbps"), texts.get(m + "-disk-gbps")
    if cold is not None and disk:
        bars.append("- %s cold: %.2f GB/s vs disk %s GB/s (8 readers): %.0f%%, bar 90%%: %s" % (
            m, cold, disk, 100 * cold / float(disk), "met" if cold >= 0.9 * float(disk) else "NOT met"))
off = g(runs.get("helios-offload6g"), "gpu", "vram_used")
if off is not None:
    bars.append("- Helios --vram-limit 6G offload: peak VRAM %.3f GB, bar 6 GB: %s (plan: %s)" % (
        off / 1e9, "met" if off <= 6e9 else "NOT met", g(runs.get("helios-offload6g"), "plan", "why")))
lines += ["", "## Bars", ""] + (bars or ["- no bar could be evaluated (runs missing)"])
lines += ["", "## Other checks", ""]
for k in ("twin-equal", "e2e", "skipped"):
    if k in texts:
        lines.append("- %s: %s" % (k, texts[k].splitlines()[-1] if texts[k] else ""))
open(md, "w").write("\n".join(lines) + "\n")
