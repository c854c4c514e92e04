"""Training an autoencoder to undo a corruption, with checkpoints that survive interruption (book chapter 4).

:func:`fit` trains ``model`` to map ``corruption(image)`` back to ``image`` with the MSE loss, as in the paper.  The
rest is the library's default, following the authors' published code where the paper's text is silent (it states no
optimiser, batch size, schedule or epoch selection): Adam (lr 1e-3, the fused kernel), batch 16, ReduceLROnPlateau on
the validation PSNR (factor 0.5), and the best-validation-PSNR weights kept.  Everything it needs to go on after an
interruption is written atomically into a run folder every ``checkpoint_every`` epochs or ``checkpoint_seconds`` seconds
(whichever comes first), after the last epoch, and when training stops on an exception (Ctrl-C included, and SIGTERM,
which :func:`fit` turns into :class:`Terminated`, as ``docker stop`` and a SLURM preemption send it): then the state
of the last finished epoch is written before the exception goes on.  A training loss or a validation PSNR that is not
finite stops the run with a ``FloatingPointError`` (the epochs before it are kept).  Between checkpoints that state
is kept as a copy in memory (on the device), so a checkpoint costs nothing on the epochs that write none:

* ``config.json`` — the model, the data and the training settings (enough to rebuild both), written with the first
  checkpoint, so a run that fails before its first epoch ends leaves no settings behind to refuse a corrected retry;
  its ``data`` may hold a ``fingerprint`` of the training images (:func:`stainlib.data.train_fingerprint`), compared
  on resume: a run is never resumed on changed data;
* ``last.pt`` and ``best.pt`` — checkpoints, each holding a copy of the config, with their SHA-256 in ``SHA256SUMS``
  (where ``config.json`` and ``metrics.json`` are listed too);
* ``history.csv`` — one row per epoch: training loss, validation PSNR, learning rate, seconds;
* ``steps/step-000125.pt`` — with ``keep_steps``, the weights (only) right after each of those optimiser steps,
  written when the step is reached, with the config inside and the digest in ``SHA256SUMS`` (a learning curve without
  retraining: ``load_run(run, snapshot_name(125))``).  A resumed run writes the snapshots it has not reached yet.

(How these files are written and checked is :mod:`stainlib.checkpoints`; the precision is :mod:`stainlib.precision`.)
``config.json`` also records what does not change what is trained, as resolved: the precision chosen for the device
(:func:`pick_precision`: bf16 autocast on GPUs with native bf16, fp16 autocast with a gradient scaler on older ones,
fp32 elsewhere), ``channels_last``, ``compile`` and the ``budget`` (training images per epoch, optimiser steps, images
seen, validation samples); these may change when a run is resumed, and are not part of its identity (``RunSpec``).
With ``val_samples``, the validation PSNR is measured on that many corrupted images drawn (with repetition, seeded)
from the validation split, as the authors' 500 validation samples per epoch.

Everything is checked (settings, data, image size against the network, device) before the run folder is created.
While :func:`fit` runs it holds an exclusive lock on the run folder (:func:`stainlib.files.run_lock`, the file
``.lock``, which stays): a second trainer of the same folder is refused at once.  ``SHA256SUMS`` always lists the
digest of the checkpoint on disk, so a kill at any moment leaves a run that loads and resumes.  The batches of an
epoch are ``batch_size`` images, except that a last batch of one image is merged into the previous one (batch norm
cannot train on a single image whose deepest feature map is 1x1).

Calling :func:`fit` again on the same folder resumes from ``last.pt``, after comparing the settings with both
``config.json`` and the config inside ``last.pt``; only ``epochs`` may grow (a finished run asked for fewer epochs
is left as it is).  The shuffling, the corruption and (when
training with dropout) the dropout masks of epoch *e* are drawn from generators seeded by (seed, e), so on the CPU a
resumed run ends with weights bit-identical to an uninterrupted one.  :func:`load_run` gives back the best model.

``compile`` (``"off"``, ``"on"`` or ``"auto"``, the default) runs the training and validation passes through
``torch.compile``.  ``"auto"`` is :func:`pick_compile`: off on the CPU, where it measured slower than channels_last,
and off on CUDA too until a GPU measurement says otherwise.  The checkpoints hold the state dict of the un-compiled
module (no ``_orig_mod.`` prefixes), so a run trained either way loads and resumes either way.  CUDA graphs
(``mode="reduce-overhead"``) are left out: they record fixed shapes, and the batches here change size (a merged
last batch, the validation batches); the fp16 scaler reads a value back each step; and at batch 16 of 256 px the
kernels are large enough that their launch cost, which graphs save, is a small part of a step.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch.nn import functional as F

from .checkpoints import RUNTIME_KEYS, RunError, is_complete, load_run, read_config, snapshot_name, write_config
from .checkpoints import check_settings as _check_settings
from .checkpoints import load_checkpoint as _load_checkpoint
from .checkpoints import save_checkpoint as _save_checkpoint  # fit calls it by this name (tests wrap it)
from .checkpoints import write_history as _write_history
from .corruption import CorruptionModel, check_image
from .files import run_lock, stale_temporaries
from .models import AutoEncoder
from .noise import get_corruption
from .precision import PRECISIONS, autocast, grad_scaler, pick_precision

__all__ = [
    "PRECISIONS",
    "RUNTIME_KEYS",
    "RunError",
    "Terminated",
    "TrainConfig",
    "adam",
    "budget",
    "fit",
    "is_complete",
    "load_run",
    "pick_channels_last",
    "pick_compile",
    "pick_device",
    "pick_precision",
    "psnr",
    "stack_images",
]


class Terminated(KeyboardInterrupt):
    """Training was stopped by SIGTERM; like Ctrl-C, the last finished epoch was saved and the run resumes."""


@contextlib.contextmanager
def _sigterm_raises():
    """Inside: SIGTERM raises :class:`Terminated` (in the main thread; elsewhere signals cannot be caught)."""
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


@dataclass
class TrainConfig:
    """Training settings.  ``data`` is free-form metadata recorded in ``config.json`` (root, category, size, ...)."""

    out: str
    epochs: int = 250
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    samples_per_epoch: int | None = None  # training images drawn per epoch; None: one pass over the training set
    val_samples: int | None = None  # corrupted validation images per PSNR (drawn with repetition); None: each once
    patience: int = 10
    lr_factor: float = 0.5
    device: str = "auto"
    amp: str = "auto"  # "auto": pick_precision; "off": fp32; or "bf16"/"fp16"/"fp32" to force one
    channels_last: str = "auto"  # "on", "off"; "auto": pick_channels_last (CUDA; the CPU from 128 px)
    compile: str = "auto"  # "on", "off"; "auto" is off for now (slower on the CPU, not yet measured on CUDA)
    progress: bool = True
    checkpoint_every: int = 10  # write last.pt (and best.pt) every this many epochs ...
    checkpoint_seconds: float = 300.0  # ... or once this many seconds have passed since the last write
    keep_steps: list = field(default_factory=list)  # optimiser steps whose weights are kept as steps/step-N.pt
    data: dict = field(default_factory=dict)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` gives CUDA if present, else Apple MPS, else the CPU; a device that is not available is an error."""
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {name!r}: {exc}") from exc
        if device.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device {name!r} cannot train or evaluate a model: use cpu, cuda, mps or auto (--device)")
        mps = getattr(torch.backends, "mps", None)
        if (device.type == "cuda" and not torch.cuda.is_available()) or (
            device.type == "mps" and not (mps is not None and mps.is_available())
        ):
            raise ValueError(f"device {name!r} is not available on this machine (use --device cpu or auto)")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def adam(params, lr: float, device) -> torch.optim.Adam:
    """The trainer's optimiser: Adam, with the fused kernel on the CPU and CUDA.

    The fused kernel (one pass over all parameters) is 1.5x faster per step than the per-tensor loop at 64 px on the
    CPU, where torch does not pick it by itself; the same update rule, floats equal up to summation order.
    """
    return torch.optim.Adam(params, lr=lr, fused=torch.device(device).type in ("cpu", "cuda") or None)


