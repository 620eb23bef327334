"""``nc.save`` / ``nc.load``: a safe file format that never runs code from the file.

A file written by :func:`save` is a safetensors container (the ``safetensors`` package reads its
tensors), laid out as::

    8 bytes      little-endian length N of the header
    N bytes      JSON header: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}, ...,
                               "__metadata__": {"format": "neurocore", "format_version": "1",
                                                "structure": "<JSON>", "sha256": "<hex>",
                                                "header_sha256": "<hex>"}}
    the rest     the data section: each tensor's bytes, C order, little-endian, at [b, e)

``structure`` describes the saved object (dicts with any str/int/float/bool/None/tuple keys,
OrderedDicts, lists, tuples, numbers, strings, None) with tensors by name; ``sha256`` is the
SHA-256 of the data section and ``header_sha256`` that of the rest of the header, so a flipped bit
anywhere is detected. :func:`load` checks the header's bounds, every tensor's dtype, shape and
offsets and both checksums before it builds anything.

:func:`load` also reads PyTorch's ``torch.save`` zip files of tensors, state_dicts and nested
containers, through an unpickler that accepts only an explicit list of globals (no attribute
lookups), and, with an explicit ``weights_only=False``, the pickle files of earlier neurocore versions.

Tensors (and subclasses such as ``nn.Parameter``) also pickle by value, so ``copy.deepcopy(model)``,
``pickle`` and multiprocessing work.
"""
import collections
import contextlib
import hashlib
import io
import json
import math
import mmap as _mmap
import os
import pickle
import secrets
import struct
import warnings
import zipfile

import numpy as np

from ._tensor import Tensor, tensor

__all__ = ["save", "load", "add_safe_globals", "clear_safe_globals", "get_safe_globals", "safe_globals"]

_FORMAT = "neurocore"
_FORMAT_VERSION = 1
# safetensors dtype names; the on-disk byte order is little-endian
_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "BOOL": np.dtype("|b1")}
_DTYPE_NAMES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
                np.dtype(np.bool_): "BOOL"}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors package refuses bigger headers too
_MAX_NDIM = 64
_MAX_BYTES = 2 ** 62  # no tensor's size (with 0 dims counted as 1) may reach this: no 64-bit overflow
_MAX_DEPTH = 500


# --- pickling (deepcopy, multiprocessing, old files) ------------------------------------------------

def _rebuild_tensor(cls, array, requires_grad):
    t = tensor(array)
    if cls is not Tensor:
        return cls(t, requires_grad)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _reduce_ex(self, protocol):
    if not self.is_leaf:
        raise RuntimeError("[save] only leaf tensors can be pickled (a tensor with history has shape "
                           f"{tuple(self.shape)}); call .detach() first")
    return _rebuild_tensor, (type(self), np.asarray(self._numpy_unchecked(), order="C"), self.requires_grad)


