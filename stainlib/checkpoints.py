"""A run folder's files: checkpoints with their checksums, ``config.json``, ``history.csv``, and reading them back
(book chapter 4, "Training").

:func:`save_checkpoint` writes a checkpoint (``last.pt``, ``best.pt``) so that ``SHA256SUMS`` always lists the
digest of the checkpoint on disk: the new checkpoint's digest is added (beside the old one) *before* the file is
renamed into place, and the old digest is dropped after, so a kill at any moment leaves a run that loads and resumes.
:func:`load_checkpoint` checks the digest before it reads a checkpoint, and names the file in every error
(:class:`RunError`).  :func:`write_config` and :func:`write_history` write ``config.json`` and ``history.csv``
atomically.  :func:`check_settings` refuses a folder made with other settings (all but :data:`RUNTIME_KEYS`),
:func:`is_complete` tells a finished run, and :func:`load_run` gives back a run's model.  :mod:`stainlib.runstate`
decides when to write; this module only knows how.

``config.json`` and ``metrics.json`` are listed in ``SHA256SUMS`` too, written the same way (:func:`write_listed`),
and checked whenever they are read (:func:`read_listed_json`): a results file edited by hand is an error, not a number
in a table.  Runs written before they were listed (the committed ``results/``) have no entry for them and are read
as they are.  :func:`foreign_files` names what in a run folder stainlib did not write, which ``--retrain`` refuses
to delete.

Snapshots (``fit``'s ``keep_steps``) are weights-only checkpoints at chosen optimiser steps, ``steps/step-000125.pt``
(:func:`snapshot_name`), each with the run's config inside and its digest in ``SHA256SUMS``, as ``best.pt``: so
:func:`load_run` (``which=snapshot_name(step)``) checks both before it gives one back.  :func:`kept_steps` lists them.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
from pathlib import Path

import torch

from .files import LOCK_NAME, atomic_write, file_sha256, read_json, temporary_beside, write_error
from .models import AutoEncoder, build_model

__all__ = [
    "CHECKSUMS",
    "RUNTIME_KEYS",
    "RunError",
    "check_checksum",
    "check_settings",
    "foreign_files",
    "is_complete",
    "evaluated_steps",
    "kept_steps",
    "load_checkpoint",
    "load_run",
    "read_config",
    "read_listed_json",
    "save_checkpoint",
    "trained_epochs",
    "snapshot_name",
    "write_config",
    "write_history",
    "write_listed",
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
    "keep_steps",
}
SNAPSHOTS = "steps"  # the folder of a run's snapshots


def snapshot_name(step: int) -> str:
    """The snapshot of optimiser step ``step``, relative to the run folder: ``steps/step-000125.pt``."""
    return f"{SNAPSHOTS}/step-{int(step):06d}.pt"


def kept_steps(run) -> list[int]:
    """The optimiser steps of the snapshots a run folder holds (listed in ``SHA256SUMS``), in order."""
    found = (re.fullmatch(rf"{SNAPSHOTS}/step-(\d+)\.pt", name) for name in read_checksums(Path(run)))
    return sorted(int(m.group(1)) for m in found if m and (Path(run) / m.group(0)).exists())


def evaluated_steps(run) -> list[int]:
    """The optimiser steps whose snapshot was scored (a ``steps/metrics-NNNNNN.json`` is there), in order, whether
    or not the snapshot's weights are still there: a committed result keeps the metrics, not the weights."""
    found = (re.fullmatch(r"metrics-(\d+)\.json", p.name) for p in (Path(run) / SNAPSHOTS).glob("metrics-*.json"))
    return sorted(int(m.group(1)) for m in found if m)


# The files stainlib writes into a run folder (besides the temporary files of its writers, ".<name>.<random>.tmp").
# threshold.json is stainlib.threshold's THRESHOLDS (the calibrated thresholds).
RUN_FILES = {"config.json", "last.pt", "best.pt", CHECKSUMS, "history.csv", "metrics.json", "threshold.json", LOCK_NAME}
RUN_FILE_PATTERNS = (re.compile(r"figure_[a-z]+\.png"), re.compile(r"\..+\.[a-z0-9_]+\.tmp"))
# What the snapshot folder holds: the weights, their metrics and figures (evaluate with at_step), temporaries.
SNAPSHOT_FILE = re.compile(r"step-\d+\.pt|metrics-\d+\.json|figure_[a-z]+-\d+\.png|\..+\.[a-z0-9_]+\.tmp")


