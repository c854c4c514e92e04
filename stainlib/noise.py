"""Corruption models used to train the autoencoders (book chapter 2, "Corruptions").

Every model is a callable ``model(image, generator, *, out=None, check_values=True) -> (corrupted, mask)``:

* ``image`` is a float tensor of shape ``(B, C, H, W)`` with values in [0, 1], C = 1 or 3, H, W >= 32;
* ``generator`` is a :class:`torch.Generator` on the same device as ``image``;
* ``corrupted`` is a new contiguous tensor with the shape, dtype and device of ``image``; ``image`` itself is never
  modified;
* ``mask`` is a **bool** tensor of shape ``(B, 1, H, W)``, True exactly where the model changed pixels (a quarter of
  the memory of a float mask; use ``mask.float()`` for arithmetic or ``imshow``);
* ``out=(corrupted, mask)`` writes into those two preallocated tensors instead (contiguous, with the shapes, dtypes
  and device above) and returns them.  A loop that corrupts batch after batch can reuse them and so skip the cost of
  fresh memory on every call (on the CPU, the page faults of two full-size outputs are most of the Stain model's
  time; ``benchmarks/bench_noise.py`` measures both);
* ``check_values=False`` skips the scan of the image's values (NaN and the [0, 1] range; shapes, dtypes and the
  generator are always checked).  The scan reads the value back to the host, a synchronisation on a GPU: a training
  loop that validated its images once turns it off.

Everything is computed with batched tensor operations on the image's own device, so the corruption can run on the
GPU inside the training loop; on a GPU the Stain, Drops, Gaussian and Scratch models never wait for the device (no
value is read back to the host; the Mixture models read back which images each component gets).  The same generator
state on the same device gives bit-identical output.

Models are built by name with :func:`get_corruption` (``none``, ``stain``, ``scratch``, ``drops``,
``gaussian-0.1`` ... ``gaussian-0.8``, ``mix1``, ``mix2``); :data:`CORRUPTIONS` lists the names.
Reference: Collin & De Vleeschouwer, ICPR 2020, sections III.B and IV.C.

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

import functools
import math

import torch

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

MIN_SIDE = 32


def check_image(image, values: bool = True) -> None:
    """Raise ``ValueError`` unless ``image`` is a float ``(B, C, H, W)`` tensor in [0, 1], C in {1, 3}, H, W >= 32.

    With ``values=False`` only the type, shape and dtype are checked (no pass over the data, no host sync)."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a torch.Tensor of shape (B, C, H, W), got {type(image).__name__}")
    if image.dim() != 4:
        raise ValueError(f"image must have rank 4 (B, C, H, W), got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"image must be a float tensor with values in [0, 1], got dtype {image.dtype}")
    b, c, h, w = image.shape
    if c not in (1, 3):
        raise ValueError(f"image must have 1 (grayscale) or 3 (RGB) channels, got {c}")
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"image sides must be at least {MIN_SIDE} px, got {h}x{w}")
    if b == 0:
        raise ValueError("image batch is empty")
    if not values:
        return
    lo, hi = (v.item() for v in torch.aminmax(image))  # one pass; NaN propagates into both
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError("image contains NaN")
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"image values must lie in [0, 1], got min {lo:.4g} and max {hi:.4g}")


