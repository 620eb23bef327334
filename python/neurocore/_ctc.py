"""``ctc_loss``: Connectionist Temporal Classification (Graves et al., 2006) with PyTorch's
arguments, checks, reductions and gradient.

The forward (alpha) and backward (beta) recursions run in log space in float64, vectorised over
the batch and the extended label sequence, one NumPy pass per time step. As in PyTorch, the
gradient given for `log_probs` is ``exp(log_probs) - posterior`` (``posterior[t, c]``: the
probability that the alignment emits c at t), which equals the true gradient after a
``log_softmax`` (the usual producer of `log_probs`) and differs from it only by a multiple of
``exp(log_probs)`` that ``log_softmax``'s backward removes.
"""
import numpy as np

from ._tensor import Tensor, tensor
from .autograd import Function

__all__ = ["ctc_loss"]

_NEG_INF = -np.inf


def _lengths(x, name, n):
    arr = x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float64)  # refused below
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise RuntimeError(f"[ctc_loss] {name} must be a 1-D integer tensor or a list of ints, got "
                           f"{'dtype ' + str(arr.dtype) if arr.dtype.kind not in 'iu' else 'shape ' + str(arr.shape)}")
    arr = arr.reshape(-1).astype(np.int64)
    if arr.size != n:
        raise RuntimeError(f"{name} must be of size batch_size (got {arr.size} values for batch size {n})")
    if (arr < 0).any():
        raise RuntimeError(f"[ctc_loss] {name} must be non-negative, got {arr.tolist()}")
    return arr


def _logsumexp(*arrays):
    stacked = np.stack(arrays)
    m = stacked.max(axis=0)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(stacked - safe).sum(axis=0)) + safe


def _shift(a, k):
    """a shifted right by k along the last axis, -inf filled."""
    out = np.full_like(a, _NEG_INF)
    out[..., k:] = a[..., :a.shape[-1] - k]
    return out


def _shift_left(a, k):
    out = np.full_like(a, _NEG_INF)
    out[..., :a.shape[-1] - k] = a[..., k:]
    return out


