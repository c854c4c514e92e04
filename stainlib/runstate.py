"""A training run's bookkeeping around the training core: resume, checkpoints, snapshots, SIGTERM (book chapter 4,
"Training").

:func:`stainlib.train.fit` trains with :func:`stainlib.train.fit_epoch`; this module keeps the run folder in step
with it, so that the training core stays short enough to read:

* :func:`resume` checks a run folder against the settings of the run about to train (``config.json`` and the config
  inside ``last.pt``; only ``epochs`` may grow) and gives back the state of ``last.pt`` to go on from;
* :class:`PendingWrites` holds the state of the last finished epoch and the best weights until they are written,
  every ``checkpoint_every`` epochs or ``checkpoint_seconds`` seconds (whichever comes first), after the last epoch,
  and when training stops on an exception (:meth:`PendingWrites.flush`); it writes the snapshots of ``keep_steps``
  when their step is reached, and a fresh run's ``config.json`` with its first file;
* :func:`sigterm_raises` turns SIGTERM (``docker stop``, a SLURM preemption) into :class:`Terminated`, which stops
  training as Ctrl-C does: the last finished epoch is written before it goes on;
* :func:`check_loss` and :func:`check_psnr` stop a run whose training loss or validation PSNR is not finite.

A run folder holds (how each file is written and checked is :mod:`stainlib.checkpoints`, called through the module,
where tests replace its functions):

* ``config.json`` — the model, the data and the training settings (enough to rebuild both), written with the first
  checkpoint, so a run that fails before its first epoch ends leaves no settings behind to refuse a corrected retry;
  its ``data`` may hold a ``fingerprint`` of the training images (:func:`stainlib.data.train_fingerprint`), compared
  on resume: a run is never resumed on changed data.  It also records what does not change what is trained, as
  resolved (precision, ``channels_last``, ``compile``, the ``budget``); these may change when a run is resumed;
* ``last.pt`` and ``best.pt`` — checkpoints, each holding a copy of the config, with their SHA-256 in ``SHA256SUMS``
  (where ``config.json`` and ``metrics.json`` are listed too), which always lists the digest of the checkpoint on
  disk, so a kill at any moment leaves a run that loads and resumes;
* ``history.csv`` — one row per epoch: training loss, validation PSNR, learning rate, seconds;
* ``steps/step-000125.pt`` — with ``keep_steps``, the weights (only) right after each of those optimiser steps, with
  the config inside and the digest in ``SHA256SUMS`` (a learning curve without retraining:
  ``load_run(run, snapshot_name(125))``).  A resumed run writes the snapshots it has not reached yet;
* ``.lock`` — held by :func:`stainlib.train.fit` while it trains (:func:`stainlib.files.run_lock`): a second trainer
  of the same folder is refused at once.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from pathlib import Path

from . import checkpoints
from .checkpoints import RunError
from .files import stale_temporaries

__all__ = [
    "PendingWrites",
    "Terminated",
    "check_loss",
    "check_psnr",
    "copy_state",
    "log_unreached",
    "restore",
    "resume",
    "sigterm_raises",
]


class Terminated(KeyboardInterrupt):
    """Training was stopped by SIGTERM; like Ctrl-C, the last finished epoch was saved and the run resumes."""


@contextlib.contextmanager
def sigterm_raises():
    """Inside: SIGTERM raises :class:`Terminated` (in the main thread; elsewhere signals cannot be caught).

    Example: ``with sigterm_raises(): train()``; the previous handler is put back on exit.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def stop(_signum, _frame):
        raise Terminated("stopped by SIGTERM")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume(run: Path, run_config: dict, epochs: int) -> tuple[dict | None, bool]:
    """The state of ``run/last.pt`` to go on from (None for a fresh run), and whether that run is finished.

    Deletes the temporaries a writer killed mid-write left (the caller holds the folder's lock); refuses a folder made
    with other settings (:class:`RunError` names them).  A finished run is left as it is, its ``config.json`` written
    back if it was lost; an unfinished one gets its ``config.json`` now, a fresh one with its first file.

    Args:
        run: the run folder (its lock held by the caller).
        run_config: the settings of the run asked for (``config.json``'s content).
        epochs: the epochs asked for.

    Returns:
        ``(state, finished)``: the ``last.pt`` state or ``None``, and whether the run has its ``epochs`` already.

    Raises:
        RunError: the folder was made with other settings, or a checkpoint is damaged.
    """
    for tmp in stale_temporaries(run):
        tmp.unlink(missing_ok=True)
    stored = checkpoints.read_config(run) if (run / "config.json").exists() else None
    checkpoints.check_settings(run, stored, "config.json", run_config)
    state = checkpoints.load_checkpoint(run, "last.pt") if (run / "last.pt").exists() else None
    if state is None:
        return None, False
    if "config" not in state and stored is None:
        raise RunError(f"{run / 'last.pt'} holds no config and {run / 'config.json'} is missing: cannot resume it")
    checkpoints.check_settings(run, state.get("config"), "last.pt", run_config)
    if state["epoch"] >= epochs:  # finished: nothing to train, and config.json is kept
        if not (run / "best.pt").exists():
            raise RunError(
                f"{run} is trained ({state['epoch']} epochs) but its best.pt is missing: the best weights are lost; "
                "train it anew with --retrain (retrain=True)"
            )
        if stored is None:
            checkpoints.write_config(run, state["config"])
        return state, True
    checkpoints.write_config(run, run_config)
    return state, False


