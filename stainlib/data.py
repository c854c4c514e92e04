"""Reading datasets in the MVTec AD layout (book chapter 1, "Data").

:class:`MVTecAD` reads ``<root>/<category>/{train/good, test/<defect>, ground_truth/<defect>}``: the official
dataset, a folder of your own in the same layout, or the synthetic set of :mod:`stainlib.synthetic`.  Downloading the
official archives is :mod:`stainlib.download`.

Items are dicts with ``image`` (float ``(C, H, W)`` in [0, 1]), ``gt_mask`` (``(1, H, W)``, 0 or 1), ``gt_label``
(0 good, 1 defective), ``defect_type`` and ``path``.

Images are 8-bit (any of Pillow's 8-bit modes: grey, palette, RGB, ...) or 16-bit greyscale, scaled by 65535; other
modes (32-bit integers, floats) are refused, naming the mode.  In a mask, any non-zero pixel is a defect (masks
stored as 0/255, as 0/1, or in colour all work); a defective image whose mask has no defect pixel is an error.

Only files with the suffixes of :data:`IMAGE_SUFFIXES` are read; what a split's folder holds besides (files of other
types, sub-folders, links to nothing) is counted in :attr:`MVTecAD.skipped` and named when a split is empty.
:func:`train_fingerprint` sums up the training images (names, sizes, modification times) so that a run can tell
when they change.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "MVTEC_CATEGORIES",
    "MVTEC_OBJECTS",
    "MVTEC_TEXTURES",
    "DataError",
    "MVTecAD",
    "find_categories",
    "train_fingerprint",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}  # Pillow's 16-bit greyscale ("I" too, for a 16-bit PNG)
EIGHT_BIT_MODES = {"1", "L", "P", "LA", "PA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
MVTEC_TEXTURES = ["carpet", "grid", "leather", "tile", "wood"]
MVTEC_OBJECTS = [
    "bottle",
    "cable",
    "capsule",
    "hazelnut",
    "metal_nut",
    "pill",
    "screw",
    "toothbrush",
    "transistor",
    "zipper",
]
MVTEC_CATEGORIES = MVTEC_TEXTURES + MVTEC_OBJECTS
MASK_READINGS = ("nearest", "code")
MIN_TRAIN_IMAGES = 3  # with a fifth (rounded) for validation, the fewest that leave both splits one image or more


class DataError(ValueError):
    """A dataset folder that does not have the MVTec AD layout, or a file in it that cannot be used."""


def _images(folder: Path, skipped: list | None = None) -> list[Path]:
    """The image files of ``folder``, sorted; what else it holds is appended to ``skipped`` as (path, why)."""
    found = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            found.append(p)
        elif skipped is not None and p.name not in (".DS_Store", "Thumbs.db") and not p.name.startswith("."):
            why = (
                "links to nothing"
                if p.is_symlink() and not p.exists()
                else ("sub-folders" if p.is_dir() else (f"{p.suffix} files" if p.suffix else "files without a suffix"))
            )
            skipped.append((p, why))
    return found


def skipped_words(skipped) -> str:
    """``skipped`` ((path, why) pairs) in a few words: ``".webp files: 2, sub-folders: 1"``."""
    counts: dict[str, int] = {}
    for _, why in skipped:
        counts[why] = counts.get(why, 0) + 1
    return ", ".join(f"{why}: {n}" for why, n in counts.items())


def train_fingerprint(root, category: str) -> dict:
    """A fingerprint of the training images of ``root/category`` (``train/good``): their number, total size, and
    the SHA-256 of their names, sizes and modification times.  Equal fingerprints: the same files, untouched.

    Returns:
        ``{"folder", "files": number of images, "bytes": their total size, "sha256": the digest}``.
    """
    folder = Path(root) / category / "train" / "good"
    lines, total = [], 0
    for p in _images(folder):
        st = p.stat()
        total += st.st_size
        lines.append(f"{p.name}\t{st.st_size}\t{st.st_mtime_ns}\n")
    digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    return {"folder": str(folder), "files": len(lines), "bytes": total, "sha256": digest}


def find_categories(root) -> list[str]:
    """Names of the sub-folders of ``root`` that look like MVTec AD categories (they hold ``train/good``).

    Example: ``find_categories("data/mvtec_ad")`` is ``["bottle", ...]``, sorted.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "train" / "good").is_dir())


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # PIL raises several types for unreadable files
        raise DataError(f"cannot read image {path}: {exc}") from exc


