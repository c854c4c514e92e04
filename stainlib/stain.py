"""The paper's Stain corruption model and the periodic spline that draws its outline (book chapter 2, "Corruptions").

:class:`Stain` draws one irregular, filled, elliptic stain per image, as the paper describes it (section III.B,
Fig. 3); :func:`periodic_spline_coefficients` fits the closed cubic spline of its outline.  Rasterisation is batched
on the image's own device and visits only a window around each stain.  The call protocol is the one of every
corruption model (:mod:`stainlib.corruption`); :mod:`stainlib.noise` registers it under the name ``stain``.
Reference: Collin & De Vleeschouwer, ICPR 2020, section III.B.
"""

from __future__ import annotations

import functools
import math

import torch

from .corruption import CorruptionModel, _check_range, _uniform

__all__ = ["Stain", "periodic_spline_coefficients"]


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

    Args:
        values: ``(..., N)`` float values at the knots, N >= 3.

    Returns:
        The ``(..., N, 4)`` coefficients; ``coeffs[..., k, 0] == values[..., k]``.
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

        Args:
            height, width: the image's sides.

        Returns:
            The half-side in pixels.
        """
        hi = self.size[1] * min(height, width)
        radius = self._gain * max(hi * (1 + self.jitter), 0.25) * (1 + 1e-5)
        return int(math.ceil(radius + 3 * self.blur * hi)) + 2

    def sample(self, batch: int, height: int, width: int, generator: torch.Generator, device=None) -> dict:
        """Draw the stain shapes for a batch.

        Args:
            batch, height, width: the batch size and the images' sides.
            generator: the ``torch.Generator`` of the draws.
            device: where the tensors go.

        Returns:
            A dict of per-image tensors: ``axes`` ``(B, 2)`` semi-axes in pixels, ``theta`` ``(B,)`` angle,
            ``radii`` the jittered control radii, ``coeffs`` and ``table`` the outline's spline and sampled radii,
            ``r_max``, ``center`` ``(B, 2)`` in (y, x) and ``level`` the grey level.
        """
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

        Args:
            shapes: :meth:`sample`'s dict.
            height, width: the image's sides.
            half: the window's half-side, or ``None`` (the smallest that holds the batch's stains).
            as_bool: return the bool map where there is no blur.

        Returns:
            ``(opacity (B, h, w), rows (B, h), cols (B, w))``.
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
        """Rasterise sampled shapes into a full-size opacity map.

        Args:
            shapes: :meth:`sample`'s dict.
            height, width: the image's sides.

        Returns:
            The ``(B, 1, H, W)`` opacity in [0, 1] (1: the stain's level replaces the pixel).
        """
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

        Args:
            shapes: :meth:`sample`'s dict.
            height, width: the image's sides.

        Returns:
            ``(index, row, column, opacity)``, four ``(P,)`` tensors.
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


def _paint(image: torch.Tensor, alpha: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Blend ``fill`` into ``image`` with opacity ``alpha`` (all three broadcastable); opaque pixels get ``fill``
    exactly."""
    return torch.where(alpha >= 1, fill, image + alpha * (fill - image))