class RunError(RuntimeError):
    """A run folder that cannot be used: different settings, a damaged checkpoint."""


def foreign_files(run) -> list[str]:
    """The names of the entries of the run folder ``run`` that stainlib did not write (sub-folders included)."""
    run = Path(run)
    if not run.is_dir():
        return []
    mine = [lambda p: p.name in RUN_FILES, *(lambda p, r=r: r.fullmatch(p.name) for r in RUN_FILE_PATTERNS)]
    foreign = [p.name for p in run.iterdir() if not p.is_dir() and not any(m(p) for m in mine)]
    for folder in (p for p in run.iterdir() if p.is_dir()):
        if folder.name != SNAPSHOTS:
            foreign.append(folder.name)
            continue
        own = [p for p in folder.iterdir() if not p.is_dir() and SNAPSHOT_FILE.fullmatch(p.name)]
        foreign += [f"{SNAPSHOTS}/{p.name}" for p in folder.iterdir() if p not in own]
    return sorted(foreign)


def write_listed(run: Path, name: str, write) -> None:
    """Write ``run/name`` with ``write(path)`` so that ``SHA256SUMS`` lists the digest of the file on disk at every
    moment.

    The new file is written under a temporary name and hashed; its digest joins the old one in ``SHA256SUMS``; the
    file is renamed into place; then the old digest is dropped.  A kill between two of these steps leaves the old
    file with its digest listed, or the new one with its digest listed.  A write that fails (a full disk) is an
    ``OSError`` naming the file, and leaves the old file and its digest as they were.
    """
    run = Path(run)
    (run / name).parent.mkdir(exist_ok=True)  # steps/ for a snapshot
    tmp = temporary_beside(run / name)
    try:
        try:
            write(tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # first, so that the free space said is what is left without it
            raise write_error(run / name, exc) from exc
        digest = file_sha256(tmp)
        sums = read_checksums(run)
        _write_checksums(run, {**sums, name: [*sums.get(name, []), digest]})  # pending: old and new
        os.replace(tmp, run / name)
    finally:
        tmp.unlink(missing_ok=True)
    _write_checksums(run, {**read_checksums(run), name: [digest]})


class _Recorded:
    """A binary file that keeps the ``OSError`` of a failed write (torch.save replaces it by a vague RuntimeError)."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self):
        self.f.flush()


def _torch_save(state: dict, path: Path) -> None:
    """``torch.save`` into ``path``; a failed write (a full disk) is the ``OSError`` the file system gave."""
    recorded = None
    try:
        with open(path, "wb") as f:
            recorded = _Recorded(f)
            torch.save(state, recorded)
    except RuntimeError as exc:
        if recorded is not None and recorded.error is not None:
            raise recorded.error from exc
        if "unexpected pos" in str(exc):  # torch's word for a short write
            raise OSError(errno.EIO, str(exc)) from exc
        raise


def save_checkpoint(run: Path, name: str, state: dict) -> None:
    """Write a checkpoint so that ``SHA256SUMS`` lists the digest of the file on disk at every moment
    (:func:`write_listed`)."""
    write_listed(run, name, lambda p: _torch_save(state, p))


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
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise RunError(f"{path} is not a text file; it is damaged: restore it, or retrain the run (--retrain)") from exc
    for number, line in enumerate(lines, 1):
        if line.strip():
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]):
                raise RunError(
                    f"{path}, line {number}, is not '<sha256>  <file name>': {line.strip()[:60]!r}; the file is "
                    "damaged: restore it, or retrain the run (--retrain)"
                )
            digest, name = parts
            sums.setdefault(name.strip().lstrip("*"), []).append(digest)
    return sums


def read_listed_json(run, name: str, what=dict):
    """The JSON file ``run/name``, checked against its digest in ``SHA256SUMS`` when it is listed there (a file
    written before ``config.json`` and ``metrics.json`` were listed is read as it is); its top level must be a
    ``what`` (a ``dict``)."""
    run = Path(run)
    path = run / name
    expected = read_checksums(run).get(name)
    if expected and file_sha256(path) not in expected:
        remedy = "delete it and evaluate the run again" if name == "metrics.json" else "train the run anew (--retrain)"
        raise RunError(
            f"{path} was changed after stainlib wrote it (its SHA-256 is not the one in {run / CHECKSUMS}); restore "
            f"it, or {remedy}"
        )
    content = read_json(path)
    if not isinstance(content, what):
        raise ValueError(f"{path} holds a JSON {type(content).__name__}, not an object; delete or repair it")
    return content


def load_checkpoint(run: Path, name: str) -> dict:
    """The checkpoint ``run/name``, read on the CPU after its digest is checked against ``SHA256SUMS``."""
    path = run / name
    if not path.exists():
        if name == "best.pt" and (run / "last.pt").exists():
            raise RunError(
                f"{path} is missing, though the run has a last.pt: the best weights are lost; train it anew with "
                "the same command and --retrain"
            )
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
    """Write ``config.json`` into the run folder ``run`` (atomically, its digest in ``SHA256SUMS``)."""
    write_listed(Path(run), "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))


def read_config(run) -> dict:
    """A run folder's ``config.json``, checked against ``SHA256SUMS`` and for its layout (``model``, ``data`` and
    ``train`` are objects where present)."""
    path = Path(run) / "config.json"
    if not path.exists():
        raise RunError(f"{run} is not a run folder (no config.json)")
    config = read_listed_json(run, "config.json")
    bad = [k for k in ("model", "data", "train", "budget") if k in config and not isinstance(config[k], dict)]
    if bad:
        raise ValueError(
            f"{path}: {bad[0]!r} is {json.dumps(config[bad[0]])[:40]}, not an object; the file is damaged: restore "
            "it, or retrain the run (--retrain)"
        )
    return config


def trained_epochs(run) -> int:
    """The number of epochs a run folder's ``history.csv`` records (0 without one)."""
    try:
        with open(Path(run) / "history.csv") as f:
            return max(0, sum(1 for _ in f) - 1)
    except OSError:
        return 0


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key in RUNTIME_KEYS:
            continue
        if prefix == "data." and key == "fingerprint":
            if a is not None and b is not None and a != b:  # a run made before fingerprints has none: legacy
                diffs.append(f"the training images changed since the run was made: {_data_change(a, b)}")
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} in the run folder, {b!r} now")
    return diffs


