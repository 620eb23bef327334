"""model.save / keras.models.load_model / save_weights / load_weights, without pickle.

A saved model is a zip file holding config.json (the architecture: each layer's class and
get_config(), and for functional models the layer calls that connect them), metadata.json and
model.weights.safetensors: the weights by their state_dict names in the safetensors layout
(8-byte little-endian header size, JSON header with dtype, shape and byte offsets, raw
little-endian data), written with NumPy. Files are written to a temporary name in the target
folder and renamed, so an interrupted save never leaves a torn file."""
import io
import json
import os
import struct
import zipfile

import numpy as np

from .. import __version__
from .._tensor import no_grad
from ..serialization import atomic_write
from . import layers as layers_mod, optimizers as optimizers_mod, _backend
from .layers.base import InputLayer, KerasTensor, flatten, map_structure

_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
_FROM_CODE = {v: k for k, v in _DTYPES.items()}
FORMAT = "neurocore.keras/1"


# --- weights container -----------------------------------------------------------------------
def weights_bytes(model):
    header, chunks, offset = {"__metadata__": {"format": FORMAT}}, [], 0
    for name, t in model.state_dict().items():
        arr = np.ascontiguousarray(t.detach().numpy())
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def read_weights(blob, what):
    if len(blob) < 8:
        raise ValueError(f"[{what}] not a weights file (too short)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"[{what}] corrupt weights file (header size {n} beyond the file)")
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dtype = _FROM_CODE[info["dtype"]].newbyteorder("<")
        if not 0 <= b <= e <= len(blob) - base:
            raise ValueError(f"[{what}] corrupt weights file (offsets of {name!r} out of range)")
        out[name] = np.frombuffer(blob[base + b:base + e], dtype=dtype).reshape(info["shape"]).astype(
            dtype.newbyteorder("="))
    return out


def assign_weights(model, arrays, what):
    state = model.state_dict(keep_vars=True)
    missing = [k for k in state if k not in arrays]
    unexpected = [k for k in arrays if k not in state]
    if missing or unexpected:
        raise ValueError(f"[{what}] the file's weights do not match the model: missing {missing}, "
                         f"unexpected {unexpected}")
    for k, t in state.items():
        if tuple(arrays[k].shape) != tuple(t.shape):
            raise ValueError(f"[{what}] weight {k!r} has shape {tuple(arrays[k].shape)} in the file, "
                             f"{tuple(t.shape)} in the model")
    with no_grad():
        for k, t in state.items():
            t.copy_(_backend.to_tensor(arrays[k].astype(np.float32) if arrays[k].dtype.kind == "f" else arrays[k]))


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"[save] {path} exists and overwrite=False")


def save_weights(model, filepath, overwrite=True):
    _check_overwrite(filepath, overwrite)
    if not model.built:
        raise ValueError("[save_weights] the model is not built yet: call it or fit it first")
    atomic_write(filepath, [weights_bytes(model)])


