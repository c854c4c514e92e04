"""The arithmetic of training and validation: bf16, fp16 or fp32, and the gradient scaler fp16 needs (book chapter 4,
"Training").

:func:`pick_precision` chooses the precision for a device; :func:`autocast` is the matching ``torch.autocast``
context (a disabled one for fp32) and :func:`grad_scaler` the matching ``torch.amp.GradScaler`` (disabled, so that
every call passes straight through, except for fp16, whose narrow range lets small gradients underflow to zero).
"""

from __future__ import annotations

import torch

__all__ = ["PRECISIONS", "autocast", "grad_scaler", "pick_precision"]

PRECISIONS = ("bf16", "fp16", "fp32")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_precision(device, amp: str = "auto") -> str:
    """The arithmetic of training and validation on ``device``: ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    ``auto`` gives bf16 autocast on CUDA GPUs with native bf16 (compute capability 8.0 or more: A100, H100, RTX 30xx
    and later), fp16 autocast with a gradient scaler on older ones (the T4 of Colab is 7.5: it reports bf16 as
    supported, but emulates it, slowly), and fp32 on the CPU and elsewhere.  ``off`` is fp32; a precision name is
    taken as it is.
    """
    if amp in PRECISIONS:
        return amp
    if amp not in ("auto", "off"):
        raise ValueError(f"amp must be 'auto', 'off' or one of {', '.join(PRECISIONS)}, got {amp!r}")
    device = torch.device(device)
    if amp == "off" or device.type != "cuda":
        return "fp32"
    major, _minor = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def autocast(device_type: str, precision: str) -> torch.autocast:
    """``torch.autocast`` to the dtype of ``precision`` on ``device_type``; disabled (plain fp32) for ``"fp32"``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = _AUTOCAST.get(precision)
    return torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None)


def grad_scaler(device_type: str, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler for ``precision``: enabled for fp16 only (a disabled one passes every call through)."""
    return torch.amp.GradScaler(device_type, enabled=precision == "fp16")