def _deepcopy(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    fn, args = _reduce_ex(self, 2)
    copy = fn(*args)
    memo[id(self)] = copy
    return copy


Tensor.__reduce_ex__ = _reduce_ex
Tensor.__deepcopy__ = _deepcopy


# --- save ---------------------------------------------------------------------------------------------

class _Encoder:
    """Turns an object into JSON-able structure, collecting each tensor's data once."""

    def __init__(self):
        self.arrays = {}    # data name -> contiguous little-endian array
        self.by_data = {}   # (data_ptr, dtype, shape, strides) -> data name: aliasing tensors share data
        self.by_object = {}  # id(tensor) -> object index, so one tensor object loads as one object
        self.keep = []      # keeps encoded tensors alive so their ids stay unique
        self.active = set()

    def encode(self, obj, path):
        if obj is None:
            return None
        if isinstance(obj, (bool, np.bool_)):
            return bool(obj)
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            obj = float(obj)
            return obj if math.isfinite(obj) else {"@": "float", "value": repr(obj)}
        if isinstance(obj, Tensor):
            return self._tensor(obj, path)
        if not isinstance(obj, (list, tuple, dict)):
            raise TypeError(f"[save] can't save an object of type {type(obj).__name__} at {_path_str(path)}: "
                            "nc.save stores tensors, dicts, lists, tuples, numbers, strings and None")
        if id(obj) in self.active:
            raise ValueError(f"[save] the object at {_path_str(path)} contains itself")
        if len(path) > _MAX_DEPTH:
            raise ValueError(f"[save] the object is nested more than {_MAX_DEPTH} levels deep")
        self.active.add(id(obj))
        try:
            if isinstance(obj, list):
                return [self.encode(v, path + (i,)) for i, v in enumerate(obj)]
            if isinstance(obj, tuple):
                return {"@": "tuple", "items": [self.encode(v, path + (i,)) for i, v in enumerate(obj)]}
            items = [[self._key(k, path), self.encode(v, path + (k,))] for k, v in obj.items()]
            if not isinstance(obj, collections.OrderedDict):
                return {"@": "dict", "items": items}
            out = {"@": "odict", "items": items}
            if hasattr(obj, "_metadata"):  # PyTorch state_dicts carry per-module versions here
                out["metadata"] = self.encode(obj._metadata, path + ("_metadata",))
            return out
        finally:
            self.active.discard(id(obj))

    def _key(self, key, path):
        if not _is_plain_key(key):
            raise TypeError(f"[save] dict key {key!r} at {_path_str(path)} is not a str, int, float, bool, None "
                            "or a tuple of those")
        return self.encode(key, path)

    def _tensor(self, t, path):
        obj_index = self.by_object.setdefault(id(t), len(self.by_object))
        self.keep.append(t)
        arr = t.detach()._numpy_unchecked()
        key = (t.data_ptr(), arr.dtype.str, tuple(t.shape), tuple(t.stride()))
        name = self.by_data.get(key)
        if name is None:
            name = self._fresh_name(path)
            self.by_data[key] = name
            self.arrays[name] = np.asarray(arr, order="C").astype(arr.dtype.newbyteorder("<"), copy=False)
        from .nn.parameter import Parameter
        return {"@": "tensor", "data": name, "object": obj_index, "requires_grad": bool(t.requires_grad),
                "parameter": isinstance(t, Parameter)}

    def _fresh_name(self, path):
        base = ".".join(str(p) for p in path) or "tensor"
        name, n = base, 1
        while name in self.arrays or name == "__metadata__":
            n += 1
            name = f"{base}#{n}"
        return name


def _is_plain_key(key):
    if key is None or isinstance(key, (str, int, float, np.integer, np.floating)):
        return True
    return isinstance(key, tuple) and all(_is_plain_key(k) for k in key)


def _path_str(path):
    return "the top level" if not path else "obj" + "".join(f"[{p!r}]" for p in path)


def _header_digest(header):
    """SHA-256 of everything in the header except this digest, in a canonical form."""
    meta = {k: v for k, v in header["__metadata__"].items() if k != "header_sha256"}
    canonical = dict(header, __metadata__=meta)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _serialize(obj):
    """(header bytes with its length prefix, list of data chunks) for `obj`."""
    enc = _Encoder()
    structure = enc.encode(obj, ())
    # wider dtypes first: every tensor then starts at a multiple of its item size
    names = sorted(enc.arrays, key=lambda n: -enc.arrays[n].dtype.itemsize)
    header, chunks, offset, digest = {}, [], 0, hashlib.sha256()
    for name in names:
        arr = enc.arrays[name]
        chunk = arr.reshape(-1).view(np.uint8)
        header[name] = {"dtype": _DTYPE_NAMES[arr.dtype.newbyteorder("=")], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + chunk.size]}
        offset += chunk.size
        digest.update(chunk)
        chunks.append(chunk)
    header["__metadata__"] = {"format": _FORMAT, "format_version": str(_FORMAT_VERSION),
                              "structure": json.dumps(structure, separators=(",", ":"), allow_nan=False),
                              "sha256": digest.hexdigest()}
    header["__metadata__"]["header_sha256"] = _header_digest(header)
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad as safetensors does: the data section starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text, chunks