def load_weights(model, filepath):
    with open(filepath, "rb") as f:
        blob = f.read()
    if blob[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            blob = z.read("model.weights.safetensors")
    assign_weights(model, read_weights(blob, "load_weights"), "load_weights")


# --- architecture ------------------------------------------------------------------------------
def _layer_entry(layer):
    if not hasattr(layers_mod, type(layer).__name__) or getattr(layers_mod, type(layer).__name__) is not type(layer):
        raise ValueError(f"[save] cannot serialize the custom layer class {type(layer).__name__}; save the weights "
                         "with save_weights() instead")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def sequential_config(model):
    return {"name": model.name, "trainable": model.trainable,
            "batch_input_shape": list(model.input_shape) if model.input_shape is not None else None,
            "layers": [_layer_entry(l) for l in model.layers]}


def _ref(kt):
    layer = kt._node.layer
    return [layer.name, layer._inbound_nodes.index(kt._node) if kt._node in layer._inbound_nodes else 0, kt._index]


def functional_config(model):
    layer_entries, calls = {}, []
    for node in model._nodes:
        layer = node.layer
        if isinstance(layer, InputLayer):
            layer_entries.setdefault(layer.name, {"class_name": "InputLayer", "config": layer.get_config()})
            continue
        layer_entries.setdefault(layer.name, _layer_entry(layer))
        kwargs = {k: v for k, v in node.kwargs.items() if isinstance(v, (bool, int, float, str, type(None)))}
        calls.append({"layer": layer.name, "args": map_structure(
            lambda t: {"ref": _ref(t)} if isinstance(t, KerasTensor) else t, list(node.args)), "kwargs": kwargs})
    return {"name": model.name, "trainable": model.trainable, "layers": list(layer_entries.values()), "calls": calls,
            "inputs": map_structure(lambda t: _ref(t), model._inputs_struct),
            "outputs": map_structure(lambda t: _ref(t), model._outputs_struct)}


def model_config(model):
    from .models import Functional, Sequential
    if isinstance(model, Sequential):
        return {"class_name": "Sequential", "config": sequential_config(model)}
    if isinstance(model, Functional):
        return {"class_name": "Functional", "config": functional_config(model)}
    raise NotImplementedError(f"[save] {type(model).__name__} is a subclassed model, whose architecture is Python "
                              "code: save its weights with save_weights() and rebuild it in code")


def _make_layer(entry, custom_objects):
    name = entry["class_name"]
    cls = (custom_objects or {}).get(name) or getattr(layers_mod, name, None)
    if cls is None:
        raise ValueError(f"[load_model] unknown layer class {name!r}; pass it in custom_objects")
    return cls.from_config(dict(entry["config"]))


def model_from_config(config, custom_objects=None):
    from .models import Functional, Sequential
    kind, cfg = config["class_name"], config["config"]
    if kind == "Sequential":
        model = Sequential(name=cfg["name"])
        if cfg.get("batch_input_shape") is not None:
            model.add(layers_mod.Input(batch_shape=tuple(cfg["batch_input_shape"])))
        for entry in cfg["layers"]:
            entry = dict(entry, config={k: v for k, v in entry["config"].items() if k != "batch_input_shape"})
            model.add(_make_layer(entry, custom_objects))
        return model
    if kind != "Functional":
        raise ValueError(f"[load_model] unknown model class {kind!r}")
    made, outputs = {}, {}
    for entry in cfg["layers"]:
        if entry["class_name"] == "InputLayer":
            c = entry["config"]
            layer = InputLayer(batch_shape=tuple(c["batch_shape"]), dtype=c.get("dtype", "float32"), name=c["name"])
            outputs[layer.name] = [[layer.output]]
        else:
            layer = _make_layer(entry, custom_objects)
            outputs[layer.name] = []
        made[layer.name] = layer

    def resolve(ref):
        name, node_index, tensor_index = ref
        return flatten(outputs[name][node_index])[tensor_index]

    def resolve_args(a):
        if isinstance(a, dict) and "ref" in a:
            return resolve(a["ref"])
        if isinstance(a, list):
            return [resolve_args(v) for v in a]
        return a

    for call in cfg["calls"]:
        args = resolve_args(call["args"])
        out = made[call["layer"]](*args, **call["kwargs"])
        outputs[call["layer"]].append(out)
    def resolve_struct(x):
        return resolve(x) if _is_ref(x) else [resolve_struct(v) for v in x]

    return Functional(resolve_struct(cfg["inputs"]), resolve_struct(cfg["outputs"]), name=cfg["name"])


def _is_ref(x):
    return isinstance(x, list) and len(x) == 3 and isinstance(x[0], str)


def model_to_json(model):
    return json.dumps(model_config(model))


def model_from_json(text, custom_objects=None):
    return model_from_config(json.loads(text), custom_objects)


def save_model(model, filepath, overwrite=True):
    filepath = os.fspath(filepath)
    _check_overwrite(filepath, overwrite)
    config = model_config(model)
    if getattr(model, "compiled", False):
        config["compile_config"] = model._compile_config
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", json.dumps({"format": FORMAT, "neurocore_version": __version__}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.safetensors", weights_bytes(model))
    atomic_write(filepath, [buf.getvalue()])


def load_model(filepath, custom_objects=None, compile=True):
    """The model saved by model.save(filepath), compiled again when it was compiled with
    built-in losses, metrics and optimizer."""
    try:
        with zipfile.ZipFile(filepath) as z:
            config = json.loads(z.read("config.json"))
            blob = z.read("model.weights.safetensors")
    except (zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"[load_model] {filepath} is not a model saved by neurocore.keras ({e})") from None
    model = model_from_config(config, custom_objects)
    assign_weights(model, read_weights(blob, "load_model"), "load_model")
    cc = config.get("compile_config")
    if compile and cc is not None and cc.get("loss") is not None:
        model.compile(optimizer=optimizers_mod.deserialize(cc["optimizer"]), loss=cc["loss"], metrics=cc["metrics"])
    return model


__all__ = ["save_model", "load_model", "save_weights", "load_weights"]
