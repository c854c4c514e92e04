"""Training an autoencoder to undo a corruption: the training step, the epoch, and :func:`fit` (book chapter 4).

:func:`fit` trains ``model`` to map ``corruption(image)`` back to ``image`` with the MSE loss, as in the paper.  The
rest is the library's default, following the authors' published code where the paper's text is silent (it states no
optimiser, batch size, schedule or epoch selection): Adam (the fused kernel), the learning rate and batch size of
:class:`~stainlib.spec.RunSpec` (where every run setting's default is written), ReduceLROnPlateau on the validation
PSNR (factor 0.5), and the best-validation-PSNR weights kept.  The method is :func:`train_step` and
:func:`fit_epoch`, short enough for a chapter to print; :func:`fit` adds the device and its precision and memory
layout (:mod:`stainlib.precision`), the validation PSNR after each epoch, and the run folder: its checkpoints, resume,
snapshots and SIGTERM (:mod:`stainlib.runstate`, which says what the folder holds).  With ``val_samples``, the
validation PSNR is measured on that many corrupted images drawn (with repetition, seeded) from the validation split,
as the authors' 500 validation samples per epoch.

Everything is checked (settings, data, image size against the network, device) before the run folder is created.
The batches of an epoch are ``batch_size`` images, except that a last batch of one image is merged into the previous
one (batch norm cannot train on a single image whose deepest feature map is 1x1).  The shuffling, the corruption and
(when training with dropout) the dropout masks of epoch *e* are drawn from generators seeded by (seed, e), so on the
CPU a resumed run ends with weights bit-identical to an uninterrupted one.  :func:`load_run` gives back the best model.

``compile`` (``"off"``, ``"on"`` or ``"auto"``, the default: :func:`pick_compile`) runs the training and validation
passes through ``torch.compile``.  The checkpoints hold the state dict of the un-compiled module (no ``_orig_mod.``
prefixes), so a run trained either way loads and resumes either way.  CUDA graphs (``mode="reduce-overhead"``) are
left out: they record fixed shapes, and the batches here change size (a merged last batch, the validation batches);
the fp16 scaler reads a value back each step; and at batch 16 of 256 px the kernels are large enough that their
launch cost, which graphs save, is a small part of a step.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from torch.nn import functional as F

from .checkpoints import RUNTIME_KEYS, RunError, is_complete, load_run
from .corruption import CorruptionModel, check_image
from .epochs import budget, epoch_batches, epoch_generator, epoch_order
from .files import run_lock
from .models import AutoEncoder
from .noise import get_corruption
from .precision import (
    PRECISIONS,
    autocast,
    grad_scaler,
    pick_channels_last,
    pick_compile,
    pick_device,
    pick_precision,
)
from .runstate import (
    PendingWrites,
    Terminated,
    check_loss,
    check_psnr,
    log_unreached,
    restore,
    resume,
    sigterm_raises,
)
from .spec import RunSpec

__all__ = [
    "PRECISIONS",
    "RUNTIME_KEYS",
    "RunError",
    "Terminated",
    "TrainConfig",
    "adam",
    "fit",
    "fit_epoch",
    "is_complete",
    "load_run",
    "pick_channels_last",
    "pick_compile",
    "pick_device",
    "pick_precision",
    "psnr",
    "stack_images",
    "train_step",
]

_SPEC = {f.name: f for f in fields(RunSpec)}


def _from_spec(name: str):
    """A :class:`TrainConfig` field with the default and help of the :class:`~stainlib.spec.RunSpec` field ``name``."""
    return field(default=_SPEC[name].default, metadata=_SPEC[name].metadata)


@dataclass
class TrainConfig:
    """Training settings.  ``data`` is free-form metadata recorded in ``config.json`` (root, category, size, ...).

    The settings a :class:`~stainlib.spec.RunSpec` has take its defaults (:meth:`from_spec` takes its values); the
    others say how the run trains, not what it trains.
    """

    out: str
    epochs: int = _from_spec("epochs")
    batch_size: int = _from_spec("batch_size")
    lr: float = _from_spec("lr")
    seed: int = _from_spec("seed")
    samples_per_epoch: int | None = _from_spec("samples_per_epoch")  # None: one pass over the training set
    val_samples: int | None = _from_spec("val_samples")  # None: each validation image once
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

    @classmethod
    def from_spec(cls, spec: RunSpec, out, **how) -> TrainConfig:
        """The training settings of ``spec`` (those both classes have), trained into ``out``; ``how`` sets the rest.

        Example: ``TrainConfig.from_spec(spec, "runs/x", device="cpu").epochs == spec.epochs``.
        """
        shared = {name: getattr(spec, name) for name in _SPEC if name in cls.__dataclass_fields__}
        return cls(out=str(out), **shared, **how)


def adam(params, lr: float, device) -> torch.optim.Adam:
    """The trainer's optimiser: Adam, with the fused kernel on the CPU and CUDA.

    The fused kernel updates all the parameters in one pass instead of looping over the tensors; on the CPU torch does
    not pick it by itself.  The same update rule, floats equal up to summation order.  Whether it is faster depends on
    the machine and the model's size: chapter 4, "Training", times one update of each on the machine that runs it.
    """
    return torch.optim.Adam(params, lr=lr, fused=torch.device(device).type in ("cpu", "cuda") or None)


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio (dB) of each image of a ``(B, C, H, W)`` batch in [0, 1].

    Example: ``psnr(model(x), x)`` has one value per image of ``x``; higher is closer.
    """
    mse = F.mse_loss(reconstruction.float(), target.float(), reduction="none").flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def stack_images(dataset) -> torch.Tensor:
    """All ``image`` entries of a dataset as one ``(N, C, H, W)`` tensor.

    Example: ``stack_images(MVTecAD(root, "bottle", "train"))`` is bottle's training split as one tensor.
    """
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


