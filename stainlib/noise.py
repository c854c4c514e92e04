"""Corruption models used to train the autoencoders (book chapter 2, "Corruptions").

Every model is a callable ``model(image, generator, *, out=None, check_values=True) -> (corrupted, mask)`` that
takes a float ``(B, C, H, W)`` batch in [0, 1] and returns a new corrupted batch and a bool ``(B, 1, H, W)`` mask of
the changed pixels; :mod:`stainlib.corruption` states the protocol in full (preallocated ``out=`` tensors, skipping
the value scan) and holds :class:`CorruptionModel`, the base of every model.

This module holds the simple models (:class:`Identity`, :class:`Scratch`, :class:`Drops`, :class:`Gaussian`), the
:class:`Mixture` of models and the registry of names; the paper's Stain model is in :mod:`stainlib.stain`.  Both
modules' public names are importable from here too (``from stainlib.noise import Stain, check_image``).

Everything is computed with batched tensor operations on the image's own device, so the corruption can run on the
GPU inside the training loop; on a GPU the Stain, Drops, Gaussian and Scratch models never wait for the device (no
value is read back to the host; the Mixture models read back which images each component gets).  The same generator
state on the same device gives bit-identical output.

Models are built by name with :func:`get_corruption` (``none``, ``stain``, ``scratch``, ``drops``,
``gaussian-0.1`` ... ``gaussian-0.8``, ``mix1``, ``mix2``); :data:`CORRUPTIONS` lists the names.
Reference: Collin & De Vleeschouwer, ICPR 2020, section IV.C (the Stain model, section III.B, in :mod:`stainlib.stain`).

Two readings of the ambiguous settings (book chapter 2, "Corruptions", section "Two readings"; chapter 8 measures
them).  The plain names follow the paper's text; a ``-code`` name follows the authors' public code as read there
(nothing of it is copied):

* ``drops`` / ``drops-code``: 10 droplets of diameter 1-2 % of the side, chained so that they partly overlap / radius
  1-2 % of the side plus 1 px, all centres within a Gaussian of sigma = 0.01 x the radius around one point: in
  effect one disc of 6-12 px on a 256 px image (:class:`Drops`, ``reading``);
* ``gaussian-S`` / ``gaussian-S-code``: S is the standard deviation / S is the variance (standard deviation
  sqrt(S)); both clip to [0, 1].  The code's uint8 overflow (the sum wraps around instead of saturating) is
  reproduced only by ``Gaussian(..., overflow=True)``, never by a registered name;
* ``mix1`` / ``mix1-code``: Stain, Scratch, Drops drawn 60/20/20 / 20/20/60 (the code picks Stain with the Drops
  probability).  Both mix the paper readings of the components, so only the weights differ.

:data:`PAPER_CORRUPTIONS` lists the names of the paper's readings (the explorer's and galleries' default set).
"""

from __future__ import annotations

import math

import torch

from .corruption import MIN_SIDE as MIN_SIDE
from .corruption import CorruptionModel, _check_range, _uniform, check_image
from .stain import Stain, periodic_spline_coefficients

__all__ = [
    "CODE_READINGS",
    "CORRUPTIONS",
    "PAPER_CORRUPTIONS",
    "CorruptionModel",
    "Drops",
    "Gaussian",
    "Identity",
    "Mixture",
    "Scratch",
    "Stain",
    "check_image",
    "get_corruption",
    "periodic_spline_coefficients",
]


class Identity(CorruptionModel):
    """The ``none`` model: returns a copy of the image and an empty mask."""

    name = "none"

    def apply(self, image, generator, corrupted, mask) -> None:  # noqa: ARG002 (the protocol's signature)
        corrupted.copy_(image)
        mask.zero_()


def _stamp_points(points: torch.Tensor, radius: torch.Tensor, height: int, width: int, max_radius: float):
    """Binary (B, 1, H, W) map of all pixels within ``radius[b]`` (<= ``max_radius``) of any of ``points[b]``
    (B, L, 2) in (y, x).  Nothing is read back from the device."""
    b, n, _ = points.shape
    device = points.device
    r_int = int(math.ceil(max_radius))
    off = torch.arange(-r_int, r_int + 1, device=device)
    oy, ox = torch.meshgrid(off, off, indexing="ij")
    oy, ox = oy.reshape(-1), ox.reshape(-1)
    base = points.round().long()
    py = base[:, :, None, 0] + oy  # (B, L, K)
    px = base[:, :, None, 1] + ox
    d2 = (py - points[:, :, None, 0]) ** 2 + (px - points[:, :, None, 1]) ** 2
    keep = (d2 <= radius.view(b, 1, 1) ** 2) & (py >= 0) & (py < height) & (px >= 0) & (px < width)
    flat = (py.clamp(0, height - 1) * width + px.clamp(0, width - 1)) + torch.arange(b, device=device).view(b, 1, 1) * (
        height * width
    )
    out = torch.zeros(b * height * width, device=device, dtype=torch.uint8)
    out.scatter_reduce_(0, flat.reshape(-1), keep.reshape(-1).to(torch.uint8), reduce="amax")
    return out.view(b, 1, height, width).bool()


