"""The model file: one safetensors file.

    8 bytes   little-endian u64: length of the JSON header
    header    JSON: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...],
              "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
    data      the tensors' bytes, back to back, no holes

The weights are the tensors. ``__metadata__`` holds, as JSON strings: ``neurocore.format``
("neurocore-model"), ``neurocore.format_version``, ``neurocore.graph``, ``neurocore.inputs``,
``neurocore.outputs`` (names, shapes with -1 for a dynamic batch, dtypes) and
``neurocore.data_sha256`` (SHA-256 of the data section). Plain safetensors readers load the
weights; the C++ runtime verifies everything before it runs anything.
"""
import hashlib
import json
import os
import struct
import tempfile

import numpy as np

FORMAT = "neurocore-model"
FORMAT_VERSION = 1


def write(path, weights, graph, inputs, outputs):
    """Writes the file atomically (temporary file in the same folder, then os.replace)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(weights):
        arr = np.ascontiguousarray(weights[name], dtype=np.float32)
        data = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    data = b"".join(chunks)
    header["__metadata__"] = {
        "neurocore.format": FORMAT,
        "neurocore.format_version": str(FORMAT_VERSION),
        "neurocore.graph": json.dumps(graph, separators=(",", ":")),
        "neurocore.inputs": json.dumps(inputs, separators=(",", ":")),
        "neurocore.outputs": json.dumps(outputs, separators=(",", ":")),
        "neurocore.data_sha256": hashlib.sha256(data).hexdigest(),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".ncm")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_header(path):
    """(header dict, data offset) of a model file, for inspection; the runtime does the real checks."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"[export.load] {path}: file too short for a safetensors header")
        (n,) = struct.unpack("<Q", raw)
        size = os.fstat(f.fileno()).st_size
        if n > size - 8:
            raise ValueError(f"[export.load] {path}: header length {n} exceeds the file size {size}")
        header = json.loads(f.read(n))
    return header, 8 + n
