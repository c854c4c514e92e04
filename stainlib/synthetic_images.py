"""Drawing the synthetic dataset's images: seeded textures and objects, and their defects with masks (book chapter 1,
"Data").

:func:`synthetic_sample` draws one image of a synthetic category, good or with one of its defect types
(:data:`SYNTHETIC_DEFECTS`), and the defect's mask.  The defects are drawn here, never by the training corruption
models of :mod:`stainlib.noise`; some still look like them (a ``spot`` is a filled blob of one grey, as a Stain is; a
``crack`` a dark curve, as a Scratch).  Writing the images as a dataset is :mod:`stainlib.synthetic`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = [
    "MIN_SIZE",
    "SYNTHETIC_CATEGORIES",
    "SYNTHETIC_DEFECTS",
    "SYNTHETIC_OBJECTS",
    "SYNTHETIC_PREFIX",
    "SYNTHETIC_TEXTURES",
    "synthetic_sample",
]

SYNTHETIC_PREFIX = "synth_"
"""Every synthetic category's name starts with it; no MVTec AD category does, so the two never collide."""
SYNTHETIC_TEXTURES = ["synth_weave", "synth_mesh", "synth_wood", "synth_grain"]
SYNTHETIC_OBJECTS = ["synth_cap", "synth_screw"]
SYNTHETIC_CATEGORIES = SYNTHETIC_TEXTURES + SYNTHETIC_OBJECTS
MIN_SIZE = 16
"""The smallest side the generator draws every defect at (a screw's chipped head needs it)."""


def _smooth_noise(rng, size: int, scale: float) -> np.ndarray:
    """Smooth random field in about [-1, 1] with features of ``scale`` pixels (bilinear upsampled lattice)."""
    n = max(2, int(size / scale) + 2)
    lattice = rng.standard_normal((n, n))
    img = Image.fromarray(lattice.astype(np.float32), mode="F").resize((size, size), Image.BICUBIC)
    out = np.asarray(img)
    return out / (np.abs(out).max() + 1e-8)


def _grid(size):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y, x


def _lighting(rng, size):
    y, x = _grid(size)
    gy, gx = rng.uniform(-0.08, 0.08, 2)
    return 1.0 + gy * (y / size - 0.5) + gx * (x / size - 0.5)


def _texture(kind: str, rng, size: int) -> np.ndarray:
    """A clean texture sample, float (H, W) in [0, 1]."""
    y, x = _grid(size)
    s = size / 256
    if kind == "weave":
        p = 12 * s
        px, py = rng.uniform(0, 2 * p, 2)
        u, v = (x + px) / p, (y + py) / p
        over = (np.floor(u) + np.floor(v)) % 2 == 0
        warp = 0.5 + 0.35 * np.cos(np.pi * (u % 1 - 0.5)) ** 0.5 * np.sin(np.pi * (v % 1))
        weft = 0.5 + 0.35 * np.cos(np.pi * (v % 1 - 0.5)) ** 0.5 * np.sin(np.pi * (u % 1))
        img = np.where(over, warp, weft) * 0.9 + 0.05
        img += 0.04 * rng.standard_normal((size, size))
    elif kind == "mesh":
        p = 20 * s
        ang = np.deg2rad(rng.uniform(-3, 3))
        px, py = rng.uniform(0, p, 2)
        u = (np.cos(ang) * x + np.sin(ang) * y + px) % p
        v = (-np.sin(ang) * x + np.cos(ang) * y + py) % p
        width = 3.0 * s
        line = np.minimum(np.minimum(u, p - u), np.minimum(v, p - v))
        img = 0.75 - 0.55 * np.clip(1.5 - line / width, 0, 1)
        img += 0.03 * rng.standard_normal((size, size))
    elif kind == "wood":
        warp = _smooth_noise(rng, size, 60 * s) * 10 * s
        freq = rng.uniform(0.13, 0.18) / s
        phase = rng.uniform(0, 2 * np.pi)
        rings = np.sin(freq * (y + warp + 0.15 * x) + phase)
        img = 0.55 + 0.15 * rings + 0.05 * _smooth_noise(rng, size, 4 * s)
        img += 0.02 * rng.standard_normal((size, size))
    elif kind == "grain":  # wood-like, brightness varies per image, contrast fixed (see _grain_defect)
        warp = _smooth_noise(rng, size, 60 * s) * 10 * s
        freq = rng.uniform(0.13, 0.18) / s
        phase = rng.uniform(0, 2 * np.pi)
        rings = np.sin(freq * (y + warp + 0.15 * x) + phase)
        dark_lines = np.clip((rings - 0.8) / 0.2, 0, 1)  # a thin dark line on each ring's crest
        brightness, contrast = rng.uniform(0.3, 0.7), 0.17
        img = brightness + contrast * rings - 1.6 * contrast * dark_lines
        img += 0.04 * _smooth_noise(rng, size, 4 * s) + 0.02 * rng.standard_normal((size, size))
    else:
        raise ValueError(kind)
    return np.clip(img * _lighting(rng, size), 0, 1)


