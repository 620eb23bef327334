"""Keras callbacks with Keras 3's hook names and semantics: Callback, History, ProgbarLogger,
EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler, CSVLogger,
TerminateOnNaN, LambdaCallback."""
import csv
import math
import os
import sys
import time
import warnings

import numpy as np


class Callback:
    """Base class. fit calls on_train_begin/end, on_epoch_begin/end(epoch, logs),
    on_train_batch_begin/end(batch, logs); evaluate the on_test_* hooks; predict the
    on_predict_* hooks. `self.model` is the model being trained, `self.params` holds epochs,
    steps and verbose."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


class CallbackList:
    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            for cb in self.callbacks:
                getattr(cb, hook)(*args)
        return call


class History(Callback):
    """Records the logs of every epoch: `history.history['loss']`, ['val_accuracy'], ...;
    `history.epoch` lists the epoch numbers."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self

    def plot(self, metrics=None, path=None, title=None, show=False):
        """Learning curves: one panel per metric ('loss', 'accuracy', ...) with the training curve
        and, when present, its 'val_' curve. Saves a PNG to `path` when given; returns the figure.
        Needs matplotlib (pip install matplotlib)."""
        try:
            import matplotlib
            if path is not None and not show:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("[History.plot] needs matplotlib, an optional dependency: pip install matplotlib") \
                from None
        names = metrics or [k for k in self.history if not k.startswith("val_") and k != "learning_rate"]
        if not names:
            raise ValueError("[History.plot] the history is empty: call fit first")
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
        for ax, name in zip(axes[0], names):
            if name not in self.history:
                raise KeyError(f"[History.plot] no metric {name!r} in the history (keys: {list(self.history)})")
            epochs = np.arange(1, len(self.history[name]) + 1)
            ax.plot(epochs, self.history[name], label=f"training {name}")
            if "val_" + name in self.history:
                ax.plot(epochs, self.history["val_" + name], label=f"validation {name}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.legend()
            ax.grid(alpha=0.3)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=100)
        if show:
            plt.show()
        return fig