def pick_channels_last(device, image_size: int) -> str:
    """Whether ``channels_last="auto"`` trains in the channels_last memory layout: ``"on"`` or ``"off"``.

    On CUDA, on.  On the CPU, on from 128 px: ``benchmarks/bench_train.py`` measured it 1.25x eager at 256 px and
    1.21x at 128 px, but 0.87x at 64 px (batch 16; a step of batch 8, the book's fast profile: 0.84x).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return "on"
    return "on" if device.type == "cpu" and image_size >= 128 else "off"


def pick_compile(device) -> str:
    """Whether ``compile="auto"`` trains through ``torch.compile`` on ``device``: ``"on"`` or ``"off"``.

    Off everywhere for now.  On the CPU it was measured slower than the eager network in channels_last (22.4 against
    27.5 training images/s at 256 px on 2 cores, ``benchmarks/bench_train.py``); on CUDA it stays off until a GPU
    measurement says otherwise: ``tools/gpu_check.sh`` prints bench_train's eager, channels_last and compile lines
    on the GPU, and the CUDA default is to be flipped here from those figures.
    """
    if torch.device(device).type == "cuda":
        return "off"  # not measured on a GPU yet
    return "off"  # the CPU: measured slower; MPS: not measured


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio (dB) of each image of a ``(B, C, H, W)`` batch in [0, 1]."""
    mse = F.mse_loss(reconstruction.float(), target.float(), reduction="none").flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def stack_images(dataset) -> torch.Tensor:
    """All ``image`` entries of a dataset as one ``(N, C, H, W)`` tensor."""
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


