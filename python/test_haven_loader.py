#!/usr/bin/env python3
"""Checks of python/haven_loader.py that need no GPU and no torch.

  test_haven_loader.py                    struct layouts, options, dtypes
  test_haven_loader.py DATA REPO MANIFESTS  also a dry run through
                                          libhavenload.so ($HAVEN_LOADER_LIB)
Prints TAP.
"""
import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import haven_loader as hl  # noqa: E402

n = 0
failed = 0


def check(desc, cond):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, desc))


# The DLPack ABI (dlpack.h v0.8 / v1 unversioned struct) on 64-bit.
check("DLTensor is 48 bytes", ctypes.sizeof(hl.DLTensor) == 48)
check("DLManagedTensor is 64 bytes", ctypes.sizeof(hl.DLManagedTensor) == 64)
check("BF16 is kDLBfloat/16", hl.DLPACK_DTYPES["BF16"] == (4, 16))
check("F32 is kDLFloat/32", hl.DLPACK_DTYPES["F32"] == (2, 32))
try:
    hl.options("a/b")
    check("options without a source are refused", False)
except ValueError:
    check("options without a source are refused", True)
try:
    hl.options("a/b", data="/x", plan="fast")
    check("a bad plan is refused", False)
except ValueError:
    check("a bad plan is refused", True)
o = __import__("json").loads(hl.options("a/b", endpoint="http://h", vram_limit=6 << 30))
check("options carry the fields", o["endpoint"] == "http://h" and o["vram_limit"] == 6 << 30
      and o["keep"] is True and "data" not in o)

if len(sys.argv) == 4:
    data, repo, manifests = sys.argv[1:]
    m = hl.load(repo, data=data, dry_run=True, manifests=manifests, vram_limit=1 << 30)
    check("dry run through libhavenload.so: report ok", m.report["ok"] is True)
    check("... tensors listed, none on a device", len(m.tensors) > 0 and
          all(t.dptr == 0 for t in m.tensors))
    m.close()
    try:
        hl.load("nobody/nothing", data=data, dry_run=True, manifests=manifests)
        check("a missing repository raises HavenLoadError", False)
    except hl.HavenLoadError as e:
        check("a missing repository raises HavenLoadError", "nobody/nothing" in str(e))

print("1..%d" % n)
sys.exit(1 if failed else 0)
