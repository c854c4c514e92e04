"""What every corruption model shares: the call protocol, its checks and the base class (book chapter 2, "Corruptions").

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

:class:`CorruptionModel` checks the input and picks the output tensors; a model only writes its :meth:`apply`.
The Stain model lives in :mod:`stainlib.stain`, the others and the registry of names in :mod:`stainlib.noise`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["MIN_SIDE", "CorruptionModel", "check_image"]

MIN_SIDE = 32


def check_image(image, values: bool = True) -> None:
    """Raise ``ValueError`` unless ``image`` is a float ``(B, C, H, W)`` tensor in [0, 1], C in {1, 3}, H, W >= 32.

    With ``values=False`` only the type, shape and dtype are checked (no pass over the data, no host sync).

    Example: ``check_image(torch.rand(2, 1, 64, 64))`` passes; a uint8 or 16 px batch raises.
    """
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a torch.Tensor of shape (B, C, H, W), got {type(image).__name__}")
    if image.dim() != 4:
        raise ValueError(f"image must have rank 4 (B, C, H, W), got shape {tuple(image.shape)}")
    if image.device.type == "meta":
        raise ValueError("image is on the 'meta' device, which holds no values: use a cpu, cuda or mps tensor")
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
        """Write the corruption of ``image`` into ``corrupted`` and its mask into ``mask``: what each model defines.

        Args:
            image: the checked ``(B, C, H, W)`` float batch in [0, 1].
            generator: the ``torch.Generator`` every random draw comes from.
            corrupted: an output buffer shaped as ``image``, to fill with the corrupted images in [0, 1].
            mask: a ``(B, 1, H, W)`` bool output buffer, to fill with True where the corruption changed the image.
        """
        raise NotImplementedError
