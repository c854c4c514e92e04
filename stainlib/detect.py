"""Anomaly maps and image scores (book chapter 5, "Residual against uncertainty"; chapter 8 for the combined map).

* :func:`residual_map` — |x - x_hat|, the paper's residual (section III.C);
* :func:`uncertainty_map` — the per-pixel variance of Monte-Carlo-dropout reconstructions (30 by default);
* :func:`combined_map` — beyond the paper: both maps standardised by their statistics on clean validation images,
  then averaged (see its docstring for why);
* :func:`image_score` — the L^p norm of a map (eq. 1 of the paper, p = 2).

Every map has shape ``(B, 1, H, W)``; RGB maps are averaged over the channels.
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn import functional as F

__all__ = ["combined_map", "fit_normalizer", "image_score", "reconstruct", "residual_map", "uncertainty_map"]


def residual_map(image: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """|image - reconstruction|, averaged over channels: ``(B, 1, H, W)``.

    Example: ``residual_map(x, model(x))`` for a batch ``x`` of ``(B, C, H, W)`` images in [0, 1].
    """
    if image.shape != reconstruction.shape:
        raise ValueError(f"image {tuple(image.shape)} and reconstruction {tuple(reconstruction.shape)} differ")
    return (image.float() - reconstruction.float()).abs().mean(1, keepdim=True)


def _check_batch(image, what: str) -> None:
    """Refuse what is not a non-empty ``(B, C, H, W)`` batch, naming ``what`` was given."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or len(image) == 0:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{what} needs a (B, C, H, W) batch of at least one image, got {shape}")


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reconstruct(model, image: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """The model's reconstruction of ``image`` in eval mode (no dropout), batch by batch, on the model's device.

    Args:
        model: an :class:`~stainlib.models.AutoEncoder`.
        image: a ``(B, C, H, W)`` batch in [0, 1], on any device.
        batch_size: images per forward pass.

    Returns:
        The ``(B, C, H, W)`` reconstructions, on the model's device.
    """
    _check_batch(image, "reconstruct")
    model.eval()
    device = _device_of(model)
    out = [model(image[i : i + batch_size].to(device)).float() for i in range(0, len(image), batch_size)]
    return torch.cat(out)


@contextlib.contextmanager
def _channels_last(model):
    """Inside: the model's 4-D weights in channels_last.  On exit the parameters get their original tensors back."""
    saved = [(p, p.data) for p in model.parameters()]
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        for p, data in saved:
            p.data = data


@torch.no_grad()
def uncertainty_map(
    model,
    image: torch.Tensor,
    n_samples: int = 30,
    chunk: int | None = None,
    seed: int | None = None,
    return_mean: bool = False,
):
    """Per-pixel variance of ``n_samples`` Monte-Carlo-dropout reconstructions of each image: ``(B, 1, H, W)``.

    The samples run as batches: at most ``chunk`` forward passes at once (copies of a few images), which bounds the
    memory; by default it is 16 on the CPU, where large batches only add memory traffic, and 512 on a GPU.  Partial
    results are merged with the exact parallel-variance formula (Chan et al.), in float32; the map is the population
    variance (divided by ``n_samples``), never quantised.  (The authors' code stores the variance in
    8 bits, where large values wrap around; that is not followed.)  Batch norm stays in eval mode.  With ``seed``,
    the dropout masks are reproducible and the global random state is left untouched.  With ``return_mean``, the
    mean of the samples is returned too.  The encoder levels before the first dropout (rate 0) are computed once per
    image and shared by all its samples (:meth:`stainlib.models.AutoEncoder.encode_shared`); the dropout masks are
    drawn exactly as for a forward pass of repeated copies.  On the CPU the network runs in channels_last, as the
    trainer does (faster there: ``benchmarks/bench_uncertainty.py``): the model's weights are switched to it for the
    call and the original tensors put back after.  The dropout masks are the same in either layout
    (:class:`stainlib.models.MCDropout`); the convolutions sum in another order, so the maps agree with the
    contiguous layout's to float32 rounding (tested: relative 1e-4), not bit for bit.

    Args:
        model: an :class:`~stainlib.models.AutoEncoder` with dropout.
        image: a ``(B, C, H, W)`` batch in [0, 1].
        n_samples: the Monte-Carlo-dropout passes per image (the paper's T, 30).
        chunk, seed, return_mean: as above.

    Returns:
        The ``(B, 1, H, W)`` variance map, or ``(variance, mean)`` with ``return_mean``.
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    _check_batch(image, "uncertainty_map")
    model.eval()
    device = _device_of(model)
    chunk = chunk or (16 if device.type == "cpu" else 512)
    per_image = max(1, min(n_samples, chunk))  # samples of one image per forward pass
    images_at_once = max(1, chunk // per_image)
    variances, means = [], []
    rng = (
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
        if seed is not None
        else (contextlib.nullcontext())
    )
    layout = _channels_last(model) if device.type == "cpu" else contextlib.nullcontext()
    with rng, layout, model.mc_sampling():
        if seed is not None:
            torch.manual_seed(seed)
        for i in range(0, len(image), images_at_once):
            x = image[i : i + images_at_once].to(device)
            b = len(x)
            count, mean, m2 = 0, None, None
            shared = model.encode_shared(x)
            for done in range(0, n_samples, per_image):
                k = min(per_image, n_samples - done)
                out = model.sample_from(shared, k).float().unflatten(0, (b, k))  # (b, k, C, H, W), no copy
                out = out[:, :, 0] if out.shape[2] == 1 else out.mean(2)  # RGB: averaged over the channels
                c_mean = out.mean(1)
                c_m2 = (out - c_mean[:, None]).square_().sum(1)
                if mean is None:
                    count, mean, m2 = k, c_mean, c_m2
                else:
                    delta = c_mean - mean
                    total = count + k
                    mean = mean + delta * (k / total)
                    m2 = m2 + c_m2 + delta**2 * (count * k / total)
                    count = total
            variances.append((m2 / count)[:, None])
            means.append(mean[:, None])
    var = torch.cat(variances)
    return (var, torch.cat(means)) if return_mean else var


def fit_normalizer(residual: torch.Tensor, uncertainty: torch.Tensor, smooth: float = 2.0) -> dict:
    """Statistics of both maps on clean validation images, for :func:`combined_map`.

    Per pixel: the mean and the standard deviation over the images, smoothed by a Gaussian of ``smooth`` pixels
    (a few dozen validation images give noisy per-pixel estimates), with the standard deviation floored at a tenth of
    its median so that no pixel is divided by almost nothing.

    Args:
        residual, uncertainty: the ``(N, 1, H, W)`` maps of N clean validation images.
        smooth: the Gaussian's standard deviation in pixels.

    Returns:
        ``{"residual_mean", "residual_std", "uncertainty_mean", "uncertainty_std"}``, each ``(1, 1, H, W)``: what
        :func:`combined_map` takes.
    """

    def stats(maps: torch.Tensor):
        mean = _blur(maps.float().mean(0, keepdim=True), smooth)
        std = _blur(maps.float().std(0, keepdim=True), smooth) if len(maps) > 1 else torch.ones_like(mean)
        return mean, std.clamp_min(0.1 * float(std.median()) + 1e-12)

    (rm, rs), (um, us) = stats(residual), stats(uncertainty)
    return {"residual_mean": rm, "residual_std": rs, "uncertainty_mean": um, "uncertainty_std": us}


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    radius = int(3 * sigma + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


def combined_map(residual: torch.Tensor, uncertainty: torch.Tensor, normalizer: dict) -> torch.Tensor:
    """Average of the residual and uncertainty maps, each standardised per pixel by clean validation statistics.

    Why this combination: the paper finds that the residual misses low-contrast defects (the reconstruction is
    clean but close to the input) while the uncertainty catches them, and that the uncertainty raises false
    positives on clean structures (edges and fine texture are always uncertain).  Those false positives are
    *systematic*: they appear on clean validation images too, at the same places.  Standardising each map by its
    per-pixel mean and spread on clean images turns "always high here" into "normal here", which removes them, and
    the sum keeps whatever either map finds unusual, so low-contrast defects still come through the uncertainty
    term.  Negative z-scores (less than usual) are clipped to 0.  A plain product would need both maps to fire and
    would lose the low-contrast defects again.  Chapter 8 measures it against both maps.

    Args:
        residual, uncertainty: the ``(B, 1, H, W)`` maps of the images to score.
        normalizer: :func:`fit_normalizer`'s statistics.

    Returns:
        The ``(B, 1, H, W)`` combined map.
    """
    z_res = (residual - normalizer["residual_mean"].to(residual)) / normalizer["residual_std"].to(residual)
    z_unc = (uncertainty - normalizer["uncertainty_mean"].to(uncertainty)) / normalizer["uncertainty_std"].to(
        uncertainty
    )
    return 0.5 * (z_res.clamp_min(0) + z_unc.clamp_min(0))


def image_score(anomaly_map: torch.Tensor, p: float = 2) -> torch.Tensor:
    """The L^p norm of each map (eq. 1 of the paper), ``(B,)``; p = 2 is the paper's choice.

    Example: ``image_score(residual_map(x, model(x)))`` gives one score per image of ``x``; higher is more
    anomalous.
    """
    if anomaly_map.dim() != 4:
        raise ValueError(f"anomaly_map must be (B, 1, H, W), got {tuple(anomaly_map.shape)}")
    return anomaly_map.float().flatten(1).abs().pow(p).sum(1).pow(1 / p)


METHODS = ("residual", "uncertainty", "combined")
"""The anomaly maps: the residual, the uncertainty, and their standardised combination."""


def anomaly_maps(
    model, images: torch.Tensor, methods=METHODS, n_samples: int = 30, val_images=None, batch_size: int = 32
) -> dict:
    """The reconstruction and the anomaly maps ``methods`` of ``images`` (all on the CPU).

    ``combined`` needs ``val_images``, clean images whose residual and uncertainty statistics standardise the maps.
    ``batch_size`` is the reconstruction's batch.

    Returns:
        ``{"reconstruction", "residual", "uncertainty", "combined"}``, each ``(B, ., H, W)``: the reconstruction and
        the residual always, the others where ``methods`` asks for them (the uncertainty for the combined map too).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    recon = reconstruct(model, images, batch_size).cpu()
    maps = {"reconstruction": recon, "residual": residual_map(images, recon)}
    if "uncertainty" in methods or "combined" in methods:
        maps["uncertainty"] = uncertainty_map(model, images, n_samples=n_samples, seed=0).cpu()
    if "combined" in methods:
        if val_images is None:
            raise ValueError("the combined map needs val_images (clean images) to standardise the maps")
        norm = fit_normalizer(
            residual_map(val_images, reconstruct(model, val_images, batch_size).cpu()),
            uncertainty_map(model, val_images, n_samples=n_samples, seed=1).cpu(),
        )
        maps["combined"] = combined_map(maps["residual"], maps["uncertainty"], norm)
    return maps