def _object(kind: str, rng, size: int) -> tuple[np.ndarray, dict]:
    """A clean object sample (H, W) in [0, 1], and its pose."""
    y, x = _grid(size)
    s = size / 256
    cy, cx = size / 2 + rng.uniform(-5, 5, 2) * s
    rot = rng.uniform(-np.pi, np.pi) if kind == "cap" else np.deg2rad(rng.uniform(-8, 8))
    dy, dx = y - cy, x - cx
    r = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx) - rot
    if kind == "cap":
        radius = 80 * s
        img = np.full((size, size), 0.12, np.float32) + 0.02 * _smooth_noise(rng, size, 40 * s)
        body = r <= radius
        ridges = 0.55 + 0.12 * np.sin(36 * theta)
        top = 0.68 + 0.05 * _smooth_noise(rng, size, 30 * s) - 0.12 * (r / radius) ** 2
        img = np.where(body, np.where(r > 0.8 * radius, ridges, top), img)
        ring = np.abs(r - 0.45 * radius) < 4 * s
        logo = ring & (np.cos(theta) > -0.6)  # an open ring: the print
        img = np.where(logo, 0.3, img)
        pose = {"cy": cy, "cx": cx, "rot": rot, "radius": radius, "body": body}
    elif kind == "screw":
        u = np.cos(rot) * dx + np.sin(rot) * dy  # along the screw
        v = -np.sin(rot) * dx + np.cos(rot) * dy
        img = np.full((size, size), 0.85, np.float32) + 0.02 * _smooth_noise(rng, size, 40 * s)
        half_len, half_w = 85 * s, 12 * s
        head = (np.abs(u + half_len) < 14 * s) & (np.abs(v) < 24 * s)
        taper = np.clip((half_len - u) / (25 * s), 0, 1)
        shaft = (u > -half_len) & (u < half_len) & (np.abs(v) < half_w * taper)
        thread = 0.35 + 0.15 * np.sin(2 * np.pi * (u + 0.5 * v) / (7 * s))
        img = np.where(shaft, thread, img)
        img = np.where(head, 0.3 + 0.05 * np.cos(np.pi * v / (24 * s)), img)
        slot = head & (np.abs(v) < 2.5 * s)
        img = np.where(slot, 0.12, img)
        pose = {
            "cy": cy,
            "cx": cx,
            "rot": rot,
            "u": u,
            "v": v,
            "half_len": half_len,
            "half_w": half_w,
            "body": shaft | head,
            "head": head,
        }
    else:
        raise ValueError(kind)
    img = img + 0.015 * rng.standard_normal((size, size))
    return np.clip(img * _lighting(rng, size), 0, 1), pose


def _blob(rng, size, center, radius, roughness=0.5):
    """An irregular region made by thresholding smooth noise around ``center`` (not an ellipse)."""
    y, x = _grid(size)
    d = np.hypot(y - center[0], x - center[1]) / radius
    field = 1 - d + roughness * _smooth_noise(rng, size, radius * 0.6)
    return field > 0.25


def _random_walk(rng, size, length, start=None, step=1.5):
    """Points of a crack: a random walk with persistent direction."""
    pos = np.array(start if start is not None else rng.uniform(0.2 * size, 0.8 * size, 2), float)
    ang = rng.uniform(0, 2 * np.pi)
    pts = [pos.copy()]
    for _ in range(int(length / step)):
        ang += rng.normal(0, 0.35)
        pos = pos + step * np.array([np.sin(ang), np.cos(ang)])
        pts.append(pos.copy())
    return np.array(pts)


def _draw_path(size, pts, width):
    from PIL import ImageDraw

    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).line([(p[1], p[0]) for p in pts], fill=255, width=max(1, int(round(width))), joint="curve")
    return np.asarray(canvas) > 0