def restore(state: dict, model, optimizer, scheduler, scaler) -> tuple[list, float, int]:
    """Load a ``last.pt`` state into the training objects.

    Args:
        state: :func:`resume`'s state.
        model, optimizer, scheduler, scaler: the training objects, built as for a fresh run.

    Returns:
        ``(history, best validation PSNR, epoch)``, to go on from.
    """
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return state["history"], state["best"], state["epoch"]


def log_unreached(keep, start: int, epochs: int, steps_per_epoch: int, log) -> None:
    """Say which snapshot steps of ``keep`` this training will not write: behind a resumed epoch, or past the end.

    Args:
        keep: the optimiser steps asked for (``keep_steps``).
        start: the epoch the training starts from (0: fresh).
        epochs, steps_per_epoch: the run's length.
        log: a callable that takes one line (``print``).
    """
    past = sorted(k for k in keep if k <= start * steps_per_epoch)
    beyond = sorted(k for k in keep if k > epochs * steps_per_epoch)
    if past:
        log(f"snapshots of steps {past} are behind the resumed epoch {start}: not written now")
    if beyond:
        log(f"snapshots of steps {beyond} are beyond this run's {epochs * steps_per_epoch} steps: not written")


def copy_state(state):
    """A deep copy of a state dict, tensors cloned on their device (cheap on a GPU, unlike a write to disk).

    Example: ``copy_state(model.state_dict())``, kept while training goes on.
    """
    return copy.deepcopy(state)


