"""A run folder's ``SHA256SUMS``: the digest of every file stainlib lists there, kept true at every moment, and checked
before a listed file is read (book chapter 4, "Training").

:func:`write_listed` writes a file so that ``SHA256SUMS`` always lists the digest of the file on disk: the new file's
digest is added (beside the old one) *before* the file is renamed into place, and the old digest is dropped after, so
a kill at any moment leaves a folder whose listed files all check.  :func:`check_checksum` refuses a file whose
digest is not listed; :func:`read_listed_json` reads a listed JSON file (``config.json``, ``metrics.json``,
``threshold.json``) after that check, so that a results file edited by hand is an error, not a number in a table.
Files written before they were listed (the committed ``results/``) have no entry and are read as they are.
:mod:`stainlib.checkpoints` writes and reads the checkpoints through this module.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .files import atomic_write, file_sha256, read_json, temporary_beside, write_error

__all__ = ["CHECKSUMS", "RunError", "check_checksum", "read_checksums", "read_listed_json", "write_listed"]

CHECKSUMS = "SHA256SUMS"


class RunError(RuntimeError):
    """A run folder that cannot be used: different settings, a damaged checkpoint."""


def write_listed(run: Path, name: str, write) -> None:
    """Write ``run/name`` with ``write(path)`` so that ``SHA256SUMS`` lists the digest of the file on disk at every
    moment.

    The new file is written under a temporary name and hashed; its digest joins the old one in ``SHA256SUMS``; the
    file is renamed into place; then the old digest is dropped.  A kill between two of these steps leaves the old
    file with its digest listed, or the new one with its digest listed.

    Args:
        run: the run folder.
        name: the file's name relative to ``run`` (``"config.json"``, ``"steps/step-000125.pt"``).
        write: a callable that writes the whole content to the path it is given:
            ``write_listed(run, "metrics.json", lambda p: p.write_text(text))``.

    Raises:
        OSError: the write failed (a full disk); it names the file, and the old file and its digest stay as they were.
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


def check_checksum(run: Path, name: str) -> None:
    """Refuse ``run/name`` when its digest is not one that ``SHA256SUMS`` lists for it.

    Args:
        run: the run folder.
        name: the file's name relative to ``run``.

    Raises:
        RunError: the file is not listed, or its digest differs (changed or damaged); the message names it.
    """
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
    """A folder's ``SHA256SUMS``, parsed.

    Args:
        run: the run folder; without a ``SHA256SUMS`` the result is ``{}``.

    Returns:
        ``{name: [digest, ...]}``: one digest per name, two while a replacement is under way (the older first).

    Raises:
        RunError: the file is damaged (not text, or a line that is not ``<sha256>  <name>``).
    """
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
    written before ``config.json`` and ``metrics.json`` were listed is read as it is).

    Args:
        run: the run folder.
        name: the file's name relative to ``run``.
        what: the type its top level must have.

    Returns:
        The decoded content: ``read_listed_json(run, "metrics.json")["residual"]``.

    Raises:
        RunError: the file was changed after stainlib wrote it.
        ValueError: the file is not valid JSON, or its top level is not a ``what``.
    """
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
