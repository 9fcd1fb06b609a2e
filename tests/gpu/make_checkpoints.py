#!/usr/bin/env python3
"""Full-size synthetic checkpoints with the tensor layouts of Haven's
featured models, for tests/gpu/run.sh. Only the standard library is used.

  make_checkpoints.py voxtral DIR   consolidated.safetensors (manifest
                                    layout, BF16) + 20 voice .pt files
  make_checkpoints.py helios DIR    transformer/ shards of <= 5 GB with
                                    diffusion_pytorch_model.safetensors.index.json
  make_checkpoints.py nitrogen DIR  ng.pt: torch.save zip, {"model": state
                                    dict of 493.6 M F32 parameters, "step"}
  ... [--scale F]                   every first dimension times F (smoke runs)

Tensor names, dtypes and shapes come from loaders/manifests/*.manifest
(the same expansion rules as the C parser); "*" dimensions get fixed sizes.
Bytes are a random 64 MiB block, rotated per tensor, so every tensor differs.
"""
import collections
import json
import os
import re
import struct
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import make_torch_fixture as tf  # noqa: E402  (torch-named stand-ins)

BITS = {"BF16": 16, "F16": 16, "F32": 32, "F64": 64, "I64": 64, "U8": 8}
BLOCK = os.urandom(64 << 20)


def expand(pat):
    m = re.search(r"\{([^}]*)\}", pat)
    if not m:
        return [pat]
    body, out = m.group(1), []
    if ".." in body:
        a, b = body.split("..")
        items = [str(i) for i in range(int(a), int(b) + 1)]
    else:
        items = body.split(",")
    for it in items:
        out += expand(pat[:m.start()] + it + pat[m.end():])
    return out


def manifest(name, star=147):
    tensors = []
    with open(os.path.join(ROOT, "loaders", "manifests", name)) as f:
        for line in f:
            tok = line.split("#")[0].split()
            if tok and tok[0] in ("tensor", "opt") and tok[0] == "tensor":
                dims = [star if d == "*" else int(d) for d in tok[3:]]
                for n in expand(tok[1]):
                    tensors.append((n, tok[2], dims))
    return tensors


def scaled(dims, scale):
    if scale == 1 or not dims:
        return dims
    return [max(1, int(dims[0] * scale))] + dims[1:]


def nbytes(dtype, dims):
    n = BITS[dtype] // 8
    for d in dims:
        n *= d
    return n


def write_bytes(f, n, seed):
    off = (seed * 7919 * 4096) % len(BLOCK)
    while n:
        k = min(n, len(BLOCK) - off)
        f.write(BLOCK[off:off + k])
        n -= k
        off = 0


def write_safetensors(path, tensors, scale, seed0=0):
    header, pos, order = {}, 0, []
    for name, dtype, dims in tensors:
        dims = scaled(dims, scale)
        n = nbytes(dtype, dims)
        header[name] = {"dtype": dtype, "shape": dims, "data_offsets": [pos, pos + n]}
        order.append((name, n))
        pos += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for i, (name, n) in enumerate(order):
            write_bytes(f, n, seed0 + i)
    return pos


VOICES = ["casual_female", "casual_male", "cheerful_female", "neutral_female",
          "neutral_male", "pt_male", "pt_female", "nl_male", "nl_female", "it_male",
          "it_female", "fr_male", "fr_female", "es_male", "es_female", "de_male",
          "de_female", "ar_male", "hi_male", "hi_female"]


def write_torch(path, obj, storages):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        buf = __import__("io").BytesIO()
        tf.Pickler(buf, protocol=2).dump(obj)
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for s in storages:
            with z.open("archive/data/" + s.key, "w", force_zip64=True) as w:
                write_bytes(w, s.nbytes, int(s.key) + 100)
        z.writestr("archive/version", "3\n")


class BigStorage(tf.Storage):
    def __init__(self, key, kind, nbytes):
        super().__init__(key, kind, b"")
        self.nbytes = nbytes