class _CTC(Function):
    @staticmethod
    def forward(ctx, log_probs, ext, ext_len, input_lengths, zero_infinity):
        lp = log_probs.detach().numpy().astype(np.float64)  # (T, N, C)
        T, N, _ = lp.shape
        S = ext.shape[1]
        s_idx = np.arange(S)
        valid = s_idx[None, :] < ext_len[:, None]  # (N, S)
        # l'_s may follow l'_{s-2} directly when it is a label differing from l'_{s-2}
        skip = np.zeros((N, S), bool)
        skip[:, 2:] = (ext[:, 2:] != ext[:, :-2]) & (s_idx[None, 2:] % 2 == 1)
        emit = np.take_along_axis(lp, np.broadcast_to(ext[None], (T, N, S)), axis=2)  # (T, N, S)
        emit = np.where(valid[None], emit, _NEG_INF)
        alpha = np.full((T, N, S), _NEG_INF)
        alpha[0, :, 0] = emit[0, :, 0]
        alpha[0, :, 1] = np.where(ext_len > 1, emit[0, :, 1], _NEG_INF)
        for t in range(1, T):
            prev = alpha[t - 1]
            from_skip = np.where(skip, _shift(prev, 2), _NEG_INF)
            alpha[t] = _logsumexp(prev, _shift(prev, 1), from_skip) + emit[t]
        last_t = np.maximum(input_lengths - 1, 0)
        n_idx = np.arange(N)
        end = ext_len - 1
        final = alpha[last_t, n_idx]  # (N, S)
        ll = _logsumexp(final[n_idx, end], np.where(end >= 1, final[n_idx, np.maximum(end - 1, 0)], _NEG_INF))
        ll = np.where(input_lengths == 0, np.where(ext_len == 1, 0.0, _NEG_INF), ll)
        nll = -ll
        infinite = ~np.isfinite(nll)
        if zero_infinity:
            nll = np.where(infinite, 0.0, nll)
        ctx.saved = (lp, ext, valid, skip, emit, alpha, input_lengths, ext_len, nll, infinite, zero_infinity)
        return tensor(nll, dtype=log_probs.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        lp, ext, valid, skip, emit, alpha, input_lengths, ext_len, nll, infinite, zero_infinity = ctx.saved
        T, N, C = lp.shape
        S = ext.shape[1]
        n_idx = np.arange(N)
        # beta[t, n, s]: log probability of emitting l'_s.. from t to the end, including t's emission
        beta = np.full((T, N, S), _NEG_INF)
        skip_next = np.zeros((N, S), bool)  # l'_{s+2} may be reached from l'_s
        skip_next[:, :-2] = skip[:, 2:]
        end = ext_len - 1
        for t in range(T - 1, -1, -1):
            starts = input_lengths - 1 == t
            running = t < input_lengths - 1
            nxt = beta[t + 1] if t + 1 < T else np.full((N, S), _NEG_INF)
            rec = _logsumexp(nxt, _shift_left(nxt, 1), np.where(skip_next, _shift_left(nxt, 2), _NEG_INF)) + emit[t]
            init = np.full((N, S), _NEG_INF)
            init[n_idx, end] = emit[t, n_idx, end]
            init[n_idx, np.maximum(end - 1, 0)] = np.where(end >= 1, emit[t, n_idx, np.maximum(end - 1, 0)],
                                                           init[n_idx, np.maximum(end - 1, 0)])
            beta[t] = np.where(running[:, None], rec, np.where(starts[:, None], init, _NEG_INF))
        ab = alpha + beta  # (T, N, S)
        m = ab.max(axis=2, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        occupancy = np.zeros((T, N, C))
        t_idx = np.broadcast_to(np.arange(T)[:, None, None], ab.shape)
        nn_idx = np.broadcast_to(n_idx[None, :, None], ab.shape)
        c_idx = np.broadcast_to(ext[None], ab.shape)
        np.add.at(occupancy, (t_idx, nn_idx, c_idx), np.where(valid[None], np.exp(ab - m), 0.0))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_occ = np.log(occupancy) + m
            grad = np.exp(lp) - np.exp(log_occ + nll[None, :, None] - lp)
        active = np.arange(T)[:, None] < input_lengths[None, :]  # (T, N)
        grad = np.where(active[:, :, None], grad, 0.0)
        if zero_infinity:
            grad = np.where(infinite[None, :, None], 0.0, grad)
        grad *= grad_out.detach().numpy().astype(np.float64)[None, :, None]
        return tensor(grad, dtype=grad_out.dtype), None, None, None, None


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """CTC loss of log-probabilities `log_probs` (T, N, C), or (T, C) for one sequence, against
    `targets` (N, S) padded or 1-D concatenated, with per-sample `input_lengths` and
    `target_lengths`. ``reduction='mean'``: each loss divided by its target length, then averaged
    over the batch; ``'sum'``; ``'none'``: one loss per sample. ``zero_infinity`` zeroes the infinite
    losses (inputs too short for their targets) and their gradients."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    unbatched = log_probs.ndim == 2
    if log_probs.ndim not in (2, 3):
        raise RuntimeError(f"[ctc_loss] log_probs must be (T, N, C) or (T, C), got shape {tuple(log_probs.shape)}")
    if not log_probs.dtype.is_floating_point:
        raise RuntimeError(f"[ctc_loss] log_probs must be floating point, got {log_probs.dtype}")
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise RuntimeError(f"blank must be in label range (blank {blank}, {C} classes)")
    in_len = _lengths(input_lengths, "input_lengths", N)
    tg_len = _lengths(target_lengths, "target_lengths", N)
    if (in_len > T).any():
        raise RuntimeError(f"Expected input_lengths to have value at most {T}, but got value {int(in_len.max())} "
                           f"(while checking arguments for ctc_loss_cpu)")
    tg = targets.detach().numpy() if isinstance(targets, Tensor) else np.asarray(targets)
    if tg.dtype.kind not in "iu":
        raise RuntimeError(f"[ctc_loss] targets must be an integer tensor, got {tg.dtype}")
    tg = tg.astype(np.int64)
    if unbatched:  # one sequence: targets (S,)
        tg = tg.reshape(1, -1)
    if tg.ndim == 2:
        if tg.shape[0] != N:
            raise RuntimeError(f"[ctc_loss] targets has {tg.shape[0]} rows for batch size {N}")
        if (tg_len > tg.shape[1]).any():
            raise RuntimeError(f"Expected tensor to have size at least {int(tg_len.max())} at dimension 1, but got "
                               f"size {tg.shape[1]} for argument #2 'targets' (while checking arguments for "
                               f"ctc_loss_cpu)")
        rows = [tg[n, :tg_len[n]] for n in range(N)]
    elif tg.ndim == 1:
        if tg.size != int(tg_len.sum()):
            raise RuntimeError(f"[ctc_loss] 1-D targets must hold sum(target_lengths) = {int(tg_len.sum())} labels, "
                               f"got {tg.size}")
        offsets = np.concatenate([[0], np.cumsum(tg_len)])
        rows = [tg[offsets[n]:offsets[n + 1]] for n in range(N)]
    else:
        raise RuntimeError(f"[ctc_loss] targets must be 1-D or 2-D, got shape {tuple(tg.shape)}")
    labels = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= C or (labels == blank).any()):
        raise RuntimeError(f"[ctc_loss] target labels must be in [0, {C}) and differ from blank ({blank})")
    S = 2 * int(tg_len.max(initial=0)) + 1
    ext = np.full((N, S), blank, np.int64)
    for n, row in enumerate(rows):
        ext[n, 1:2 * len(row):2] = row
    nll = _CTC.apply(lp, ext, 2 * tg_len + 1, in_len, bool(zero_infinity))
    if reduction == "none":
        return nll[0] if unbatched else nll
    if reduction == "sum":
        return nll.sum()
    divisor = tensor(np.maximum(tg_len, 1).astype(np.float64), dtype=nll.dtype)
    return (nll / divisor).mean()
