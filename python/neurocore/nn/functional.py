"""``neurocore.nn.functional``: the functional forms of layers, activations and losses."""
import warnings

from .. import _core, _creation
from .._math import (relu, leaky_relu, elu, selu, gelu, silu, mish, softplus, hardtanh, relu6, dropout,  # noqa: F401
                     sigmoid, tanh)
from .._reduce import softmax, log_softmax  # noqa: F401
from .._losses import (cross_entropy, nll_loss, mse_loss, l1_loss, huber_loss, smooth_l1_loss,  # noqa: F401
                       binary_cross_entropy, binary_cross_entropy_with_logits)
from .._losses_more import (kl_div, margin_ranking_loss, cosine_embedding_loss, pairwise_distance,  # noqa: F401
                            cosine_similarity, triplet_margin_loss, poisson_nll_loss, gaussian_nll_loss)
from .._ctc import ctc_loss  # noqa: F401
from .sparse import embedding  # noqa: F401
from .._indexing import pad  # noqa: F401
from ._conv_functional import (conv1d, conv2d, conv_transpose1d, conv_transpose2d, max_pool1d,  # noqa: F401
                               max_pool2d, avg_pool1d, avg_pool2d, adaptive_avg_pool1d, adaptive_avg_pool2d)
from ._attention_functional import scaled_dot_product_attention, multi_head_attention_forward  # noqa: F401
from ._resample import interpolate, upsample, upsample_nearest, upsample_bilinear  # noqa: F401
from ._norm_functional import group_norm, instance_norm, local_response_norm  # noqa: F401
from ._activation_functional import (prelu, hardswish, hardsigmoid, logsigmoid, softmin, softsign,  # noqa: F401
                                     tanhshrink, threshold, celu, glu, hardshrink, softshrink)
from .pixelshuffle import pixel_shuffle, pixel_unshuffle  # noqa: F401


def linear(input, weight, bias=None):
    """input @ weight.T + bias (one fused call)."""
    return _core.linear(input, weight, bias)


def relu_(input):
    return input.relu_()


def one_hot(tensor, num_classes=-1):
    """(..., num_classes) int64 tensor with a 1 at each class index."""
    if tensor.dtype != _core.dtype.int64:
        raise TypeError(f"[one_hot] expected an int64 tensor of class indices, got {tensor.dtype}")
    if num_classes < -1:
        raise ValueError(f"[one_hot] num_classes must be -1 or non-negative, got {num_classes}")
    if tensor.numel():
        low, high = int(tensor.min().item()), int(tensor.max().item())
        if low < 0:
            raise RuntimeError(f"[one_hot] class values must be non-negative, got {low}")
        if num_classes == -1:
            num_classes = high + 1
        elif high >= num_classes:
            raise RuntimeError(f"[one_hot] class values must be smaller than num_classes ({num_classes}), got {high}")
    elif num_classes == -1:
        raise RuntimeError("[one_hot] can not infer the total number of classes from an empty tensor")
    shape = tuple(tensor.shape) + (num_classes,)
    index = tensor.unsqueeze(-1)
    ones = _core._full(tuple(index.shape), 1, _core.dtype.int64)
    return _core._scatter_add_new(shape, -1, index, ones)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    norm = (input.abs() ** p).sum(dim=dim, keepdim=True) ** (1.0 / p)
    return input / norm.clamp_min(eps)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over dim 1 of (N, C, *) input; see ``nn.BatchNorm1d``. In training the
    running statistics (when given) are updated in place."""
    if training:
        size = list(input.shape)
        prod = size[0]
        for s in size[2:]:
            prod *= s
        if prod == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
    return _core._batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the trailing ``normalized_shape`` dims; see ``nn.LayerNorm``."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _core._layer_norm(input, list(normalized_shape), weight, bias, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2 over the trailing ``normalized_shape``) + eps) * weight; eps=None means
    the machine epsilon of the input's dtype; see ``nn.RMSNorm``."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    if eps is None:
        eps = 2.220446049250313e-16 if input.dtype == _core.dtype.float64 else 1.1920928955078125e-07
    return _core._rms_norm(input, list(normalized_shape), weight, eps)


def _feature_dropout(input, p, training, inplace, batched=True):
    """Zeroes whole channels (dim 1, or dim 0 of unbatched input) with probability p and scales the
    rest by 1/(1-p): one mask value per (N, C), broadcast over the remaining dims."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    lead = 2 if batched else 1
    shape = list(input.shape[:lead]) + [1] * (input.dim() - lead)
    mask = _core._bernoulli_scaled_(_creation.empty(*shape, dtype=input.dtype), p)
    if inplace:
        return input.mul_(mask)
    return input * mask


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, H, W) input (a 3-D input is read as (N, C, L), as PyTorch does)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.dim() not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.dim()}-D input to dropout2d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout2d exists to provide channel-wise dropout on "
                      "inputs with 2 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).", stacklevel=2)
    if input.dim() == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.", stacklevel=2)
    return _feature_dropout(input, p, training, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, L) input, or unbatched (C, L)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.dim() not in (2, 3):
        raise RuntimeError(f"[dropout1d] expected 2D or 3D input, but received a {input.dim()}D input of shape "
                           f"{tuple(input.shape)}. Note that dropout1d exists to provide channel-wise dropout on "
                           "inputs with 1 spatial dimension, a channel dimension, and an optional batch dimension "
                           "(i.e. 2D or 3D inputs).")
    return _feature_dropout(input, p, training, inplace, batched=input.dim() == 3)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, D, H, W) input, or unbatched (C, D, H, W)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.dim() not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.dim()}-D input to dropout3d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead. Note that dropout3d exists to provide channel-wise dropout on "
                      "inputs with 3 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 4D or 5D inputs).", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, batched=input.dim() == 5)


# SELU's negative saturation value, -scale * alpha: alpha dropout sets dropped units to it (before
# the affine correction) so that the output keeps zero mean and unit variance.
_SELU_SATURATION = 1.7580993408473766


def _alpha_dropout(input, p, training, inplace, feature):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input.mul_(0) if inplace else input * 0
    if feature and input.dim() < 2:
        raise RuntimeError(f"[feature_alpha_dropout] feature dropout requires at least 2 dimensions in the input, "
                           f"got shape {tuple(input.shape)}")
    shape = list(input.shape[:2]) + [1] * (input.dim() - 2) if feature else list(input.shape)
    keep = _core.ne(_core._bernoulli_scaled_(_creation.empty(*shape, dtype=input.dtype), p), 0).to(input.dtype)
    # PyTorch's formula: x * keep * a + (keep - 1) * alpha * a + alpha * a * p.
    a = ((_SELU_SATURATION ** 2 * p + 1) * (1 - p)) ** -0.5
    scale = keep * a
    shift = (keep - 1) * (_SELU_SATURATION * a) + _SELU_SATURATION * a * p
    return input.mul_(scale).add_(shift) if inplace else input * scale + shift


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks: dropped units take SELU's saturation value and an affine map keeps
    the mean and variance of standard-normal input. Identity unless training."""
    return _alpha_dropout(input, p, training, inplace, feature=False)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout of whole channels (dim 1): one draw per (N, C). Identity unless training."""
    return _alpha_dropout(input, p, training, inplace, feature=True)
