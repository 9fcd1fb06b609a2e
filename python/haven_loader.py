"""Haven's GPU loader from Python: ctypes over libhavenload.so, no compiler.

    import haven_loader
    model = haven_loader.load("BestWishYsh/Helios-Distilled",
                              endpoint="http://haven.local:8080", device=0)
    print(model.report["gpu"]["gbps"])
    state_dict = model.state_dict()          # {name: torch.Tensor on cuda:0}
    net.load_state_dict(state_dict, assign=True)

`load` runs the same steps as `haven load` (integrity, structure, manifest,
plan, pipelined copy, device checks) and keeps the tensors on the device.
`state_dict()` hands them to PyTorch without a copy: each tensor is wrapped
in a DLPack capsule (a DLManagedTensor built here with ctypes) and taken by
torch.utils.dlpack.from_dlpack, so the torch tensor aliases the memory
Haven allocated in the device's primary context (the same context the CUDA
runtime, and so PyTorch, uses). The memory is released when the last of
those tensors and the LoadedModel object are gone.

Tensors streamed by an offload plan live in pinned host memory and are not
exported; state_dict() lists them in `model.streamed`.

The library is found through $HAVEN_LOADER_LIB, else next to the `haven`
binary's install (PREFIX/lib/haven/libhavenload.so), else by the linker.
Only the standard library is needed to import this module; torch is needed
for state_dict().
"""

import ctypes
import json
import os

__all__ = ["load", "LoadedModel", "HavenLoadError", "DLPACK_DTYPES"]

# DLPack type codes: kDLInt 0, kDLUInt 1, kDLFloat 2, kDLBfloat 4,
# kDLComplex 5, kDLBool 6. Values: (code, bits).
DLPACK_DTYPES = {
    "BOOL": (6, 8), "U8": (1, 8), "I8": (0, 8), "I16": (0, 16),
    "U16": (1, 16), "I32": (0, 32), "U32": (1, 32), "I64": (0, 64),
    "U64": (1, 64), "F16": (2, 16), "BF16": (4, 16), "F32": (2, 32),
    "F64": (2, 64), "C64": (5, 64),
    # float8 kinds have no DLPack code shared by every torch version; they
    # are exported as raw bytes (U8) and can be viewed with .view(dtype).
    "F8_E4M3": (1, 8), "F8_E5M2": (1, 8),
}
KDL_CUDA = 2


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice),
                ("ndim", ctypes.c_int32), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    pass


DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [("dl_tensor", DLTensor),
                            ("manager_ctx", ctypes.c_void_p),
                            ("deleter", DELETER)]


class HavenLoadError(RuntimeError):
    """A load that failed; .report holds the report when there is one."""

    def __init__(self, msg, report=None):
        super().__init__(msg)
        self.report = report


def _find_library():
    env = os.environ.get("HAVEN_LOADER_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "libhavenload.so"),
                 os.path.join(here, "..", "lib", "haven", "libhavenload.so"),
                 "/usr/local/lib/haven/libhavenload.so",
                 "/usr/lib/haven/libhavenload.so"):
        if os.path.exists(cand):
            return cand
    return "libhavenload.so"


_lib = None


def _library():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(_find_library())
        lib.haven_load_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                        ctypes.c_char_p, ctypes.c_size_t]
        lib.haven_load_open.restype = ctypes.c_int
        lib.haven_load_report.argtypes = [ctypes.c_void_p]
        lib.haven_load_report.restype = ctypes.c_char_p
        lib.haven_load_count.argtypes = [ctypes.c_void_p]
        lib.haven_load_count.restype = ctypes.c_size_t
        lib.haven_load_tensor.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_uint64),
            ctypes.POINTER(ctypes.c_uint64)]
        lib.haven_load_tensor.restype = ctypes.c_int
        lib.haven_load_close.argtypes = [ctypes.c_void_p]
        lib.haven_load_close.restype = None
        _lib = lib
    return _lib


def options(repo, endpoint=None, data=None, revision=None, device=0, plan="auto",
            vram_limit=0, dry_run=False, manifests=None, manifest=None, only=None,
            cache=None, readers=0, parallel=0, require_gpu=False, trust_blobs=False):
    """The JSON options of haven_load_open, checked here first."""
    if (endpoint is None) == (data is None):
        raise ValueError("give exactly one of endpoint= and data=")
    if plan not in ("auto", "resident", "offload"):
        raise ValueError("plan must be auto, resident or offload")
    o = {"repo": repo, "device": int(device), "plan": plan,
         "vram_limit": int(vram_limit), "dry_run": bool(dry_run),
         "require_gpu": bool(require_gpu), "readers": int(readers),
         "parallel": int(parallel), "keep": True, "trust_blobs": bool(trust_blobs)}
    for k, v in (("endpoint", endpoint), ("data", data), ("revision", revision),
                 ("manifests", manifests), ("manifest", manifest), ("only", only),
                 ("cache", cache)):
        if v is not None:
            o[k] = str(v)
    return json.dumps(o)


