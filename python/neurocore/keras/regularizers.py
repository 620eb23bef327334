"""Weight penalties added to the training loss: l1 (l1 * sum|w|), l2 (l2 * sum w^2), l1_l2.
Keras's defaults: l1=0.01, l2=0.01."""


class Regularizer:
    def __call__(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        total = None
        if self.l1:
            total = w.abs().sum() * self.l1
        if self.l2:
            term = (w * w).sum() * self.l2
            total = term if total is None else total + term
        return total if total is not None else (w * 0.0).sum()

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1, l2)


l1 = L1
l2 = L2
_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer) or callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in ("l1", "l2", "l1_l2"):
        return {"l1": L1, "l2": L2, "l1_l2": L1L2}[identifier]()
    if isinstance(identifier, dict):
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(f"[keras.regularizers] unknown regularizer {identifier!r}")


def serialize(reg):
    if reg is None:
        return None
    if type(reg).__name__ not in _CLASSES:
        raise ValueError(f"[keras.regularizers] cannot serialize the custom regularizer {reg!r}")
    return {"class_name": type(reg).__name__, "config": reg.get_config()}
