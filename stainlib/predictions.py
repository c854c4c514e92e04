"""A run's predictions written to a folder: ``predictions.csv``, one heatmap PNG per image and ``summary.txt``
(book chapter 8, "Beyond the paper", section "Your own images"; ``stainlib predict --out``).

:func:`write_predictions` takes :func:`stainlib.predict.predict`'s result.  Each heatmap is the image with its
anomaly map over it, on one colour scale shared by every image, the pixel threshold marked on the colour bar and the
flagged region outlined (:func:`heatmap_figure`); its title prints the score and the image threshold with as many
digits as it takes to tell them apart.  :func:`summary_text` says how many images were flagged, by which map and
thresholds, chosen how.  :func:`showcase` picks four images to look at once the truth is known, and
:func:`showcase_figure` draws them on one colour scale, for a page.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .files import atomic_write

__all__ = ["heatmap_figure", "showcase", "showcase_figure", "summary_text", "write_predictions"]


def _draw_heatmap(ax, image, anomaly_map, pred_mask, vmax: float):
    """The image in grey, its anomaly map over it (``inferno``, half transparent, 0 to ``vmax``), the flagged pixels
    outlined in cyan; the map's image, for a colour bar."""
    from .plotting import to_numpy_image

    picture = to_numpy_image(image)
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
    shown = ax.imshow(anomaly_map[0].numpy(), cmap="inferno", vmin=0, vmax=vmax, alpha=0.5)
    if bool(pred_mask.any()):
        ax.contour(pred_mask[0].numpy().astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def heatmap_figure(image, anomaly_map, pred_mask, vmax: float, pixel_threshold: float, title: str = ""):
    """One image with its anomaly map over it, a colour bar marking the pixel threshold, the flagged region outlined.

    A :class:`matplotlib.figure.Figure` (no pyplot state): save it with ``fig.savefig``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6, 3.2), layout="constrained")
    ax = fig.subplots()
    shown = _draw_heatmap(ax, image, anomaly_map, pred_mask, vmax)
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.axhline(pixel_threshold, color="cyan", linewidth=1)
    bar.ax.tick_params(labelsize=8)
    return fig


def _vmax(result: dict) -> float:
    """The top of the colour scale every heatmap of ``result`` shares: its largest map value, or the pixel threshold."""
    top = float(result["anomaly_map"].max()) if len(result["pred_score"]) else 0.0
    return max(top, result["pixel_threshold"], 1e-12)


def _decision(result: dict, i: int) -> tuple[str, str]:
    """Image ``i``'s decision and its score against the image threshold, e.g. ``("DEFECTIVE", "score 5.1 > 3.6")``."""
    score, label = float(result["pred_score"][i]), bool(result["pred_label"][i])
    a, b = _apart(score, result["image_threshold"])
    return ("DEFECTIVE" if label else "good"), f"score {a} {'>' if label else '<='} {b}"


def showcase(result: dict, truth) -> dict:
    """Four images worth looking at once the truth is known: ``{title: index}`` of the defective image scored
    highest and lowest and the good image scored highest and lowest.

    Args:
        result: :func:`stainlib.predict.predict`'s result.
        truth: one bool per image, True where it is defective (read after the decisions, e.g. from folder names).

    Raises:
        ValueError: the images are not both defective and good ones.
    """
    import torch

    truth = torch.as_tensor(truth, dtype=torch.bool)
    score = torch.as_tensor(result["pred_score"])
    defective, good = torch.nonzero(truth).flatten(), torch.nonzero(~truth).flatten()
    if len(defective) == 0 or len(good) == 0:
        raise ValueError(f"a showcase needs defective and good images, got {len(defective)} and {len(good)}")
    return {
        "defective, highest score": int(defective[score[defective].argmax()]),
        "defective, lowest score": int(defective[score[defective].argmin()]),
        "good, highest score": int(good[score[good].argmax()]),
        "good, lowest score": int(good[score[good].argmin()]),
    }


def showcase_figure(result: dict, truth, data_words: str = ""):
    """:func:`showcase`'s four images in a 2 x 2 grid, each with its anomaly map over it and its decision, on the one
    colour scale of :func:`write_predictions`' heatmaps, with one colour bar marking the pixel threshold.

    Sized to be read at a book's column width (about 7 inches): titles and labels at 10 pt.  ``data_words`` names
    the data in the suptitle (e.g. ``"real MVTec AD bottle"``).  Returns a :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    picked = showcase(result, truth)
    vmax = _vmax(result)
    fig = Figure(figsize=(6.7, 6.4), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, (title, i) in zip(axes.flat, picked.items()):
        shown = _draw_heatmap(ax, result["image"][i], result["anomaly_map"][i], result["pred_mask"][i], vmax)
        decision, score = _decision(result, i)
        ax.set_title(f"truth: {title}\ndecision: {decision}\n({score})", fontsize=10)
    bar = fig.colorbar(shown, ax=axes, fraction=0.04, pad=0.02)
    bar.ax.axhline(result["pixel_threshold"], color="cyan", linewidth=2)
    bar.set_label(f"{result['map']} map (cyan: the pixel threshold)", fontsize=10)
    bar.ax.tick_params(labelsize=9)
    if data_words:
        fig.suptitle(data_words, fontsize=11)
    return fig


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with 4 significant digits, or as many more as it takes to print them apart (up to 9)."""
    for digits in range(4, 10):
        x, y = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if x != y or a == b:
            break
    return x, y


def _relative(paths: list[str]) -> list[Path]:
    """Each path below the folder all of them share (``hole/000.png``)."""
    resolved = [Path(p).resolve() for p in paths]
    common = Path(os.path.commonpath([p.parent for p in resolved])) if resolved else Path()
    return [p.relative_to(common) for p in resolved]


def _heatmap_names(paths: list[str]) -> list[str]:
    """A PNG name per image, from its path below the folder all of them share (``hole__000.png``); unique."""
    names, seen = [], set()
    for rel in _relative(paths):
        stem = "__".join((*rel.parts[:-1], rel.stem))
        name, n = f"{stem}.png", 1
        while name in seen:
            n += 1
            name = f"{stem}_{n}.png"
        seen.add(name)
        names.append(name)
    return names


def summary_text(result: dict) -> str:
    """What ``summary.txt`` says: how many images, how many flagged, the map and the thresholds with how chosen."""
    n, flagged = len(result["pred_score"]), int(result["pred_label"].sum())
    lines = [
        f"run: {result['run']}",
        f"images scored: {n}" + (f" ({len(result['skipped'])} paths skipped)" if result["skipped"] else ""),
        f"flagged defective: {flagged} of {n} (score above the image threshold)",
        f"map: {result['map']} ({result['map_reason']})"
        + (f", T = {result['n_samples']} MC-dropout passes" if result["n_samples"] else ""),
        f"image threshold: {result['image_threshold']:.6g}, {result['threshold_how']['image']}",
        f"pixel threshold: {result['pixel_threshold']:.6g}, {result['threshold_how']['pixel']}",
        f"device: {result['device']}",
    ]
    lines += [f"skipped: {why}" for _, why in result["skipped"]]
    return "\n".join(lines) + "\n"


def write_predictions(result: dict, out, progress: bool = False) -> dict:
    """Write ``predictions.csv``, ``heatmaps/<name>.png`` per image and ``summary.txt`` into ``out``; their paths.

    The CSV's columns: ``file, pred_score, pred_label, threshold, map, heatmap`` (``pred_label`` 1 = defective).
    Every heatmap shares one colour scale, from 0 to the largest map value of the images (or the pixel threshold).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    (out / "heatmaps").mkdir(parents=True, exist_ok=True)
    n = len(result["pred_score"])
    paths = [p if p is not None else f"image_{i:04d}.png" for i, p in enumerate(result["path"])]
    names, shown = _heatmap_names(paths), _relative(paths)
    vmax = _vmax(result)
    for i in tqdm(range(n), desc="heatmaps", unit="image", disable=not progress):
        decision, score = _decision(result, i)
        title = f"{shown[i]} ({result['map']})\n{decision} ({score})"
        fig = heatmap_figure(
            result["image"][i], result["anomaly_map"][i], result["pred_mask"][i], vmax, result["pixel_threshold"], title
        )
        # Each file is written beside its name and renamed (files.atomic_write): an interrupted call leaves whole
        # files, and a file hard-linked elsewhere (a copied run folder) is replaced, not written through.
        atomic_write(out / "heatmaps" / names[i], lambda tmp, fig=fig: fig.savefig(tmp, dpi=100, format="png"))
    csv_path = out / "predictions.csv"

    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "pred_score", "pred_label", "threshold", "map", "heatmap"])
            for i in range(n):
                w.writerow(
                    [
                        paths[i],
                        f"{float(result['pred_score'][i]):.9g}",
                        int(result["pred_label"][i]),
                        f"{result['image_threshold']:.9g}",
                        result["map"],
                        f"heatmaps/{names[i]}",
                    ]
                )

    atomic_write(csv_path, write_csv)
    atomic_write(out / "summary.txt", lambda tmp: tmp.write_text(summary_text(result)))
    return {"csv": csv_path, "summary": out / "summary.txt", "heatmaps": [out / "heatmaps" / m for m in names]}
