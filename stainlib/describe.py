"""A run in words, from its own files: its data, size, budget and device, as every page and table phrases them
(all chapters; chapter 4, "Training", explains the budget).

:func:`budget_text` phrases a training budget in the units that compare across datasets, :func:`device_words` a
device, and :func:`run_where` a whole run folder (its ``config.json`` and ``metrics.json``).
"""

from __future__ import annotations

from pathlib import Path

from .checkpoints import read_config
from .data import MVTecAD
from .epochs import budget
from .runs import read_metrics
from .spec import stored_settings
from .synthetic import is_synthetic_category

__all__ = ["budget_text", "decoder_words", "device_words", "run_where"]


def budget_text(budget: dict, batch_size: int) -> str:
    """A training budget in the units that compare across datasets: epochs, optimiser steps and images seen.

    ``budget`` is :func:`stainlib.epochs.budget`'s dict, or the one a run records in its ``config.json``: the one
    phrasing of a budget on every page and table.
    """
    b = budget
    per, n = b["samples_per_epoch"], b["n_train"]
    epoch = f"{per:,} images" if per == n else f"{per:,} images drawn from {n:,} training images"
    return (
        f"{b['epochs']} epoch{'s' if b['epochs'] != 1 else ''} of {epoch} in batches of {batch_size}: "
        f"{b['steps']:,} step{'s' if b['steps'] != 1 else ''}, {b['images_seen']:,} images seen"
    )


def decoder_words(decoder: str) -> str:
    """``"the paper's decoder"`` or ``"the `legacy` decoder"``: a decoder reading (:data:`stainlib.models.DECODERS`)
    as a sentence or a table title names it."""
    return "the paper's decoder" if decoder == "paper" else f"the `{decoder}` decoder"


def device_words(device: str) -> str:
    """``"the CPU"`` or ``"a GPU (cuda:0)"``: a device as a sentence names it."""
    return "the CPU" if str(device).startswith("cpu") else f"a GPU ({device})"


def run_where(run, n_train: int | None = None, per_run: bool = False) -> str:
    """What a committed or trained run is, in words, from its own files: data, size, budget, device (and seed).

    ``n_train``: the number of training images, where the budget is to be computed for that count rather than read
    from the run.  ``per_run`` describes the budget shared by the runs of a folder (no seed); otherwise the run's
    seed is named.
    """
    run = Path(run)
    config = read_config(run)
    s = stored_settings(config)
    b = config.get("budget")  # recorded by the trainer
    if b is None or n_train is not None:  # a run made before budgets were recorded, or a count given: compute it
        if n_train is None:
            n_train = len(MVTecAD(s["data_root"], s["category"], "train", size=s["image_size"]))
        b = budget(n_train, 0, s["epochs"], s["batch_size"], s.get("samples_per_epoch"))
    device = read_metrics(run).get("residual", {}).get("device")
    kind = "synthetic" if is_synthetic_category(s["category"]) else "MVTec AD"
    return (
        f"{kind} `{s['category']}`, {s['image_size']} px {s['color']}, "
        f"{budget_text(b, s['batch_size'])}"
        + (" per run" if per_run else f", seed {s['seed']}")
        + f", {decoder_words(s.get('decoder', 'paper'))}"
        + (f", trained on {device_words(device)}" if device else "")
    )
