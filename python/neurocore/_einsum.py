"""``nc.einsum``: Einstein summation lowered onto permute / reshape / matmul, so products run on
the GEMM kernels and gradients come from those ops.

Steps: parse the subscripts (``...`` and the implicit output included), take diagonals of labels
repeated within one operand, sum out labels that only one operand has and the output lacks, then
contract the operands left to right, each pair as one batched matrix product
(batch labels, kept labels of each side, contracted labels).
"""
import string

import numpy as np

from . import _core
from ._core import Tensor

_LETTERS = set(string.ascii_letters)


def _parse(equation, operands):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->", 1)
        explicit = True
    else:
        lhs, out, explicit = eq, "", False
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"[einsum] the equation {equation!r} has {len(terms)} operand(s) but {len(operands)} "
                         "were given")
    for t in terms + [out]:
        bad = set(t.replace("...", "")) - _LETTERS
        if bad or t.count("...") > 1 or "." in t.replace("...", ""):
            raise ValueError(f"[einsum] invalid subscript in {equation!r}: use letters a-z, A-Z and at most one "
                             "'...' per operand")
    return terms, out, explicit


def _expand_ellipses(terms, out, explicit, operands, equation):
    """Replaces '...' by fresh labels (right-aligned across operands, as broadcasting is)."""
    used = set("".join(terms) + out)
    free = [c for c in "".join(chr(c) for c in range(0x100, 0x200)) if c not in used]
    ell_rank = 0
    labels = []
    for i, (t, x) in enumerate(zip(terms, operands)):
        named = len(t.replace("...", ""))
        if "..." in t:
            if x.ndim < named:
                raise ValueError(f"[einsum] operand {i} has {x.ndim} dims but subscript {t!r} names {named}")
            ell_rank = max(ell_rank, x.ndim - named)
        elif x.ndim != named:
            raise ValueError(f"[einsum] the number of subscripts in {t!r} ({named}) does not match the number of "
                             f"dimensions ({x.ndim}) for operand {i} and no ellipsis was given "
                             f"(equation {equation!r})")
    ell = free[:ell_rank]
    for t, x in zip(terms, operands):
        if "..." in t:
            k = x.ndim - len(t.replace("...", ""))
            a, b = t.split("...")
            labels.append(list(a) + ell[ell_rank - k:] + list(b))
        else:
            labels.append(list(t))
    if explicit:
        if "..." in out:
            a, b = out.split("...")
            out_labels = list(a) + ell + list(b)
        else:
            out_labels = list(out)
    else:  # implicit output: '...' first, then the labels seen once, alphabetically
        counts = {}
        for t in terms:
            for c in t.replace("...", ""):
                counts[c] = counts.get(c, 0) + 1
        out_labels = ell + sorted((c for c, n in counts.items() if n == 1), key=lambda c: (c.islower(), c))
    if len(set(out_labels)) != len(out_labels):
        raise ValueError(f"[einsum] output subscript in {equation!r} appears more than once")
    seen = set(c for lab in labels for c in lab)
    for c in out_labels:
        if c not in seen:
            raise ValueError(f"[einsum] output subscript {c!r} does not appear in the equation for any input operand")
    return labels, out_labels


def _diagonal(x, labels):
    """x with labels repeated in one operand reduced to their diagonal (differentiable)."""
    uniq = list(dict.fromkeys(labels))
    if len(uniq) == len(labels):
        return x, labels
    sizes = {}
    for c, s in zip(labels, x.shape):
        if sizes.setdefault(c, s) != s:
            raise ValueError(f"[einsum] subscript {c!r} is repeated in an operand with different sizes "
                             f"(shape {tuple(x.shape)})")
    names = {c: chr(ord("a") + i) for i, c in enumerate(uniq)}
    grid = np.arange(x.numel(), dtype=np.int64).reshape(tuple(x.shape))
    pos = np.einsum("".join(names[c] for c in labels) + "->" + "".join(names[c] for c in uniq), grid)
    return _core._take(x, _core._from_numpy(np.ascontiguousarray(pos), True)), uniq


def _sum_labels(x, labels, drop):
    dims = [i for i, c in enumerate(labels) if c in drop]
    if not dims:
        return x, labels
    return _core.sum(x, dims, False), [c for c in labels if c not in drop]


def _contract(a, la, b, lb, keep):
    """a (labels la) times b (labels lb), summing the shared labels not in `keep`."""
    size = {}  # a label's size; 1 broadcasts against any other
    for x, lab in ((a, la), (b, lb)):
        for c, s in zip(lab, x.shape):
            prev = size.get(c)
            if prev is None or prev == 1:
                size[c] = s
            elif s not in (1, prev):
                raise ValueError(f"[einsum] subscript {c!r} has size {prev} in one operand and {s} in another")
    batch = [c for c in la if c in lb and c in keep]
    contr = [c for c in la if c in lb and c not in keep]
    only_a = [c for c in la if c not in lb]
    only_b = [c for c in lb if c not in la]

    def arrange(x, lab, order):
        x = _core.permute(x, [lab.index(c) for c in order])
        shape = tuple(size[c] if c in batch or c in contr else x.shape[i] for i, c in enumerate(order))
        return _core.expand(x, shape) if shape != tuple(x.shape) else x

    def prod(cs):
        n = 1
        for c in cs:
            n *= size[c]
        return n

    xa = arrange(a, la, batch + only_a + contr)
    xb = arrange(b, lb, batch + contr + only_b)
    na = [xa.shape[len(batch) + i] for i in range(len(only_a))]
    nb = [xb.shape[len(batch) + len(contr) + i] for i in range(len(only_b))]
    ma = _core.reshape(xa, (prod(batch), int(np.prod(na, dtype=np.int64)), prod(contr)))
    mb = _core.reshape(xb, (prod(batch), prod(contr), int(np.prod(nb, dtype=np.int64))))
    out = _core.matmul(ma, mb)
    return _core.reshape(out, tuple(size[c] for c in batch) + tuple(na) + tuple(nb)), batch + only_a + only_b


def einsum(equation, *operands):
    """Einstein summation over the operands as the subscripts say (``nc.einsum('bij,bjk->bik', a, b)``)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("[einsum] expected at least one operand")
    for i, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(f"[einsum] operand {i} is a {type(x).__name__}, expected a Tensor")
    terms, out, explicit = _parse(equation, operands)
    labels, out_labels = _expand_ellipses(terms, out, explicit, operands, equation)
    xs = []
    for x, lab in zip(operands, labels):
        x, lab = _diagonal(x, lab)
        xs.append([x, lab])
    # Labels that only one operand has and the output lacks are summed right away.
    for i, (x, lab) in enumerate(xs):
        others = set(c for j, (_, l2) in enumerate(xs) if j != i for c in l2)
        xs[i] = list(_sum_labels(x, lab, set(c for c in lab if c not in others and c not in out_labels)))
    x, lab = xs[0]
    for k in range(1, len(xs)):
        later = set(c for _, l2 in xs[k + 1:] for c in l2) | set(out_labels)
        x, lab = _contract(x, lab, xs[k][0], xs[k][1], later)
        x, lab = _sum_labels(x, lab, set(c for c in lab if c not in later))
    if lab != out_labels:
        x = _core.permute(x, [lab.index(c) for c in out_labels])
    return x