def train_step(model, clean, corrupted, optimizer, scaler, precision="fp32") -> torch.Tensor:
    """One optimiser step: reconstruct ``corrupted`` and lower its MSE to ``clean``, the paper's loss.

    Returns the loss, left on the device: reading it back would make a GPU wait at every step.  ``scaler`` is
    :func:`stainlib.precision.grad_scaler`'s, which passes every call through except in fp16.
    Example: ``train_step(model, x, corrupted, adam(model.parameters(), 1e-3, "cpu"), grad_scaler("cpu", "fp32"))``,
    ``x`` and ``corrupted`` ``(B, C, H, W)`` in [0, 1].
    """
    with autocast(clean.device.type, precision):
        loss = F.mse_loss(model(corrupted).float(), clean)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def fit_epoch(model, images, order, batches, corrupt, generator, optimizer, scaler, precision="fp32", after_step=None):
    """One epoch: a step on each batch of ``images[order]``, freshly corrupted; returns the losses (on the device).

    ``batches`` are the (start, stop) of the batches in ``order``; ``after_step(i, stop)``, if given, is called after
    the step on batch ``i`` (a run keeps its snapshots there).
    Example: ``fit_epoch(model, images, epoch_order(n, n, seed, e), epoch_batches(n, 16), get_corruption("stain"),
    generator, adam(model.parameters(), 1e-3, "cpu"), grad_scaler("cpu", "fp32"))``.
    """
    model.train()  # batch norm learns its statistics
    losses = []
    for i, (start, stop) in enumerate(batches):
        clean = images[order[start:stop]]
        corrupted, _ = corrupt(clean, generator)
        losses.append(train_step(model, clean, corrupted, optimizer, scaler, precision))
        if after_step is not None:
            after_step(i, stop)
    return torch.stack(losses)


class _TrainingCorruption:
    """``corrupt`` as :func:`fit` calls it at each step, its output in the training memory layout.

    The library's models checked the value range of the training images once, in :func:`fit`, not at every step
    (where reading the answer back would make a GPU wait), and write into reused output buffers (one pair per batch
    size): the same draws and values as fresh outputs, without fresh memory at every step (on the CPU, page faults).
    A step is done with a buffer (its backward pass too) before the next step writes into it.  Other callables get
    the plain call.
    """

    def __init__(self, corrupt, memory_format):
        self.corrupt, self.memory_format, self.buffers = corrupt, memory_format, {}

    def __call__(self, clean: torch.Tensor, generator):
        if isinstance(self.corrupt, CorruptionModel):
            if len(clean) not in self.buffers:
                mask = torch.empty((len(clean), 1, *clean.shape[2:]), dtype=torch.bool, device=clean.device)
                self.buffers[len(clean)] = (torch.empty_like(clean, memory_format=torch.contiguous_format), mask)
            corrupted, mask = self.corrupt(clean, generator, check_values=False, out=self.buffers[len(clean)])
        else:
            corrupted, mask = self.corrupt(clean, generator)
        return corrupted.contiguous(memory_format=self.memory_format), mask