def _data_change(old: dict, new: dict) -> str:
    """What changed between two fingerprints of the training images (:func:`stainlib.data.train_fingerprint`)."""

    def words(f):
        return f"{f.get('files')} files ({f.get('bytes', 0) / 1e6:.2f} MB)"

    folder = new.get("folder", "the training folder")
    if (old.get("files"), old.get("bytes")) == (new.get("files"), new.get("bytes")):
        what = f"the same number of files and bytes ({words(new)}), but names or modification times differ"
    else:
        what = f"{words(old)} then, {words(new)} now"
    return (
        f"{folder} holds {what}; restore the data the run was trained on, or train the run anew on the new data "
        "(--retrain)"
    )


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
        config = read_config(run)
        epochs = config["train"]["epochs"]
    except (OSError, ValueError, KeyError):
        return False
    return trained_epochs(run) >= epochs and (run / "best.pt").exists()


def load_run(run, which: str = "best.pt", device="cpu") -> tuple[AutoEncoder, dict]:
    """The model of a run folder with its ``best.pt`` (or ``last.pt``) weights, in eval mode, and its config."""
    run = Path(run)
    config = read_config(run)
    if "model" not in config:
        raise RunError(f"{run / 'config.json'} has no 'model'; the file is damaged: retrain the run (--retrain)")
    params = dict(config["model"])
    params.setdefault("decoder", "legacy")  # runs made before the decoder readings were named (models.py)
    with torch.random.fork_rng(devices=[]):  # the initial weights are replaced: keep the caller's random state
        model = build_model(params.pop("name"), **params)
    state = load_checkpoint(run, which)
    check_settings(run, state.get("config"), which, config)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