def _run_config(model: AutoEncoder, corruption_name: str, cfg: TrainConfig) -> dict:
    return {
        "model": {"name": "aesc" if model.skips else "ae", **model.config},
        "corruption": corruption_name,
        "train": {k: v for k, v in asdict(cfg).items() if k != "data"},
        "data": cfg.data,
    }


def _epoch_generator(seed: int, epoch: int, stream: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(((seed * 1_000_003 + epoch) * 7 + stream) % (2**63))


def _epoch_order(n: int, count: int, seed: int, epoch: int) -> torch.Tensor:
    """``count`` indices of the ``n`` training images for one epoch: seeded permutations, concatenated as needed."""
    g = _epoch_generator(seed, epoch, 1, "cpu")
    return torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(count / n))])[:count]


def fit(model: AutoEncoder, train_set, val_set, corruption, config: TrainConfig | dict, log=print) -> dict:
    """Train ``model`` on ``train_set`` to undo ``corruption`` (a registry name or a callable); returns the history.

    ``config.out`` is the run folder.  If it already holds a run with the same settings, training resumes from its
    last checkpoint (a complete run returns at once); if the settings differ, :class:`RunError` names the keys.
    """
    cfg = TrainConfig(**config) if isinstance(config, dict) else config
    if cfg.epochs < 1 or cfg.batch_size < 1 or (cfg.samples_per_epoch is not None and cfg.samples_per_epoch < 1):
        raise ValueError("epochs, batch_size and samples_per_epoch must be at least 1")
    if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"the learning rate must be a positive, finite number, got {cfg.lr}")
    corrupt = get_corruption(corruption) if isinstance(corruption, str) else corruption
    corruption_name = corruption if isinstance(corruption, str) else getattr(corrupt, "name", type(corrupt).__name__)
    if len(train_set) == 0:
        raise ValueError("the training set is empty")
    if len(val_set) == 0:
        raise ValueError("the validation set is empty")
    if cfg.val_samples is not None and cfg.val_samples < 1:
        raise ValueError(f"val_samples must be at least 1 or None, got {cfg.val_samples}")
    if cfg.checkpoint_every < 1 or not cfg.checkpoint_seconds > 0:
        raise ValueError("checkpoint_every must be at least 1 and checkpoint_seconds positive")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in cfg.keep_steps):
        raise ValueError(f"keep_steps must be optimiser steps (integers from 1), got {list(cfg.keep_steps)}")
    cfg = replace(cfg, keep_steps=sorted(set(cfg.keep_steps)))
    for key in ("channels_last", "compile"):
        if getattr(cfg, key) not in ("auto", "on", "off"):
            raise ValueError(f"{key} must be 'auto', 'on' or 'off', got {getattr(cfg, key)!r}")
    device = pick_device(cfg.device)
    precision = pick_precision(device, cfg.amp)
    # Everything that can be checked is checked before the run folder is created or anything is written into it.
    train_images, val_images = stack_images(train_set), stack_images(val_set)
    if cfg.channels_last == "auto":
        cfg = replace(cfg, channels_last=pick_channels_last(device, train_images.shape[-1]))
    if cfg.compile == "auto":
        cfg = replace(cfg, compile=pick_compile(device))
    model.check_input(train_images[:1])
    model.check_input(val_images[:1])
    if isinstance(corrupt, CorruptionModel):
        check_image(train_images)
    per_epoch = cfg.samples_per_epoch or len(train_images)
    bottom = train_images.shape[-1] // 2**model.depth * (train_images.shape[-2] // 2**model.depth)
    if bottom == 1 and (per_epoch < 2 or cfg.batch_size < 2):
        raise ValueError(
            f"at {train_images.shape[-1]} px the deepest feature map is 1x1, and batch norm cannot train on one image "
            f"per batch: use batch_size >= 2 and at least 2 training images per epoch (or a larger image size)"
        )
    run = Path(cfg.out)
    with run_lock(run), _sigterm_raises():
        return _fit_locked(model, train_images, val_images, corrupt, corruption_name, cfg, device, precision, run, log)