def save(obj, f):
    """Saves `obj` to a path or a binary file object.

    `obj` may be a tensor, a state_dict (of a module or an optimizer) or any nesting of dicts,
    OrderedDicts, lists and tuples of tensors, numbers, strings, booleans and None. A tensor is
    stored once however often it appears; a view is stored as its own contiguous data.

    With a path, the file is written to a temporary file in the same folder, flushed to disk and
    renamed over `f`, so a crash mid-write leaves any earlier file at `f` intact.
    """
    head, chunks = _serialize(obj)
    if not isinstance(f, (str, os.PathLike)):
        f.write(head)
        for chunk in chunks:
            f.write(chunk)
        return
    atomic_write(f, [head, *chunks])


def atomic_write(path, chunks):
    """Writes the byte strings `chunks` to `path` through a temporary file in the same folder,
    flushed to disk and renamed over `path` (through a symlink: its target), so a crash mid-write
    leaves any earlier file at `path` intact. Used by nc.save, nc.export and keras saving."""
    path = os.path.realpath(os.fspath(path))
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every OS)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- load: common -------------------------------------------------------------------------------------

class _LoadError(RuntimeError):
    """A file that is corrupted, truncated or not in a format nc.load reads."""


def _fail(where, msg):
    raise _LoadError(f"[load] {where}: {msg}")


class _CpuStorage:
    """What a `map_location` callable receives: it may return it (or ``.cpu()`` of it) or None."""

    def __init__(self, location):
        self.location = location
        self.device = "cpu"

    def cpu(self):
        return self

    def cuda(self, *args, **kwargs):
        raise RuntimeError(f"[load] map_location moves a storage saved on '{self.location}' to CUDA, "
                           "but neurocore runs on the CPU only; use map_location='cpu' or leave it out")

    def to(self, device, *args, **kwargs):
        _check_cpu(device, device)
        return self


def _check_cpu(target, what):
    name = getattr(target, "type", target)  # torch.device-like objects have .type
    if not isinstance(name, str) or name.split(":", 1)[0] != "cpu":
        raise RuntimeError(f"[load] map_location {what!r} moves tensors to {str(target)!r}, but neurocore runs "
                           "on the CPU only; use map_location='cpu' or leave it out")


def _apply_map_location(map_location, location):
    """Checks that `map_location` sends a storage saved at `location` to the CPU."""
    if map_location is None:
        return
    if isinstance(map_location, dict):
        target = map_location.get(location, location)
        if target is not location:
            _check_cpu(target, map_location)
    elif callable(map_location) and not hasattr(map_location, "type"):
        result = map_location(_CpuStorage(location), location)
        if result is not None and not isinstance(result, _CpuStorage):
            _check_cpu(result, map_location)
    else:
        _check_cpu(map_location, map_location)


def _validate_map_location(map_location):
    if map_location is None or callable(map_location) and not hasattr(map_location, "type"):
        return
    if isinstance(map_location, dict):
        for target in map_location.values():
            _check_cpu(target, map_location)
        return
    if not isinstance(map_location, str) and not hasattr(map_location, "type"):
        raise TypeError(f"[load] map_location must be None, a str, a device, a dict or a callable, "
                        f"got {type(map_location).__name__}")
    _check_cpu(map_location, map_location)


class _Source:
    """The bytes of the file being loaded: read whole, or memory-mapped with `mmap=True`."""

    def __init__(self, f, use_mmap):
        self.where, self.path, self._map = None, None, None
        if isinstance(f, (str, os.PathLike)):
            self.path = os.fspath(f)
            self.where = self.path
            with open(self.path, "rb") as fh:
                if use_mmap and os.fstat(fh.fileno()).st_size > 0:
                    self._map = _mmap.mmap(fh.fileno(), 0, access=_mmap.ACCESS_READ)
                    self.data = memoryview(self._map)
                else:
                    self.data = memoryview(fh.read())
        else:
            if use_mmap:
                raise ValueError("[load] mmap=True needs a file path, not a file object")
            name = getattr(f, "name", None)
            self.where = repr(name) if isinstance(name, (str, bytes, int)) else f"<{type(f).__name__}>"
            raw = f.read()
            if not isinstance(raw, (bytes, bytearray)):
                raise TypeError(f"[load] {self.where}: expected a binary file object, read {type(raw).__name__}")
            self.data = memoryview(raw)

    def close(self):
        self.data = None
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a view still alive: the mapping closes when it goes
                self._map.close()


