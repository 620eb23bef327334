"""neurocore.utils.data against torch.utils.data: collation, samplers, datasets, random_split,
DataLoader arguments and batches, and real worker processes (seeding, worker_init_fn,
get_worker_info, IterableDataset sharding, persistent workers, errors and timeouts)."""
import collections
import os
import random
import time

import numpy as np
import pytest

import neurocore as nc
from neurocore.utils import data as ncd
from neurocore.utils.data import _worker
from helpers import require_torch


class _Gen:
    """The generator interface the samplers need (nc.Generator / torch.Generator have it)."""

    def __init__(self, seed=0):
        self._seed = seed

    def manual_seed(self, seed):
        self._seed = seed
        return self

    def initial_seed(self):
        return self._seed


def to_py(x):
    """Nested structure of tensors (torch or neurocore) -> nested Python/NumPy for comparison."""
    if hasattr(x, "detach"):
        return ("tensor", str(x.dtype).split(".")[-1], x.detach().numpy().tolist())
    if isinstance(x, dict):
        return ("dict", type(x).__name__, {k: to_py(v) for k, v in x.items()})
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return ("namedtuple", type(x).__name__, [to_py(v) for v in x])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [to_py(v) for v in x])
    return x


Point = collections.namedtuple("Point", ["x", "y"])


def _samples(lib):
    arr = lambda a: lib.tensor(np.asarray(a, np.float32))  # noqa: E731
    return {
        "tensors": [arr([1, 2]), arr([3, 4]), arr([5, 6])],
        "numpy": [np.arange(3, dtype=np.float64) + i for i in range(3)],
        "numpy_int": [np.array([i, i + 1], np.int64) for i in range(2)],
        "numpy_scalars": [np.float32(1.5), np.float32(2.5)],
        "floats": [1.5, 2.0, -3.25],
        "ints": [1, 2, 3],
        "bools": [True, False],
        "strings": ["a", "bc"],
        "tuples": [(arr([1]), 2, "x"), (arr([3]), 4, "y")],
        "lists": [[1.0, 2], [3.0, 4]],
        "dicts": [{"img": arr([1, 2]), "label": 0, "name": "a"}, {"img": arr([3, 4]), "label": 1, "name": "b"}],
        "ordered": [collections.OrderedDict(a=1.0, b=np.zeros(2)), collections.OrderedDict(a=2.0, b=np.ones(2))],
        "namedtuples": [Point(1.0, np.float64(2.0)), Point(3.0, np.float64(4.0))],
        "nested": [{"pair": (arr([1]), [2, 3])}, {"pair": (arr([4]), [5, 6])}],
    }


@pytest.mark.parametrize("case", sorted(_samples(nc)))
def test_default_collate_matches_torch(case):
    torch = require_torch()
    from torch.utils.data import default_collate
    expected = to_py(default_collate(_samples(torch)[case]))
    assert to_py(ncd.default_collate(_samples(nc)[case])) == expected


def test_default_convert_matches_torch():
    torch = require_torch()
    from torch.utils.data import default_convert
    for sample in ((1, np.zeros(2)), {"a": np.ones(3, np.float32), "b": "s"}, [np.int64(3), 2.0],
                   Point(np.zeros(1), 1), np.arange(4)):
        assert to_py(ncd.default_convert(sample)) == to_py(default_convert(sample))


def test_default_collate_errors():
    torch = require_torch()
    from torch.utils.data import default_collate
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        ncd.default_collate([nc.zeros(2), nc.zeros(3)])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        ncd.default_collate([[1, 2], [3]])
    for bad in ([object(), object()], [np.array(["a"]), np.array(["b"])]):
        with pytest.raises(TypeError) as expected:
            default_collate(bad)
        with pytest.raises(TypeError) as got:
            ncd.default_collate(bad)
        assert str(got.value) == str(expected.value)
    x = nc.ones(2, requires_grad=True)
    batch = ncd.default_collate([x, x * 2])
    batch.sum().backward()  # stacking keeps the graph, as torch.stack does
    assert x.grad.tolist() == [3.0, 3.0]