def _grain_defect(defect: str, clean: np.ndarray, rng, size: int):
    """An in-range defect of ``synth_grain``: its grey levels stay inside those of its own image."""
    s = size / 256
    center = rng.uniform(0.3 * size, 0.7 * size, 2)
    lo, hi = np.percentile(clean, [10, 90])
    if defect == "spot":  # a flat blob at a grey level drawn from the image's own range
        mask = _blob(rng, size, center, rng.uniform(14, 28) * s, roughness=0.6)
        img = np.where(mask, rng.uniform(lo, hi) + 0.01 * rng.standard_normal(clean.shape), clean)
    elif defect == "faded":  # the grain's contrast cut to a fifth around the local mean
        mask = _blob(rng, size, center, rng.uniform(16, 30) * s, roughness=0.9)
        mean = clean[mask].mean() if mask.any() else float(clean.mean())
        img = np.where(mask, mean + 0.2 * (clean - mean), clean)
    elif defect == "crack":  # a line as dark as the darkest grain
        pts = _random_walk(rng, size, rng.uniform(60, 120) * s, start=center, step=1.5 * s)
        mask = _draw_path(size, pts, rng.uniform(4, 6) * s)
        img = np.where(mask, np.percentile(clean, 2), clean)
    else:
        raise ValueError(defect)
    return np.clip(img, clean.min(), clean.max()), mask


def _defect(category: str, defect: str, clean: np.ndarray, rng, size: int, pose: dict | None):
    """Apply a defect to a clean sample; returns (image, mask)."""
    if category == "grain":
        return _grain_defect(defect, clean, rng, size)
    s = size / 256
    img = clean.copy()
    center = rng.uniform(0.3 * size, 0.7 * size, 2)
    if defect == "crack":
        if pose is not None:  # on an object, the crack starts on it and stays on it
            ys, xs = np.nonzero(pose["body"])
            k = rng.integers(len(ys))
            center = (ys[k], xs[k])
        pts = _random_walk(rng, size, rng.uniform(50, 110) * s, start=center, step=1.5 * s)
        mask = _draw_path(size, pts, rng.uniform(1.5, 3) * s)
        if pose is not None:
            mask &= pose["body"]
        img = np.where(mask, img * 0.25, img)
    elif defect == "hole":
        mask = _blob(rng, size, center, rng.uniform(9, 18) * s)
        rim = _blob(rng, size, center, rng.uniform(9, 18) * s * 1.2) & ~mask
        img = np.where(mask, 0.05 + 0.03 * rng.standard_normal(img.shape), img)
        img = np.where(rim, img * 0.7, img)
        mask = mask | rim
    elif defect == "foreign":
        donor = _texture("wood" if category != "wood" else "weave", rng, size)  # a foreign material
        mask = _blob(rng, size, center, rng.uniform(12, 22) * s, roughness=0.8)
        img = np.where(mask, donor, img)
    elif defect == "shift":  # a misaligned band: the texture inside is shifted by half a period
        horizontal = rng.random() < 0.5
        lo = int(center[0] if horizontal else center[1])
        width = int(rng.uniform(8, 16) * s)
        shift = int(rng.integers(4, 9) * s)
        mask = np.zeros((size, size), bool)
        if horizontal:
            mask[lo : lo + width] = True
            img[lo : lo + width] = np.roll(clean, shift, axis=1)[lo : lo + width]
        else:
            mask[:, lo : lo + width] = True
            img[:, lo : lo + width] = np.roll(clean, shift, axis=0)[:, lo : lo + width]
    elif defect == "bent":  # local displacement field (a bent mesh wire or a bent screw tip)
        if category == "screw":
            u, v = pose["u"], pose["v"]
            tip = u > pose["half_len"] * 0.45
            bend = np.where(tip, (u - pose["half_len"] * 0.45) ** 2 / (120 * s), 0) * rng.choice([-1, 1])
            y, x = _grid(size)
            rot = pose["rot"]
            warped = _sample(clean, y + np.cos(rot) * bend, x - np.sin(rot) * bend)
            # The defect is the tip where it is now and where it was: the object on either image.
            mask = tip & ((clean < 0.7) | (warped < 0.7))
            mask = _close(mask, int(3 * s) + 1)
            return np.clip(np.where(mask, warped, clean), 0, 1), mask
        else:
            y, x = _grid(size)
            radius = rng.uniform(14, 24) * s
            w = np.exp(-((y - center[0]) ** 2 + (x - center[1]) ** 2) / (2 * (radius / 2) ** 2))
            amp = rng.uniform(5, 8) * s
            img = _sample(clean, y + amp * w, x - amp * w * 0.5)
        mask = np.abs(img - clean) > 0.06
        mask = _close(mask, int(3 * s) + 1)
        img = np.where(mask, img, clean)
    elif defect == "contrast":  # a faded region: texture kept, contrast and brightness changed
        mask = _blob(rng, size, center, rng.uniform(14, 24) * s, roughness=0.9)
        mean = clean[mask].mean() if mask.any() else 0.5
        img = np.where(mask, np.clip(mean + 0.35 * (clean - mean) + rng.choice([-0.18, 0.18]), 0, 1), img)
    elif defect == "missing":  # cap: a wedge of the rim is missing, showing the background
        y, x = _grid(size)
        theta = np.arctan2(y - pose["cy"], x - pose["cx"])
        a0 = rng.uniform(-np.pi, np.pi)
        dth = np.angle(np.exp(1j * (theta - a0)))
        r = np.hypot(y - pose["cy"], x - pose["cx"])
        mask = (np.abs(dth) < rng.uniform(0.25, 0.45)) & (r > 0.8 * pose["radius"]) & (r <= pose["radius"])
        img = np.where(mask, 0.12 + 0.01 * rng.standard_normal(img.shape), img)
    elif defect == "misprint":  # cap: the printed ring is smeared across the top
        y, x = _grid(size)
        r = np.hypot(y - pose["cy"], x - pose["cx"])
        pts = _random_walk(
            rng,
            size,
            rng.uniform(30, 60) * s,
            start=(pose["cy"] + rng.uniform(-20, 20) * s, pose["cx"] + rng.uniform(-20, 20) * s),
            step=1.5 * s,
        )
        mask = _draw_path(size, pts, rng.uniform(4, 7) * s) & (r < 0.75 * pose["radius"])
        img = np.where(mask, 0.3, img)
    elif defect == "chip":  # screw: a piece of the head is broken off
        ys, xs = np.nonzero(pose["head"])
        k = rng.integers(len(ys))
        mask = _blob(rng, size, (ys[k], xs[k]), rng.uniform(8, 12) * s) & pose["head"]
        img = np.where(mask, 0.85 + 0.015 * rng.standard_normal(img.shape), img)
    elif defect == "thread":  # screw: the thread is worn flat along part of the shaft
        u, v = pose["u"], pose["v"]
        a = rng.uniform(-0.6, 0.3) * pose["half_len"]
        mask = (u > a) & (u < a + rng.uniform(18, 30) * s) & (np.abs(v) < pose["half_w"] * 0.98)
        img = np.where(mask, 0.55 + 0.02 * rng.standard_normal(img.shape), img)
    else:
        raise ValueError(defect)
    return np.clip(img, 0, 1), mask


