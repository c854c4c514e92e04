"""Files that are never half-written, their checksums, and the lock of a folder in use (book chapter 4, "Training").

:func:`project_dir` is the checkout that the chapters, the CLI and the tools run in, and :func:`shown_path` a
path as a page may print it (relative to the checkout, never a machine path).

:func:`atomic_write` writes through a temporary file renamed into place, so an interruption leaves the old file or the
new one, never a mix; each call has its own temporary name, so two writers of one file never trip over each other.
:func:`file_sha256` is the checksum of a file, read in blocks.  :func:`read_json` reads a JSON file and names it in its
error.  :func:`run_lock` holds an exclusive lock on a folder (a run folder while it is trained): a second process that
asks for it is refused at once with :class:`FolderInUse`.  It uses ``fcntl.flock`` on Linux and macOS and
``msvcrt.locking`` on Windows; the lock is released by the operating system when the process ends, however it ends.
Within one thread the lock is re-entrant (``train`` holds it while it checks, clears and trains a folder), so a nested
``run_lock`` of the same folder passes through.  Files are written with the permissions the umask allows (as ``open``
does), not ``mkstemp``'s 0600, so other users of a shared results folder can read them.  :func:`stale_temporaries`
lists the temporary files a killed writer left behind, for their folder's lock holder to delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

__all__ = [
    "LOCK_NAME",
    "FolderInUse",
    "atomic_write",
    "file_sha256",
    "project_dir",
    "read_json",
    "run_lock",
    "shown_path",
    "stale_temporaries",
    "write_error",
]

LOCK_NAME = ".lock"
_held = threading.local()  # the folders whose lock this thread holds: {resolved path: depth}


class FolderInUse(RuntimeError):
    """The folder is locked by another process (another ``stainlib train`` on the same run folder)."""


def file_sha256(path) -> str:
    """The SHA-256 of a file, as hex digits, read in blocks of 1 MiB.

    Args:
        path: the file (``str`` or path-like).

    Returns:
        64 lowercase hex digits; an empty file gives ``"e3b0c442...b855"``.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def temporary_beside(path) -> Path:
    """A new, empty file beside ``path`` with a name of its own (``.<name>.<random>.tmp``), for a later rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if os.name != "nt":
            os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it (mkstemp makes it 0600)
    finally:
        os.close(fd)
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def stale_temporaries(folder) -> list[Path]:
    """The temporary files of :func:`temporary_beside` in ``folder`` (``.<name>.<random>.tmp``): left by a killed
    writer when no one holds the folder's lock.

    Args:
        folder: the folder to look in; a missing folder has none.

    Returns:
        Their paths, sorted (only the holder of the folder's :func:`run_lock` may delete them).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(".*.tmp") if p.is_file() and p.name.count(".") >= 3)


def atomic_write(path, write) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    Args:
        path: the file to write; its folder must exist.
        write: a callable that writes the whole content to the path it is given, e.g.
            ``lambda tmp: tmp.write_text("done")``, or ``lambda tmp: torch.save(state, tmp)``.

    Raises:
        OSError: the write failed (a full disk); it names ``path`` (:func:`write_error`), and the old file stays.
    """
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        try:
            write(tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # first, so that the free space said is what is left without it
            raise write_error(path, exc) from exc
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_error(path, exc: OSError) -> OSError:
    """The ``OSError`` of a failed write, restated to name ``path`` and the room left on its disk.

    Args:
        path: the file that was being written.
        exc: the error the write raised.

    Returns:
        ``exc`` itself when its message names ``path`` already, else a new ``OSError`` with the same ``errno``:
        ``"cannot write <path>: No space left on device (12 MB free on its disk)"``.
    """
    path = Path(path)
    if str(path) in str(exc):
        return exc
    try:
        free = f" ({shutil.disk_usage(path.parent).free / 1e6:.0f} MB free on its disk)"
    except OSError:
        free = ""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return OSError(exc.errno, f"cannot write {path}: {reason}{free}")


def read_json(path):
    """The content of the JSON file ``path``.

    Args:
        path: the file.

    Returns:
        The decoded value (a ``dict`` for the library's files).

    Raises:
        ValueError: the file is not valid JSON; the message names it.
        OSError: the file cannot be read (``FileNotFoundError`` where it is missing).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete or repair it") from exc


@contextlib.contextmanager
def run_lock(folder):
    """Hold an exclusive lock on ``folder`` (created if needed) for the ``with`` block, or raise :class:`FolderInUse`.

    The lock is the file ``<folder>/.lock``, locked without waiting.  One holder per folder; within the thread that
    holds it, a nested ``run_lock`` of the same folder passes through.

    Args:
        folder: the folder to lock (a run folder).

    Returns:
        A context manager that yields ``folder`` as a :class:`~pathlib.Path`:
        ``with run_lock("runs/bottle/aesc-stain-s0"): ...``.

    Raises:
        FolderInUse: another process holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    held = _held.__dict__.setdefault("folders", {})
    key = str(folder.resolve())
    if key in held:  # this thread holds it already
        held[key] += 1
        try:
            yield folder
        finally:
            held[key] -= 1
        return
    f = open(folder / LOCK_NAME, "a+b")
    try:
        try:
            _lock(f)
        except OSError as exc:
            raise FolderInUse(
                f"{folder} is in use by another process (a training or an evaluation of this run?); "
                "wait for it to finish"
            ) from exc
        held[key] = 1
        try:
            yield folder
        finally:
            del held[key]
            _unlock(f)
    finally:
        f.close()


if os.name == "nt":  # pragma: no cover - Windows
    import msvcrt

    def _lock(f):
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(f):
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(f):
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(f):
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def shown_path(path) -> str:
    """``path`` relative to the project when it lies inside it, else its last part: what a page may print.

    Args:
        path: any path; it is resolved first.

    Returns:
        ``shown_path(project_dir() / "runs" / "x") == "runs/x"`` (with ``/`` on POSIX); outside the project,
        ``shown_path("/tmp/a/b") == "b"``.
    """
    path = Path(path).resolve()
    try:
        return str(path.relative_to(project_dir()))
    except ValueError:
        return path.name


def project_dir(start: str | os.PathLike | None = None) -> Path:
    """The stainbook checkout that holds ``start`` (default: the working directory), found by its ``_toc.yml``.

    Chapters run from ``book/`` (Jupyter, nbval) or from the repository root (papermill, the CLI); both resolve
    ``data/``, ``runs/`` and ``results/`` against this folder.

    Args:
        start: where to look from, upward; ``None``: the working directory.

    Returns:
        The first folder at or above ``start`` with a ``_toc.yml`` and a ``stainlib/`` folder; outside a checkout
        (Colab), ``start`` itself, resolved.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / "stainlib").is_dir():
            return folder
    return here
