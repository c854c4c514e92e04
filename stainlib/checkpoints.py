"""A run folder's files: checkpoints with their checksums, ``config.json``, ``history.csv``, and reading them back
(book chapter 4, "Training").

:func:`save_checkpoint` writes a checkpoint (``last.pt``, ``best.pt``) so that ``SHA256SUMS`` always lists the
digest of the checkpoint on disk: the new checkpoint's digest is added (beside the old one) *before* the file is
renamed into place, and the old digest is dropped after, so a kill at any moment leaves a run that loads and resumes.
:func:`load_checkpoint` checks the digest before it reads a checkpoint, and names the file in every error
(:class:`RunError`).  :func:`write_config` and :func:`write_history` write ``config.json`` and ``history.csv``
atomically.  :func:`check_settings` refuses a folder made with other settings (all but :data:`RUNTIME_KEYS`),
:func:`is_complete` tells a finished run, and :func:`load_run` gives back a run's model.  :func:`stainlib.train.fit`
decides when to write; this module only knows how.  (``stainlib.train`` re-exports the public names, as before.)
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import torch

from .files import atomic_write, file_sha256, read_json, temporary_beside
from .models import AutoEncoder, build_model

__all__ = [
    "CHECKSUMS",
    "RUNTIME_KEYS",
    "RunError",
    "check_checksum",
    "check_settings",
    "is_complete",
    "load_checkpoint",
    "load_run",
    "save_checkpoint",
    "save_with_checksum",
    "write_config",
    "write_history",
]

CHECKSUMS = "SHA256SUMS"
HISTORY_FIELDS = ["epoch", "train_loss", "val_psnr", "lr", "seconds"]
# Settings that may change between a run and its resumption without changing what is trained.
# channels_last changes the memory layout only, compile how the same arithmetic is run; config.json records the
# resolved choices ("on" or "off").
# precision and budget are recorded as resolved (budget.steps grows with epochs); checkpoint_* set only when to write.
RUNTIME_KEYS = {
    "epochs",
    "device",
    "progress",
    "out",
    "channels_last",
    "compile",
    "precision",
    "budget",
    "checkpoint_every",
    "checkpoint_seconds",
}


class RunError(RuntimeError):
    """A run folder that cannot be used: different settings, a damaged checkpoint."""


def save_checkpoint(run: Path, name: str, state: dict) -> None:
    """Write a checkpoint so that ``SHA256SUMS`` lists the digest of the file on disk at every moment.

    The new file is written under a temporary name and hashed; its digest joins the old one in ``SHA256SUMS``; the
    file is renamed into place; then the old digest is dropped.  A kill between two of these steps leaves the old
    file with its digest listed, or the new one with its digest listed.
    """
    tmp = temporary_beside(run / name)
    try:
        torch.save(state, tmp)
        digest = file_sha256(tmp)
        sums = read_checksums(run)
        _write_checksums(run, {**sums, name: [*sums.get(name, []), digest]})  # pending: old and new
        os.replace(tmp, run / name)
    finally:
        tmp.unlink(missing_ok=True)
    _write_checksums(run, {**read_checksums(run), name: [digest]})


def save_with_checksum(run: Path, name: str, write) -> None:
    """Write ``run/name`` by ``write(tmp)`` in :func:`save_checkpoint`'s order, for any file of a run
    (``threshold.json``).

    ``SHA256SUMS`` lists the digest of the file on disk at every moment: the new digest joins the old one before the
    rename, and the old one is dropped after.
    """
    run = Path(run)
    tmp = temporary_beside(run / name)
    try:
        write(tmp)
        digest = file_sha256(tmp)
        sums = read_checksums(run)
        _write_checksums(run, {**sums, name: [*sums.get(name, []), digest]})
        os.replace(tmp, run / name)
    finally:
        tmp.unlink(missing_ok=True)
    _write_checksums(run, {**read_checksums(run), name: [digest]})


def check_checksum(run: Path, name: str) -> None:
    """Refuse (:class:`RunError`) ``run/name`` when its digest is not the one ``SHA256SUMS`` lists for it."""
    path = Path(run) / name
    expected = read_checksums(Path(run)).get(name)
    if not expected:
        raise RunError(f"{path} has no checksum in {Path(run) / CHECKSUMS}; delete it to make it anew")
    actual = file_sha256(path)
    if actual not in expected:
        raise RunError(
            f"checksum mismatch for {path}: expected {expected[-1]}, got {actual}; the file was changed or damaged "
            "(delete it to make it anew)"
        )


def _write_checksums(run: Path, sums: dict) -> None:
    lines = "".join(f"{d}  {k}\n" for k, digests in sorted(sums.items()) for d in digests)
    atomic_write(run / CHECKSUMS, lambda p: p.write_text(lines))


def read_checksums(run: Path) -> dict:
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


def load_checkpoint(run: Path, name: str) -> dict:
    """The checkpoint ``run/name``, read on the CPU after its digest is checked against ``SHA256SUMS``."""
    path = run / name
    if not path.exists():
        raise RunError(f"{run} is not trained yet (no {name}); train it first")
    expected = read_checksums(run).get(name)
    if not expected:
        raise RunError(f"{path} has no checksum in {run / CHECKSUMS}")
    actual = file_sha256(path)
    if actual not in expected:
        raise RunError(f"checksum mismatch for {path}: expected {expected[-1]}, got {actual}; the file is damaged")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError) for a file it cannot read
        raise RunError(f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc


def write_history(run: Path, rows: list[dict]) -> None:
    """Write ``history.csv`` (one row per epoch) into the run folder ``run`` (atomically)."""

    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(run / "history.csv", write)


def write_config(run, config: dict) -> None:
    """Write ``config.json`` into the run folder ``run`` (atomically)."""
    atomic_write(Path(run) / "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))


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


def check_settings(run: Path, stored: dict | None, where: str, now: dict) -> None:
    """Refuse (:class:`RunError`) a run folder whose ``stored`` settings (from ``where``) differ from ``now``."""
    diffs = _differences(stored, now) if stored is not None else []
    if diffs:
        raise RunError(
            f"run folder {run} was made with other settings ({where}); refusing to mix them:\n  " + "\n  ".join(diffs)
        )


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
    state = load_checkpoint(run, which)
    check_settings(run, state.get("config"), which, config)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