class TensorInfo:
    __slots__ = ("name", "dtype", "shape", "nbytes", "dptr")

    def __init__(self, name, dtype, shape, nbytes, dptr):
        self.name, self.dtype, self.shape = name, dtype, shape
        self.nbytes, self.dptr = nbytes, dptr

    def __repr__(self):
        return "TensorInfo(%r, %s, %r, on device: %s)" % (
            self.name, self.dtype, self.shape, bool(self.dptr))


class LoadedModel:
    """A finished load: .report (dict), .tensors (list of TensorInfo)."""

    def __init__(self, handle, report, device):
        self._handle = handle
        self._live = 1          # this object + every exported tensor
        self._keep = []         # ctypes objects torch still points into
        self.report = report
        self.device = device
        self.tensors = []
        lib = _library()
        for i in range(lib.haven_load_count(handle)):
            name, dtype = ctypes.c_char_p(), ctypes.c_char_p()
            ndim = ctypes.c_int()
            shape = (ctypes.c_int64 * 8)()
            nbytes, dptr = ctypes.c_uint64(), ctypes.c_uint64()
            if lib.haven_load_tensor(handle, i, ctypes.byref(name), ctypes.byref(dtype),
                                     ctypes.byref(ndim), shape, ctypes.byref(nbytes),
                                     ctypes.byref(dptr)) == 0:
                self.tensors.append(TensorInfo(name.value.decode(), dtype.value.decode(),
                                               tuple(shape[:ndim.value]), nbytes.value,
                                               dptr.value))
        self.streamed = [t.name for t in self.tensors if not t.dptr]

    def _release(self):
        self._live -= 1
        if self._live == 0 and self._handle:
            _library().haven_load_close(self._handle)
            self._handle = None
            self._keep.clear()

    def close(self):
        """Drops this object's hold; memory goes when no tensor uses it."""
        if self._handle is not None and self._live > 0:
            self._release()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def dlpack_capsule(self, t):
        """A DLPack capsule aliasing tensor t's device memory."""
        if not t.dptr:
            raise ValueError("%s is not on the device (offloaded)" % t.name)
        code, bits = DLPACK_DTYPES[t.dtype]
        shape = (ctypes.c_int64 * max(len(t.shape), 1))(*t.shape)
        m = DLManagedTensor()
        m.dl_tensor.data = t.dptr
        m.dl_tensor.device = DLDevice(KDL_CUDA, self.device)
        m.dl_tensor.ndim = len(t.shape)
        m.dl_tensor.dtype = DLDataType(code, bits, 1)
        m.dl_tensor.shape = shape
        m.dl_tensor.strides = None          # compact row-major
        m.dl_tensor.byte_offset = 0

        def deleter(_ptr, self=self, keep=(m, shape)):
            self._release()
        cb = DELETER(deleter)
        m.deleter = cb
        self._keep.append((m, shape, cb))
        self._live += 1
        pyapi = ctypes.pythonapi
        pyapi.PyCapsule_New.restype = ctypes.py_object
        pyapi.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return pyapi.PyCapsule_New(ctypes.addressof(m), b"dltensor", None)

    def state_dict(self):
        """{name: torch.Tensor} on cuda:<device>, zero-copy (needs torch)."""
        from torch.utils.dlpack import from_dlpack
        return {t.name: from_dlpack(self.dlpack_capsule(t))
                for t in self.tensors if t.dptr}


def load(repo, **kw):
    """Runs `haven load` in-process; returns a LoadedModel or raises
    HavenLoadError (with .report when the load got far enough)."""
    lib = _library()
    handle = ctypes.c_void_p()
    err = ctypes.create_string_buffer(256)
    rc = lib.haven_load_open(ctypes.byref(handle), options(repo, **kw).encode(), err, 256)
    report = None
    if handle.value:
        report = json.loads(lib.haven_load_report(handle).decode())
    if rc != 0:
        if handle.value:
            lib.haven_load_close(handle)
        raise HavenLoadError(err.value.decode() or "load failed (%d)" % rc, report)
    return LoadedModel(handle.value, report, int(kw.get("device", 0)))