# --- samplers ----------------------------------------------------------------------------------------

def test_sequential_and_batch_sampler_match_torch():
    torch = require_torch()
    from torch.utils import data as td
    for n, bs, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (1, 4, False), (0, 2, False)]:
        t = td.BatchSampler(td.SequentialSampler(range(n)), bs, drop)
        m = ncd.BatchSampler(ncd.SequentialSampler(range(n)), bs, drop)
        assert list(m) == list(t) and len(m) == len(t)


@pytest.mark.parametrize("make", [
    lambda d: d.RandomSampler(range(3), replacement=1), lambda d: d.RandomSampler(range(3), num_samples=0),
    lambda d: d.RandomSampler(range(3), num_samples=2.5), lambda d: d.BatchSampler(range(3), 0, False),
    lambda d: d.BatchSampler(range(3), True, False), lambda d: d.BatchSampler(range(3), 2, 1),
    lambda d: d.WeightedRandomSampler([1, 2], 0), lambda d: d.WeightedRandomSampler([1, 2], 2, replacement=1),
    lambda d: d.WeightedRandomSampler([[1, 2]], 2)])
def test_sampler_argument_errors_match_torch(make):
    torch = require_torch()
    from torch.utils import data as td
    with pytest.raises((TypeError, ValueError)) as expected:
        make(td)
    with pytest.raises(expected.type) as got:
        make(ncd)
    assert str(got.value) == str(expected.value)


def test_random_sampler_orders():
    n = 17
    s = ncd.RandomSampler(range(n), generator=_Gen(5))
    e1, e2 = list(s), list(s)
    assert sorted(e1) == sorted(e2) == list(range(n)) and e1 != e2  # a new permutation each epoch
    assert list(ncd.RandomSampler(range(n), generator=_Gen(5))) == e1  # same seed, same order
    assert list(ncd.RandomSampler(range(n), generator=_Gen(6))) != e1
    g = _Gen(5)
    s = ncd.RandomSampler(range(n), generator=g)
    list(s)
    g.manual_seed(9)
    assert list(s) == list(ncd.RandomSampler(range(n), generator=_Gen(9)))  # reseeding restarts the stream
    long = list(ncd.RandomSampler(range(n), num_samples=40, generator=_Gen(1)))
    assert len(long) == 40 and sorted(long[:17]) == sorted(long[17:34]) == list(range(n))
    assert len(set(long[34:])) == 6
    rep = list(ncd.RandomSampler(range(n), replacement=True, num_samples=500, generator=_Gen(2)))
    assert len(rep) == 500 and min(rep) == 0 and max(rep) == n - 1 and len(set(rep)) == n
    nc.manual_seed(11)
    a = list(ncd.RandomSampler(range(n)))
    nc.manual_seed(11)
    assert list(ncd.RandomSampler(range(n))) == a  # without a generator: the global seed decides


def test_subset_and_weighted_samplers():
    idx = [3, 8, 11, 20]
    s = ncd.SubsetRandomSampler(idx, generator=_Gen(0))
    assert sorted(s) == idx and len(s) == 4
    w = nc.tensor([0.0, 1.0, 3.0, 0.0, 6.0], dtype=nc.float64)
    draws = np.array(list(ncd.WeightedRandomSampler(w, 20000, generator=_Gen(3))))
    counts = np.bincount(draws, minlength=5) / 20000
    assert counts[0] == counts[3] == 0
    np.testing.assert_allclose(counts[[1, 2, 4]], [0.1, 0.3, 0.6], atol=0.015)
    no_rep = list(ncd.WeightedRandomSampler([1, 1, 5, 1], 4, replacement=False, generator=_Gen(1)))
    assert sorted(no_rep) == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match=r"cannot sample n_sample > prob_dist.size\(-1\) samples without replacement"):
        list(ncd.WeightedRandomSampler([1.0, 0.0, 1.0], 3, replacement=False))
    with pytest.raises(RuntimeError, match="probability tensor contains either `inf`, `nan` or element < 0"):
        list(ncd.WeightedRandomSampler([1.0, -1.0], 3))