class Pickler(tf.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, BigStorage):
            return ("storage", tf.STORAGES[obj.kind], obj.key, "cpu",
                    obj.nbytes // tf.ELT[obj.kind])
        return None


tf.Pickler = Pickler


def voxtral(d, scale):
    ts = [t for t in manifest("voxtral-4b-tts.manifest") if "/" not in t[0]]
    n = write_safetensors(os.path.join(d, "consolidated.safetensors"), ts, scale)
    os.makedirs(os.path.join(d, "voice_embedding"), exist_ok=True)
    for i, v in enumerate(VOICES):
        s = BigStorage("0", "BFloat16Storage", (100 + i) * 3072 * 2)
        write_torch(os.path.join(d, "voice_embedding", v + ".pt"),
                    tf.Tensor(s, 0, [100 + i, 3072]), [s])
    with open(os.path.join(d, "params.json"), "w") as f:
        json.dump({"dim": 3072, "n_layers": 26, "synthetic": True}, f)
    return n


def helios(d, scale, shard_max=5 * 10**9):
    ts = manifest("helios-transformer.manifest")
    tdir = os.path.join(d, "transformer")
    os.makedirs(tdir, exist_ok=True)
    shards, cur, size = [], [], 0
    for t in ts:
        n = nbytes(t[1], scaled(t[2], scale))
        if cur and size + n > shard_max * max(scale, 1e-9) ** (scale < 1):
            shards.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += n
    shards.append(cur)
    weight_map, total = {}, 0
    for i, sh in enumerate(shards):
        name = "diffusion_pytorch_model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
        total += write_safetensors(os.path.join(tdir, name), sh, scale, seed0=i * 1000)
        for t in sh:
            weight_map[t[0]] = name
    with open(os.path.join(tdir, "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    with open(os.path.join(tdir, "config.json"), "w") as f:
        json.dump({"_class_name": "HeliosTransformer3DModel", "num_layers": 40}, f)
    return total


def nitrogen_layout():
    """A SigLIP2-L-shaped vision tower and a DiT, padded to 493.6 M."""
    t, v = [], "model.vision_encoder.vision_model."
    t.append((v + "embeddings.patch_embedding.weight", [1024, 3, 16, 16]))
    t.append((v + "embeddings.patch_embedding.bias", [1024]))
    t.append((v + "embeddings.position_embedding.weight", [256, 1024]))
    for i in range(24):
        p = v + "encoder.layers.%d." % i
        for m in ("q", "k", "v", "out"):
            t += [(p + "self_attn.%s_proj.weight" % m, [1024, 1024]),
                  (p + "self_attn.%s_proj.bias" % m, [1024])]
        t += [(p + "layer_norm1.weight", [1024]), (p + "layer_norm1.bias", [1024]),
              (p + "mlp.fc1.weight", [4096, 1024]), (p + "mlp.fc1.bias", [4096]),
              (p + "mlp.fc2.weight", [1024, 4096]), (p + "mlp.fc2.bias", [1024]),
              (p + "layer_norm2.weight", [1024]), (p + "layer_norm2.bias", [1024])]
    for i in range(8):
        p = "model.model.transformer_blocks.%d." % i
        t += [(p + "attn1.%s.weight" % m, [1024, 1024]) for m in ("to_q", "to_k", "to_v")]
        t += [(p + "attn1.to_out.0.weight", [1024, 1024]),
              (p + "ff.net.0.proj.weight", [4096, 1024]), (p + "ff.net.2.weight", [1024, 4096]),
              (p + "norm1.linear.weight", [2048, 1024])]
    total = sum(__import__("math").prod(s) for _, s in t)
    t.append(("model.rest.weight", [493600000 - total]))
    return t


def nitrogen(d, scale):
    sd, storages = collections.OrderedDict(), []
    total = 0
    for i, (name, dims) in enumerate(nitrogen_layout()):
        dims = scaled(dims, scale)
        n = nbytes("F32", dims)
        s = BigStorage(str(i), "FloatStorage", n)
        storages.append(s)
        sd[name[len("model."):]] = tf.Tensor(s, 0, dims)
        total += n
    write_torch(os.path.join(d, "ng.pt"), {"model": sd, "step": 100000, "epoch": 3}, storages)
    return total


def main():
    kind, d = sys.argv[1], sys.argv[2]
    scale = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--scale" else 1.0
    os.makedirs(d, exist_ok=True)
    n = {"voxtral": voxtral, "helios": helios, "nitrogen": nitrogen}[kind](d, scale)
    print("%s: %d tensor bytes in %s" % (kind, n, d))


if __name__ == "__main__":
    main()
