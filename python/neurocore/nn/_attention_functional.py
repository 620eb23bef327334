"""Attention functional forms: ``scaled_dot_product_attention`` (one fused C++ op) and
``multi_head_attention_forward`` (PyTorch's algorithm and argument list, composed from ops; it
materialises the attention matrix only when ``need_weights=True`` asks for the weights)."""
import math

from .. import _core
from .._creation import zeros
from .._math import dropout
from .._reduce import softmax


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    r"""softmax(query @ key^T * scale + mask) @ value over the last two dims, fused: no L x S
    matrix is held in the forward or the backward.

    Args:
        query: (..., Hq, L, E); key: (..., Hk, S, E); value: (..., Hk, S, Ev), same leading dims.
        attn_mask: bool (True takes part) or additive float mask broadcastable to (..., L, S).
        dropout_p: probability of dropping an attention weight (applied whenever > 0).
        is_causal: query i attends to keys j <= i (top-left aligned when L != S).
        scale: defaults to ``1 / sqrt(E)``.
        enable_gqa: allow Hq a multiple of Hk (grouped-query attention).

    A query whose keys are all masked out gets a zero output (as PyTorch's CPU kernel gives).
    An additive float mask that requires grad gets one (d(score) summed over its broadcast dims).
    Backward with ``create_graph=True`` (double backward, gradient penalties) recomputes that call's
    attention backward from differentiable ops, holding the L x S probabilities explicitly.
    """
    return _core._scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)


def _canonical_mask(mask, name, dtype):
    """A bool mask (True = masked out) becomes an additive float mask of -inf; float masks pass."""
    if mask is None:
        return None
    if mask.dtype == _core.dtype.bool:
        return zeros(*mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))
    if mask.dtype not in (_core.dtype.float32, _core.dtype.float64):
        raise TypeError(f"[MultiheadAttention] only bool and floating types of {name} are supported, got {mask.dtype}")
    return mask.to(dtype)


def _pad_last(mask):
    """One more (unmasked) column at the end of the last dim."""
    return _core.cat([mask, zeros(*mask.shape[:-1], 1, dtype=mask.dtype)], -1)


