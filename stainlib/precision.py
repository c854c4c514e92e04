"""Where and how a run computes: the device, the arithmetic (bf16, fp16 or fp32) with the gradient scaler fp16 needs,
the memory layout and ``torch.compile`` (book chapter 4, "Training").

:func:`pick_device` chooses the device (CUDA, Apple MPS or the CPU); :func:`pick_channels_last` and
:func:`pick_compile` what ``"auto"`` means for the memory layout and ``torch.compile`` on a device; none of these
changes what is trained.  :func:`pick_precision` chooses the precision for a device; :func:`autocast` is the
matching ``torch.autocast`` context (a disabled one for fp32) and :func:`grad_scaler` the matching
``torch.amp.GradScaler`` (disabled, so that every call passes straight through, except for fp16, whose narrow range
lets small gradients underflow to zero).
"""

from __future__ import annotations

import torch

__all__ = [
    "PRECISIONS",
    "autocast",
    "grad_scaler",
    "pick_channels_last",
    "pick_compile",
    "pick_device",
    "pick_precision",
]

PRECISIONS = ("bf16", "fp16", "fp32")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_precision(device, amp: str = "auto") -> str:
    """The arithmetic of training and validation on ``device``: ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    ``auto`` gives bf16 autocast on CUDA GPUs with native bf16 (compute capability 8.0 or more: A100, H100, RTX 30xx
    and later), fp16 autocast with a gradient scaler on older ones (the T4 of Colab is 7.5: it reports bf16 as
    supported, but emulates it, slowly), and fp32 on the CPU and elsewhere.  ``off`` is fp32; a precision name is
    taken as it is.

    Args:
        device: a ``torch.device`` or its name.
        amp: ``"auto"``, ``"off"`` or a precision name (``"bf16"``, ``"fp16"``, ``"fp32"``).

    Returns:
        The precision name: ``pick_precision("cpu") == "fp32"``.

    Raises:
        ValueError: ``amp`` is none of these.
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
    """``torch.autocast`` to the dtype of ``precision`` on ``device_type``; disabled (plain fp32) for ``"fp32"``.

    Args:
        device_type: ``"cpu"``, ``"cuda"`` or ``"mps"``.
        precision: ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    Returns:
        The context manager: ``with autocast("cuda", "bf16"): loss = ...``.

    Raises:
        ValueError: ``precision`` is not one of these.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = _AUTOCAST.get(precision)
    return torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None)


def grad_scaler(device_type: str, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler for ``precision``: enabled for fp16 only (a disabled one passes every call through).

    Args:
        device_type: ``"cpu"``, ``"cuda"`` or ``"mps"``.
        precision: ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    Returns:
        A ``torch.amp.GradScaler``; ``grad_scaler("cpu", "fp32").is_enabled() is False``.
    """
    return torch.amp.GradScaler(device_type, enabled=precision == "fp16")


def pick_device(name: str = "auto") -> torch.device:
    """The device to train and evaluate on.

    Args:
        name: ``"auto"`` (CUDA if present, else Apple MPS, else the CPU), or ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
            ``"mps"``.

    Returns:
        The ``torch.device``: ``pick_device("cpu") == torch.device("cpu")``.

    Raises:
        ValueError: the name is not a device, not one that can run a model, or not available on this machine.
    """
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {name!r}: {exc}") from exc
        if device.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device {name!r} cannot train or evaluate a model: use cpu, cuda, mps or auto (--device)")
        mps = getattr(torch.backends, "mps", None)
        if (device.type == "cuda" and not torch.cuda.is_available()) or (
            device.type == "mps" and not (mps is not None and mps.is_available())
        ):
            raise ValueError(f"device {name!r} is not available on this machine (use --device cpu or auto)")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_channels_last(device, image_size: int) -> str:
    """Whether ``channels_last="auto"`` trains in the channels_last memory layout: ``"on"`` or ``"off"``.

    On CUDA, on.  On the CPU, on from 128 px: ``benchmarks/bench_train.py`` measured it 1.25x eager at 256 px and
    1.21x at 128 px, but 0.87x at 64 px (batch 16; a step of batch 8, the book's fast profile: 0.84x).

    Args:
        device: a ``torch.device`` or its name.
        image_size: the side of the training images, in pixels.

    Returns:
        ``pick_channels_last("cpu", 256) == "on"``, ``pick_channels_last("cpu", 64) == "off"``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return "on"
    return "on" if device.type == "cpu" and image_size >= 128 else "off"


def pick_compile(device) -> str:
    """Whether ``compile="auto"`` trains through ``torch.compile`` on ``device``: ``"on"`` or ``"off"``.

    Off everywhere for now.  On the CPU it was measured slower than the eager network in channels_last (22.4 against
    27.5 training images/s at 256 px on 2 cores, ``benchmarks/bench_train.py``); on CUDA it stays off until a GPU
    measurement says otherwise: ``tools/gpu_check.sh`` prints bench_train's eager, channels_last and compile lines
    on the GPU, and the CUDA default is to be flipped here from those figures.

    Args:
        device: a ``torch.device`` or its name.

    Returns:
        ``"off"`` (``pick_compile("cuda") == "off"``).

    Raises:
        RuntimeError: ``device`` is not a device name (``torch.device`` refuses it).
    """
    torch.device(device)  # a device name that is not one is an error here too
    return "off"  # the CPU: measured slower; CUDA and MPS: not measured yet
