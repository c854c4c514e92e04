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

``config.json`` and ``metrics.json`` are listed in ``SHA256SUMS`` too, written and read through
:mod:`stainlib.checksums` (:func:`~stainlib.checksums.write_listed`, :func:`~stainlib.checksums.read_listed_json`),
which checks every listed file before it is read. :func:`foreign_files` names what in a run folder stainlib did not
write, which ``--retrain`` refuses to delete.

Snapshots (``fit``'s ``keep_steps``) are weights-only checkpoints at chosen optimiser steps, ``steps/step-000125.pt``
(:func:`snapshot_name`), each with the run's config inside and its digest in ``SHA256SUMS``, as ``best.pt``: so
:func:`load_run` (``which=snapshot_name(step)``) checks both before it gives one back.  :func:`kept_steps` lists them.
"""

from __future__ import annotations

import csv
import errno
import json
import re
from pathlib import Path

import torch

from .checksums import CHECKSUMS, RunError, read_checksums, read_listed_json, write_listed
from .files import LOCK_NAME, atomic_write, file_sha256
from .models import AutoEncoder, build_model

__all__ = [
    "RUNTIME_KEYS",
    "RunError",
    "check_settings",
    "foreign_files",
    "is_complete",
    "evaluated_steps",
    "kept_steps",
    "load_checkpoint",
    "load_run",
    "read_config",
    "save_checkpoint",
    "trained_epochs",
    "snapshot_name",
    "write_config",
    "write_history",
]

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
    """The snapshot of optimiser step ``step``, relative to the run folder.

    Example: ``snapshot_name(125) == "steps/step-000125.pt"``.
    """
    return f"{SNAPSHOTS}/step-{int(step):06d}.pt"


def kept_steps(run) -> list[int]:
    """The optimiser steps of the snapshots a run folder holds, in order.

    Args:
        run: the run folder.

    Returns:
        The steps whose ``steps/step-NNNNNN.pt`` is listed in ``SHA256SUMS`` and on disk, e.g. ``[125, 250, 500]``.
    """
    found = (re.fullmatch(rf"{SNAPSHOTS}/step-(\d+)\.pt", name) for name in read_checksums(Path(run)))
    return sorted(int(m.group(1)) for m in found if m and (Path(run) / m.group(0)).exists())


def evaluated_steps(run) -> list[int]:
    """The optimiser steps whose snapshot was scored, in order, whether or not the snapshot's weights are still there:
    a committed result keeps the metrics, not the weights.

    Args:
        run: the run folder.

    Returns:
        The steps of its ``steps/metrics-NNNNNN.json`` files (``[]`` without a ``steps/`` folder).
    """
    found = (re.fullmatch(r"metrics-(\d+)\.json", p.name) for p in (Path(run) / SNAPSHOTS).glob("metrics-*.json"))
    return sorted(int(m.group(1)) for m in found if m)


# The files stainlib writes into a run folder (besides the temporary files of its writers, ".<name>.<random>.tmp").
# threshold.json is stainlib.threshold's THRESHOLDS (the calibrated thresholds).
RUN_FILES = {"config.json", "last.pt", "best.pt", CHECKSUMS, "history.csv", "metrics.json", "threshold.json", LOCK_NAME}
RUN_FILE_PATTERNS = (re.compile(r"figure_[a-z]+\.png"), re.compile(r"\..+\.[a-z0-9_]+\.tmp"))
# What the snapshot folder holds: the weights, their metrics and figures (evaluate with at_step), temporaries.
SNAPSHOT_FILE = re.compile(r"step-\d+\.pt|metrics-\d+\.json|figure_[a-z]+-\d+\.png|\..+\.[a-z0-9_]+\.tmp")


def foreign_files(run) -> list[str]:
    """The entries of a run folder that stainlib did not write (sub-folders included): what ``--retrain`` refuses to
    delete.

    Args:
        run: the run folder; a missing folder has none.

    Returns:
        Their names, sorted, those inside ``steps/`` as ``"steps/<name>"``: ``["notes.txt"]``.
    """
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
    (:func:`~stainlib.checksums.write_listed`).

    Args:
        run: the run folder.
        name: ``"last.pt"``, ``"best.pt"`` or a :func:`snapshot_name`.
        state: what ``torch.save`` stores (``{"model": state_dict, "config": ..., ...}``).

    Raises:
        OSError: the write failed (a full disk); it names the file, and the old checkpoint stays.
    """
    write_listed(run, name, lambda p: _torch_save(state, p))


def load_checkpoint(run: Path, name: str) -> dict:
    """The checkpoint ``run/name``, read on the CPU after its digest is checked against ``SHA256SUMS``.

    Args:
        run: the run folder.
        name: ``"last.pt"``, ``"best.pt"`` or a :func:`snapshot_name`.

    Returns:
        The saved ``dict`` (tensors on the CPU; loaded with ``weights_only=True``).

    Raises:
        RunError: the file is missing, unlisted, changed or unreadable; the message says what to do.
    """
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
    """Write ``history.csv`` into the run folder ``run``, atomically.

    Args:
        run: the run folder.
        rows: one ``dict`` per epoch with the keys ``epoch``, ``train_loss``, ``val_psnr``, ``lr`` and ``seconds``.
    """

    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(run / "history.csv", write)


def write_config(run, config: dict) -> None:
    """Write ``config.json`` into the run folder ``run``, atomically, its digest in ``SHA256SUMS``.

    Args:
        run: the run folder.
        config: the run's settings (``model``, ``corruption``, ``train``, ``data``), written as indented JSON.
    """
    write_listed(Path(run), "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))


def read_config(run) -> dict:
    """A run folder's ``config.json``, checked against ``SHA256SUMS`` and for its layout.

    Args:
        run: the run folder.

    Returns:
        The settings, where ``model``, ``data``, ``train`` and ``budget`` are ``dict`` when present:
        ``read_config(run)["train"]["epochs"]``.

    Raises:
        RunError: there is no ``config.json``, or it was changed after stainlib wrote it.
        ValueError: it is not valid JSON, or one of those entries is not an object.
    """
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
    """The number of epochs a run folder's ``history.csv`` records.

    Args:
        run: the run folder.

    Returns:
        Its rows less the header; 0 without a readable ``history.csv``.
    """
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
    """Refuse a run folder whose ``stored`` settings differ from ``now`` in anything but :data:`RUNTIME_KEYS`.

    Args:
        run: the run folder, for the message.
        stored: the settings found there (``None``: nothing to compare, accepted).
        where: where ``stored`` was read, for the message (``"config.json"``, ``"best.pt"``).
        now: the settings asked for.

    Raises:
        RunError: they differ; the message lists each difference, the training images' fingerprint included.
    """
    diffs = _differences(stored, now) if stored is not None else []
    if diffs:
        raise RunError(
            f"run folder {run} was made with other settings ({where}); refusing to mix them:\n  " + "\n  ".join(diffs)
        )


def is_complete(run) -> bool:
    """Whether ``run`` holds a finished run.

    Args:
        run: the run folder.

    Returns:
        ``True`` when its ``history.csv`` has as many rows as its ``config.json``'s epochs and a ``best.pt`` is there;
        ``False`` for a missing, unreadable or unfinished run.
    """
    run = Path(run)
    try:
        config = read_config(run)
        epochs = config["train"]["epochs"]
    except (OSError, ValueError, KeyError):
        return False
    return trained_epochs(run) >= epochs and (run / "best.pt").exists()


def load_run(run, which: str = "best.pt", device="cpu") -> tuple[AutoEncoder, dict]:
    """The model of a run folder with the weights of one of its checkpoints, and its config.

    Args:
        run: the run folder.
        which: ``"best.pt"``, ``"last.pt"`` or a :func:`snapshot_name`.
        device: where the model goes.

    Returns:
        ``(model, config)``: the :class:`~stainlib.models.AutoEncoder` in eval mode, and :func:`read_config`'s dict.
        The caller's random state is left as it was.

    Raises:
        RunError: the config or the checkpoint is missing or damaged, or the checkpoint was made with other settings.
    """
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
