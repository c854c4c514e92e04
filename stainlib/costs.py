"""What a training costs: FLOPs of a step, counted by torch, and time estimates from them (book chapter 4, "Training").

:func:`step_flops` counts the floating-point operations of one optimiser step (forward and backward, MSE loss) with
:class:`torch.utils.flop_counter.FlopCounterMode` on the ``meta`` device: no memory, no computation, a fraction of a
second.  Convolutions and matrix products are counted; batch norm, activations and the optimiser are not (they are
memory-bound and small in FLOPs).

:func:`estimate_seconds` turns FLOPs into a time range for a device of :data:`DEVICES`: its datasheet peak times an
*assumed* utilisation range, and never less than an assumed floor per step (kernel launches dominate a small network
on a fast GPU).  These are estimates, and the pages that print them say so; ``benchmarks/bench_train.py`` and
``tools/gpu_check.sh`` measure.  :func:`measured_step_seconds` reads what a trained run actually took.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import read_config
from .models import build_model

__all__ = ["DEVICES", "Device", "estimate_seconds", "measured_step_seconds", "step_flops"]


@dataclass(frozen=True)
class Device:
    """A GPU as the estimates see it: its peak, the precision of that peak, and the assumptions made about it."""

    name: str
    peak_tflops: float  # the vendor's datasheet, dense (no sparsity)
    precision: str
    utilisation: tuple[float, float]  # assumed fraction of the peak a 5x5 conv net at batch 16 reaches
    min_step_seconds: float  # assumed floor: launching the step's ~200 kernels


DEVICES = {
    "T4": Device("Colab T4", 65.0, "fp16 tensor cores", (0.05, 0.20), 0.005),
    "H200": Device("one H200", 989.0, "bf16 tensor cores", (0.05, 0.10), 0.002),
}


def step_flops(
    model: str = "aesc", image_size: int = 256, batch_size: int = 16, in_channels: int = 1, **model_kwargs
) -> int:
    """FLOPs of one training step (forward, MSE loss, backward) of a stainlib network, counted on the meta device
    (nothing is computed or allocated).

    Args:
        model: ``"aesc"`` or ``"ae"`` (:func:`stainlib.models.build_model`).
        image_size: the side of the images, a positive multiple of 64.
        batch_size: images per step.
        in_channels: 1 (grey) or 3 (RGB).
        **model_kwargs: passed to :func:`~stainlib.models.build_model`.

    Returns:
        The count, as ``torch.utils.flop_counter`` gives it.

    Raises:
        ValueError: ``image_size`` is not a positive multiple of 64.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if image_size % 64 or image_size <= 0:
        raise ValueError(f"image_size must be a positive multiple of 64, got {image_size}")
    with torch.device("meta"):
        net = build_model(model, in_channels=in_channels, **model_kwargs)
        x = torch.empty(batch_size, in_channels, image_size, image_size)
    counter = FlopCounterMode(display=False)
    with counter:
        ((net(x) - x) ** 2).mean().backward()
    return int(counter.get_total_flops())


def estimate_seconds(flops_per_step: float, steps: int, device: str) -> tuple[float, float]:
    """How long ``steps`` training steps take on ``device``: an estimate from its peak and an assumed utilisation.

    Args:
        flops_per_step: :func:`step_flops`'s count.
        steps: the number of optimiser steps.
        device: a key of :data:`DEVICES`.

    Returns:
        ``(fastest, slowest)`` seconds.
    """
    d = DEVICES[device]
    per_step = [max(flops_per_step / (d.peak_tflops * 1e12 * u), d.min_step_seconds) for u in d.utilisation]
    return min(per_step) * steps, max(per_step) * steps


def measured_step_seconds(run) -> float:
    """Median seconds per optimiser step of a trained run, from its ``history.csv`` and the budget in ``config.json``.

    The median over epochs leaves out the first epoch's warm-up and any epoch slowed by other work on the machine.

    Args:
        run: a trained run folder.

    Returns:
        Seconds per optimiser step.

    Raises:
        ValueError: the run has no epoch times, or its ``config.json`` records no budget.
    """
    run = Path(run)
    with open(run / "history.csv", newline="") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    steps = read_config(run).get("budget", {}).get("steps_per_epoch")
    if not seconds or not steps:
        raise ValueError(f"{run.name}: no epoch times or no recorded budget (steps per epoch) to measure from")
    return statistics.median(seconds) / steps
