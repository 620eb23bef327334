"""model.summary() in Keras 3's layout: the same table (drawn as the `rich` package draws it for
Keras: heavy header, a rule between rows, column widths from `positions` of the line length and
shrunk evenly to fit), the same totals with sizes in bytes, and 'Optimizer params' once the
optimizer holds state."""
import math
import shutil

from .layers.base import InputLayer, KerasTensor, flatten


def readable_memory_size(size):
    for unit in ["B", "KB", "MB", "GB", "TB", "PB"]:
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _ratio_reduce(total, widths):
    """rich's even reduction of `widths` by `total` columns."""
    ratios_left, remaining, out = len(widths), total, []
    for w in widths:
        if remaining > 0:
            cut = min(w, round(remaining / ratios_left))
            out.append(w - cut)
            remaining -= cut
        else:
            out.append(w)
        ratios_left -= 1
    return out


def _ratio_distribute(total, widths):
    total_ratio, remaining, out = sum(widths), total, []
    for w in widths:
        extra = math.ceil(w * remaining / total_ratio) if total_ratio > 0 else remaining
        out.append(extra)
        total_ratio -= w
        remaining -= extra
    return out


def _wrap(text, width):
    """Word-wrapped lines of `text`, a too-long word cut with an ellipsis."""
    lines, current = [], ""
    for word in text.split(" "):
        candidate = word if not current else current + " " + word
        if len(candidate) <= width:
            current = candidate
        else:
            if current:
                lines.append(current)
            current = word
    lines.append(current)
    return [line if len(line) <= width else line[:width - 1] + "…" for line in lines]


def _table(header, rows, widths, justify):
    """The table as rich draws it with box.HEAVY_HEAD and show_lines=True (cells padded by one)."""
    inner = [w - 2 for w in widths]

    def render_row(cells, left, sep, right):
        wrapped = [_wrap(str(c), w) for c, w in zip(cells, inner)]
        height = max(len(w) for w in wrapped)
        out = []
        for i in range(height):
            parts = []
            for lines, w, j in zip(wrapped, inner, justify):
                text = lines[i] if i < len(lines) else ""
                parts.append(" " + (text.rjust(w) if j == "right" else text.ljust(w)) + " ")
            out.append(left + sep.join(parts) + right)
        return out

    def rule(left, fill, sep, right):
        return left + sep.join(fill * w for w in widths) + right

    lines = [rule("┏", "━", "┳", "┓")]
    lines += render_row(header, "┃", "┃", "┃")
    lines.append(rule("┡", "━", "╇", "┩"))
    for i, row in enumerate(rows):
        if i:
            lines.append(rule("├", "─", "┼", "┤"))
        lines += render_row(row, "│", "│", "│")
    lines.append(rule("└", "─", "┴", "┘"))
    return lines


def _column_widths(line_length, positions, n):
    widths, current = [], 0
    for pos in positions:
        w = int(pos * line_length) - current if pos <= 1 else int(pos) - current
        if w < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(w)
        current += w
    widths = [w + 2 for w in widths]  # rich's cell padding
    available = line_length - (n + 1)  # the vertical borders
    total = sum(widths)
    if total > available:
        widths = _ratio_reduce(total - available, widths)
    elif total < available:
        widths = [w + e for w, e in zip(widths, _ratio_distribute(available - total, widths))]
    return widths


def _format_shape(shape):
    if isinstance(shape, list):
        return ", ".join(str(tuple(s)) for s in shape)
    return str(tuple(shape))


def _shape_text(model, layer, index):
    from .models import Sequential
    if isinstance(model, Sequential):
        shapes = getattr(model, "_output_shapes", None)
        return _format_shape(shapes[index]) if model.built and shapes else "?"
    if isinstance(layer, InputLayer):
        return _format_shape(layer.batch_shape)
    nodes = [n for n in getattr(model, "_nodes", []) if n.layer is layer]
    if not nodes:
        return "?"
    outs = flatten(nodes[0].outputs)
    # Keras prints a layer's several outputs as the list of their shapes: [(None, 5), (None, 5)]
    return _format_shape(outs[0].shape) if len(outs) == 1 else "[" + _format_shape([o.shape for o in outs]) + "]"


def _sequential_like(model):
    nodes = getattr(model, "_nodes", None)
    if nodes is None:
        return True
    consumed = {}
    for node in nodes:
        inputs = [t for t in flatten(node.args) if isinstance(t, KerasTensor)]
        if len(inputs) > 1:
            return False
        for t in inputs:
            consumed[id(t)] = consumed.get(id(t), 0) + 1
    if any(c > 1 for c in consumed.values()) or len(model.outputs) > 1 or len(model.inputs) > 1:
        return False
    return len({id(n.layer) for n in nodes}) == len(nodes)


def _connections(model, layer):
    parts = []
    for node in model._nodes:
        if node.layer is not layer:
            continue
        for t in flatten(node.args):
            if isinstance(t, KerasTensor):
                producer = t._node.layer
                node_index = producer._inbound_nodes.index(t._node) if t._node in producer._inbound_nodes else 0
                parts.append(f"{producer.name}[{node_index}][{t._index}]")
    return ", ".join(parts) if parts else "-"


def _count(tensors):
    n = sum(int(t.numel()) for t in tensors)
    return n, n * 4


def print_summary(model, line_length=None, positions=None, print_fn=None):
    from .models import Functional, Sequential
    layers = model.layers
    seq = _sequential_like(model) if isinstance(model, Functional) else True
    if isinstance(model, Functional):
        inputs = [kt._node.layer for kt in model.inputs]
        layers = inputs + [l for l in layers if l not in inputs]
    if seq:
        default, positions, header = 88, positions or [0.45, 0.80, 1.0], ["Layer (type)", "Output Shape", "Param #"]
        justify = ["left", "left", "right"]
    else:
        default, positions = 108, positions or [0.3, 0.56, 0.74, 1.0]
        header, justify = ["Layer (type)", "Output Shape", "Param #", "Connected to"], ["left", "left", "right", "left"]
    line_length = line_length or min(default, shutil.get_terminal_size().columns - 4)
    widths = _column_widths(line_length, positions, len(header))
    rows = []
    for i, layer in enumerate(layers):
        if not layer.built:
            params = "0 (unbuilt)"
        else:
            params = f"{layer.count_params():,}"
        row = [f"{layer.name} ({type(layer).__name__})", _shape_text(model, layer, i), params]
        if not seq:
            row.append(_connections(model, layer))
        rows.append(row)
    trainable, trainable_bytes = _count(model.trainable_weights)
    frozen, frozen_bytes = _count(model.non_trainable_weights)
    opt = getattr(model, "optimizer", None)
    opt_built = bool(getattr(model, "compiled", False) and opt is not None and opt.built)
    opt_count, opt_bytes = opt.optimizer_param_count() if opt_built else (0, 0)
    lines = [f'Model: "{model.name}"'] + _table(header, rows, widths, justify)
    lines.append(f" Total params: {trainable + frozen + opt_count:,} "
                 f"({readable_memory_size(trainable_bytes + frozen_bytes + opt_bytes)})")
    lines.append(f" Trainable params: {trainable:,} ({readable_memory_size(trainable_bytes)})")
    lines.append(f" Non-trainable params: {frozen:,} ({readable_memory_size(frozen_bytes)})")
    if opt_built:
        lines.append(f" Optimizer params: {opt_count:,} ({readable_memory_size(opt_bytes)})")
    text = "\n".join(lines) + "\n"
    if print_fn is not None:
        print_fn(text)
    else:
        print(text, end="")
