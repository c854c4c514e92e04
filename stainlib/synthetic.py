"""A small, seeded, MVTec-like synthetic dataset that runs anywhere, offline (book chapter 1, "Data").

:func:`make_synthetic` writes 4 textures and 2 objects in the MVTec AD layout (read them with
:class:`stainlib.data.MVTecAD`), all named ``synth_*`` so that they can never be mistaken for an MVTec AD category.
Their defects are drawn by this module, never by the training corruption models of :mod:`stainlib.noise`; some still
look like them (a ``spot`` is a filled blob of one grey, as a Stain is; a ``crack`` a dark curve, as a Scratch), so a
Stain-trained model is partly graded on familiar shapes here, and only real defects are a fair test.  ``synth_grain``
keeps every defect inside the grey range of the good images, meant to be copied by a network that has learned the
identity; at the fast profile's budget every model stayed near chance on it, so the fast profile uses ``synth_cap``
(see :data:`stainlib.book.PROFILES`).  Each category folder holds a ``.synthetic`` stamp with the arguments that made
it.  The images are drawn by :mod:`stainlib.synthetic_images` (its names are this module's too); this module writes
them as a dataset and tells synthetic categories from real ones.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .synthetic_images import (
    MIN_SIZE,
    SYNTHETIC_CATEGORIES,
    SYNTHETIC_DEFECTS,
    SYNTHETIC_OBJECTS,
    SYNTHETIC_PREFIX,
    SYNTHETIC_TEXTURES,
    synthetic_sample,
)

__all__ = [
    "SYNTHETIC_CATEGORIES",
    "SYNTHETIC_PREFIX",
    "SYNTHETIC_DEFECTS",
    "SYNTHETIC_OBJECTS",
    "SYNTHETIC_TEXTURES",
    "MIN_SIZE",
    "is_synthetic",
    "is_synthetic_category",
    "make_synthetic",
    "synthetic_sample",
]

_PNG_LEVEL = 1
"""zlib level of the PNGs written: lossless at any level; 1 encodes these images 4x faster than PIL's default 6, and
smaller (measured on 30 of them: 6.0 against 26.4 ms, 98 against 103 kB)."""


def is_synthetic(root, category: str) -> bool:
    """Whether ``root/category`` was written by :func:`make_synthetic` (it holds the ``.synthetic`` stamp).

    Example: ``is_synthetic(make_synthetic(tmp, ["synth_cap"], 2, 3, 64), "synth_cap") is True``.
    """
    return (Path(root) / category / ".synthetic").is_file()


def is_synthetic_category(category: str) -> bool:
    """Whether ``category`` is one of the book's synthetic categories, not an MVTec AD one: its name starts with
    :data:`SYNTHETIC_PREFIX`.  The one answer to "synthetic or real?" (a run's recorded dataset, the pages' and
    the tables' words); it needs no data on this machine.  :func:`is_synthetic` asks another question: whether the
    generator wrote a folder (it replaces only those).

    Example: ``is_synthetic_category("synth_cap") is True``, ``is_synthetic_category("bottle") is False``.
    """
    return category.startswith(SYNTHETIC_PREFIX)


def make_synthetic(
    root, categories=None, n_train: int = 60, n_test: int = 30, size: int = 256, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write a seeded MVTec-like dataset into ``root`` and return ``root``.

    Each category gets ``n_train`` good training images and ``n_test`` test images: a third good, the rest spread
    over its defect types (:data:`SYNTHETIC_DEFECTS`), each with its mask in ``ground_truth``.  A category folder that
    already holds a complete set made with the same arguments is kept as it is, unless ``overwrite``; one made with
    other arguments is replaced.  A folder of the same name that the generator did not make (it has no ``.synthetic``
    stamp: real data, your own) is never deleted: it is an error, unless ``overwrite``.  Writing goes through a
    temporary folder, so an interrupted call leaves no half-written category.

    Args:
        root: the dataset folder, created if needed.
        categories: names from :data:`SYNTHETIC_CATEGORIES` (default: all).
        n_train, n_test: images per category, each at least 1.
        size: the images' side in pixels, from :data:`MIN_SIZE` to :data:`stainlib.spec.MAX_IMAGE_SIZE`.
        seed: the seed of every image (a non-negative integer).
        overwrite: replace a category folder the generator did not make.

    Returns:
        ``root``, as a :class:`~pathlib.Path`, laid out as MVTec AD (``<category>/train/good``, ``test``,
        ``ground_truth``).

    Raises:
        ValueError: a count, the size or the seed is out of range, or a category is unknown.
        FileExistsError: a folder the generator did not make is in the way, without ``overwrite``.
    """
    from .spec import MAX_IMAGE_SIZE

    for name, value, low, high in (
        ("n_train", n_train, 1, None),
        ("n_test", n_test, 1, None),
        ("size", size, MIN_SIZE, MAX_IMAGE_SIZE),
        ("seed", seed, 0, None),
    ):
        if int(value) != value or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{name} must be an integer {bound}, got {value}")
    root = Path(root)
    categories = list(categories or SYNTHETIC_CATEGORIES)
    root.mkdir(parents=True, exist_ok=True)
    stamp = f"n_train={n_train} n_test={n_test} size={size} seed={seed} version=2\n"
    for category in categories:
        target = root / category
        if (target / ".synthetic").exists() and (target / ".synthetic").read_text() == stamp and not overwrite:
            continue
        if category not in SYNTHETIC_CATEGORIES:
            raise ValueError(f"unknown synthetic category {category!r}; known: {', '.join(SYNTHETIC_CATEGORIES)}")
        if (target.exists() or target.is_symlink()) and not is_synthetic(root, category) and not overwrite:
            raise FileExistsError(
                f"{target} exists and was not made by the synthetic generator (it has no .synthetic stamp); "
                "refusing to replace it: choose another output folder, or pass overwrite=True (--overwrite)"
            )
        tmp = Path(tempfile.mkdtemp(prefix=f".{category}-", dir=root))
        try:
            _write_category(tmp, category, n_train, n_test, size, seed)
            (tmp / ".synthetic").write_text(stamp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # an error or Ctrl-C leaves no hidden half-written folder
            raise
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    return root


def _write_category(tmp: Path, category: str, n_train: int, n_test: int, size: int, seed: int) -> None:
    """Write one synthetic category into the empty folder ``tmp``."""
    base = (seed * 1000 + SYNTHETIC_CATEGORIES.index(category)) * 100_000  # whatever else is made with it
    (tmp / "train" / "good").mkdir(parents=True)
    for i in range(n_train):
        img, _ = synthetic_sample(category, base + i, size)
        Image.fromarray(img).save(tmp / "train" / "good" / f"{i:03d}.png", compress_level=_PNG_LEVEL)
    defects = SYNTHETIC_DEFECTS[category]
    n_good = n_test // 3
    kinds = ["good"] * n_good + [defects[i % len(defects)] for i in range(n_test - n_good)]
    counters: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        k = counters[kind] = counters.get(kind, -1) + 1
        (tmp / "test" / kind).mkdir(parents=True, exist_ok=True)
        img, mask = synthetic_sample(category, base + 50_000 + i, size, None if kind == "good" else kind)
        Image.fromarray(img).save(tmp / "test" / kind / f"{k:03d}.png", compress_level=_PNG_LEVEL)
        if kind != "good":
            (tmp / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
            path = tmp / "ground_truth" / kind / f"{k:03d}_mask.png"
            Image.fromarray((mask * 255).astype(np.uint8)).save(path, compress_level=_PNG_LEVEL)