class Scratch(CorruptionModel):
    """The paper's Scratch model (section IV.C b): one curve between two random points of the image.

    The curve is a straight line, a sine wave or a square-root path (chosen with equal probability per image), drawn
    ``width`` pixels thick (uniform in the given range) with a uniform grey level in ``level``.  Choices where the
    paper is silent: the endpoints are at least ``min_length`` x the smallest side apart; the sine wave has 1 to 3
    periods and an amplitude of up to ``amplitude`` x the smallest side; the square-root path is
    ``P0 + s (P1 - P0) + n A (sqrt(s) - s)`` for s in [0, 1], which bows like sqrt and still joins the endpoints.
    Parts of the curve that leave the image are dropped.
    """

    name = "scratch"

    def __init__(self, width=(2.0, 4.0), level=(0.0, 1.0), amplitude: float = 0.1, min_length: float = 0.2):
        self.width = _check_range("width", width, 1.0, 64.0)
        self.level = _check_range("level", level, 0.0, 1.0)
        self.amplitude, self.min_length = float(amplitude), float(min_length)

    def curve(self, batch: int, height: int, width: int, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the curves of a batch.

        Args:
            batch, height, width: the batch size and the images' sides.
            generator: the ``torch.Generator`` of the draws.
            device: where the tensors go.

        Returns:
            ``(points, kinds)``: ``(B, L, 2)`` points in (y, x), spaced at most half a pixel, and ``(B,)`` kinds in
            {0, 1, 2} (straight line, sine wave, square-root path).
        """
        side = min(height, width)
        size = torch.tensor([height - 1, width - 1], device=device, dtype=torch.float32)
        p0 = torch.rand((batch, 2), generator=generator, device=device) * size
        p1 = torch.rand((batch, 2), generator=generator, device=device) * size
        # Push p1 away from p0 along their direction when they are too close.
        d = p1 - p0
        length = d.norm(dim=1, keepdim=True).clamp_min(1e-3)
        short = length < self.min_length * side
        p1 = torch.where(short, (p0 + d / length * self.min_length * side).clamp(torch.zeros_like(size), size), p1)
        d = p1 - p0
        length = d.norm(dim=1, keepdim=True).clamp_min(1e-3)
        normal = torch.stack([-d[:, 1], d[:, 0]], 1) / length
        kind = torch.randint(0, 3, (batch,), generator=generator, device=device)
        amp = _uniform((batch, 1), -1.0, 1.0, generator, device) * self.amplitude * side
        periods = torch.randint(1, 4, (batch, 1), generator=generator, device=device).float()
        n_samples = int(2 * (height + width) * (1 + 2 * math.pi * self.amplitude * 3)) + 2
        s = torch.linspace(0, 1, n_samples, device=device)[None, :]
        offset = torch.where(
            kind[:, None] == 1,
            amp * torch.sin(2 * math.pi * periods * s),
            torch.where(kind[:, None] == 2, amp * (torch.sqrt(s) - s) * 2, torch.zeros_like(s)),
        )
        pts = p0[:, None, :] + s[..., None] * d[:, None, :] + offset[..., None] * normal[:, None, :]
        return pts, kind

    def apply(self, image, generator, corrupted, mask) -> None:
        b, _, h, w = image.shape
        pts, _ = self.curve(b, h, w, generator, image.device)
        thick = _uniform((b,), *self.width, generator, image.device)
        level = _uniform((b, 1, 1, 1), *self.level, generator, image.device).to(image.dtype)
        mask.copy_(_stamp_points(pts, thick / 2, h, w, max_radius=self.width[1] / 2))
        torch.where(mask, level, image, out=corrupted)


class Drops(CorruptionModel):
    """The paper's Drops model (section IV.C c): ``n_drops`` round droplets that partly overlap.

    ``reading="paper"`` (the default, the paper's text): diameters are uniform in ``diameter`` x the smallest side,
    and each drop has its own uniform grey level.  Choices where the paper is silent: the drops form a chain; each
    centre lies at a distance of ``spacing`` (uniform, in units of the sum of the two radii) from the previous one, in
    a random direction, so consecutive drops always overlap and none contains another; later drops are painted over
    earlier ones; drops are clipped at the border.

    ``reading="code"`` (the authors' code, as this library reads it): the *radius* is uniform in ``diameter`` x the
    smallest side, plus 1 px, and every centre is drawn from a Gaussian of standard deviation 0.01 x its radius
    around one common point (uniform, kept inside the image): the drops pile up into what is in effect one disc of
    6-12 px across on a 256 px image.  ``spacing`` is not used.  Grey levels and painting order are as above.
    """

    name = "drops"
    READINGS = ("paper", "code")

    def __init__(
        self, n_drops: int = 10, diameter=(0.01, 0.02), level=(0.0, 1.0), spacing=(0.5, 0.9), reading: str = "paper"
    ):
        if int(n_drops) < 1:
            raise ValueError(f"n_drops must be at least 1, got {n_drops}")
        if reading not in self.READINGS:
            raise ValueError(f"reading must be one of {', '.join(self.READINGS)}, got {reading!r}")
        self.n_drops = int(n_drops)
        self.diameter = _check_range("diameter", diameter, 1e-4, 0.5)
        self.level = _check_range("level", level, 0.0, 1.0)
        self.spacing = _check_range("spacing", spacing, 0.0, 1.0)
        self.reading = reading

    def sample(self, batch: int, height: int, width: int, generator, device) -> dict:
        """Draw the drops of a batch.

        Args:
            batch, height, width: the batch size and the images' sides.
            generator: the ``torch.Generator`` of the draws.
            device: where the tensors go.

        Returns:
            ``{"centers": (B, N, 2) in (y, x), "radii": (B, N) in pixels, "level": (B, N) grey levels in [0, 1]}``.
        """
        side = min(height, width)
        n = self.n_drops
        size = torch.tensor([height - 1, width - 1], device=device, dtype=torch.float32)
        if self.reading == "code":
            radii = _uniform((batch, n), *self.diameter, generator, device) * side + 1.0
            offsets = torch.randn((batch, n, 2), generator=generator, device=device) * (0.01 * radii[..., None])
            reach = (radii[..., None] + offsets.abs()).amax(1, keepdim=True)  # (B, 1, 2)
            lo, hi = reach, size - reach
            start = lo + torch.rand((batch, 1, 2), generator=generator, device=device) * (hi - lo).clamp_min(0)
            level = _uniform((batch, n), *self.level, generator, device)
            return {"centers": start + offsets, "radii": radii, "level": level}
        radii = _uniform((batch, n), *self.diameter, generator, device) * side / 2
        step = _uniform((batch, n), *self.spacing, generator, device) * (radii + torch.roll(radii, 1, dims=1))
        angle = _uniform((batch, n), 0.0, 2 * math.pi, generator, device)
        step[:, 0] = 0
        chain = torch.cumsum(torch.stack([step * torch.sin(angle), step * torch.cos(angle)], -1), dim=1)
        lo = radii.amax(1, keepdim=True)[..., None] - chain.amin(1, keepdim=True)
        hi = size - radii.amax(1, keepdim=True)[..., None] - chain.amax(1, keepdim=True)
        start = lo + torch.rand((batch, 1, 2), generator=generator, device=device) * (hi - lo).clamp_min(0)
        level = _uniform((batch, n), *self.level, generator, device)
        return {"centers": chain + start, "radii": radii, "level": level}

    def apply(self, image, generator, corrupted, mask) -> None:
        b, _, h, w = image.shape
        drops = self.sample(b, h, w, generator, image.device)
        ys = torch.arange(h, device=image.device, dtype=torch.float32).view(1, h, 1)
        xs = torch.arange(w, device=image.device, dtype=torch.float32).view(1, 1, w)
        corrupted.copy_(image)
        mask.zero_()
        for i in range(self.n_drops):  # a loop over the 10 drops, each painted on the whole batch at once
            cy, cx = drops["centers"][:, i, 0].view(b, 1, 1), drops["centers"][:, i, 1].view(b, 1, 1)
            inside = ((ys - cy) ** 2 + (xs - cx) ** 2 <= drops["radii"][:, i].view(b, 1, 1) ** 2)[:, None]
            level = drops["level"][:, i].view(b, 1, 1, 1).to(image.dtype)
            torch.where(inside, level, corrupted, out=corrupted)
            mask |= inside


class Gaussian(CorruptionModel):
    """The paper's Gaussian noise (section IV.C a): each pixel x becomes a draw of N(x, s^2), clipped to [0, 1].

    The paper writes "variance sigma^2" with sigma in {0.1, 0.2, 0.4, 0.8}.  ``reading="paper"`` (the default)
    takes ``sigma`` as the standard deviation, s = sigma; ``reading="code"`` follows the authors' code, where the
    listed value is the variance: s = sqrt(sigma) (0.32 to 0.89, much stronger noise).  The noise is drawn
    independently per channel.  The mask is the whole image.

    ``overflow=True`` reproduces, on request only, the authors' uint8 arithmetic: the noisy value is rounded to 8 bits
    and wraps around modulo 256 instead of saturating (a bright pixel pushed above 255 becomes dark).
    """

    name = "gaussian"
    READINGS = ("paper", "code")

    def __init__(self, sigma: float = 0.1, reading: str = "paper", overflow: bool = False):
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if reading not in self.READINGS:
            raise ValueError(f"reading must be one of {', '.join(self.READINGS)}, got {reading!r}")
        self.sigma, self.reading, self.overflow = float(sigma), reading, bool(overflow)

    @property
    def std(self) -> float:
        """The standard deviation of the noise under this reading."""
        return self.sigma if self.reading == "paper" else math.sqrt(self.sigma)

    def apply(self, image, generator, corrupted, mask) -> None:
        torch.randn(image.shape, generator=generator, device=image.device, dtype=image.dtype, out=corrupted)
        corrupted.mul_(self.std).add_(image)
        if self.overflow:
            corrupted.mul_(255).round_().remainder_(256).div_(255)
        else:
            corrupted.clamp_(0, 1)
        mask.fill_(True)


class Mixture(CorruptionModel):
    """Apply one of several models to each image, drawn per image with the given probabilities (Mix1, Mix2)."""

    def __init__(self, components: dict, name: str = "mixture"):
        for key, weight in components.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise ValueError(f"mixture weight of {key!r} must be a probability (0 to 1), got {weight}")
        total = sum(components.values())
        if not components or abs(total - 1.0) > 1e-6:
            raise ValueError(f"mixture weights must sum to 1, got {total}")
        self.models = [get_corruption(k) if isinstance(k, str) else k for k in components]
        self.weights = torch.tensor(list(components.values()), dtype=torch.float64)
        self.name = name

    def choose(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        """Draw the component used for each image.

        Args:
            batch: the batch size.
            generator: the ``torch.Generator`` of the draw (one uniform per image).
            device: where the result goes.

        Returns:
            ``(B,)`` indices into ``models``, drawn with the mixture's weights.
        """
        u = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
        edges = torch.cumsum(self.weights.to(device), 0)[:-1]
        return torch.bucketize(u, edges, right=True)

    def apply(self, image, generator, corrupted, mask) -> None:
        pick = self.choose(image.shape[0], generator, image.device)
        corrupted.copy_(image)
        mask.zero_()
        for i, model in enumerate(self.models):
            idx = torch.nonzero(pick == i).flatten()
            if idx.numel():
                trusted = {"check_values": False} if isinstance(model, CorruptionModel) else {}
                corrupted[idx], mask[idx] = model(image[idx], generator, **trusted)


def _gaussian(sigma, reading="paper"):
    return lambda **kw: Gaussian(sigma=sigma, reading=reading, **kw)


CORRUPTIONS = {
    "none": Identity,
    "stain": Stain,
    "scratch": Scratch,
    "drops": Drops,
    "gaussian-0.1": _gaussian(0.1),
    "gaussian-0.2": _gaussian(0.2),
    "gaussian-0.4": _gaussian(0.4),
    "gaussian-0.8": _gaussian(0.8),
    "mix1": lambda: Mixture({"stain": 0.6, "scratch": 0.2, "drops": 0.2}, name="mix1"),
    "mix2": lambda: Mixture({"stain": 0.6, "gaussian-0.1": 0.4}, name="mix2"),
    # The authors' code's readings of the same settings (see the module docstring).
    "drops-code": lambda **kw: Drops(reading="code", **kw),
    "gaussian-0.1-code": _gaussian(0.1, "code"),
    "gaussian-0.2-code": _gaussian(0.2, "code"),
    "gaussian-0.4-code": _gaussian(0.4, "code"),
    "gaussian-0.8-code": _gaussian(0.8, "code"),
    "mix1-code": lambda: Mixture({"stain": 0.2, "scratch": 0.2, "drops": 0.6}, name="mix1-code"),
}
"""Registry of corruption models by name, as used by the CLI and the book."""

CODE_READINGS = {name: name[: -len("-code")] for name in CORRUPTIONS if name.endswith("-code")}
"""Each authors'-code reading and the paper reading it stands beside, e.g. ``{"drops-code": "drops", ...}``."""

PAPER_CORRUPTIONS = tuple(name for name in CORRUPTIONS if name not in CODE_READINGS)
"""The names of the paper's readings (the ten models of Table III), in the registry's order."""


def get_corruption(name: str, **kwargs):
    """Build the corruption model registered as ``name``; keyword arguments go to its constructor.

    Example: ``corrupted, mask = get_corruption("stain")(images, torch.Generator().manual_seed(0))``.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    model = CORRUPTIONS[name](**kwargs)
    model.name = name
    return model