class PendingWrites:
    """What a training run has not written yet, and when it writes it.

    Between checkpoints the state of the last finished epoch (:attr:`last`) and the best weights (:attr:`best`) are
    kept as copies in memory, on the device, so the epochs that write nothing cost nothing.  A write the disk refused
    is remembered (:attr:`failed`) and not tried again when the error goes on through :meth:`flush`'s caller.
    """

    def __init__(self, run: Path, run_config: dict, epoch: int, every: int, seconds: float, config_written: bool):
        self.run, self.run_config, self.every, self.seconds = run, run_config, every, seconds
        self.config_written = config_written  # a fresh run's config.json comes with its first file
        self.last = None  # the state of the last finished epoch, not yet written
        self.best = None  # the best weights so far, not yet written
        self.written_at, self.written_epoch = time.monotonic(), epoch
        self.failed = None  # the OSError of a file that could not be written (a full disk)

    def _config(self) -> None:
        if not self.config_written:
            checkpoints.write_config(self.run, self.run_config)
            self.config_written = True

    def snapshot(self, model, step: int, epoch: float, images_seen: int) -> None:
        """Write the weights of ``model`` after an optimiser step now (:func:`stainlib.checkpoints.snapshot_name`).

        Args:
            model: the model being trained.
            step: the optimiser step just taken.
            epoch: the (fractional) epoch it falls in, stored with the weights.
            images_seen: the training images seen so far, stored with the weights.
        """
        self._config()  # a snapshot is loaded against config.json: it comes with it
        state = {"model": model.state_dict(), "step": step, "epoch": epoch, "images_seen": images_seen}
        checkpoints.save_checkpoint(self.run, checkpoints.snapshot_name(step), {**state, "config": self.run_config})

    def epoch_done(self, model, optimizer, scheduler, scaler, history, best, improved: bool, final: bool) -> None:
        """Keep the state after the epoch ``history[-1]`` (and its weights as the best, if ``improved``), copied; write
        them when due.

        Args:
            model, optimizer, scheduler, scaler: the training objects.
            history: the rows of ``history.csv`` so far.
            best: the best validation PSNR so far.
            improved: whether this epoch gave it.
            final: whether this is the run's last epoch (then it is written at once).
        """
        epoch = history[-1]["epoch"]
        if improved:
            self.best = {"model": copy_state(model.state_dict()), "epoch": epoch, "val_psnr": best}
            self.best["config"] = self.run_config
        self.last = {
            "model": copy_state(model.state_dict()),
            "optimizer": copy_state(optimizer.state_dict()),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "history": list(history),
            "epoch": epoch,
            "best": best,
            "config": self.run_config,
        }
        due = epoch - self.written_epoch >= self.every or final
        if due or time.monotonic() - self.written_at >= self.seconds:
            self.flush()

    def flush(self) -> None:
        """Write what is pending: ``best.pt``, then ``last.pt`` with ``history.csv``.

        Example: ``pending.flush()`` when training stops early (Ctrl-C, an error): resuming goes on from the last
        finished epoch.

        Raises:
            OSError: a write failed; it is kept in ``failed`` too, and nothing more is written.
        """
        try:
            if self.best is not None:
                checkpoints.save_checkpoint(self.run, "best.pt", self.best)
                self.best = None
            if self.last is not None:
                self._config()
                checkpoints.save_checkpoint(self.run, "last.pt", self.last)
                checkpoints.write_history(self.run, self.last["history"])
                self.written_epoch = self.last["epoch"]
        except OSError as exc:
            self.failed = exc
            raise
        self.last = self.best = None
        self.written_at = time.monotonic()


def check_loss(values: list[float], epoch: int, lr: float) -> None:
    """Stop the run if a training loss of the epoch is not finite.

    Args:
        values: the epoch's step losses.
        epoch: the epoch, 0-based.
        lr: the learning rate, for the message.

    Raises:
        FloatingPointError: a loss is NaN or infinite; the message names the epoch and step.
    """
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    if bad is not None:
        raise FloatingPointError(
            f"training loss is {values[bad]} at epoch {epoch + 1}, step {bad + 1}; lower the learning rate (now {lr:g})"
        )


def check_psnr(val: float, epoch: int, lr: float) -> None:
    """Stop the run if the validation PSNR after the epoch is not finite.

    Args:
        val: the validation PSNR (dB).
        epoch: the epoch, 0-based.
        lr: the learning rate, for the message.

    Raises:
        FloatingPointError: the PSNR is NaN or infinite.
    """
    if not math.isfinite(val):
        raise FloatingPointError(
            f"validation PSNR is {val} at epoch {epoch + 1}: the weights are no longer finite; "
            f"lower the learning rate (now {lr:g})"
        )