# --- datasets ----------------------------------------------------------------------------------------

class Squares(ncd.Dataset):
    def __init__(self, n, offset=0):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        v = i + self.offset
        return {"x": np.array([v, v * v], np.float32), "y": v % 3}


def test_subset_concat_chain():
    torch = require_torch()
    from torch.utils import data as td
    a, b = Squares(4), Squares(3, offset=10)
    cat = a + b
    assert isinstance(cat, ncd.ConcatDataset) and len(cat) == 7 and cat.cumulative_sizes == [4, 7]
    assert [cat[i]["y"] for i in range(7)] == [0, 1, 2, 0, 1, 2, 0] and cat[-1]["x"].tolist() == [12, 144]
    class TorchIt(td.IterableDataset):
        def __iter__(self):
            return iter([])
    for t_bad, n_bad in ((lambda: td.ConcatDataset([]), lambda: ncd.ConcatDataset([])),
                         (lambda: td.ConcatDataset([Squares(2), TorchIt()]),
                          lambda: ncd.ConcatDataset([Squares(2), Stream(1)]))):
        with pytest.raises(AssertionError) as expected:
            t_bad()
        with pytest.raises(AssertionError) as got:
            n_bad()
        assert str(got.value) == str(expected.value)
    with pytest.raises(ValueError, match="absolute value of index should not exceed dataset length"):
        cat[-8]
    sub = ncd.Subset(cat, [6, 0, 2])
    assert len(sub) == 3 and sub[0]["y"] == 0 and sub.__getitems__([1, 2])[1]["x"].tolist() == [2, 4]

    class Count(ncd.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    chain = Count(2) + Count(3)
    assert isinstance(chain, ncd.ChainDataset) and list(chain) == [0, 1, 0, 1, 2] and len(chain) == 5


@pytest.mark.parametrize("lengths", [[0.5, 0.5], [0.3, 0.3, 0.4], [0.1, 0.9], [3, 7], [0.25, 0.25, 0.25, 0.25],
                                     [1.0, 0.0]])
def test_random_split_matches_torch_sizes(lengths):
    torch = require_torch()
    from torch.utils import data as td
    import warnings
    for n in (10, 7, 13):
        if all(isinstance(v, int) for v in lengths) and sum(lengths) != n:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = td.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
            m = ncd.random_split(range(n), lengths, generator=_Gen(0))
        assert [len(s) for s in m] == [len(s) for s in t]
        flat = sorted(i for s in m for i in s.indices)
        assert flat == list(range(n))
    again = ncd.random_split(range(10), [3, 7], generator=_Gen(4))
    assert [s.indices for s in again] == [s.indices for s in ncd.random_split(range(10), [3, 7], generator=_Gen(4))]


def test_random_split_errors_match_torch():
    torch = require_torch()
    from torch.utils import data as td
    for lengths in ([3, 3], [0.5, 0.6], [1.2, -0.2]):
        with pytest.raises(ValueError) as expected:
            td.random_split(range(10), lengths)
        with pytest.raises(ValueError) as got:
            ncd.random_split(range(10), lengths)
        assert str(got.value) == str(expected.value)
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        ncd.random_split(range(3), [1.0, 0.0])


# --- DataLoader: arguments and single-process batches --------------------------------------------------

class Stream(ncd.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = ncd.get_worker_info()
        lo, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter([np.float32(i) for i in range(lo, self.n, step)])

    def __len__(self):
        return self.n


class TorchStream(Stream):
    pass


@pytest.mark.parametrize("kwargs", [dict(num_workers=-1), dict(timeout=-1), dict(prefetch_factor=2),
                                    dict(persistent_workers=True), dict(shuffle=True, sampler=[0, 1]),
                                    dict(batch_sampler=[[0]], batch_size=2), dict(batch_sampler=[[0]], drop_last=True),
                                    dict(batch_size=None, drop_last=True), dict(iterable=True, shuffle=True),
                                    dict(iterable=True, sampler=[0]), dict(iterable=True, batch_sampler=[[0]])])
def test_dataloader_argument_errors_match_torch(kwargs):
    torch = require_torch()
    from torch.utils import data as td
    kwargs = dict(kwargs)
    iterable = kwargs.pop("iterable", False)

    class TorchIt(td.IterableDataset):
        def __iter__(self):
            return iter([1])
    with pytest.raises(ValueError) as expected:
        td.DataLoader(TorchIt() if iterable else range(4), **kwargs)
    with pytest.raises(ValueError) as got:
        ncd.DataLoader(Stream(1) if iterable else range(4), **kwargs)
    msg = str(expected.value).replace("TorchIt", "Stream")
    assert str(got.value).split(" object at ")[0] == msg.split(" object at ")[0]


def _torch_dataset(torch, cls_base):
    class TorchSquares(cls_base):
        def __init__(self, n):
            self.inner = Squares(n)

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            return self.inner[i]
    return TorchSquares


@pytest.mark.parametrize("kwargs", [dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None),
                                    dict(batch_sampler=[[4, 1], [0], [2, 3, 6]]), dict(sampler=[5, 0, 3], batch_size=2),
                                    dict(batch_size=2, collate_fn=lambda b: [s["y"] for s in b]),
                                    dict(batch_size=4, pin_memory=True)])
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true")
def test_dataloader_batches_match_torch(kwargs):
    torch = require_torch()
    from torch.utils import data as td
    t = td.DataLoader(_torch_dataset(torch, td.Dataset)(7), **kwargs)
    m = ncd.DataLoader(Squares(7), **kwargs)
    assert len(m) == len(t)
    assert [to_py(b) for b in m] == [to_py(b) for b in t]


def test_dataloader_tensor_dataset_and_iterable_match_torch():
    torch = require_torch()
    from torch.utils import data as td
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10) % 3
    t = td.DataLoader(td.TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=4)
    m = ncd.DataLoader(ncd.TensorDataset(nc.tensor(X), nc.tensor(y)), batch_size=4)
    assert [to_py(b) for b in m] == [to_py(b) for b in t]

    class TorchIt(td.IterableDataset):
        def __iter__(self):
            info = td.get_worker_info()
            lo, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter([np.float32(i) for i in range(lo, 7, step)])

        def __len__(self):
            return 7
    for kw in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        tl, ml = td.DataLoader(TorchIt(), **kw), ncd.DataLoader(Stream(7), **kw)
        assert len(ml) == len(tl) and [to_py(b) for b in ml] == [to_py(b) for b in tl]
    kw = dict(batch_size=2, num_workers=2)  # each worker yields its shard; batches alternate between workers
    tl, ml = td.DataLoader(TorchIt(), **kw), ncd.DataLoader(Stream(7), **kw)
    assert [to_py(b) for b in ml] == [to_py(b) for b in tl]


