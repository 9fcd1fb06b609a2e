#!/usr/bin/env python3
"""Writes small checkpoints for Haven's loader tests without PyTorch.

  make_torch_fixture.py pt OUT.pt            a torch.save-format zip: a dict
                                             {"model": state_dict, "step": 3}
  make_torch_fixture.py voice OUT.pt         a single BF16 tensor [5, 8]
  make_torch_fixture.py evil OUT.pt          data.pkl calls os.system
  make_torch_fixture.py st OUT.safetensors [big]  a small BF16 model,
                                             blocks.{0,1} (big: +20 MiB)
  make_torch_fixture.py raw FILE.pt NAME     print NAME's bytes as hex (from
                                             the pickle's storage, for checks)

The pickle is produced by Python's own pickle module: stand-in objects
named like torch's globals (torch._utils._rebuild_tensor_v2,
torch.FloatStorage, ...) reduce to exactly the opcodes torch.save writes
for a plain state dict (protocol 2, storages as persistent ids).
"""
import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile

torch_mod = types.ModuleType("torch")
utils_mod = types.ModuleType("torch._utils")
sys.modules.setdefault("torch", torch_mod)
sys.modules.setdefault("torch._utils", utils_mod)


def _rebuild_tensor_v2(*args):
    raise RuntimeError("never called: only pickled")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2

STORAGES = {}
for name in ("FloatStorage", "BFloat16Storage", "HalfStorage", "LongStorage"):
    cls = type(name, (), {"__module__": "torch"})
    setattr(torch_mod, name, cls)
    STORAGES[name] = cls

ELT = {"FloatStorage": 4, "BFloat16Storage": 2, "HalfStorage": 2, "LongStorage": 8}


class Storage:
    def __init__(self, key, kind, data):
        self.key, self.kind, self.data = key, kind, data


class Tensor:
    def __init__(self, storage, offset, shape):
        self.storage, self.offset, self.shape = storage, offset, shape

    def __reduce_ex__(self, proto):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2, (self.storage, self.offset, tuple(self.shape),
                                     tuple(stride), False, collections.OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", STORAGES[obj.kind], obj.key, "cpu",
                    len(obj.data) // ELT[obj.kind])
        return None


def pattern(n, seed):
    base = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(4093))
    return (base * (n // len(base) + 1))[:n]


def write_zip(path, obj, storages, pkl=None):
    if pkl is None:
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(obj)
        pkl = buf.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for s in storages:
            z.writestr("archive/data/" + s.key, s.data)
        z.writestr("archive/version", "3\n")


def state_dict():
    s0 = Storage("0", "FloatStorage", pattern(4 * 24, 1))
    s1 = Storage("1", "BFloat16Storage", pattern(2 * 16, 2))
    sd = collections.OrderedDict()
    sd["enc.weight"] = Tensor(s0, 0, [4, 4])
    sd["enc.bias"] = Tensor(s0, 16, [4])       # shares storage 0
    sd["dec.weight"] = Tensor(s1, 0, [2, 8])
    sd["tied"] = sd["enc.weight"]
    return sd, [s0, s1]


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "pt":
        sd, st = state_dict()
        write_zip(out, {"model": sd, "step": 3, "epoch": 1}, st)
    elif kind == "voice":
        s = Storage("0", "BFloat16Storage", pattern(2 * 40, 3))
        write_zip(out, Tensor(s, 0, [5, 8]), [s])
    elif kind == "evil":
        pkl = b"\x80\x02cos\nsystem\nX\x0e\x00\x00\x00touch /tmp/pwn\x85R."
        write_zip(out, None, [], pkl=pkl)
    elif kind == "st":
        tensors, data = {}, b""
        names = [("embed.weight", [16, 8])]
        for b in range(2):
            names += [("blocks.%d.attn.weight" % b, [8, 8]), ("blocks.%d.attn.bias" % b, [8])]
        names.append(("head.weight", [4, 8]))
        if len(sys.argv) > 3 and sys.argv[3] == "big":
            names.append(("big.weight", [2560, 4096]))   # 20 MiB: 3 ranges
        for i, (name, shape) in enumerate(names):
            n = 2
            for d in shape:
                n *= d
            tensors[name] = {"dtype": "BF16", "shape": shape,
                             "data_offsets": [len(data), len(data) + n]}
            data += pattern(n, 10 + i)
        h = json.dumps(tensors, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(out, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data)
    elif kind == "raw":
        name = sys.argv[3]
        sd, _ = state_dict()
        t = sd[name]
        elt = ELT[t.storage.kind]
        n = elt
        for d in t.shape:
            n *= d
        print(t.storage.data[t.offset * elt: t.offset * elt + n].hex())
    else:
        sys.exit("unknown kind " + kind)


if __name__ == "__main__":
    main()