def fit(model: AutoEncoder, train_set, val_set, corruption, config: TrainConfig | dict, log=print) -> dict:
    """Train ``model`` on ``train_set`` to undo ``corruption`` (a registry name or a callable); returns the history.

    ``config.out`` is the run folder.  If it already holds a run with the same settings, training resumes from its
    last checkpoint (a complete run returns at once); if the settings differ, :class:`RunError` names the keys.

    Args: ``model`` (trained in place), ``train_set`` and ``val_set`` (datasets of ``{"image": tensor}`` items,
    :class:`~stainlib.data.MVTecAD`), ``corruption`` (a name of :data:`stainlib.noise.CORRUPTIONS` or a callable
    ``(clean, generator) -> (corrupted, mask)``), ``config`` (a :class:`TrainConfig` or its fields as a dict).
    Returns ``{"history", "best_val_psnr", "device", "resumed_from"}``; the best weights are in ``config.out``.
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
    with run_lock(run), sigterm_raises():
        return _fit_locked(model, train_images, val_images, corrupt, corruption_name, cfg, device, precision, run, log)


def _fit_locked(model, train_images, val_images, corrupt, corruption_name, cfg, device, precision, run, log) -> dict:
    """The body of :func:`fit`, run while it holds the lock of the run folder ``run``."""
    n = len(train_images)
    per_epoch = cfg.samples_per_epoch or n
    batches = epoch_batches(per_epoch, cfg.batch_size)
    run_config = _run_config(model, corruption_name, cfg)
    run_config["train"]["precision"] = precision
    run_config["budget"] = budget(
        n, len(val_images), cfg.epochs, cfg.batch_size, cfg.samples_per_epoch, cfg.val_samples
    )
    state, finished = resume(run, run_config, cfg.epochs)
    if finished:
        done = {"history": state["history"], "best_val_psnr": state["best"], "device": str(device)}
        return {**done, "resumed_from": state["epoch"]}

    memory_format = torch.channels_last if cfg.channels_last == "on" else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    optimizer = adam(model.parameters(), cfg.lr, device)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.lr_factor, patience=cfg.patience
    )
    scaler = grad_scaler(device.type, precision)
    history, best, start = [], -math.inf, 0
    if state is not None:
        history, best, start = restore(state, model, optimizer, scheduler, scaler)
        log(f"resuming {run} after epoch {start}")
    train_images, val_images = train_images.to(device), val_images.to(device)
    if cfg.val_samples is not None:  # a seeded draw, with repetition, of val_samples validation images
        pick = torch.randint(len(val_images), (cfg.val_samples,), generator=epoch_generator(cfg.seed, -1, 3, "cpu"))
        val_images = val_images[pick.to(device)]
    # A fixed, seeded corruption of the validation set: the same every epoch, so PSNRs compare across epochs.
    val_corrupted, _ = corrupt(val_images, epoch_generator(cfg.seed, -1, 0, device))
    log(
        f"device: {device} ({precision}"
        + (", channels_last" if memory_format == torch.channels_last else "")
        + (", torch.compile" if cfg.compile == "on" else "")
        + f"); {n} training images, {per_epoch} per epoch in {len(batches)} steps; {len(val_images)} validation samples"
    )
    keep = set(cfg.keep_steps)
    log_unreached(keep, start, cfg.epochs, len(batches), log)
    # The compiled module shares its parameters with ``model``, whose state dict (no "_orig_mod." prefix) is saved.
    net = torch.compile(model) if cfg.compile == "on" else model
    step_corrupt = _TrainingCorruption(corrupt, memory_format)
    sizes = [stop - begin for begin, stop in batches]
    pending = PendingWrites(run, run_config, start, cfg.checkpoint_every, cfg.checkpoint_seconds, state is not None)

    from tqdm.auto import tqdm

    bar = tqdm(
        range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=run.name, unit="epoch", disable=not cfg.progress
    )
    try:
        for epoch in bar:
            t0 = time.perf_counter()

            def after_step(i, stop, epoch=epoch):
                step = epoch * len(batches) + i + 1
                if step in keep:
                    pending.snapshot(model, step, epoch + (i + 1) / len(batches), epoch * per_epoch + stop)

            order = epoch_order(n, per_epoch, cfg.seed, epoch).to(device)
            g_corrupt = epoch_generator(cfg.seed, epoch, 2, device)
            if any(m.train_dropout and m.p > 0 for m in model.drop):
                torch.manual_seed((cfg.seed * 1_000_003 + epoch) % (2**63))
            losses = fit_epoch(
                net, train_images, order, batches, step_corrupt, g_corrupt, optimizer, scaler, precision, after_step
            )
            values = losses.tolist()  # the epoch's one read-back (the fp16 scaler reads one back per step)
            check_loss(values, epoch, optimizer.param_groups[0]["lr"])
            total = sum(v * k for v, k in zip(values, sizes))
            val = evaluate_psnr(net, val_corrupted, val_images, cfg.batch_size, precision)
            check_psnr(val, epoch, optimizer.param_groups[0]["lr"])
            scheduler.step(val)
            row = {
                "epoch": epoch + 1,
                "train_loss": total / per_epoch,
                "val_psnr": val,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - t0, 3),
            }
            history.append(row)
            improved = val > best
            best = val if improved else best
            pending.epoch_done(model, optimizer, scheduler, scaler, history, best, improved, epoch + 1 == cfg.epochs)
            bar.set_postfix(loss=f"{row['train_loss']:.5f}", val_psnr=f"{val:.2f}", refresh=False)
            if not cfg.progress and (epoch + 1) % max(1, cfg.epochs // 10) == 0:  # ten lines where no bar is shown
                left = row["seconds"] * (cfg.epochs - epoch - 1)
                log(
                    f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.5f}, val PSNR {val:.2f} dB, "
                    f"~{left:.0f} s left"
                )
    except BaseException as exc:
        if exc is not pending.failed:  # a write that failed is not tried again: its error says what happened
            pending.flush()  # the last finished epoch (Ctrl-C, an error): resuming goes on from there
        raise
    finally:
        bar.close()
    return {"history": history, "best_val_psnr": best, "device": str(device), "resumed_from": start}


@torch.no_grad()
def evaluate_psnr(model, corrupted, clean, batch_size=_SPEC["batch_size"].default, precision="fp32") -> float:
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
