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
import math
import struct

import numpy as np

from ..serialization import atomic_write

FORMAT = "neurocore-model"
FORMAT_VERSION = 1


def _json_numbers(obj):
    """JSON has no inf or NaN: they are written as the strings "inf", "-inf" and "nan" (a
    ``masked_fill(mask, -inf)`` fill value), which the runtime reads back as numbers."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _json_numbers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_numbers(v) for v in obj]
    return obj


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
        "neurocore.graph": json.dumps(_json_numbers(graph), separators=(",", ":"), allow_nan=False),
        "neurocore.inputs": json.dumps(inputs, separators=(",", ":")),
        "neurocore.outputs": json.dumps(outputs, separators=(",", ":")),
        "neurocore.data_sha256": hashlib.sha256(data).hexdigest(),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    atomic_write(path, [struct.pack("<Q", len(head)), head, data])

