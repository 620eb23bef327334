"""Dropout: zeroes elements with probability p during training and scales the rest by 1/(1-p)."""
from .. import _core, _math
from .module import Module


class Dropout(Module):
    """Args: p (default 0.5), inplace (default False). Identity in eval mode."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        if self.training and not self.inplace and self.p != 0.0:  # the training step: one binding call
            return _core.dropout(input, self.p, True)
        return _math.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zeroes whole channels of (N, C, H, W) input with probability p (one draw per (n, c)) and
    scales the rest by 1/(1-p). Args: p (default 0.5), inplace (default False)."""

    def forward(self, input):
        from .functional import dropout2d
        return dropout2d(input, self.p, self.training, self.inplace)


class Dropout1d(Dropout):
    """Zeroes whole channels of (N, C, L) or (C, L) input with probability p and scales the rest by
    1/(1-p). Args: p (default 0.5), inplace (default False)."""

    def forward(self, input):
        from .functional import dropout1d
        return dropout1d(input, self.p, self.training, self.inplace)


class Dropout3d(Dropout):
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability p and scales
    the rest by 1/(1-p). Args: p (default 0.5), inplace (default False)."""

    def forward(self, input):
        from .functional import dropout3d
        return dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(Dropout):
    """Dropout that keeps SELU activations normalised (dropped units take SELU's saturation value,
    then an affine correction). Args: p (default 0.5), inplace (default False)."""

    def forward(self, input):
        from .functional import alpha_dropout
        return alpha_dropout(input, self.p, self.training, self.inplace)


class FeatureAlphaDropout(Dropout):
    """Alpha dropout of whole channels (one draw per (N, C)). Args: p (default 0.5), inplace (default False)."""

    def forward(self, input):
        from .functional import feature_alpha_dropout
        return feature_alpha_dropout(input, self.p, self.training, self.inplace)