def test_dataloader_shuffle_generator_and_seed():
    ds = ncd.TensorDataset(nc.arange(12))
    order = lambda loader: [int(v) for (b,) in loader for v in b.tolist()]  # noqa: E731
    a = order(ncd.DataLoader(ds, batch_size=5, shuffle=True, generator=_Gen(7)))
    assert sorted(a) == list(range(12)) and a != list(range(12))
    assert order(ncd.DataLoader(ds, batch_size=5, shuffle=True, generator=_Gen(7))) == a
    loader = ncd.DataLoader(ds, batch_size=5, shuffle=True, seed=3)
    assert order(loader) != order(loader)  # a new order per epoch
    nc.manual_seed(0)
    b = order(ncd.DataLoader(ds, batch_size=5, shuffle=True))
    nc.manual_seed(0)
    assert order(ncd.DataLoader(ds, batch_size=5, shuffle=True)) == b


# --- worker processes --------------------------------------------------------------------------------

def test_generate_numpy_seed_matches_torch():
    require_torch()
    from torch.utils.data._utils.worker import _generate_state
    for base in (0, 1, 12345, 2 ** 40 + 7, 2 ** 63 - 1):
        for wid in (0, 1, 5):
            assert _worker.generate_numpy_seed(base, wid) == _generate_state(base, wid)