def _check_generator(image: torch.Tensor, generator: torch.Generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != image.device.type:
        raise ValueError(
            f"generator is on {generator.device} but image is on {image.device}; "
            f"create it with torch.Generator(device=image.device)"
        )


def _uniform(shape, lo, hi, generator, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=generator, device=device)


def _check_range(name: str, value, lo: float, hi: float) -> tuple[float, float]:
    a, b = (float(v) for v in value)
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{name} must be a pair lo <= hi within [{lo}, {hi}], got {value}")
    return a, b


def _outputs(image: torch.Tensor, out) -> tuple[torch.Tensor, torch.Tensor]:
    """The (corrupted, mask) tensors to write into: ``out`` after checking it, or fresh ones (uninitialised)."""
    b, _, h, w = image.shape
    if out is None:
        return (
            torch.empty(image.shape, dtype=image.dtype, device=image.device),
            torch.empty((b, 1, h, w), dtype=torch.bool, device=image.device),
        )
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise ValueError("out must be a pair of tensors (corrupted, mask)")
    corrupted, mask = out
    wanted = ((corrupted, tuple(image.shape), image.dtype), (mask, (b, 1, h, w), torch.bool))
    for name, (t, shape, dtype) in zip(("corrupted", "mask"), wanted):
        if tuple(t.shape) != shape or t.dtype != dtype or t.device != image.device or not t.is_contiguous():
            raise ValueError(
                f"out {name} must be a contiguous {dtype} tensor of shape {shape} on {image.device}, "
                f"got {t.dtype} {tuple(t.shape)} on {t.device}" + ("" if t.is_contiguous() else " (not contiguous)")
            )
    if corrupted.data_ptr() == image.data_ptr():
        raise ValueError("out corrupted must not be the image itself")
    return corrupted, mask


class CorruptionModel:
    """Base of the models: checks the input, picks the output tensors, and lets :meth:`apply` fill them."""

    name = "corruption"

    def __call__(self, image: torch.Tensor, generator: torch.Generator, *, out=None, check_values: bool = True):
        check_image(image, values=check_values)
        _check_generator(image, generator)
        corrupted, mask = _outputs(image, out)
        self.apply(image, generator, corrupted, mask)
        return corrupted, mask

    def apply(self, image, generator, corrupted, mask) -> None:
        """Write the corruption of ``image`` into ``corrupted`` and its bool mask into ``mask`` (checked inputs)."""
        raise NotImplementedError


def _paint(image: torch.Tensor, alpha: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Blend ``fill`` into ``image`` with opacity ``alpha`` (all three broadcastable); opaque pixels get ``fill``
    exactly."""
    return torch.where(alpha >= 1, fill, image + alpha * (fill - image))


class Identity(CorruptionModel):
    """The ``none`` model: returns a copy of the image and an empty mask."""

    name = "none"

    def apply(self, image, generator, corrupted, mask) -> None:  # noqa: ARG002 (the protocol's signature)
        corrupted.copy_(image)
        mask.zero_()


@functools.lru_cache(maxsize=16)
def _circulant_inverse(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Kept per device, so that a GPU caller does not copy it from the host (and wait) on every call."""
    eye = torch.eye(n, dtype=torch.float64)
    inv = torch.linalg.inv(4 * eye + torch.roll(eye, 1, dims=1) + torch.roll(eye, -1, dims=1))
    return inv.to(dtype=dtype, device=device)


def periodic_spline_coefficients(values: torch.Tensor) -> torch.Tensor:
    """Coefficients of the closed (periodic) cubic spline through ``values`` at uniform knots.

    ``values`` has shape ``(..., N)``; the knots are 0, 1, ..., N-1 and the spline wraps from N-1 back to 0.
    Returns ``(..., N, 4)`` holding ``(a, b, c, d)`` per segment, so that on segment k, with t in [0, 1),
    ``s(k + t) = a + b t + c t^2 + d t^3``.  The second derivatives solve the circulant system
    ``M[k-1] + 4 M[k] + M[k+1] = 6 (y[k-1] - 2 y[k] + y[k+1])``, solved by one batched matrix product.
    """
    n = values.shape[-1]
    inv = _circulant_inverse(n, values.dtype, values.device)
    y0 = values
    y1 = torch.roll(values, -1, dims=-1)
    rhs = 6 * (torch.roll(values, 1, dims=-1) - 2 * values + y1)
    m0 = rhs @ inv.T
    m1 = torch.roll(m0, -1, dims=-1)
    a = y0
    b = (y1 - y0) - (2 * m0 + m1) / 6
    c = m0 / 2
    d = (m1 - m0) / 6
    return torch.stack([a, b, c, d], dim=-1)


class Stain(CorruptionModel):
    """The paper's Stain model: one irregular, filled, elliptic stain per image (section III.B, Fig. 3).

    For each image, two semi-axes are drawn independently and uniformly in ``size`` (fractions of the smallest image
    side) and a rotation uniformly in [0, 2 pi).  ``n_points`` points are placed at evenly spaced polar angles around
    the stain's centre, on that ellipse; each point is moved along its ray by a uniform amount of up to ``jitter`` x
    the mean semi-axis.  The outline is the closed (periodic) cubic spline through those points, interpolated in
    polar coordinates (radius as a function of angle).

    Choices where the paper is silent, stated here:

    * Interpolating in polar coordinates makes every stain star-shaped around its centre, so the filled stain is
      always one (8-)connected region without holes.  (A Cartesian spline through jittered points on a very eccentric
      ellipse can cross itself and leave holes after an even-odd fill.)
    * The fill is a uniform grey ``level`` (drawn in [10, 220] / 255, the same on every channel) plus a slight
      Gaussian pixel noise of standard deviation ``noise`` (shared by the channels), clipped to [0, 1].
    * The centre is drawn so that the whole stain, spline overshoot included, lies inside the image.
    * ``blur`` > 0 blurs the stain's opacity with a Gaussian of sigma ``blur`` x the larger semi-axis (soft edges).
      The mask then marks every pixel whose opacity is at least 1/512 (half a grey level); weaker tails are cut.
      The paper's stains have hard edges: the default is 0.

    Rasterisation visits only a window around each stain (:meth:`pixels`).  On the CPU the stains are sorted by size
    and rasterised in groups whose windows fit their largest stain, and only the stain's pixels are painted; elsewhere
    all windows have one size fixed by the settings (a bound on every stain the model can draw), so that the GPU never
    has to report a size back to the host.  Both paint the same pixels.
    """

    name = "stain"
    SAMPLES = 16  # spline samples per segment used for rasterisation
    GROUP = 16  # on the CPU, stains of similar sizes are rasterised in windows of one size, this many at a time

    def __init__(
        self,
        size=(0.01, 0.12),
        level=(10 / 255, 220 / 255),
        n_points: int = 20,
        jitter: float = 0.1,
        blur: float = 0.0,
        noise: float = 0.02,
    ):
        self.size = _check_range("size", size, 1e-4, 0.4)
        self.level = _check_range("level", level, 0.0, 1.0)
        if int(n_points) < 4:
            raise ValueError(f"n_points must be at least 4, got {n_points}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must lie in [0, 1), got {jitter}")
        if blur < 0 or noise < 0:
            raise ValueError("blur and noise must be >= 0")
        self.n_points, self.jitter, self.blur, self.noise = int(n_points), float(jitter), float(blur), float(noise)
        self._gain = _spline_gain(self.n_points, self.SAMPLES)

    def max_half(self, height: int, width: int) -> int:
        """Half-side (px) of a square window centred on the stain that holds any stain drawn on an image this size.

        The outline's radius is at most ``gain`` x the largest control radius, where ``gain`` is the largest row sum
        of absolute values of the linear map from control radii to sampled outline (exact for the spline as sampled).
        """
        hi = self.size[1] * min(height, width)
        radius = self._gain * max(hi * (1 + self.jitter), 0.25) * (1 + 1e-5)
        return int(math.ceil(radius + 3 * self.blur * hi)) + 2

    def sample(self, batch: int, height: int, width: int, generator: torch.Generator, device=None) -> dict:
        """Draw the stain shapes for a batch; returns a dict of tensors (semi-axes in pixels, angle, centre, level)."""
        side = min(height, width)
        lo, hi = self.size
        axes = _uniform((batch, 2), lo * side, hi * side, generator, device)
        theta = _uniform((batch,), 0.0, 2 * math.pi, generator, device)
        phi = torch.arange(self.n_points, device=device) * (2 * math.pi / self.n_points)
        psi = phi[None, :] - theta[:, None]
        a, c = axes[:, :1], axes[:, 1:]
        r_ellipse = a * c / torch.sqrt((c * torch.cos(psi)) ** 2 + (a * torch.sin(psi)) ** 2)
        shift = (
            _uniform((batch, self.n_points), -1.0, 1.0, generator, device) * self.jitter * axes.mean(1, keepdim=True)
        )
        radii = (r_ellipse + shift).clamp_min(0.25)
        coeffs = periodic_spline_coefficients(radii)
        # The spline sampled 16 times per segment: (B, 16 N).  Rasterisation interpolates linearly between these
        # samples, which departs from the cubic by far less than a hundredth of a pixel.
        t = torch.arange(self.SAMPLES, device=device, dtype=coeffs.dtype) / self.SAMPLES
        table = (coeffs @ torch.stack([torch.ones_like(t), t, t**2, t**3])).flatten(1)
        r_max = table.amax(1)
        margin = r_max + 1.0 + self._blur_sigma(axes) * 3
        cy = margin + torch.rand(batch, generator=generator, device=device) * (height - 1 - 2 * margin).clamp_min(0)
        cx = margin + torch.rand(batch, generator=generator, device=device) * (width - 1 - 2 * margin).clamp_min(0)
        level = _uniform((batch,), *self.level, generator, device)
        return {
            "axes": axes,
            "theta": theta,
            "radii": radii,
            "coeffs": coeffs,
            "table": table,
            "r_max": r_max,
            "center": torch.stack([cy, cx], 1),
            "level": level,
        }

    def _blur_sigma(self, axes: torch.Tensor) -> torch.Tensor:
        return self.blur * axes.amax(1)

    def window(self, shapes: dict, height: int, width: int, half: int | None = None, as_bool: bool = False):
        """Rasterise sampled shapes into one window per image that holds the whole stain (and its blur).

        Returns the opacity ``(B, h, w)`` in [0, 1] and the window's image rows ``(B, h)`` and columns ``(B, w)``.
        Only the window is rasterised, so the cost does not grow with the image area.  The window's half-side is
        ``half`` (at least :meth:`max_half` to be sure to hold every stain) or, by default, the smallest that holds
        this batch's stains (read back from the device).  With ``as_bool`` and no blur, the opacity is returned as the
        bool map it is (every stain pixel is opaque), without a float copy.
        """
        center = shapes["center"]
        batch, device, dtype = center.shape[0], center.device, center.dtype
        fixed = half
        if half is None:
            half = int(math.ceil(float((shapes["r_max"] + 3 * self._blur_sigma(shapes["axes"])).max()))) + 2
        win_h, win_w = min(2 * half + 1, height), min(2 * half + 1, width)
        # Windows are shifted to lie inside the image; the stain lies inside the image, so it stays in its window.
        top = (center[:, 0].floor().long() - half).clamp(0, height - win_h)
        left = (center[:, 1].floor().long() - half).clamp(0, width - win_w)
        rows = top[:, None] + torch.arange(win_h, device=device)
        cols = left[:, None] + torch.arange(win_w, device=device)
        dy = rows[:, :, None].to(dtype) - center[:, 0, None, None]
        dx = cols[:, None, :].to(dtype) - center[:, 1, None, None]
        dist2 = dy**2 + dx**2
        table = shapes["table"]
        n = table.shape[1]
        # The angle in [0, 2 pi] (atan2 of the opposite vector, plus pi), in table steps; the table is closed with its
        # first sample (and the slope to it) so that the step after the last needs no wrap-around.
        pos = ((torch.atan2(-dy, -dx) + math.pi) * (n / (2 * math.pi))).view(batch, -1).clamp_(0, n)
        base = pos.floor().clamp_(max=n - 1)
        frac = pos - base
        i0 = base.long()
        slope = torch.roll(table, -1, dims=1) - table
        r0, dr = table.gather(1, i0), slope.gather(1, i0)
        radius = (r0 + frac * dr).view(batch, win_h, win_w)
        inside = dist2 <= radius * radius
        # Sampling a steep part of the outline on the pixel grid can leave a lone pixel whose four neighbours are
        # all inside; such aliasing holes are closed so that the stain is always filled.
        pad = torch.nn.functional.pad(inside, (1, 1, 1, 1))
        inside |= pad[:, :-2, 1:-1] & pad[:, 2:, 1:-1] & pad[:, 1:-1, :-2] & pad[:, 1:-1, 2:]
        if as_bool and self.blur == 0:
            return inside, rows, cols
        alpha = inside.to(dtype)
        if self.blur > 0:
            # With a given half-side (off the CPU), the kernel's size comes from the settings too: no read-back.
            bound = None if fixed is None else 3 * self.blur * self.size[1] * min(height, width)
            alpha = _gaussian_blur(alpha[:, None], self._blur_sigma(shapes["axes"]), bound)[:, 0]
            alpha = torch.where(alpha >= 1 / 512, alpha, torch.zeros_like(alpha))
        return alpha, rows, cols

    def opacity(self, shapes: dict, height: int, width: int) -> torch.Tensor:
        """Rasterise sampled shapes into a full-size opacity map ``(B, 1, H, W)`` in [0, 1]."""
        alpha, rows, cols = self.window(shapes, height, width)
        full = alpha.new_zeros(alpha.shape[0], height, width)
        full[_batch_index(alpha), rows[:, :, None], cols[:, None, :]] = alpha
        return full[:, None]

    def pixels(self, shapes: dict, height: int, width: int):
        """The pixels to paint as flat ``(P,)`` tensors: image index, row, column and opacity.

        Off the CPU: one :meth:`window` of :meth:`max_half` for the whole batch, every pixel of it (no size or count
        is read back from the device).  On the CPU (without blur), the stains are sorted by size and rasterised in
        groups of :data:`GROUP`, each with a window just large enough for its largest stain, and only the pixels with
        a non-zero opacity are returned.  Both give the same opacity on every pixel.
        """
        center = shapes["center"]
        if center.device.type != "cpu":
            alpha, rows, cols = self.window(shapes, height, width, self.max_half(height, width))
            return _flatten_window(torch.arange(center.shape[0], device=center.device), alpha, rows, cols)
        if self.blur > 0:  # one group: the blur kernel's size follows the group's largest stain
            alpha, rows, cols = self.window(shapes, height, width)
            index, y, x, alpha = _flatten_window(torch.arange(center.shape[0]), alpha, rows, cols)
            keep = (alpha > 0).nonzero().squeeze(1)
            return index[keep], y[keep], x[keep], alpha[keep]
        parts = []  # without blur every stain pixel is opaque: keep the bool map's pixels, in the same order
        for group in torch.argsort(shapes["r_max"]).split(self.GROUP):
            sub = {k: shapes[k][group] for k in ("center", "table", "r_max", "axes")}
            inside, rows, cols = self.window(sub, height, width, as_bool=True)
            b, i, j = inside.nonzero().unbind(1)
            parts.append((group[b], rows[b, i], cols[b, j]))
        index, y, x = (torch.cat(p) for p in zip(*parts))
        return index, y, x, torch.ones(index.shape, dtype=center.dtype)

    def apply(self, image, generator, corrupted, mask) -> None:
        b, c, h, w = image.shape
        shapes = self.sample(b, h, w, generator, image.device)
        index, y, x, alpha = self.pixels(shapes, h, w)
        alpha = alpha.to(image.dtype)[:, None]  # (P, 1)
        fill = shapes["level"].to(image.dtype)[index][:, None]
        if self.noise > 0:  # one grain per pixel, shared by the channels
            grain = torch.randn(alpha.shape, generator=generator, device=image.device, dtype=image.dtype)
            fill = (fill + self.noise * grain).clamp(0, 1)
        pixel = y * w + x
        mask.zero_()
        mask.view(-1)[index * (h * w) + pixel] = alpha[:, 0] > 0
        where = (index * (c * h * w) + pixel)[:, None]  # (P, C): the pixel in every channel
        if c > 1:
            where = where + torch.arange(c, device=image.device) * (h * w)
        corrupted.copy_(image)
        flat = corrupted.view(-1)
        flat[where] = _paint(flat[where], alpha, fill).clamp(0, 1)


def _spline_gain(n: int, samples: int) -> float:
    """Largest absolute row sum of the linear map from ``n`` control radii to the sampled periodic spline."""
    coeffs = periodic_spline_coefficients(torch.eye(n, dtype=torch.float64))  # row j: the spline through e_j
    t = torch.arange(samples, dtype=torch.float64) / samples
    table = (coeffs @ torch.stack([torch.ones_like(t), t, t**2, t**3])).flatten(1)  # (n, n * samples)
    return float(table.abs().sum(0).max())


def _flatten_window(index: torch.Tensor, alpha: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor):
    """Flat ``(P,)`` image index, row, column and opacity of the windows ``alpha`` (b, h, w) of images ``index``."""
    b, win_h, win_w = alpha.shape
    return (
        index[:, None, None].expand(b, win_h, win_w).reshape(-1),
        rows[:, :, None].expand(b, win_h, win_w).reshape(-1),
        cols[:, None, :].expand(b, win_h, win_w).reshape(-1),
        alpha.reshape(-1),
    )


def _batch_index(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.shape[0], device=x.device)[:, None, None]


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, max_radius: float | None = None) -> torch.Tensor:
    """Separable Gaussian blur of a (B, 1, H, W) map with one sigma per image (zero padding); the kernel reaches
    ``max_radius`` px (by default 3 x the largest sigma, read back from the device)."""
    b = x.shape[0]
    radius = max(1, int(math.ceil(3 * float(sigma.max()) if max_radius is None else max_radius)))
    k = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.to(x.dtype).clamp_min(1e-3)[:, None]
    kern = torch.exp(-0.5 * (k[None, :] / s) ** 2)
    kern = kern / kern.sum(1, keepdim=True)
    x = x.transpose(0, 1)  # (1, B, H, W): one group per image
    x = torch.nn.functional.conv2d(x, kern.view(b, 1, 1, -1), padding=(0, radius), groups=b)
    x = torch.nn.functional.conv2d(x, kern.view(b, 1, -1, 1), padding=(radius, 0), groups=b)
    return x.transpose(0, 1)


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
        """Sample the curves: points ``(B, L, 2)`` in (y, x), spaced at most half a pixel, and kinds ``(B,)``."""
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

    ``reading="code"`` (the authors' code, as read for issue 15): the *radius* is uniform in ``diameter`` x the
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
        """Draw drop centres ``(B, N, 2)`` (y, x), radii ``(B, N)`` in pixels and levels ``(B, N)``."""
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
        total = sum(components.values())
        if not components or abs(total - 1.0) > 1e-6:
            raise ValueError(f"mixture weights must sum to 1, got {total}")
        self.models = [get_corruption(k) if isinstance(k, str) else k for k in components]
        self.weights = torch.tensor(list(components.values()), dtype=torch.float64)
        self.name = name

    def choose(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        """Index of the component used for each image, ``(B,)``."""
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
    """Build the corruption model registered as ``name``; keyword arguments go to its constructor."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    model = CORRUPTIONS[name](**kwargs)
    model.name = name
    return model
