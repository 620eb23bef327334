"""MultiHeadAttention with Keras 3's arguments, defaults and weight layouts: query/kernel
(query_dim, heads, key_dim), query/bias (heads, key_dim), key/..., value/kernel (value_dim_in,
heads, value_dim), attention_output/kernel (heads, value_dim, *output_shape), bias
(*output_shape); get_weights() in that order (query, key, value, output; kernel then bias).

The projections are single GEMMs (the kernels read as (in, heads * dim) matrices). The attention
itself runs on the library's fused scaled-dot-product kernel (no score matrix held), for the
default last-axis attention and for attention over several axes (flattened into one), with masks,
dropout and causal masking; only return_attention_scores=True computes the explicit softmax,
because it must return it. A query whose keys are all masked out gets what Keras 3 gives it:
uniform weights over all keys on Keras's fused path (sequences, no dropout, no scores returned:
its masked logits all become the same large negative number), zero weights otherwise (its
Softmax layer zeroes masked positions)."""
import math

import numpy as np

from ... import _core, _math, _reduce
from ..._tensor import tensor
from ...nn import functional as F
from .. import _backend, initializers, regularizers
from .base import KerasTensor, Layer


def _shape(t):
    return tuple(t.shape)


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al.): each head attends with softmax(q k^T / sqrt(key_dim))
    over the attention axes, heads concatenated and projected back.

    Args: num_heads; key_dim (size of each query/key head); value_dim (None: key_dim); dropout (0,
    on the attention weights in training); use_bias (True); output_shape (None: the query's last
    dimension; an int or tuple); attention_axes (None: all axes between batch and features);
    kernel_initializer ('glorot_uniform'); bias_initializer ('zeros'); kernel/bias regularizers.
    call(query, value, key=None, attention_mask=None (bool, True = may attend, (B, T, S) for
    sequences), return_attention_scores=False, training=None, use_causal_mask=False,
    query_mask/value_mask/key_mask=None (taken from Keras masks of the inputs when not given))."""

    supports_masking = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, seed=None, **kwargs):
        for key in ("use_gate", "flash_attention", "sliding_window"):
            if kwargs.get(key) not in (None, False):
                raise NotImplementedError(f"[MultiHeadAttention] {key}={kwargs[key]!r} is not supported")
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        for arg, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"[MultiHeadAttention] {arg} must be a positive integer, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"[MultiHeadAttention] dropout must be in [0, 1), got {dropout}")
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.dropout, self.use_bias = float(dropout), bool(use_bias)
        if output_shape is not None:
            output_shape = (int(output_shape),) if isinstance(output_shape, (int, np.integer)) else \
                tuple(int(s) for s in output_shape)
        self._output_shape = output_shape
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        self.attention_axes = None if attention_axes is None else tuple(int(a) for a in attention_axes)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    # --- weights ------------------------------------------------------------------------------
    def _build_all(self, query_shape, value_shape, key_shape):
        key_shape = value_shape if key_shape is None else key_shape
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(f"[{self.name}] All dimensions of `value` and `key`, except the last one, must be equal. "
                             f"Received: value_shape={tuple(value_shape)} and key_shape={tuple(key_shape)}")
        if len(query_shape) < 3 or len(query_shape) != len(value_shape):
            raise ValueError(f"[{self.name}] query and value must have the same rank, at least 3 (batch, ..., "
                             f"features), got query shape {tuple(query_shape)} and value shape {tuple(value_shape)}")
        rank = len(query_shape) + 1  # of the projected (batch, ..., heads, dim) tensors
        axes = tuple(range(1, rank - 2)) if self.attention_axes is None else \
            tuple(a if a >= 0 else (rank - 1) + a for a in self.attention_axes)
        if not axes or any(a < 1 or a > rank - 3 for a in axes):
            raise ValueError(f"[{self.name}] attention_axes {self.attention_axes} must name axes between the batch and "
                             f"the features of the query (shape {tuple(query_shape)})")
        self._axes = tuple(sorted(axes))
        h, out_shape = self.num_heads, self._output_shape or (query_shape[-1],)
        specs = [("query", (query_shape[-1], h, self.key_dim), (h, self.key_dim)),
                 ("key", (key_shape[-1], h, self.key_dim), (h, self.key_dim)),
                 ("value", (value_shape[-1], h, self.value_dim), (h, self.value_dim)),
                 ("attention_output", (h, self.value_dim) + tuple(out_shape), tuple(out_shape))]
        for name, kshape, bshape in specs:
            self.add_weight(kshape, self.kernel_initializer, f"{name}_kernel", regularizer=self.kernel_regularizer)
            if self.use_bias:
                self.add_weight(bshape, self.bias_initializer, f"{name}_bias", regularizer=self.bias_regularizer)
        self._build_input_shape = (tuple(query_shape), tuple(value_shape), tuple(key_shape))
        self.built = True

    def build(self, query_shape, value_shape=None, key_shape=None):
        self._build_all(query_shape, query_shape if value_shape is None else value_shape, key_shape)

    def _project(self, x, name, what):
        kernel = getattr(self, f"{name}_kernel")
        if x.shape[-1] != kernel.shape[0]:
            raise ValueError(f"[{self.name}] {what} has {x.shape[-1]} features on its last axis, the layer was built "
                             f"for {kernel.shape[0]} ({what} shape {_shape(x)})")
        bias = getattr(self, f"{name}_bias") if self.use_bias else None
        n = kernel.shape[1] * kernel.shape[2]
        y = _core.linear(x, kernel.reshape(kernel.shape[0], n).transpose(0, 1),
                         None if bias is None else bias.reshape(n))
        return y.reshape(*x.shape[:-1], kernel.shape[1], kernel.shape[2])

    # --- call ---------------------------------------------------------------------------------
    def __call__(self, query=None, value=None, key=None, **kwargs):
        if query is None or value is None:
            raise ValueError("[MultiHeadAttention] call needs query and value")
        if not self.built:
            shape = lambda t: t.shape if isinstance(t, KerasTensor) else _shape(_backend.to_tensor(t))  # noqa: E731
            self._build_all(shape(query), shape(value), None if key is None else shape(key))
        args = (query, value) if key is None else (query, value, key)
        return super().__call__(*args, **kwargs)

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False):
        query_mask = _backend.mask_of(query) if query_mask is None else query_mask
        value_mask = _backend.mask_of(value) if value_mask is None else value_mask
        if key is None:
            key = value
        elif key_mask is None:
            key_mask = _backend.mask_of(key)
        q_in, v_in, k_in = (_backend.float_tensor(t) for t in (query, value, key))
        self._check_ranks(q_in, v_in, k_in)
        q = self._project(q_in, "query", "query")
        k = self._project(k_in, "key", "key")
        v = self._project(v_in, "value", "value")
        # (B, *spatial, H, d) -> (B * other axes, H, attended positions, d)
        perm, lead, q_att = self._folding(q)
        _, _, k_att = self._folding(k)
        fold = lambda t, n: t.permute(*perm).reshape(-1, self.num_heads, n, t.shape[-1])  # noqa: E731
        tq, tk = int(np.prod(q_att)), int(np.prod(k_att))
        qf, kf, vf = fold(q, tq), fold(k, tk), fold(v, tk)
        mask = self._mask(q_in, v_in, lead, q_att, k_att, query_mask, value_mask, key_mask, attention_mask,
                          use_causal_mask)
        causal_only = mask is None and use_causal_mask
        empty_rows = None
        if mask is not None:
            rows = mask.any(axis=-1)
            if not rows.all() and (return_attention_scores or self.dropout > 0 or q_in.dim() != 3):
                empty_rows = tensor(rows.astype(np.float32)[:, :, :, None])  # Keras's softmax: zero weights
                mask = mask | ~rows[..., None]
            elif not rows.all():  # Keras's fused path: masked logits all equal, so uniform weights
                qf = qf * tensor(rows.astype(np.float32)[:, :, :, None])
                mask = mask | ~rows[..., None]
            mask = None if mask.all() else tensor(mask)
        drop = self.dropout if training and self.dropout > 0 else 0.0
        scale = 1.0 / math.sqrt(self.key_dim)
        scores = None
        if return_attention_scores:
            logits = (qf @ kf.transpose(-1, -2)) * scale
            if causal_only:
                mask = tensor(np.tril(np.ones((tq, tk), bool)))
            if mask is not None:
                logits = logits.masked_fill(~mask, float("-inf"))
            scores = _reduce.softmax(logits, dim=-1)
            if empty_rows is not None:
                scores = scores * empty_rows
            o = (_math.dropout(scores, drop, True) if drop else scores) @ vf
        else:
            o = F.scaled_dot_product_attention(qf, kf, vf, attn_mask=mask, dropout_p=drop, is_causal=causal_only,
                                               scale=scale)
            if empty_rows is not None:
                o = o * empty_rows
        # (B', H, Tq, dv) -> (B, *other, H, *attended, dv) -> (B, *spatial, H, dv)
        o = o.reshape(*lead, self.num_heads, *q_att, self.value_dim).permute(*np.argsort(perm).tolist())
        out = self._output(o)
        if return_attention_scores:
            return out, scores.reshape(*lead, self.num_heads, *q_att, *k_att)
        return out

    def compute_mask(self, inputs, mask=None):
        return mask

    def _check_ranks(self, q, v, k):
        built_q, built_v, built_k = self._build_input_shape
        for what, t, built in (("query", q, built_q), ("value", v, built_v), ("key", k, built_k)):
            if t.dim() != len(built) or t.shape[-1] != built[-1]:
                raise ValueError(f"[{self.name}] {what} has shape {_shape(t)}, the layer was built for {what} shape "
                                 f"{built}")
        if _shape(v)[:-1] != _shape(k)[:-1]:
            raise ValueError(f"[{self.name}] value and key must match except on the last axis, got value shape "
                             f"{_shape(v)} and key shape {_shape(k)}")
        other = [a for a in range(1, q.dim() - 1) if a not in self._axes]
        if q.shape[0] != v.shape[0] or any(q.shape[a] != v.shape[a] for a in other):
            raise ValueError(f"[{self.name}] query and value must match on the batch and non-attention axes, got "
                             f"query shape {_shape(q)} and value shape {_shape(v)}")

    def _folding(self, t):
        """The permutation of a projected (B, *spatial, H, d) tensor to (B, *other axes, H,
        *attention axes, d), the sizes of its leading (B, *other) axes and of its attention axes."""
        spatial = list(range(1, t.dim() - 2))
        other = [a for a in spatial if a not in self._axes]
        perm = [0] + other + [t.dim() - 2] + list(self._axes) + [t.dim() - 1]
        return perm, [t.shape[0]] + [t.shape[a] for a in other], [t.shape[a] for a in self._axes]

    def _mask(self, q, v, lead, q_att, k_att, query_mask, value_mask, key_mask, attention_mask, causal):
        """The combined bool mask (True = may attend) as a (B', 1, Tq, Tk) array, or None; only
        causal masking on its own is left to the kernel's is_causal."""
        sequence = q.dim() == 3
        parts = []
        if (query_mask is not None or value_mask is not None or key_mask is not None) and not sequence:
            raise NotImplementedError(f"[{self.name}] query/value/key masks are supported for (batch, steps, features) "
                                      f"inputs, got query shape {_shape(q)}")
        if query_mask is not None:
            parts.append(np.asarray(_backend.to_numpy(query_mask), bool)[:, :, None])
        for m in (value_mask, key_mask):
            if m is not None:
                parts.append(np.asarray(_backend.to_numpy(m), bool)[:, None, :])
        if attention_mask is not None:
            parts.append(np.asarray(_backend.to_numpy(attention_mask)).astype(bool))
        if causal and (parts or not sequence):
            if not sequence:
                raise NotImplementedError(f"[{self.name}] use_causal_mask needs (batch, steps, features) inputs, got "
                                          f"query shape {_shape(q)}")
            parts.append(np.tril(np.ones((q.shape[1], v.shape[1]), bool))[None])
        if not parts:
            return None
        full = tuple(lead) + tuple(q_att) + tuple(k_att)
        mask = np.ones(full, bool)
        for p in parts:
            try:
                mask = mask & np.broadcast_to(p, full)
            except ValueError:
                raise ValueError(f"[{self.name}] a mask of shape {p.shape} does not fit the attention scores of shape "
                                 f"{full} (batch, ..., query positions, key positions)") from None
        return mask.reshape(-1, 1, int(np.prod(q_att)), int(np.prod(k_att)))

    def _output(self, o):
        kernel = self.attention_output_kernel
        h, dv = kernel.shape[0], kernel.shape[1]
        out_shape = tuple(kernel.shape[2:])
        n = int(np.prod(out_shape))
        bias = self.attention_output_bias.reshape(n) if self.use_bias else None
        y = _core.linear(o.reshape(*o.shape[:-2], h * dv), kernel.reshape(h * dv, n).transpose(0, 1), bias)
        return y.reshape(*o.shape[:-2], *out_shape)

    def get_config(self):
        return dict(super().get_config(), num_heads=self.num_heads, key_dim=self.key_dim, value_dim=self.value_dim,
                    dropout=self.dropout, use_bias=self.use_bias,
                    output_shape=None if self._output_shape is None else list(self._output_shape),
                    attention_axes=None if self.attention_axes is None else list(self.attention_axes),
                    kernel_initializer=initializers.serialize(self.kernel_initializer),
                    bias_initializer=initializers.serialize(self.bias_initializer),
                    kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                    bias_regularizer=regularizers.serialize(self.bias_regularizer))
