"""Training an autoencoder to undo a corruption, with checkpoints that survive interruption (book chapter 4).

:func:`fit` trains ``model`` to map ``corruption(image)`` back to ``image`` with the MSE loss, as in the paper:
Adam (lr 1e-3), batch 16, ReduceLROnPlateau on the validation PSNR (factor 0.5), and the best-validation-PSNR weights
kept.  Everything it needs to go on after an interruption is written atomically into a run folder every
``checkpoint_every`` epochs or ``checkpoint_seconds`` seconds (whichever comes first), after the last epoch, and when
training stops on an exception (Ctrl-C included): then the state of the last finished epoch is written before the
exception goes on.  Between checkpoints that state is kept as a copy in memory (on the device), so a checkpoint costs
nothing on the epochs that write none:

* ``config.json`` — the model, the data and the training settings (enough to rebuild both), written with the first
  checkpoint, so a run that fails before its first epoch ends leaves no settings behind to refuse a corrected retry;
* ``last.pt`` and ``best.pt`` — checkpoints, each holding a copy of the config, with their SHA-256 in ``SHA256SUMS``;
* ``history.csv`` — one row per epoch: training loss, validation PSNR, learning rate, seconds.

``config.json`` also records what does not change what is trained: the precision chosen for the device
(:func:`pick_precision`: bf16 autocast on GPUs with native bf16, fp16 autocast with a gradient scaler on older ones,
fp32 elsewhere) and the ``budget`` (training images per epoch, optimiser steps, images seen, validation samples).
With ``val_samples``, the validation PSNR is measured on that many corrupted images drawn (with repetition, seeded)
from the validation split, as the authors' 500 validation samples per epoch.

Everything is checked (settings, data, image size against the network, device) before the run folder is created.
While :func:`fit` runs it holds an exclusive lock on the run folder (:func:`stainlib.files.run_lock`, the file
``.lock``, which stays): a second trainer of the same folder is refused at once.  ``SHA256SUMS`` always lists the
digest of the checkpoint on disk: a new checkpoint's digest is added (beside the old one) *before* the file is renamed
into place, and the old digest is dropped after, so a kill at any moment leaves a run that loads and resumes.  The
batches of an epoch are ``batch_size`` images, except that a last batch of one image is merged into the previous one
(batch norm cannot train on a single image whose deepest feature map is 1x1).

Calling :func:`fit` again on the same folder resumes from ``last.pt``, after comparing the settings with both
``config.json`` and the config inside ``last.pt``; only ``epochs`` may grow (a finished run asked for fewer epochs
is left as it is).  The shuffling, the corruption and (when
training with dropout) the dropout masks of epoch *e* are drawn from generators seeded by (seed, e), so on the CPU a
resumed run ends with weights bit-identical to an uninterrupted one.  :func:`load_run` gives back the best model.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch.nn import functional as F

from .files import atomic_write, file_sha256, read_json, run_lock, temporary_beside
from .models import AutoEncoder, build_model
from .noise import CorruptionModel, check_image, get_corruption

__all__ = [
    "PRECISIONS",
    "RunError",
    "TrainConfig",
    "budget",
    "fit",
    "is_complete",
    "load_run",
    "pick_device",
    "pick_precision",
    "psnr",
    "stack_images",
]

CHECKSUMS = "SHA256SUMS"
# Settings that may change between a run and its resumption without changing what is trained.
# channels_last changes the memory layout only; config.json records the resolved choice ("on" or "off").
# precision and budget are recorded as resolved (budget.steps grows with epochs); checkpoint_* set only when to write.
RUNTIME_KEYS = {
    "epochs",
    "device",
    "progress",
    "out",
    "channels_last",
    "precision",
    "budget",
    "checkpoint_every",
    "checkpoint_seconds",
}
PRECISIONS = ("bf16", "fp16", "fp32")


class RunError(RuntimeError):
    """A run folder that cannot be used: different settings, a damaged checkpoint."""


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
    channels_last: str = "auto"  # "on", "off"; "auto" is on for the CPU and CUDA (measured faster: bench_train.py)
    progress: bool = True
    checkpoint_every: int = 10  # write last.pt (and best.pt) every this many epochs ...
    checkpoint_seconds: float = 300.0  # ... or once this many seconds have passed since the last write
    data: dict = field(default_factory=dict)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` gives CUDA if present, else Apple MPS, else the CPU; a device that is not available is an error."""
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {name!r}: {exc}") from exc
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


