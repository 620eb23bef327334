"""compile / fit / evaluate / predict / train_on_batch for keras.Model.

Each step runs one whole batch through the C++ ops: one forward call of the model, one loss, one
backward, one fused optimizer call; batches are sliced from NumPy arrays (no per-sample Python).
Logs follow Keras 3: running, sample-weighted means over the epoch, keys sorted, 'val_' keys
after the training ones."""
import math

import numpy as np

from .. import _core
from .._tensor import no_grad
from . import _backend, callbacks as callbacks_mod, losses as losses_mod, metrics as metrics_mod
from . import optimizers as optimizers_mod


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, dict):
        return list(x.values())
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _to_array(a, what):
    if isinstance(a, _core.Tensor):
        a = a.detach().numpy()
    arr = np.asarray(a)
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind == "O":
        raise TypeError(f"[fit] {what} must be numeric arrays, got dtype object")
    return arr


class _Data:
    """Inputs, targets and sample weights as lists of NumPy arrays with one batch dimension."""

    def __init__(self, x, y=None, sample_weight=None, what="x"):
        self.x = [_to_array(a, what) for a in _as_list(x)]
        self.y = [_to_array(a, "y") for a in _as_list(y)] if y is not None else None
        self.sw = _to_array(sample_weight, "sample_weight") if sample_weight is not None else None
        sizes = {len(a) for a in self.x + (self.y or [])} | ({len(self.sw)} if self.sw is not None else set())
        if len(sizes) != 1:
            raise ValueError(f"[fit] all inputs and targets must have the same number of samples, got sizes "
                             f"{[len(a) for a in self.x]} (x) and {[len(a) for a in self.y or []]} (y)")
        self.n = sizes.pop()

    def take(self, idx):
        out = _Data.__new__(_Data)
        out.x = [a[idx] for a in self.x]
        out.y = [a[idx] for a in self.y] if self.y is not None else None
        out.sw = self.sw[idx] if self.sw is not None else None
        out.n = len(out.x[0])
        return out

    def batch(self, idx):
        xs = [_backend.to_tensor(a[idx]) for a in self.x]
        ys = [_backend.to_tensor(a[idx]) for a in self.y] if self.y is not None else None
        sw = _backend.to_tensor(self.sw[idx]) if self.sw is not None else None
        return xs, ys, sw


