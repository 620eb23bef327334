"""Embedding: a lookup table of learned vectors indexed by integers."""
from .. import _core
from .._creation import empty
from .._tensor import no_grad
from . import init
from .module import Module
from .parameter import Parameter


def _padding_index(padding_idx, num_embeddings, op):
    """PyTorch's padding_idx rule: None, or an index in [-num_embeddings, num_embeddings),
    negative values counting from the end. Returns it in [0, num_embeddings) or -1 for none."""
    if padding_idx is None:
        return -1
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"[{op}] padding_idx {padding_idx} must be within num_embeddings "
                         f"({num_embeddings}): in [-{num_embeddings}, {num_embeddings})")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    r"""Rows of ``weight`` (num_embeddings, embedding_dim) picked by the int64 indices ``input``:
    the output has shape ``input.shape + (embedding_dim,)``.

    Args:
        padding_idx: that row gets no gradient. Default: ``None``.
        max_norm: rows referenced by ``input`` whose ``norm_type``-norm exceeds it are rescaled in
            place to norm ``max_norm`` before the lookup. Default: ``None``.
        norm_type: the p of the norm for ``max_norm``. Default: ``2.0``.
        scale_grad_by_freq: divide each row's gradient by its index's count in ``input``. Default: ``False``.
        sparse: sparse gradients are not supported; must be ``False``.
    """
    if sparse:
        raise NotImplementedError("[embedding] sparse gradients are not supported: use sparse=False")
    if not isinstance(input, _core.Tensor):
        raise TypeError(f"[embedding] input must be an int64 Tensor of indices, got {type(input).__name__}")
    if weight.dim() != 2:
        raise ValueError(f"[embedding] weight must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    pad = _padding_index(padding_idx, weight.shape[0], "embedding")
    if max_norm is not None:
        with no_grad():
            _core._embedding_renorm_(weight, input, float(max_norm), float(norm_type))
    return _core._embedding(weight, input, pad, bool(scale_grad_by_freq))


class Embedding(Module):
    r"""A lookup table: ``forward(indices)`` returns ``weight[indices]``, shape
    ``indices.shape + (embedding_dim,)``.

    Args:
        num_embeddings: rows in the table.
        embedding_dim: size of each vector.
        padding_idx: that row starts at zero and gets no gradient. Default: ``None``.
        max_norm: rows looked up are first renormalised in place to at most this norm. Default: ``None``.
        norm_type: p of the norm for ``max_norm``. Default: ``2.0``.
        scale_grad_by_freq: scale gradients by the inverse index frequency in the batch. Default: ``False``.
        sparse: must be ``False`` (sparse gradients are not supported).
        _weight: an initial table to use instead of the random one. Default: ``None``.
        _freeze: the table gets no gradient. Default: ``False``.

    The table starts as in PyTorch: N(0, 1), with the padding row zeroed.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        if sparse:
            raise NotImplementedError("[Embedding] sparse gradients are not supported: use sparse=False")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if padding_idx > 0:
                assert padding_idx < num_embeddings, "Padding_idx must be within num_embeddings"
            elif padding_idx < 0:
                assert padding_idx >= -num_embeddings, "Padding_idx must be within num_embeddings"
                padding_idx = num_embeddings + padding_idx
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, dtype=dtype), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"[Embedding] _weight has shape {tuple(_weight.shape)}, expected "
                                 f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self):
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)

    def forward(self, input):
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += ", scale_grad_by_freq={scale_grad_by_freq}".format(scale_grad_by_freq=self.scale_grad_by_freq)
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose table is (a copy-free view of) ``embeddings``, 2-D; ``freeze``
        (default ``True``) keeps it out of training."""
        if embeddings.dim() != 2:
            raise ValueError(f"[Embedding.from_pretrained] embeddings must be 2-D, got shape {tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        return cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, _freeze=freeze,
                   padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