def pick_precision(device, amp: str = "auto") -> str:
    """The arithmetic of training and validation on ``device``: ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    ``auto`` gives bf16 autocast on CUDA GPUs with native bf16 (compute capability 8.0 or more: A100, H100, RTX 30xx
    and later), fp16 autocast with a gradient scaler on older ones (the T4 of Colab is 7.5: it reports bf16 as
    supported, but emulates it, slowly), and fp32 on the CPU and elsewhere.  ``off`` is fp32; a precision name is
    taken as it is.
    """
    if amp in PRECISIONS:
        return amp
    if amp not in ("auto", "off"):
        raise ValueError(f"amp must be 'auto', 'off' or one of {', '.join(PRECISIONS)}, got {amp!r}")
    device = torch.device(device)
    if amp == "off" or device.type != "cuda":
        return "fp32"
    major, _minor = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio (dB) of each image of a ``(B, C, H, W)`` batch in [0, 1]."""
    mse = F.mse_loss(reconstruction.float(), target.float(), reduction="none").flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def stack_images(dataset) -> torch.Tensor:
    """All ``image`` entries of a dataset as one ``(N, C, H, W)`` tensor."""
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


def _save_checkpoint(run: Path, name: str, state: dict) -> None:
    """Write a checkpoint so that ``SHA256SUMS`` lists the digest of the file on disk at every moment.

    The new file is written under a temporary name and hashed; its digest joins the old one in ``SHA256SUMS``; the
    file is renamed into place; then the old digest is dropped.  A kill between two of these steps leaves the old
    file with its digest listed, or the new one with its digest listed.
    """
    tmp = temporary_beside(run / name)
    try:
        torch.save(state, tmp)
        digest = file_sha256(tmp)
        sums = _read_checksums(run)
        _write_checksums(run, {**sums, name: [*sums.get(name, []), digest]})  # pending: old and new
        os.replace(tmp, run / name)
    finally:
        tmp.unlink(missing_ok=True)
    _write_checksums(run, {**_read_checksums(run), name: [digest]})


def _write_checksums(run: Path, sums: dict) -> None:
    lines = "".join(f"{d}  {k}\n" for k, digests in sorted(sums.items()) for d in digests)
    atomic_write(run / CHECKSUMS, lambda p: p.write_text(lines))


def _read_checksums(run: Path) -> dict:
    """``{name: [digest, ...]}``: one digest per name, two while a replacement is under way (the older first)."""
    path = run / CHECKSUMS
    if not path.exists():
        return {}
    sums: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums.setdefault(name.strip(), []).append(digest)
    return sums


def _load_checkpoint(run: Path, name: str) -> dict:
    path = run / name
    if not path.exists():
        raise RunError(f"{run} is not trained yet (no {name}); train it first")
    expected = _read_checksums(run).get(name)
    if not expected:
        raise RunError(f"{path} has no checksum in {run / CHECKSUMS}")
    actual = file_sha256(path)
    if actual not in expected:
        raise RunError(f"checksum mismatch for {path}: expected {expected[-1]}, got {actual}; the file is damaged")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError) for a file it cannot read
        raise RunError(f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc


def _write_history(run: Path, rows: list[dict]) -> None:
    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["epoch", "train_loss", "val_psnr", "lr", "seconds"])
            w.writeheader()
            w.writerows(rows)

    atomic_write(run / "history.csv", write)


def _run_config(model: AutoEncoder, corruption_name: str, cfg: TrainConfig) -> dict:
    return {
        "model": {"name": "aesc" if model.skips else "ae", **model.config},
        "corruption": corruption_name,
        "train": {k: v for k, v in asdict(cfg).items() if k != "data"},
        "data": cfg.data,
    }


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key in RUNTIME_KEYS:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} in the run folder, {b!r} now")
    return diffs


def is_complete(run) -> bool:
    """Whether ``run`` holds a finished run (as many history rows as its configured epochs)."""
    run = Path(run)
    try:
        config = read_json(run / "config.json")
        with open(run / "history.csv") as f:
            rows = sum(1 for _ in f) - 1
    except (OSError, ValueError):
        return False
    return rows >= config["train"]["epochs"] and (run / "best.pt").exists()


def _epoch_generator(seed: int, epoch: int, stream: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(((seed * 1_000_003 + epoch) * 7 + stream) % (2**63))


def _epoch_order(n: int, count: int, seed: int, epoch: int) -> torch.Tensor:
    """``count`` indices of the ``n`` training images for one epoch: seeded permutations, concatenated as needed."""
    g = _epoch_generator(seed, epoch, 1, "cpu")
    return torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(count / n))])[:count]


def _check_settings(run: Path, stored: dict | None, where: str, now: dict) -> None:
    diffs = _differences(stored, now) if stored is not None else []
    if diffs:
        raise RunError(
            f"run folder {run} was made with other settings ({where}); refusing to mix them:\n  " + "\n  ".join(diffs)
        )


def fit(model: AutoEncoder, train_set, val_set, corruption, config: TrainConfig | dict, log=print) -> dict:
    """Train ``model`` on ``train_set`` to undo ``corruption`` (a registry name or a callable); returns the history.

    ``config.out`` is the run folder.  If it already holds a run with the same settings, training resumes from its
    last checkpoint (a complete run returns at once); if the settings differ, :class:`RunError` names the keys.
    """
    cfg = TrainConfig(**config) if isinstance(config, dict) else config
    if cfg.epochs < 1 or cfg.batch_size < 1 or (cfg.samples_per_epoch is not None and cfg.samples_per_epoch < 1):
        raise ValueError("epochs, batch_size and samples_per_epoch must be at least 1")
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
    if cfg.channels_last not in ("auto", "on", "off"):
        raise ValueError(f"channels_last must be 'auto', 'on' or 'off', got {cfg.channels_last!r}")
    device = pick_device(cfg.device)
    precision = pick_precision(device, cfg.amp)
    if cfg.channels_last == "auto":
        cfg = replace(cfg, channels_last="on" if device.type in ("cpu", "cuda") else "off")
    # Everything that can be checked is checked before the run folder is created or anything is written into it.
    train_images, val_images = stack_images(train_set), stack_images(val_set)
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
    with run_lock(run):
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
    stored = read_json(run / "config.json") if (run / "config.json").exists() else None
    _check_settings(run, stored, "config.json", run_config)
    state = _load_checkpoint(run, "last.pt") if (run / "last.pt").exists() else None
    if state is not None:
        if "config" not in state and stored is None:
            raise RunError(f"{run / 'last.pt'} holds no config and {run / 'config.json'} is missing: cannot resume it")
        _check_settings(run, state.get("config"), "last.pt", run_config)
    if state is not None and state["epoch"] >= cfg.epochs:  # finished: nothing to train, and config.json is kept
        if stored is None:
            write_config(run, state["config"])
        done = {"history": state["history"], "best_val_psnr": state["best"], "device": str(device)}
        return {**done, "resumed_from": state["epoch"]}
    config_written = state is not None  # a fresh run writes its config.json with its first checkpoint
    if config_written:
        write_config(run, run_config)

    memory_format = torch.channels_last if cfg.channels_last == "on" else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.lr_factor, patience=cfg.patience
    )
    # fp16 needs its gradients scaled (they underflow otherwise); a disabled scaler passes every call through.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
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
    # A fixed, seeded corruption of the validation set: the same every epoch, so PSNRs compare across epochs.
    val_corrupted, _ = corrupt(val_images, _epoch_generator(cfg.seed, -1, 0, device))
    log(
        f"device: {device} ({precision}"
        + (", channels_last" if memory_format == torch.channels_last else "")
        + f"); {n} training images, {per_epoch} per epoch in {len(batches)} steps; {len(val_images)} validation samples"
    )
    dtype = _AUTOCAST.get(precision)

    from tqdm.auto import tqdm

    bar = tqdm(
        range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=run.name, unit="epoch", disable=not cfg.progress
    )
    pending = None  # the state of the last finished epoch, not yet written
    best_pending = None  # the best weights so far, not yet written
    written_at, written_epoch = time.monotonic(), start

    def flush():
        nonlocal pending, best_pending, written_at, written_epoch, config_written
        if best_pending is not None:
            _save_checkpoint(run, "best.pt", best_pending)
        if pending is not None:
            if not config_written:  # a fresh run's config.json comes with its first checkpoint
                write_config(run, run_config)
                config_written = True
            _save_checkpoint(run, "last.pt", pending)
            _write_history(run, pending["history"])
            written_epoch = pending["epoch"]
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
            for begin, end in batches:
                clean = train_images[order[begin:end]]
                corrupted, _ = corrupt(clean, g_corrupt, **trusted)
                corrupted = corrupted.contiguous(memory_format=memory_format)
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    loss = F.mse_loss(model(corrupted).float(), clean)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                losses.append(loss.detach())
                sizes.append(len(clean))
            values = torch.stack(losses).tolist()  # the epoch's one read-back
            bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
            if bad is not None:
                raise FloatingPointError(
                    f"training loss is {values[bad]} at epoch {epoch + 1}, step {bad + 1}; "
                    f"lower the learning rate (now {optimizer.param_groups[0]['lr']:g})"
                )
            total = sum(v * k for v, k in zip(values, sizes))
            val = evaluate_psnr(model, val_corrupted, val_images, cfg.batch_size, precision)
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
    except BaseException:
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
    dtype = _AUTOCAST.get(precision)
    model.eval()
    values = []
    for i in range(0, len(clean), batch_size):
        with torch.autocast(clean.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(corrupted[i : i + batch_size])
        values.append(psnr(out, clean[i : i + batch_size]))
    return torch.cat(values).mean().item()


def load_run(run, which: str = "best.pt", device="cpu") -> tuple[AutoEncoder, dict]:
    """The model of a run folder with its ``best.pt`` (or ``last.pt``) weights, in eval mode, and its config."""
    run = Path(run)
    if not (run / "config.json").exists():
        raise RunError(f"{run} is not a run folder (no config.json)")
    config = read_json(run / "config.json")
    params = dict(config["model"])
    params.setdefault("decoder", "legacy")  # runs made before the decoder readings were named (models.py)
    with torch.random.fork_rng(devices=[]):  # the initial weights are replaced: keep the caller's random state
        model = build_model(params.pop("name"), **params)
    state = _load_checkpoint(run, which)
    _check_settings(run, state.get("config"), which, config)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config


def write_config(run, config: dict) -> None:
    """Write ``config.json`` into the run folder ``run`` (atomically)."""
    atomic_write(Path(run) / "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