class Progbar:
    """Keras's progress bar: at verbose=1 a bar with the step count, ETA, time per step and
    running metrics, redrawn in place on a terminal and printed once per epoch otherwise; at
    verbose=2 one line when the target is reached."""

    def __init__(self, target, width=20, verbose=1, interval=0.05, unit_name="step", stream=None):
        self.target, self.width, self.verbose, self.interval = target, width, verbose, interval
        self.unit_name = unit_name
        self.stream = stream or sys.stdout
        self._dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._values = {}
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def _step_time(self, current, now):
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per = (now - self._time_after_first_step) / (current - 1)
        else:
            per = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per

    def _format_time(self, per):
        if per >= 1 or per == 0:
            return f" {per:.0f}s/{self.unit_name}"
        if per >= 1e-3:
            return f" {per * 1e3:.0f}ms/{self.unit_name}"
        return f" {per * 1e6:.0f}us/{self.unit_name}"

    @staticmethod
    def _format_values(values):
        out = ""
        for k, v in values.items():
            out += f" - {k}:"
            out += f" {v:.4f}" if abs(v) > 1e-3 else f" {v:.4e}"
        return out

    def update(self, current, values=None, finalize=None):
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if values:
            self._values.update(values)
        now = time.time()
        per = self._step_time(current, now)
        if self.verbose == 1:
            if not self._dynamic and not finalize:
                return
            if now - self._last_update < self.interval and not finalize:
                return
            digits = int(math.log10(self.target)) + 1 if self.target else 1
            count = f"%{digits}d/%d" % (current, self.target)
            filled = int(self.width * current / self.target) if self.target else 0
            if finalize:
                timing = f" {now - self._start:.0f}s"
            else:
                eta = per * (self.target - current)
                if eta > 3600:
                    timing = " %d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
                elif eta > 60:
                    timing = " %d:%02d" % (eta // 60, eta % 60)
                else:
                    timing = " %ds" % eta
            info = timing + self._format_time(per) + self._format_values(self._values)
            if self._dynamic:
                bar = (f"\x1b[1m{count}\x1b[0m " + (f"\x1b[32m{'━' * filled}\x1b[0m" if filled else "") +
                       f"\x1b[37m{'━' * (self.width - filled)}\x1b[0m")
                visible = len(count) + 1 + self.width + len(info)
                message = "\b" * self._prev_total_width + "\r" + bar + info
                if self._prev_total_width > visible:
                    message += " " * (self._prev_total_width - visible)
                self._prev_total_width = visible
            else:
                message = f"{count} {'━' * self.width}{info}"
            if finalize:
                message += "\n"
            self.stream.write(message)
            self.stream.flush()
        elif self.verbose == 2 and finalize and self.target:
            digits = int(math.log10(self.target)) + 1
            count = f"%{digits}d/%d" % (current, self.target)
            line = f"{count} - {now - self._start:.0f}s -{self._format_time(per)}"
            for k, v in self._values.items():
                line += f" - {k}:" + (f" {v:.4f}" if v > 1e-3 else f" {v:.4e}")
            self.stream.write(line + "\n")
            self.stream.flush()
        self._last_update = now


class ProgbarLogger(Callback):
    """Prints 'Epoch i/n' and the progress bar during fit (added by fit when verbose > 0)."""

    def __init__(self):
        super().__init__()
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        verbose, epochs = self.params.get("verbose", 1), self.params.get("epochs", 1)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        self._bar = Progbar(self.params.get("steps"), verbose=verbose)
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        self._bar.update(self._seen, logs, finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        self._bar.update(self._seen, logs, finalize=True)

    def on_test_begin(self, logs=None):
        if self.params.get("_evaluating"):
            self._bar = Progbar(self.params.get("steps"), verbose=self.params.get("verbose", 1))
            self._seen = 0

    def on_test_batch_end(self, batch, logs=None):
        if self.params.get("_evaluating"):
            self._seen = batch + 1
            self._bar.update(self._seen, logs, finalize=False)

    def on_test_end(self, logs=None):
        if self.params.get("_evaluating"):
            self._bar.update(self._seen, logs, finalize=True)

    def on_predict_begin(self, logs=None):
        self._bar = Progbar(self.params.get("steps"), verbose=self.params.get("verbose", 1))
        self._seen = 0

    def on_predict_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        self._bar.update(self._seen, None, finalize=False)

    def on_predict_end(self, logs=None):
        self._bar.update(self._seen, None, finalize=True)


def _monitor_op(monitor, mode, cls):
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{cls} mode {mode} is unknown, fallback to auto mode.", stacklevel=3)
        mode = "auto"
    if mode == "auto":
        name = monitor[4:] if monitor.startswith("val_") else monitor
        if name.endswith("loss") or name in ("mse", "mae", "mean_squared_error", "mean_absolute_error"):
            mode = "min"
        elif name in ("accuracy", "acc", "auc") or name.endswith("accuracy") or name.endswith("auc"):
            mode = "max"
        else:
            raise ValueError(f"{cls} callback received monitor={monitor}, but cannot determine whether that "
                             "metric should be maximized or minimized. Pass `mode='max'` or `mode='min'`.")
    return np.less if mode == "min" else np.greater


class EarlyStopping(Callback):
    """Stops training when `monitor` has not improved by more than `min_delta` for `patience`
    epochs. restore_best_weights puts back the best epoch's weights at the end of training, also
    when training ends because the epochs ran out. start_from_epoch: epochs to wait before
    monitoring. baseline: the value to beat before the patience counter resets."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.min_delta = abs(min_delta)
        self.mode = mode
        self.monitor_op = _monitor_op(monitor, mode, "EarlyStopping")
        if self.monitor_op is np.less:
            self.min_delta *= -1
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def _is_improvement(self, value, reference):
        return reference is None or bool(self.monitor_op(value - self.min_delta, reference))

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs or {})}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (or only its weights) after each epoch, or only when `monitor` improves
    with save_best_only. `filepath` may hold {epoch} and log keys ('model-{epoch:02d}.keras').
    The file is written to a temporary name and renamed, so a crash never leaves a torn file."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise NotImplementedError("[ModelCheckpoint] only save_freq='epoch' is supported")
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.monitor_op = _monitor_op(monitor, mode, "ModelCheckpoint")
        self.best = initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
                return
            if self.best is not None and not self.monitor_op(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                prev = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {prev} to {current:.5f}, saving model "
                      f"to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` when `monitor` has not improved by `min_delta` for
    `patience` epochs; waits `cooldown` epochs after a reduction; never below `min_lr`. Adds
    'learning_rate' to the logs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"[ReduceLROnPlateau] does not support a factor >= 1.0, got {factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        op = _monitor_op(monitor, mode, "ReduceLROnPlateau")
        self.monitor_op = (lambda a, b: np.less(a, b - self.min_delta)) if op is np.less else \
            (lambda a, b: np.greater(a, b + self.min_delta))
        self.best = np.inf if op is np.less else -np.inf
        self._worst = self.best
        self.wait, self.cooldown_counter = 0, 0

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = self._worst, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch to schedule(epoch, lr) (or
    schedule(epoch)); adds 'learning_rate' to the logs."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model.optimizer.learning_rate)
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, int, np.floating, np.integer)):
            raise ValueError(f"[LearningRateScheduler] the schedule must return a float, got {lr!r}")
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class CSVLogger(Callback):
    """Writes one CSV row per epoch: 'epoch' then the log keys in sorted order (with 'val_'
    columns, 'NA' when there is no validation data, as Keras)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self._file = self._writer = self._keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._append_header = not exists
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self._keys = sorted(logs)
            if not any(k.startswith("val_") for k in self._keys):  # Keras leaves room for them
                self._keys += ["val_" + k for k in self._keys]
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self._keys, delimiter=self.sep)
            if self._append_header:
                self._writer.writeheader()
        self._writer.writerow(dict({"epoch": epoch}, **{k: logs.get(k, "NA") for k in self._keys}))
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        for name, fn in dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                             on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                             on_train_batch_end=on_train_batch_end, **kwargs).items():
            if fn is not None:
                setattr(self, name, fn)