def load(f, map_location=None, *, weights_only=True, mmap=None):
    """Loads an object saved by :func:`save` (or by ``torch.save``) from a path or binary file object.

    Nothing in the file is executed: neurocore files are checked (header bounds, each tensor's dtype,
    shape and offsets, the SHA-256 of the header and of the data) before anything is built, and
    PyTorch zip files are read with an unpickler that builds only tensors, parameters and
    OrderedDicts (extend it with :func:`add_safe_globals`). Tensors are always loaded on the CPU, as
    their own copies of the file's data.

    Args:
        f: a path (str or os.PathLike) or a binary file object.
        map_location: None, 'cpu', a torch.device-like object whose type is 'cpu', a dict mapping
            saved locations to such devices, or a callable ``(storage, location) -> storage``. Anything
            that moves tensors elsewhere (CUDA) raises, since neurocore runs on the CPU only. Default: None.
        weights_only (bool): refuse anything that could run code. ``False`` also reads the pickle
            files of earlier neurocore versions (whose nc.save pickled) and lets PyTorch files name
            any global: only for files you trust. Default: ``True``.
        mmap (bool): map the file into memory instead of reading it whole (needs a path). Default: None.
    """
    _validate_map_location(map_location)
    if weights_only is None:
        weights_only = True
    src = _Source(f, bool(mmap))
    try:
        data = src.data
        # A neurocore file starts with its header length, whose low byte may look like a pickle's or
        # a zip's first byte: recognise it by its length and "{" first.
        looks_like_container = len(data) >= 9 and struct.unpack("<Q", data[:8])[0] <= len(data) - 8 and \
            data[8:9] == b"{"
        if not looks_like_container and data[:4] == b"PK\x03\x04":
            return _load_torch_zip(src, map_location, weights_only)
        if not looks_like_container and data[:1] == b"\x80":
            return _load_pickle(src, weights_only)
        return _load_container(src, map_location)
    finally:
        src.close()


# --- load: the neurocore format ---------------------------------------------------------------------

def _reject_constant(name):
    raise ValueError(f"invalid JSON constant {name}")


