"""What an epoch trains on, and what a run's epochs cost: the seeded image order, the batches, and the budget in
optimiser steps and images seen (book chapter 4, "Training").

The random draws of epoch *e* come from generators seeded by (seed, e) and a stream number (:func:`epoch_generator`),
so that a resumed run draws what an uninterrupted one would.  An epoch is ``samples_per_epoch`` images (one pass over
the training split by default, or the authors' 2,000 drawn with repetition, :func:`epoch_order`), cut into batches
whose last one never holds a single image (:func:`epoch_batches`).  :func:`budget` counts what that costs.
"""

from __future__ import annotations

import math

import torch

__all__ = ["budget", "epoch_batches", "epoch_generator", "epoch_order"]


def epoch_generator(seed: int, epoch: int, stream: int, device) -> torch.Generator:
    """The generator of one stream of random draws of one epoch, on ``device``.

    Args:
        seed: the run's seed.
        epoch: the epoch (-1: draws made once, before the first epoch).
        stream: which draws: 0 the validation corruption, 1 the image order, 2 the training corruption, 3 the
            validation samples.
        device: where the generator draws.

    Returns:
        A ``torch.Generator`` seeded from the three numbers (the same numbers, the same draws).
    """
    return torch.Generator(device=device).manual_seed(((seed * 1_000_003 + epoch) * 7 + stream) % (2**63))


def epoch_order(n: int, count: int, seed: int, epoch: int) -> torch.Tensor:
    """``count`` indices of the ``n`` training images for one epoch: seeded permutations, concatenated as needed.

    Example: ``epoch_order(167, 2000, seed=0, epoch=3)`` holds each of bottle's 167 images 11 or 12 times.
    """
    g = epoch_generator(seed, epoch, 1, "cpu")
    return torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(count / n))])[:count]


def epoch_batches(count: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of the batches of an epoch of ``count`` images; a last batch of one joins the previous one.

    Example: ``epoch_batches(33, 16) == [(0, 16), (16, 33)]`` (batch norm cannot train on a single image whose
    deepest feature map is 1x1).
    """
    starts = list(range(0, count, batch_size))
    if len(starts) > 1 and count - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], count]))


def budget(n_train, n_val, epochs, batch_size, samples_per_epoch=None, val_samples=None) -> dict:
    """What a training run costs: images per epoch, optimiser steps, images seen, validation samples.

    Args:
        n_train, n_val: the sizes of the training and validation splits.
        epochs, batch_size: the run's.
        samples_per_epoch: images per epoch (None: one pass over the training split).
        val_samples: validation samples per epoch (None: each validation image once).

    Returns:
        ``{"n_train", "samples_per_epoch", "steps_per_epoch", "epochs", "steps", "images_seen", "val_samples"}``.
        The authors' budget (``spec.BUDGETS["paper"]``) is 2,000 images per epoch (125 steps of 16), 250 epochs:
        31,250 steps and 500,000 images.  One pass over bottle's 167 training images is 11 steps of 16.
    """
    per_epoch = samples_per_epoch or n_train
    steps_per_epoch = len(epoch_batches(per_epoch, batch_size))  # as trained: a last batch of one joins the one before
    return {
        "n_train": n_train,
        "samples_per_epoch": per_epoch,
        "steps_per_epoch": steps_per_epoch,
        "epochs": epochs,
        "steps": steps_per_epoch * epochs,
        "images_seen": per_epoch * epochs,
        "val_samples": val_samples or n_val,
    }