def _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads):
    """Whether the input is batched; raises on inconsistent ranks (PyTorch's _mha_shape_check)."""
    shapes = f"(query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)})"
    if query.dim() == 3:
        if key.dim() != 3 or value.dim() != 3:
            raise ValueError(f"[MultiheadAttention] for batched (3-D) query, key and value must be 3-D {shapes}")
        if key_padding_mask is not None and key_padding_mask.dim() != 2:
            raise ValueError("[MultiheadAttention] for batched (3-D) query, key_padding_mask must be 2-D (N, S), "
                             f"got shape {tuple(key_padding_mask.shape)}")
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise ValueError("[MultiheadAttention] for batched (3-D) query, attn_mask must be 2-D or 3-D, got "
                             f"shape {tuple(attn_mask.shape)}")
        return True
    if query.dim() == 2:
        if key.dim() != 2 or value.dim() != 2:
            raise ValueError(f"[MultiheadAttention] for unbatched (2-D) query, key and value must be 2-D {shapes}")
        if key_padding_mask is not None and key_padding_mask.dim() != 1:
            raise ValueError("[MultiheadAttention] for unbatched (2-D) query, key_padding_mask must be 1-D (S,), "
                             f"got shape {tuple(key_padding_mask.shape)}")
        if attn_mask is not None:
            if attn_mask.dim() not in (2, 3):
                raise ValueError("[MultiheadAttention] for unbatched (2-D) query, attn_mask must be 2-D or 3-D, "
                                 f"got shape {tuple(attn_mask.shape)}")
            if attn_mask.dim() == 3 and attn_mask.shape[0] != num_heads:
                raise ValueError(f"[MultiheadAttention] 3-D attn_mask of an unbatched query must have {num_heads} "
                                 f"(num_heads) matrices, got shape {tuple(attn_mask.shape)}")
        return False
    raise ValueError(f"[MultiheadAttention] query should be unbatched 2-D or batched 3-D, got {query.dim()}-D {shapes}")


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """Multi-head attention on (L, N, E) query and (S, N, kdim/vdim) key/value (or unbatched
    (L, E)), with PyTorch's arguments; returns (output, weights or None)."""
    if static_k is not None or static_v is not None:
        raise NotImplementedError("[MultiheadAttention] static_k / static_v are not supported")
    is_batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if (bias_k is None) != (bias_v is None):
        raise ValueError("[MultiheadAttention] bias_k and bias_v must both be given or both be None")
    if not is_batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    shapes = f"(query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)})"
    if embed_dim != embed_dim_to_check:
        raise ValueError(f"[MultiheadAttention] query has {embed_dim} features, expected embed_dim "
                         f"{embed_dim_to_check} {shapes}")
    if embed_dim % num_heads:
        raise ValueError(f"[MultiheadAttention] embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
    head_dim = embed_dim // num_heads
    if key.shape[:2] != value.shape[:2] or key.shape[1] != bsz:
        raise ValueError(f"[MultiheadAttention] key and value must have the same sequence length and the query's "
                         f"batch size {shapes}")
    if not use_separate_proj_weight and key.shape != value.shape:
        raise ValueError(f"[MultiheadAttention] key shape {tuple(key.shape)} does not match value shape "
                         f"{tuple(value.shape)}")
    dt = query.dtype
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", dt)
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (bsz, src_len):
        raise ValueError(f"[MultiheadAttention] expected key_padding_mask of shape {(bsz, src_len)}, got "
                         f"{tuple(key_padding_mask.shape)} {shapes}")
    if is_causal and attn_mask is None:
        raise RuntimeError("[MultiheadAttention] need attn_mask if specifying the is_causal hint; use "
                           "Transformer.generate_square_subsequent_mask(L) to make one")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the causal kernel path replaces the explicit mask
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", dt)
        if key_padding_mask is not None:
            is_causal = False
    if attn_mask is not None:
        want = (tgt_len, src_len) if attn_mask.dim() == 2 else (bsz * num_heads, tgt_len, src_len)
        if tuple(attn_mask.shape) != want:
            raise ValueError(f"[MultiheadAttention] expected attn_mask of shape {want}, got "
                             f"{tuple(attn_mask.shape)} {shapes}")

    # Input projections: one GEMM for self-attention with packed weights.
    if not use_separate_proj_weight:
        E = embed_dim
        if query is key and key is value:
            qkv = _core.linear(query, in_proj_weight, in_proj_bias).reshape(tgt_len, bsz, 3, num_heads, head_dim)
            qkv = qkv.permute(2, 1, 3, 0, 4)  # (3, N, H, L, hd) views
            q, k, v = qkv[0], qkv[1], qkv[2]
            k_seq = v_seq = None
        else:
            bq = bk = bv = None
            if in_proj_bias is not None:
                bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
            q = _core.linear(query, in_proj_weight[:E], bq)
            k_seq = _core.linear(key, in_proj_weight[E:2 * E], bk)
            v_seq = _core.linear(value, in_proj_weight[2 * E:], bv)
    else:
        bq = bk = bv = None
        if in_proj_bias is not None:
            E = embed_dim
            bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
        q = _core.linear(query, q_proj_weight, bq)
        k_seq = _core.linear(key, k_proj_weight, bk)
        v_seq = _core.linear(value, v_proj_weight, bv)
    if k_seq is not None:
        if bias_k is not None and bias_v is not None:
            k_seq = _core.cat([k_seq, bias_k.expand(1, bsz, embed_dim)], 0)
            v_seq = _core.cat([v_seq, bias_v.expand(1, bsz, embed_dim)], 0)
            attn_mask = _pad_last(attn_mask) if attn_mask is not None else None
            key_padding_mask = _pad_last(key_padding_mask) if key_padding_mask is not None else None
        q = q.reshape(tgt_len, bsz, num_heads, head_dim).permute(1, 2, 0, 3)
        k = k_seq.reshape(k_seq.shape[0], bsz, num_heads, head_dim).permute(1, 2, 0, 3)
        v = v_seq.reshape(v_seq.shape[0], bsz, num_heads, head_dim).permute(1, 2, 0, 3)
    elif bias_k is not None and bias_v is not None:
        bk_heads = bias_k.reshape(1, 1, num_heads, head_dim).permute(0, 2, 1, 3).expand(bsz, num_heads, 1, head_dim)
        bv_heads = bias_v.reshape(1, 1, num_heads, head_dim).permute(0, 2, 1, 3).expand(bsz, num_heads, 1, head_dim)
        k = _core.cat([k, bk_heads], 2)
        v = _core.cat([v, bv_heads], 2)
        attn_mask = _pad_last(attn_mask) if attn_mask is not None else None
        key_padding_mask = _pad_last(key_padding_mask) if key_padding_mask is not None else None
    if add_zero_attn:
        k = _core.cat([k, zeros(bsz, num_heads, 1, head_dim, dtype=dt)], 2)
        v = _core.cat([v, zeros(bsz, num_heads, 1, head_dim, dtype=dt)], 2)
        attn_mask = _pad_last(attn_mask) if attn_mask is not None else None
        key_padding_mask = _pad_last(key_padding_mask) if key_padding_mask is not None else None
    src_len = k.shape[2]
    # Masks as (N or 1, H or 1, L, S), broadcast by the kernel rather than expanded.
    if attn_mask is not None:
        attn_mask = (attn_mask.reshape(1, 1, tgt_len, src_len) if attn_mask.dim() == 2
                     else attn_mask.reshape(bsz, num_heads, tgt_len, src_len))
    if key_padding_mask is not None:
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0

    if need_weights:
        scores = _core.matmul(q * math.sqrt(1.0 / float(head_dim)), k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        out = _core.matmul(weights, v)  # (N, H, L, hd)
    else:
        out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
        weights = None
    out = out.permute(2, 0, 1, 3).reshape(tgt_len * bsz, embed_dim)
    out = _core.linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if weights is not None and average_attn_weights:
        weights = weights.mean(dim=1)
    if not is_batched:
        out = out.squeeze(1)
        if weights is not None:
            weights = weights.squeeze(0)
    return out, weights