def _unique_object(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _strict_json(text, where, what):
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
    except RecursionError:
        _fail(where, f"the {what} is nested too deeply")
    except (ValueError, UnicodeDecodeError) as ex:
        _fail(where, f"the {what} is not valid JSON ({ex}): file is corrupted")


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _read_header(data, where):
    size = len(data)
    if size < 8:
        _fail(where, f"file is truncated ({size} bytes; a neurocore file starts with an 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > size - 8:
        _fail(where, f"the header length {n} runs past the end of the file ({size} bytes): file is truncated "
                     "or not a neurocore file")
    if n > _MAX_HEADER:
        _fail(where, f"the header length {n} is over the limit of {_MAX_HEADER} bytes")
    raw = bytes(data[8:8 + n])
    if not raw.startswith(b"{"):
        _fail(where, "bad magic: not a neurocore file (nor a PyTorch zip or pickle file)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail(where, "the header is not valid UTF-8: file is corrupted")
    header = _strict_json(text, where, "header")
    if not isinstance(header, dict):
        _fail(where, "the header is not a JSON object: file is corrupted")
    return header, 8 + n


def _check_metadata(header, where):
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        _fail(where, "the header has no __metadata__ with string values: not a neurocore file")
    if meta.get("format") != _FORMAT:
        _fail(where, f"__metadata__ format is {meta.get('format')!r}, not {_FORMAT!r}: not a neurocore file "
                     "(a plain safetensors file is read with the safetensors package)")
    version = meta.get("format_version", "")
    if not version.isdigit() or not version.isascii():
        _fail(where, f"the format version {version!r} is not a number: file is corrupted")
    if int(version) > _FORMAT_VERSION:
        _fail(where, f"the file has format version {int(version)}, newer than the {_FORMAT_VERSION} this "
                     "neurocore reads: upgrade neurocore")
    if int(version) != _FORMAT_VERSION:
        _fail(where, f"unsupported format version {int(version)}")
    for key in ("structure", "sha256", "header_sha256"):
        if key not in meta:
            _fail(where, f"__metadata__ has no {key!r}: file is corrupted")
    return meta


def _check_tensor_table(header, data_len, where):
    """{name: (dtype, shape, begin, end)} after checking every entry against the data section."""
    table = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            _fail(where, f"tensor {name!r}: entry must have exactly dtype, shape and data_offsets, got {entry!r:.200}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            _fail(where, f"tensor {name!r} has unknown dtype {dtype!r:.50} (neurocore reads "
                         f"{', '.join(_DTYPES)})")
        if not isinstance(shape, list) or len(shape) > _MAX_NDIM or \
                not all(_is_int(d) and d >= 0 for d in shape):
            _fail(where, f"tensor {name!r} has invalid shape {shape!r:.200} (a list of at most {_MAX_NDIM} "
                         "non-negative integers)")
        itemsize = _DTYPES[dtype].itemsize
        if math.prod(max(d, 1) for d in shape) * itemsize >= _MAX_BYTES:
            _fail(where, f"tensor {name!r} has shape {tuple(shape)} whose size overflows")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
            _fail(where, f"tensor {name!r} has invalid data_offsets {offsets!r:.200} (two integers)")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            _fail(where, f"tensor {name!r} has data_offsets [{begin}, {end}] outside the data section of "
                         f"{data_len} bytes: file is truncated or corrupted")
        nbytes = math.prod(shape) * itemsize
        if end - begin != nbytes:
            _fail(where, f"tensor {name!r} of dtype {dtype} and shape {tuple(shape)} needs {nbytes} bytes, but "
                         f"its data_offsets [{begin}, {end}] hold {end - begin}")
        table[name] = (_DTYPES[dtype], tuple(shape), begin, end)
    previous_end, previous = 0, None
    for name, (_, _, begin, end) in sorted(table.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin < previous_end:
            _fail(where, f"tensors {previous!r} and {name!r} overlap in the data section: file is corrupted")
        if end > begin:
            previous_end, previous = end, name
    return table


def _load_container(src, map_location):
    data, where = src.data, src.where
    header, start = _read_header(data, where)
    meta = _check_metadata(header, where)
    body = data[start:]
    table = _check_tensor_table(header, len(body), where)
    if hashlib.sha256(body).hexdigest() != meta["sha256"]:
        _fail(where, "data checksum mismatch: file is corrupted")
    if _header_digest(header) != meta["header_sha256"]:
        _fail(where, "header checksum mismatch: file is corrupted")
    structure = _strict_json(meta["structure"], where, "structure")
    _apply_map_location(map_location, "cpu")
    return _Decoder(body, table, where).decode(structure, 0)


class _Decoder:
    """Builds the saved object from the (already verified) structure; only containers and tensors."""

    def __init__(self, body, table, where):
        self.body, self.table, self.where = body, table, where
        self.bases = {}    # data name -> the tensor first built from it
        self.objects = {}  # object index -> tensor object

    def fail(self, msg):
        _fail(self.where, f"invalid structure: {msg}")

    def decode(self, node, depth):
        if depth > _MAX_DEPTH:
            self.fail(f"nested more than {_MAX_DEPTH} levels deep")
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        tag = node.get("@")
        if tag == "float" and set(node) == {"@", "value"} and node["value"] in ("nan", "inf", "-inf"):
            return float(node["value"])
        if tag == "tuple" and set(node) == {"@", "items"} and isinstance(node["items"], list):
            return tuple(self.decode(v, depth + 1) for v in node["items"])
        if tag in ("dict", "odict") and isinstance(node.get("items"), list) and \
                set(node) <= {"@", "items", "metadata"} and (tag == "odict" or "metadata" not in node):
            out = {} if tag == "dict" else collections.OrderedDict()
            for pair in node["items"]:
                if not isinstance(pair, list) or len(pair) != 2:
                    self.fail(f"dict item {pair!r:.100} is not a [key, value] pair")
                key = self.decode(pair[0], depth + 1)
                if not _is_plain_key(key):
                    self.fail(f"dict key {key!r:.100} is not a str, int, float, bool, None or tuple of those")
                out[key] = self.decode(pair[1], depth + 1)
            if "metadata" in node:
                out._metadata = self.decode(node["metadata"], depth + 1)
            return out
        if tag == "tensor":
            return self.tensor(node)
        return self.fail(f"unknown node {node!r:.100}")

    def tensor(self, node):
        if set(node) != {"@", "data", "object", "requires_grad", "parameter"} or \
                not isinstance(node["data"], str) or not _is_int(node["object"]) or \
                not isinstance(node["requires_grad"], bool) or not isinstance(node["parameter"], bool):
            self.fail(f"bad tensor node {node!r:.200}")
        if node["object"] in self.objects:
            return self.objects[node["object"]]
        name = node["data"]
        if name not in self.table:
            self.fail(f"tensor node refers to {name!r}, which is not in the header")
        if name in self.bases:
            t = self.bases[name].detach()  # another object over the same data: share memory
        else:
            dtype, shape, begin, end = self.table[name]
            arr = np.frombuffer(self.body[begin:end], dtype=dtype).reshape(shape) if end > begin \
                else np.empty(shape, dtype)
            if dtype == np.bool_ and arr.view(np.uint8).max(initial=0) > 1:
                _fail(self.where, f"bool tensor {name!r} holds bytes other than 0 and 1: file is corrupted")
            t = tensor(arr.astype(dtype.newbyteorder("=")))  # a writeable copy: the file's bytes are read-only
            self.bases[name] = t
        if node["requires_grad"] and not t.dtype.is_floating_point:
            self.fail(f"tensor {name!r} of dtype {t.dtype} can't require gradients")
        if node["parameter"]:
            from .nn.parameter import Parameter
            t = Parameter(t, node["requires_grad"])
        elif node["requires_grad"]:
            t.requires_grad_(True)
        self.objects[node["object"]] = t
        return t


# --- load: pickle files of earlier neurocore versions ----------------------------------------------

def _load_pickle(src, weights_only):
    if weights_only:
        raise pickle.UnpicklingError(
            f"[load] {src.where} is a pickle file (from an earlier neurocore version, whose nc.save pickled, "
            "or from pickle): loading it can run any code in it, so weights_only=True refuses it. If you trust "
            "the file, load it with weights_only=False and save it again with nc.save")
    warnings.warn(f"[load] {src.where} is a pickle file written by an earlier neurocore version; it is being "
                  "loaded with pickle (weights_only=False), which runs any code in it. Save it again with "
                  "nc.save to get the safe format.", UserWarning, stacklevel=3)
    return pickle.loads(src.data)


# --- load: PyTorch zip files --------------------------------------------------------------------------

_user_safe_globals = {}  # "module.name" -> object


def _global_name(obj):
    return f"{obj.__module__}.{obj.__qualname__}"


def add_safe_globals(safe_globals):
    """Allows PyTorch files loaded with weights_only=True to name these globals (as in PyTorch).

    Args:
        safe_globals (list): objects (classes, functions), or ``(object, "module.name")`` pairs for
            objects saved under another name.
    """
    for entry in safe_globals:
        obj, name = entry if isinstance(entry, tuple) else (entry, _global_name(entry))
        if not isinstance(name, str):
            raise TypeError(f"[add_safe_globals] expected an object or (object, str), got {entry!r}")
        _user_safe_globals[name] = obj


def get_safe_globals():
    """The globals added with :func:`add_safe_globals`, as ``(object, "module.name")`` pairs."""
    return [(obj, name) for name, obj in _user_safe_globals.items()]


def clear_safe_globals():
    """Forgets every global added with :func:`add_safe_globals`."""
    _user_safe_globals.clear()


@contextlib.contextmanager
def safe_globals(globals_list):
    """Context manager: :func:`add_safe_globals` for the duration of the block only."""
    saved = dict(_user_safe_globals)
    add_safe_globals(globals_list)
    try:
        yield
    finally:
        _user_safe_globals.clear()
        _user_safe_globals.update(saved)


class _StorageType:
    """Stands for ``torch.FloatStorage`` and the like: the dtype of a storage in the zip."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, np.dtype(dtype)

    def __repr__(self):
        return f"torch.{self.name}"


_STORAGE_TYPES = {name: _StorageType(name, dtype) for name, dtype in [
    ("FloatStorage", "<f4"), ("DoubleStorage", "<f8"), ("LongStorage", "<i8"), ("BoolStorage", "|b1"),
    ("IntStorage", "<i4"), ("ShortStorage", "<i2"), ("CharStorage", "|i1"), ("ByteStorage", "|u1"),
    ("HalfStorage", "<f2"), ("BFloat16Storage", "<u2")]}


class _Storage:
    """A storage read from the zip: a flat array of its dtype."""

    def __init__(self, storage_type, array):
        self.storage_type, self.array = storage_type, array


def _check_tensor_geometry(numel, offset, size, stride):
    """The message for a view (offset, size, stride) that reads outside a storage of `numel` items."""
    if not _is_int(offset) or not isinstance(size, tuple) or not isinstance(stride, tuple) or \
            not all(_is_int(v) for v in size + stride):
        return f"bad tensor arguments offset={offset!r:.50}, size={size!r:.100}, stride={stride!r:.100}"
    if len(size) != len(stride) or len(size) > _MAX_NDIM:
        return f"size {size} and stride {stride} differ in length or have over {_MAX_NDIM} dims"
    if offset < 0 or any(d < 0 for d in size) or any(s < 0 for s in stride):
        return f"negative offset, size or stride (offset={offset}, size={size}, stride={stride})"
    if math.prod(max(d, 1) for d in size) * 8 >= _MAX_BYTES:
        return f"size {size} overflows"
    if math.prod(size) and offset + sum((d - 1) * s for d, s in zip(size, stride)) >= numel:
        return f"the view (offset={offset}, size={size}, stride={stride}) reads past its storage of {numel} items"
    return None


class _TorchUnpickler(pickle._Unpickler):
    """Reads data.pkl of a PyTorch zip file. Only the globals in `_ALLOWED` (exact module and name,
    mapped to neurocore-side constructors) and those added with add_safe_globals can be named;
    BUILD only sets attributes of OrderedDicts (PyTorch keeps ``_metadata`` there)."""

    def __init__(self, file, zf, prefix, where, map_location, weights_only, big_endian, file_size):
        super().__init__(file, encoding="utf-8")
        self.zf, self.prefix, self.where, self.file_size = zf, prefix, where, file_size
        self.map_location, self.weights_only, self.big_endian = map_location, weights_only, big_endian
        self.storages = {}
        self._allowed = {("collections", "OrderedDict"): collections.OrderedDict,
                         ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
                         ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
                         ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter}
        self._allowed.update({("torch", name): st for name, st in _STORAGE_TYPES.items()})

    def find_class(self, module, name):
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        full = f"{module}.{name}"
        if "." not in name and full in _user_safe_globals:
            return _user_safe_globals[full]
        if not self.weights_only:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"[load] {self.where}: weights_only=True refuses the global {full!r} in the file's pickle. If you "
            "trust the file, allow it with nc.serialization.add_safe_globals([...]) or pass weights_only=False")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"[load] {self.where}: unsupported persistent id {pid!r:.100}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not key.isdigit() or \
                not isinstance(location, str) or not _is_int(numel) or numel < 0:
            raise pickle.UnpicklingError(f"[load] {self.where}: bad storage record {pid!r:.200}")
        if key in self.storages:
            return self.storages[key]
        _apply_map_location(self.map_location, location)
        name = f"{self.prefix}/data/{key}"
        nbytes = numel * storage_type.dtype.itemsize
        raw = _zip_entry(self.zf, name, self.where, min(nbytes, self.file_size))
        if len(raw) != nbytes:
            _fail(self.where, f"storage {name} holds {len(raw)} bytes, its {numel} items of {storage_type!r} "
                              f"need {nbytes}")
        dtype = storage_type.dtype.newbyteorder(">") if self.big_endian else storage_type.dtype
        storage = _Storage(storage_type, np.frombuffer(raw, dtype=dtype, count=numel))
        self.storages[key] = storage
        return storage

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError(f"[load] {self.where}: a tensor is built from {type(storage).__name__}, "
                                         "not a storage")
        problem = _check_tensor_geometry(storage.array.size, storage_offset, size, stride)
        if problem:
            raise _LoadError(f"[load] {self.where}: {problem}")
        arr = storage.array
        view = np.lib.stride_tricks.as_strided(arr[storage_offset:], shape=size,
                                               strides=tuple(s * arr.itemsize for s in stride), writeable=False) \
            if math.prod(size) else np.empty(size, arr.dtype)
        view = np.asarray(view, order="C")
        if storage.storage_type.name == "BFloat16Storage":  # the top half of a float32
            return tensor((view.astype(np.uint32) << 16).view(np.float32))
        if view.dtype == np.bool_ and view.view(np.uint8).max(initial=0) > 1:
            raise _LoadError(f"[load] {self.where}: a bool storage holds bytes other than 0 and 1")
        return tensor(view.astype(view.dtype.newbyteorder("=")))  # a writeable copy; narrower dtypes widen

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad, backward_hooks,
                           metadata=None):
        t = self._rebuild_tensor(storage, storage_offset, size, stride)
        if requires_grad is True and t.dtype.is_floating_point:
            t.requires_grad_(True)
        return t

    def _rebuild_parameter(self, data, requires_grad, backward_hooks):
        from .nn.parameter import Parameter
        if not isinstance(data, Tensor) or not isinstance(requires_grad, bool):
            raise pickle.UnpicklingError(f"[load] {self.where}: bad parameter record")
        return Parameter(data.detach(), requires_grad and data.dtype.is_floating_point)

    def load_build(self):
        inst, state = self.stack[-2], self.stack[-1]
        if type(inst) is collections.OrderedDict and isinstance(state, dict) and \
                all(isinstance(k, str) for k in state):
            self.stack.pop()
            inst.__dict__.update(state)  # PyTorch's state_dict._metadata
            return
        if self.weights_only and not any(type(inst) is g for g in _user_safe_globals.values()):
            raise pickle.UnpicklingError(f"[load] {self.where}: weights_only=True refuses to set the state of "
                                         f"a {type(inst).__name__}")
        super().load_build()

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


def _zip_entry(zf, name, where, limit):
    """The bytes of one stored (uncompressed, as PyTorch writes) zip entry of at most `limit` bytes."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        _fail(where, f"{name} is missing from the zip file")
    if info.compress_type != zipfile.ZIP_STORED:
        _fail(where, f"{name} is compressed; PyTorch stores its entries uncompressed")
    if info.file_size > limit:
        _fail(where, f"{name} declares {info.file_size} bytes, more than the {limit} it can hold")
    try:
        return zf.read(name)
    except Exception as ex:  # noqa: BLE001 - zipfile raises many types for damaged archives
        _fail(where, f"{name} can't be read ({type(ex).__name__}: {ex}): file is corrupted")


def _load_torch_zip(src, map_location, weights_only):
    where, size = src.where, len(src.data)
    try:
        zf = zipfile.ZipFile(src.path if src.path is not None else io.BytesIO(src.data))
        names = zf.namelist()
    except Exception as ex:  # noqa: BLE001 - zipfile raises many types for damaged archives
        _fail(where, f"not a valid PyTorch zip file ({type(ex).__name__}: {ex})")
    with zf:
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            _fail(where, "a zip file without exactly one <name>/data.pkl: not a PyTorch file")
        prefix = pkl[0].split("/")[0]
        byteorder = _zip_entry(zf, f"{prefix}/byteorder", where, 16).strip() \
            if f"{prefix}/byteorder" in names else b"little"
        if byteorder not in (b"little", b"big"):
            _fail(where, f"unknown byteorder {byteorder!r:.20}")
        unpickler = _TorchUnpickler(io.BytesIO(_zip_entry(zf, pkl[0], where, size)), zf, prefix, where,
                                    map_location, weights_only, byteorder == b"big", size)
        try:
            return unpickler.load()
        except RecursionError:
            _fail(where, "the PyTorch file's pickle is nested too deeply")
        except Exception as ex:  # noqa: BLE001 - any other failure of a malformed pickle, with the path
            if "[load]" in str(ex):
                raise
            _fail(where, f"malformed pickle in the PyTorch file ({type(ex).__name__}: {ex})")