class MVTecAD(torch.utils.data.Dataset):
    """One category of a dataset in the MVTec AD layout.

    Args:
        root: folder holding the categories (for example ``data/mvtec_ad``).
        category: sub-folder name, such as ``bottle``.
        split: ``train`` (80 % of ``train/good``), ``val`` (the other 20 %, seeded) or ``test``.
        size: images are resized to ``size`` x ``size`` (antialiased); masks with nearest neighbour.
        color: ``gray`` (the paper's setting) or ``rgb``.
        val_fraction, seed: the validation share of ``train/good`` and the seed of its draw.
        cache: keep decoded images in memory after their first read.
        mask_reading: how a mask is resized to ``size``: ``"nearest"`` (nearest neighbour, then > 127 of 255; the
            default) or ``"code"`` (the authors' code: antialiased resize, then > 0.9 of 1, which thins the masks).

    Every problem with the folder raises :class:`DataError` naming the file or folder.  Nothing is ever written into
    the dataset folder.
    """

    def __init__(
        self,
        root,
        category: str,
        split: str = "train",
        size: int = 256,
        color: str = "gray",
        val_fraction: float = 0.2,
        seed: int = 0,
        cache: bool = True,
        mask_reading: str = "nearest",
    ):
        if mask_reading not in MASK_READINGS:
            raise ValueError(f"mask_reading must be one of {', '.join(MASK_READINGS)}, got {mask_reading!r}")
        self.mask_reading = mask_reading
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if color not in ("gray", "rgb"):
            raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")
        if int(size) < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        self.root, self.category, self.split = Path(root), category, split
        self.size, self.color, self.cache = int(size), color, cache
        folder = self.root / category
        if not (folder / "train" / "good").is_dir():
            found = find_categories(self.root)
            where = (
                f"categories found in {self.root}: {', '.join(found)}"
                if found
                else (f"no category (a folder with train/good) found in {self.root}")
            )
            raise DataError(f"category {category!r} not found at {folder}; {where}")
        self.samples: list[tuple[Path, Path | None, str]] = []  # (image, mask or None, defect_type)
        self.skipped: list[tuple[Path, str]] = []  # what the split's folders hold besides images: (path, why)
        if split in ("train", "val"):
            good = _images(folder / "train" / "good", self.skipped)
            order = np.random.default_rng(seed).permutation(len(good))
            n_val = int(round(val_fraction * len(good)))
            chosen = sorted(order[:n_val]) if split == "val" else sorted(order[n_val:])
            self.samples = [(good[i], None, "good") for i in chosen]
            if good and not self.samples:
                raise DataError(
                    f"split {split!r} of {folder} is empty: {folder / 'train' / 'good'} holds {len(good)} image(s), "
                    f"and at least {MIN_TRAIN_IMAGES} are needed (about a fifth for validation, the rest for training)"
                )
        else:
            self.samples = self._index_test(folder, self.skipped)
        if not self.samples:
            where = folder / "train" / "good" if split in ("train", "val") else folder / "test"
            reads = ", ".join(sorted(IMAGE_SUFFIXES))
            also = f"; skipped: {skipped_words(self.skipped)}" if self.skipped else ""
            raise DataError(f"split {split!r} of {folder} is empty: no image in {where} (read: {reads}){also}")
        self._cache: dict[int, dict] = {}

    @staticmethod
    def _index_test(folder: Path, skipped: list | None = None):
        test, truth = folder / "test", folder / "ground_truth"
        if not test.is_dir():
            raise DataError(f"missing test folder {test}")
        samples = []
        for defect_dir in sorted(p for p in test.iterdir() if p.is_dir()):
            defect = defect_dir.name
            images = _images(defect_dir, skipped)
            if defect == "good":
                samples += [(p, None, "good") for p in images]
                continue
            stems: dict[str, Path] = {}
            for p in images:
                if p.stem in stems:
                    raise DataError(
                        f"{defect_dir} holds two images named {p.stem!r} ({stems[p.stem].name} and {p.name}); both "
                        f"would have the mask {p.stem}_mask.png: keep one of them"
                    )
                stems[p.stem] = p
            mask_dir = truth / defect
            masks = {p.name: p for p in _images(mask_dir)} if mask_dir.is_dir() else {}
            odd = sorted(name for name in masks if not name.endswith("_mask.png"))
            if odd:
                raise DataError(
                    f"{mask_dir / odd[0]} is not named as a mask: the mask of test/{defect}/<name>.png is "
                    f"ground_truth/{defect}/<name>_mask.png; rename it, or move it out of {mask_dir}"
                )
            for p in images:
                name = f"{p.stem}_mask.png"
                mask = masks.pop(name, None)
                if mask is None:
                    raise DataError(f"defect image {p} has no mask: expected {mask_dir / name}")
                if _image_size(p) != _image_size(mask):
                    raise DataError(f"mask {mask} is {_image_size(mask)} but its image {p} is {_image_size(p)}")
                samples.append((p, mask, defect))
            if masks:
                orphan = sorted(masks.values())[0]
                raise DataError(f"mask {orphan} has no image: expected {defect_dir / orphan.name[:-9]}.png")
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def defect_types(self) -> list[str]:
        """The split's defect types, sorted (``good`` among them)."""
        return sorted({d for _, _, d in self.samples})

    @staticmethod
    def _open(path: Path) -> Image.Image:
        try:
            with Image.open(path) as im:
                im.load()
                return im  # loaded: usable after the file is closed
        except Exception as exc:
            raise DataError(f"cannot read image {path}: {exc}") from exc

    def _load_image(self, path: Path) -> torch.Tensor:
        """An image file as float ``(C, H, W)`` in [0, 1], resized (Lanczos) to ``size``."""
        im = self._open(path)
        side = (self.size, self.size)
        if im.mode in EIGHT_BIT_MODES:
            im = im.convert("L" if self.color == "gray" else "RGB")
            if im.size != side:
                im = im.resize(side, Image.LANCZOS)
            arr = np.asarray(im)
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
            return torch.from_numpy(arr.copy()).float().div_(255)
        if im.mode in SIXTEEN_BIT_MODES or (im.mode == "I" and im.format == "PNG"):
            grey = np.asarray(im).astype(np.float32) / 65535
            if im.size != side:
                grey = np.asarray(Image.fromarray(grey, mode="F").resize(side, Image.LANCZOS)).clip(0, 1)
            image = torch.from_numpy(grey.copy())[None]
            return image if self.color == "gray" else image.expand(3, -1, -1).clone()
        raise DataError(
            f"image {path} has mode {im.mode!r}, which cannot be scaled to [0, 1]; use 8-bit or 16-bit images"
        )

    def _load_mask(self, path: Path, image_path: Path) -> torch.Tensor:
        """A mask file as float ``(1, H, W)``: 1 where any channel is non-zero, resized by ``mask_reading``."""
        im = self._open(path)
        if im.mode in EIGHT_BIT_MODES and im.mode not in ("1", "L"):
            defect = np.asarray(im.convert("RGB")).any(-1)
        else:
            defect = np.asarray(im) != 0
        if not defect.any():
            raise DataError(f"mask {path} of the defective image {image_path} is empty: it has no non-zero pixel")
        im = Image.fromarray(defect.astype(np.uint8) * 255)
        if self.mask_reading == "code":  # the authors' code: antialiased resize, then > 0.9
            if im.size != (self.size, self.size):
                im = im.resize((self.size, self.size), Image.LANCZOS)
            return torch.from_numpy(np.asarray(im) > 0.9 * 255).float()[None]
        if im.size != (self.size, self.size):
            im = im.resize((self.size, self.size), Image.NEAREST)
        return torch.from_numpy(np.asarray(im) > 0).float()[None]

    def __getitem__(self, index: int) -> dict:
        if index in self._cache:
            return self._cache[index]
        path, mask_path, defect = self.samples[index]
        image = self._load_image(path)
        if mask_path is None:
            gt_mask = torch.zeros(1, self.size, self.size)
        else:
            gt_mask = self._load_mask(mask_path, path)
        item = {
            "image": image,
            "gt_mask": gt_mask,
            "gt_label": int(defect != "good"),
            "defect_type": defect,
            "path": str(path),
        }
        if self.cache:
            self._cache[index] = item
        return item

    def tensors(self) -> dict:
        """The whole split stacked in memory.

        Returns:
            ``{"image": (N, C, H, W) float in [0, 1], "gt_mask": (N, 1, H, W) float 0/1, "gt_label": (N,) int64
            (1: defective), "defect_type": [str], "path": [str]}``, in the dataset's order.
        """
        items = [self[i] for i in range(len(self))]
        return {
            "image": torch.stack([it["image"] for it in items]),
            "gt_mask": torch.stack([it["gt_mask"] for it in items]),
            "gt_label": torch.tensor([it["gt_label"] for it in items]),
            "defect_type": [it["defect_type"] for it in items],
            "path": [it["path"] for it in items],
        }