class Probe(ncd.Dataset):
    """Each sample reports the process and the generators' state of the worker that loaded it."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        info = ncd.get_worker_info()
        return {"i": i, "pid": os.getpid(), "wid": -1 if info is None else info.id,
                "seed": -1 if info is None else info.seed, "nw": -1 if info is None else info.num_workers,
                "py": random.random(), "np": float(np.random.random_sample()),
                "init": float(os.environ.get("NC_TEST_INIT", "-1"))}


def _init(worker_id):
    os.environ["NC_TEST_INIT"] = str(worker_id * 10)


def test_workers_seed_init_fn_and_order():
    loader = ncd.DataLoader(Probe(), batch_size=1, num_workers=2, worker_init_fn=_init, generator=_Gen(123),
                            prefetch_factor=1)
    batches = list(loader)
    assert [int(b["i"]) for b in batches] == list(range(6))  # sampler order kept
    pids = {int(b["pid"]) for b in batches}
    assert len(pids) == 2 and os.getpid() not in pids
    wids = [int(b["wid"]) for b in batches]
    assert wids == [0, 1, 0, 1, 0, 1] and all(int(b["nw"]) == 2 for b in batches)
    assert [float(b["init"]) for b in batches] == [w * 10.0 for w in wids]
    seeds = [int(b["seed"]) for b in batches]
    base = seeds[0]
    assert seeds == [base + w for w in wids]
    # each worker seeded Python's random with base + id and NumPy with PyTorch's hash of (base, id)
    for wid in (0, 1):
        py, npr = random.Random(base + wid), np.random.RandomState(_worker.generate_numpy_seed(base, wid))
        mine = [b for b in batches if int(b["wid"]) == wid]
        assert [float(b["py"]) for b in mine] == [py.random() for _ in mine]
        assert [float(b["np"]) for b in mine] == [npr.random_sample() for _ in mine]
    again = list(ncd.DataLoader(Probe(), batch_size=1, num_workers=2, generator=_Gen(123)))
    assert int(again[0]["seed"]) == base  # the base seed comes from the generator
    assert ncd.get_worker_info() is None


def test_workers_match_single_process_and_persist():
    ds = Squares(11)
    single = [to_py(b) for b in ncd.DataLoader(ds, batch_size=3)]
    loader = ncd.DataLoader(ds, batch_size=3, num_workers=2, persistent_workers=True)
    first = [to_py(b) for b in loader]
    it = loader._workers_iter
    pids = [w.pid for w in it._workers]
    second = [to_py(b) for b in loader]
    assert first == second == single
    assert loader._workers_iter is it and [w.pid for w in it._workers] == pids and all(w.is_alive() for w in it._workers)
    it._shutdown_workers()
    tds = ncd.TensorDataset(nc.arange(10.0).reshape(5, 2), nc.arange(5))
    assert [to_py(b) for b in ncd.DataLoader(tds, batch_size=2, num_workers=2)] == \
        [to_py(b) for b in ncd.DataLoader(tds, batch_size=2)]


class Faulty(ncd.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise KeyError("missing sample 2")
        return np.float32(i)


class Slow(ncd.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        time.sleep(1.5)
        return i


def test_worker_errors_and_timeout():
    it = iter(ncd.DataLoader(Faulty(), batch_size=1, num_workers=2))
    assert next(it).tolist() == [0.0] and next(it).tolist() == [1.0]
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        next(it)
    with pytest.raises(ZeroDivisionError, match="in DataLoader worker process 1"):
        list(ncd.DataLoader(range(4), num_workers=2, worker_init_fn=lambda w: 1 / (w - 1)))
    it = iter(ncd.DataLoader(Slow(), num_workers=1, timeout=0.3))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.3 seconds"):
        next(it)
    assert time.monotonic() - start < 1.2  # raised at the timeout, long before the sample was ready
    it._shutdown_workers()
