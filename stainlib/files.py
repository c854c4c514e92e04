"""Files that are never half-written, and their checksums (book chapter 5, "Training").

:func:`atomic_write` writes through a temporary file renamed into place, so an interruption leaves the old file or the
new one, never a mix; :func:`file_sha256` is the checksum of a file, read in blocks.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["atomic_write", "file_sha256"]


def file_sha256(path) -> str:
    """The SHA-256 of a file, as hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path, write) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