def _batches(count: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of the batches of an epoch of ``count`` images; a last batch of one joins the previous one."""
    starts = list(range(0, count, batch_size))
    if len(starts) > 1 and count - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], count]))


def _fit_locked(model, train_images, val_images, corrupt, corruption_name, cfg, device, precision, run, log) -> dict:
    """The body of :func:`fit`, run while it holds the lock of the run folder ``run``."""
    n = len(train_images)
    per_epoch = cfg.samples_per_epoch or n
    batches = _batches(per_epoch, cfg.batch_size)
    run_config = _run_config(model, corruption_name, cfg)
    run_config["train"]["precision"] = precision
    run_config["budget"] = budget(
        n, len(val_images), cfg.epochs, cfg.batch_size, cfg.samples_per_epoch, cfg.val_samples
    )
    for tmp in stale_temporaries(run):  # left by a writer killed mid-write; this process holds the lock
        tmp.unlink(missing_ok=True)
    stored = read_config(run) if (run / "config.json").exists() else None
    _check_settings(run, stored, "config.json", run_config)
    state = _load_checkpoint(run, "last.pt") if (run / "last.pt").exists() else None
    if state is not None:
        if "config" not in state and stored is None:
            raise RunError(f"{run / 'last.pt'} holds no config and {run / 'config.json'} is missing: cannot resume it")
        _check_settings(run, state.get("config"), "last.pt", run_config)
    if state is not None and state["epoch"] >= cfg.epochs:  # finished: nothing to train, and config.json is kept
        if not (run / "best.pt").exists():
            raise RunError(
                f"{run} is trained ({state['epoch']} epochs) but its best.pt is missing: the best weights are lost; "
                "train it anew with --retrain (retrain=True)"
            )
        if stored is None:
            write_config(run, state["config"])
        done = {"history": state["history"], "best_val_psnr": state["best"], "device": str(device)}
        return {**done, "resumed_from": state["epoch"]}
    config_written = state is not None  # a fresh run writes its config.json with its first checkpoint
    if config_written:
        write_config(run, run_config)

    memory_format = torch.channels_last if cfg.channels_last == "on" else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    optimizer = adam(model.parameters(), cfg.lr, device)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.lr_factor, patience=cfg.patience
    )
    scaler = grad_scaler(device.type, precision)
    history: list[dict] = []
    best = -math.inf
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, best, start = state["history"], state["best"], state["epoch"]
        log(f"resuming {run} after epoch {start}")
    train_images, val_images = train_images.to(device), val_images.to(device)
    if cfg.val_samples is not None:  # a seeded draw, with repetition, of val_samples validation images
        pick = torch.randint(len(val_images), (cfg.val_samples,), generator=_epoch_generator(cfg.seed, -1, 3, "cpu"))
        val_images = val_images[pick.to(device)]
    # The library's models checked the value range of the training images once, in fit, not at every step (where
    # reading the answer back would make a GPU wait); other callables get the plain call.
    trusted = {"check_values": False} if isinstance(corrupt, CorruptionModel) else {}
    # The library's models write into reused output buffers (one pair per batch size): the same draws and values
    # as fresh outputs, without fresh memory at every step (on the CPU, page faults).  The step is done with a buffer
    # (its backward pass too) before the next step writes into it.
    buffers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def reused(clean: torch.Tensor) -> dict:
        if not trusted:
            return {}
        if len(clean) not in buffers:
            mask = torch.empty((len(clean), 1, *clean.shape[2:]), dtype=torch.bool, device=clean.device)
            buffers[len(clean)] = (torch.empty_like(clean, memory_format=torch.contiguous_format), mask)
        return {"out": buffers[len(clean)]}

    # A fixed, seeded corruption of the validation set: the same every epoch, so PSNRs compare across epochs.
    val_corrupted, _ = corrupt(val_images, _epoch_generator(cfg.seed, -1, 0, device))
    log(
        f"device: {device} ({precision}"
        + (", channels_last" if memory_format == torch.channels_last else "")
        + (", torch.compile" if cfg.compile == "on" else "")
        + f"); {n} training images, {per_epoch} per epoch in {len(batches)} steps; {len(val_images)} validation samples"
    )
    keep = set(cfg.keep_steps)
    past = sorted(k for k in keep if k <= start * len(batches))
    beyond = sorted(k for k in keep if k > cfg.epochs * len(batches))
    if past:
        log(f"snapshots of steps {past} are behind the resumed epoch {start}: not written now")
    if beyond:
        log(f"snapshots of steps {beyond} are beyond this run's {cfg.epochs * len(batches)} steps: not written")
    # The compiled module shares its parameters with ``model``, whose state dict (no "_orig_mod." prefix) is saved.
    net = torch.compile(model) if cfg.compile == "on" else model

    from tqdm.auto import tqdm

    bar = tqdm(
        range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=run.name, unit="epoch", disable=not cfg.progress
    )
    pending = None  # the state of the last finished epoch, not yet written
    best_pending = None  # the best weights so far, not yet written
    written_at, written_epoch = time.monotonic(), start

    failed_write = None  # the OSError of a checkpoint that could not be written (a full disk)

    def snapshot(step: int, epoch: int, images_seen: int):
        nonlocal config_written
        if not config_written:  # a snapshot is loaded against config.json: it comes with it
            write_config(run, run_config)
            config_written = True
        state = {"model": model.state_dict(), "step": step, "epoch": epoch, "images_seen": images_seen}
        _save_checkpoint(run, snapshot_name(step), {**state, "config": run_config})

    def flush():
        nonlocal pending, best_pending, written_at, written_epoch, config_written, failed_write
        try:
            if best_pending is not None:
                _save_checkpoint(run, "best.pt", best_pending)
                best_pending = None
            if pending is not None:
                if not config_written:  # a fresh run's config.json comes with its first checkpoint
                    write_config(run, run_config)
                    config_written = True
                _save_checkpoint(run, "last.pt", pending)
                _write_history(run, pending["history"])
                written_epoch = pending["epoch"]
        except OSError as exc:
            failed_write = exc
            raise
        pending = best_pending = None
        written_at = time.monotonic()

    try:
        for epoch in bar:
            t0 = time.perf_counter()
            model.train()
            order = _epoch_order(n, per_epoch, cfg.seed, epoch).to(device)
            g_corrupt = _epoch_generator(cfg.seed, epoch, 2, device)
            if any(m.train_dropout and m.p > 0 for m in model.drop):
                torch.manual_seed((cfg.seed * 1_000_003 + epoch) % (2**63))
            # The step never reads a value back from the device (no .item(), no check of the loss): the losses stay
            # on the device and are read once, at the end of the epoch, where a non-finite one stops the run.  (The
            # fp16 scaler reads back whether the gradients are finite, once per step.)
            losses, sizes = [], []
            for i, (begin, end) in enumerate(batches):
                clean = train_images[order[begin:end]]
                corrupted, _ = corrupt(clean, g_corrupt, **trusted, **reused(clean))
                corrupted = corrupted.contiguous(memory_format=memory_format)
                with autocast(device.type, precision):
                    loss = F.mse_loss(net(corrupted).float(), clean)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                losses.append(loss.detach())
                sizes.append(len(clean))
                if epoch * len(batches) + i + 1 in keep:
                    snapshot(epoch * len(batches) + i + 1, epoch + (i + 1) / len(batches), epoch * per_epoch + end)
            values = torch.stack(losses).tolist()  # the epoch's one read-back
            bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
            if bad is not None:
                raise FloatingPointError(
                    f"training loss is {values[bad]} at epoch {epoch + 1}, step {bad + 1}; "
                    f"lower the learning rate (now {optimizer.param_groups[0]['lr']:g})"
                )
            total = sum(v * k for v, k in zip(values, sizes))
            val = evaluate_psnr(net, val_corrupted, val_images, cfg.batch_size, precision)
            if not math.isfinite(val):
                raise FloatingPointError(
                    f"validation PSNR is {val} at epoch {epoch + 1}: the weights are no longer finite; "
                    f"lower the learning rate (now {optimizer.param_groups[0]['lr']:g})"
                )
            scheduler.step(val)
            row = {
                "epoch": epoch + 1,
                "train_loss": total / per_epoch,
                "val_psnr": val,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - t0, 3),
            }
            history.append(row)
            if val > best:
                best = val
                best_pending = {"model": _copy(model.state_dict()), "epoch": epoch + 1, "val_psnr": val}
                best_pending["config"] = run_config
            pending = {
                "model": _copy(model.state_dict()),
                "optimizer": _copy(optimizer.state_dict()),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "history": list(history),
                "epoch": epoch + 1,
                "best": best,
                "config": run_config,
            }
            due = epoch + 1 - written_epoch >= cfg.checkpoint_every or epoch + 1 == cfg.epochs
            if due or time.monotonic() - written_at >= cfg.checkpoint_seconds:
                flush()
            bar.set_postfix(loss=f"{row['train_loss']:.5f}", val_psnr=f"{val:.2f}", refresh=False)
            if not cfg.progress and (epoch + 1) % max(1, cfg.epochs // 10) == 0:  # ten lines where no bar is shown
                left = row["seconds"] * (cfg.epochs - epoch - 1)
                log(
                    f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.5f}, val PSNR {val:.2f} dB, "
                    f"~{left:.0f} s left"
                )
    except BaseException as exc:
        if exc is not failed_write:  # a write that failed is not tried again: its error says what happened
            flush()  # the last finished epoch (Ctrl-C, an error): resuming goes on from there
        raise
    finally:
        bar.close()
    return {"history": history, "best_val_psnr": best, "device": str(device), "resumed_from": start}


def _copy(state):
    """A deep copy of a state dict, tensors cloned on their device (cheap on a GPU, unlike a write to disk)."""
    return copy.deepcopy(state)


def budget(n_train, n_val, epochs, batch_size, samples_per_epoch=None, val_samples=None) -> dict:
    """What a training run costs: images per epoch, optimiser steps, images seen, validation samples.

    The authors' budget (``spec.BUDGETS["paper"]``) is 2,000 images per epoch (125 steps of 16), 250 epochs: 31,250
    steps and 500,000 images.  One pass over bottle's 167 training images is 11 steps of 16.
    """
    per_epoch = samples_per_epoch or n_train
    steps_per_epoch = len(_batches(per_epoch, batch_size))  # as trained: a last batch of one joins the one before
    return {
        "n_train": n_train,
        "samples_per_epoch": per_epoch,
        "steps_per_epoch": steps_per_epoch,
        "epochs": epochs,
        "steps": steps_per_epoch * epochs,
        "images_seen": per_epoch * epochs,
        "val_samples": val_samples or n_val,
    }


@torch.no_grad()
def evaluate_psnr(model, corrupted, clean, batch_size=16, precision="fp32") -> float:
    """Mean PSNR (dB) of the model's reconstructions of ``corrupted`` against ``clean``, in eval mode.

    ``precision`` is one of :data:`PRECISIONS` (``True`` is taken as bf16, ``False`` as fp32, as before).
    """
    if isinstance(precision, bool):
        precision = "bf16" if precision else "fp32"
    model.eval()
    values = []
    for i in range(0, len(clean), batch_size):
        with autocast(clean.device.type, precision):
            out = model(corrupted[i : i + batch_size])
        values.append(psnr(out, clean[i : i + batch_size]))
    return torch.cat(values).mean().item()