class Trainer:
    """Mixin of keras.Model with the training loop."""

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        if weighted_metrics:
            raise NotImplementedError("[compile] weighted_metrics is not supported; metrics are unweighted")
        self.optimizer = optimizers_mod.get(optimizer)
        self._loss_spec, self._metric_spec, self._loss_weights = loss, metrics, loss_weights
        self._weighted_metric_spec = weighted_metrics
        self._losses = None  # resolved per output on the first batch (needs the output names)
        self._compiled_metrics = None
        self._loss_tracker = metrics_mod.Mean("loss")
        self.compiled = True
        self._compile_config = {"optimizer": optimizers_mod.serialize(self.optimizer),
                                "loss": loss if isinstance(loss, (str, list, dict, type(None))) else None,
                                "metrics": metrics if all(isinstance(m, str) for m in (metrics or [])) else None}
        # Check the names now, so that a typo fails in compile rather than in fit.
        for spec in (_as_list(loss) or []):
            if spec is not None:
                losses_mod.get(spec)

    def _require_compiled(self, what):
        if not getattr(self, "compiled", False):
            raise RuntimeError(f"[{what}] you must call compile() before using the model")

    # --- loss and metrics per output ---------------------------------------------------------
    def _output_names(self, n):
        names = getattr(self, "output_names", None)
        if names and len(names) == n:
            return list(names)
        return [f"output_{i}" for i in range(n)]

    def _resolve(self, ys, preds):
        n = len(preds)
        names = self._output_names(n)
        spec = self._loss_spec
        if spec is None:
            raise ValueError("[compile] no loss given: compile(loss=...) before training")
        if isinstance(spec, dict):
            specs = [spec.get(k) for k in names]
        elif isinstance(spec, (list, tuple)):
            if len(spec) != n:
                raise ValueError(f"[compile] {len(spec)} losses for a model with {n} outputs")
            specs = list(spec)
        else:
            specs = [spec] * n
        self._losses = [losses_mod.get(s) if s is not None else None for s in specs]
        lw = self._loss_weights
        self._lw = ([lw.get(k, 1.0) for k in names] if isinstance(lw, dict) else list(lw) if lw is not None
                    else [1.0] * n)
        mspec = self._metric_spec
        if isinstance(mspec, dict):
            per = [_as_list(mspec.get(k)) or [] for k in names]
        elif isinstance(mspec, (list, tuple)) and n > 1 and mspec and isinstance(mspec[0], (list, tuple)):
            per = [list(m) for m in mspec]
        else:
            per = [list(mspec or [])] * n
        self._compiled_metrics = []
        for i in range(n):
            for m in per[i]:
                metric = metrics_mod.get(m, tuple(ys[i].shape), tuple(preds[i].shape))
                if n > 1:
                    metric.name = f"{names[i]}_{metric.name}"
                self._compiled_metrics.append((i, metric))
        self._output_loss_trackers = [metrics_mod.Mean(f"{names[i]}_loss") for i in range(n)] if n > 1 else []

    @property
    def metrics(self):
        if not getattr(self, "compiled", False):
            return []
        return [self._loss_tracker] + self._output_loss_trackers + [m for _, m in self._compiled_metrics or []] \
            if self._compiled_metrics is not None else [self._loss_tracker]

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    def _logs(self):
        return {k: float(v) for k, v in sorted((m.name, m.result()) for m in self.metrics)}

    def _class_weights(self, y, class_weight):
        labels = y if y.ndim == 1 or y.shape[-1] == 1 else y.argmax(axis=-1)
        labels = labels.reshape(len(labels)).astype(np.int64)
        table = np.ones(max(int(labels.max()) + 1, max(class_weight) + 1), np.float32)
        for k, w in class_weight.items():
            table[int(k)] = w
        return table[labels]

    def _compute_loss(self, ys, preds, sw, plan=None):
        """(total loss with the weight penalties, the per-output losses). `plan`: the model's
        _penalty_plan() (None: walk the layers for `losses`)."""
        if self._losses is None:
            self._resolve(ys, preds)
        if ys is None or len(ys) != len(preds):
            raise ValueError(f"[fit] the model has {len(preds)} outputs but {len(ys or [])} targets were given")
        total, per_output = None, []
        for loss, weight, y, p in zip(self._losses, self._lw, ys, preds):
            value = loss(y, p, sw) if loss is not None else None
            per_output.append(value)
            if value is not None:
                term = value * weight if weight != 1.0 else value
                total = term if total is None else total + term
        for penalty in self.losses if plan is None else [reg(getattr(layer, attr)) for layer, attr, reg in plan]:
            total = total + penalty
        return total, per_output

    def _update_metrics(self, ys, preds, total, per_output, batch):
        """Running means weighted by the batch size, as Keras's loss tracker and metrics."""
        with no_grad():
            self._loss_tracker.total += float(total.item()) * batch
            self._loss_tracker.count += batch
            for tracker, value in zip(self._output_loss_trackers, per_output):
                if value is not None:
                    tracker.total += float(value.item()) * batch
                    tracker.count += batch
            for i, metric in self._compiled_metrics:
                metric.update_state(ys[i], preds[i].detach())

    def _forward(self, xs, training):
        inputs = xs[0] if len(xs) == 1 else xs
        out = self(inputs, training=training) if self._accepts_training() else self(inputs)
        return _as_list(out) if isinstance(out, (list, tuple, dict)) else [out]

    def _accepts_training(self):
        return self._call_takes_training

    def _step_cache(self):
        """What each step would otherwise find by walking the layers: the trainable weights and
        the penalty plan. fit and evaluate take it after their first step of an epoch (lazily
        built layers exist by then) and keep it for the rest of the epoch; like Keras, which
        fixes them when it builds its train function, a change to `trainable` takes effect at the
        next epoch (or fit)."""
        return self.trainable_weights, self._penalty_plan()

    def _train_step(self, xs, ys, sw, cache=None):
        params, plan = cache if cache is not None else (self.trainable_weights, None)
        for p in params:
            p.grad = None
        with _backend.phase(True, track_logits=True):
            preds = self._forward(xs, True)
            total, per_output = self._compute_loss(ys, preds, sw, plan)
        if not total.requires_grad:
            raise RuntimeError("[fit] the loss does not depend on any trainable weight")
        total.backward()
        self.optimizer.apply(params)
        self._update_metrics(ys, preds, total, per_output, len(xs[0]))

    def _test_step(self, xs, ys, sw, plan=None):
        with no_grad(), _backend.phase(False, track_logits=True):
            preds = self._forward(xs, False)
            total, per_output = self._compute_loss(ys, preds, sw, plan)
            self._update_metrics(ys, preds, total, per_output, len(xs[0]))

    # --- public loops ---------------------------------------------------------------------------
    def _prepare(self, data):
        if not self.built:
            shapes = [(None,) + a.shape[1:] for a in data.x]
            self.build(shapes[0] if len(shapes) == 1 else shapes)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Trains for `epochs` epochs on NumPy arrays; returns the History."""
        self._require_compiled("fit")
        if x is None:
            raise ValueError("[fit] x is required")
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"[fit] validation_split must be in [0, 1), got {validation_split}")
        if y is None:
            raise ValueError("[fit] y is required (targets for the loss)")
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size <= 0:
            raise ValueError(f"[fit] batch_size must be a positive integer, got {batch_size}")
        data = _Data(x, y, sample_weight)
        val = None
        if validation_data is not None:
            vd = tuple(validation_data)
            if len(vd) not in (2, 3):
                raise ValueError("[fit] validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)")
            val = _Data(vd[0], vd[1], vd[2] if len(vd) == 3 else None, "validation_data")
        elif validation_split:
            split_at = int(math.floor(data.n * (1.0 - validation_split)))
            if split_at == 0 or split_at == data.n:
                raise ValueError(f"[fit] validation_split={validation_split} leaves no training or no validation "
                                 f"samples out of {data.n}")
            val = data.take(slice(split_at, None))
            data = data.take(slice(0, split_at))
        if data.n == 0:
            raise ValueError("[fit] got an empty training set")
        if class_weight is not None:  # training samples only, as Keras
            if len(data.y) != 1:
                raise ValueError("[fit] class_weight is only supported for models with a single output")
            cw = self._class_weights(data.y[0], class_weight)
            data.sw = cw if data.sw is None else data.sw * cw
        self._prepare(data)
        if verbose == "auto":
            verbose = 1
        steps = steps_per_epoch or int(math.ceil(data.n / batch_size))
        history = callbacks_mod.History()
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger())
        cbs.append(history)
        cbl = callbacks_mod.CallbackList(cbs, self, {"verbose": verbose, "epochs": epochs, "steps": steps})
        self.stop_training = False
        self.history = history
        rng = np.random.default_rng(int(_core._random_int_(_core._full((1,), 0, _core.dtype.int64), 0, 2 ** 62)
                                        .item()))
        cbl.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            cbl.on_epoch_begin(epoch)
            order = rng.permutation(data.n) if shuffle else np.arange(data.n)
            cache = None
            for step in range(steps):
                idx = order[(step * batch_size) % data.n:][:batch_size]
                cbl.on_train_batch_begin(step)
                xs, ys, sw = data.batch(idx)
                self._train_step(xs, ys, sw, cache)
                if cache is None:
                    cache = self._step_cache()
                cbl.on_train_batch_end(step, self._logs())
                if self.stop_training:
                    break
            logs = self._logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_data(val, validation_batch_size or batch_size, cbl, validation_steps)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbl.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbl.on_train_end(logs)
        return history

    def _evaluate_data(self, data, batch_size, cbl, steps=None):
        self._prepare(data)
        self.reset_metrics()
        cbl.on_test_begin()
        n_steps = steps or int(math.ceil(data.n / batch_size))
        plan = None
        for step in range(n_steps):
            idx = np.arange(step * batch_size, min((step + 1) * batch_size, data.n))
            cbl.on_test_batch_begin(step)
            xs, ys, sw = data.batch(idx)
            self._test_step(xs, ys, sw, plan)
            if step == 0:
                plan = self._penalty_plan()
            cbl.on_test_batch_end(step, self._logs())
        logs = self._logs()
        cbl.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on (x, y): a scalar without metrics, else [loss, *metrics] (or a dict)."""
        self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else int(batch_size)
        data = _Data(x, y, sample_weight)
        if data.n == 0:
            raise ValueError("[evaluate] got an empty dataset")
        verbose = 1 if verbose == "auto" else verbose
        steps_n = steps or int(math.ceil(data.n / batch_size))
        cbs = list(callbacks or []) + ([callbacks_mod.ProgbarLogger()] if verbose else [])
        cbl = callbacks_mod.CallbackList(cbs, self, {"verbose": verbose, "steps": steps_n, "_evaluating": True})
        logs = self._evaluate_data(data, batch_size, cbl, steps)
        if return_dict:
            return logs
        values = [logs[m.name] for m in self.metrics]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x as NumPy arrays (a list for several outputs), batch by batch in
        inference mode."""
        batch_size = 32 if batch_size is None else int(batch_size)
        data = _Data(x)
        self._prepare(data)
        verbose = 1 if verbose == "auto" else verbose
        n_steps = steps or int(math.ceil(data.n / batch_size))
        cbs = list(callbacks or []) + ([callbacks_mod.ProgbarLogger()] if verbose else [])
        cbl = callbacks_mod.CallbackList(cbs, self, {"verbose": verbose, "steps": n_steps})
        cbl.on_predict_begin()
        chunks = []
        for step in range(n_steps):
            idx = np.arange(step * batch_size, min((step + 1) * batch_size, data.n))
            cbl.on_predict_batch_begin(step)
            xs, _, _ = data.batch(idx)
            with no_grad(), _backend.phase(False):
                chunks.append([p.numpy().copy() for p in self._forward(xs, False)])
            cbl.on_predict_batch_end(step)
        cbl.on_predict_end()
        if not chunks:
            raise ValueError("[predict] got an empty input")
        outs = [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]
        return outs[0] if len(outs) == 1 else outs

    def _batch_result(self, return_dict):
        logs = self._logs()
        if return_dict:
            return logs
        values = [logs[m.name] for m in self.metrics]
        return values[0] if len(values) == 1 else values

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics)."""
        self._require_compiled("train_on_batch")
        data = _Data(x, y, sample_weight)
        if class_weight is not None:
            cw = self._class_weights(data.y[0], class_weight)
            data.sw = cw if data.sw is None else data.sw * cw
        self._prepare(data)
        self.reset_metrics()  # Keras 3 reports this batch's values
        self._train_step(*data.batch(np.arange(data.n)))
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        data = _Data(x, y, sample_weight)
        self.reset_metrics()
        self._test_step(*data.batch(np.arange(data.n)))
        return self._batch_result(return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(_Data(x).n, 1), verbose=0)