def _sample(img, src_y, src_x):
    from scipy.ndimage import map_coordinates

    return map_coordinates(img, [src_y, src_x], order=1, mode="reflect")


def _close(mask, radius):
    from scipy import ndimage

    st = np.ones((radius, radius), bool)
    return ndimage.binary_closing(mask, structure=st)


SYNTHETIC_DEFECTS = {
    "synth_weave": ["hole", "shift", "foreign"],
    "synth_mesh": ["bent", "hole", "foreign"],
    "synth_wood": ["crack", "hole", "contrast"],
    "synth_grain": ["spot", "faded", "crack"],
    "synth_cap": ["missing", "misprint", "crack"],
    "synth_screw": ["bent", "thread", "chip"],
}
"""The defect types of each synthetic category (none of them is a training corruption model)."""

_TINTS = {
    "weave": (1.0, 0.85, 0.7),
    "mesh": (0.9, 0.95, 1.0),
    "wood": (1.0, 0.8, 0.55),
    "grain": (1.0, 0.8, 0.55),
    "cap": (0.85, 0.9, 1.0),
    "screw": (1.0, 1.0, 1.0),
}


def synthetic_sample(category: str, seed: int, size: int = 256, defect: str | None = None):
    """One synthetic image and its defect mask, drawn from ``seed`` alone.

    Args:
        category: one of :data:`SYNTHETIC_CATEGORIES`.
        seed: the image's seed (the same seed gives the same image).
        size: its side in pixels.
        defect: one of the category's :data:`SYNTHETIC_DEFECTS`, or ``None`` for a good image.

    Returns:
        ``(image, mask)``: an ``(H, W, 3)`` uint8 array and an ``(H, W)`` bool array (all False for a good image).

    Raises:
        ValueError: the category or the defect is unknown.
    """
    rng = np.random.default_rng(seed)
    kind = category.removeprefix(SYNTHETIC_PREFIX)
    if category in SYNTHETIC_TEXTURES:
        clean, pose = _texture(kind, rng, size), None
    elif category in SYNTHETIC_OBJECTS:
        clean, pose = _object(kind, rng, size)
    else:
        raise ValueError(f"unknown synthetic category {category!r}; known: {', '.join(SYNTHETIC_CATEGORIES)}")
    if defect is None:
        img, mask = clean, np.zeros((size, size), bool)
    elif defect not in SYNTHETIC_DEFECTS[category]:
        raise ValueError(f"unknown defect {defect!r} of {category}; known: {', '.join(SYNTHETIC_DEFECTS[category])}")
    else:
        img, mask = _defect(kind, defect, clean, rng, size, pose)
    rgb = np.clip(img[..., None] * np.array(_TINTS[kind]), 0, 1)
    return (rgb * 255 + 0.5).astype(np.uint8), mask
