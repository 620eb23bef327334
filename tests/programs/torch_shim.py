"""The import shim of the program tests: while active, ``import torch`` (and every ``torch.X``)
gives the module ``neurocore`` (``neurocore.X``). It only renames modules; everything the programs
call is neurocore's own API."""
import contextlib
import importlib
import importlib.abc
import importlib.util
import sys


def _is_torch(name):
    return name == "torch" or name.startswith("torch.")


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if not _is_torch(fullname):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module("neurocore" + spec.name[len("torch"):])
        self._saved_spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self._saved_spec  # the import system stamped the alias spec on it: undo


@contextlib.contextmanager
def torch_is_neurocore():
    """Within the block, ``torch`` names resolve to neurocore; afterwards the real torch (if it
    was imported) is back in ``sys.modules``."""
    saved = {k: v for k, v in sys.modules.items() if _is_torch(k)}
    for k in saved:
        del sys.modules[k]
    finder = _Alias()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for k in [k for k in sys.modules if _is_torch(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
