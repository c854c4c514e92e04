"""The pixel metrics on the whole MVTec AD test set's worth of pixels: 1,725 maps of 256 x 256 (113 M float32 pixels).

Synthetic MVTec-like data: 467 good images and 1,258 defective ones with one to three elliptic defects each (1.9 %
defective pixels), and float32 anomaly maps that are noise plus a weaker, uneven signal over the defects.
The data is written once to a temporary folder; each method then runs in a fresh child process that loads it, so
that the peak resident memory of each (``ru_maxrss`` after minus before the call) can be told apart.

Targets: ``pixel_auroc`` >= 10x faster than ``sklearn.metrics.roc_auc_score`` with |difference| <= 1e-9;
``aupro`` and ``f1_max`` at most about 2x the time of ``pixel_auroc``, each with a peak memory of at most about
2x the input (the map and the boolean mask).  ``--images 300`` runs a smaller version; ``--no-sklearn`` skips the
reference (about a minute and 6 GB at full size).
"""

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 256


def make_data(n_images: int, folder: Path) -> None:
    rng = np.random.default_rng(0)
    n_good = round(n_images * 467 / 1725)
    masks = np.zeros((n_images, 1, SIZE, SIZE), bool)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(n_good, n_images):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(20, SIZE - 20, 2)
            ry, rx = rng.uniform(3, 30, 2)
            masks[i, 0] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    maps = rng.random(masks.shape, dtype=np.float32)  # filled in place, in chunks: no large temporaries
    for i in range(0, n_images, 64):
        m = masks[i : i + 64]
        maps[i : i + 64] += m * rng.random(m.shape, dtype=np.float32)
    np.save(folder / "anomaly_map.npy", maps)
    np.save(folder / "gt_mask.npy", masks)


def run(method, folder, queue):
    import torch
    from sklearn.metrics import roc_auc_score

    from stainlib.metrics import aupro, f1_max, pixel_auroc

    maps = torch.from_numpy(np.load(folder / "anomaly_map.npy"))
    masks = torch.from_numpy(np.load(folder / "gt_mask.npy"))
    functions = {
        "sklearn roc_auc_score": lambda: roc_auc_score(masks.numpy().ravel(), maps.numpy().ravel()),
        "pixel_auroc": lambda: pixel_auroc(maps, masks),
        "aupro": lambda: aupro(maps, masks),
        "f1_max": lambda: f1_max(maps, masks),
    }
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()  # imports and loading are outside the timed part, for every method
    value = functions[method]()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    queue.put((value, seconds, peak * 1024))


def measure(method, folder):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=run, args=(method, folder, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1725)
    parser.add_argument("--no-sklearn", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(args.images, folder)
        n = args.images * SIZE * SIZE
        input_bytes = n * (4 + 1)  # float32 map and boolean mask
        positive = np.load(folder / "gt_mask.npy", mmap_mode="r").mean()
        print(
            f"{args.images:,} maps of {SIZE}x{SIZE}: {n:,} float32 pixels, {positive:.1%} defective, "
            f"input {input_bytes / 2**30:.2f} GiB (map + bool mask)"
        )
        methods = ["pixel_auroc", "aupro", "f1_max"] + ([] if args.no_sklearn else ["sklearn roc_auc_score"])
        results = {m: measure(m, folder) for m in methods}
    base_s = results["pixel_auroc"][1]
    for method, (value, seconds, peak) in results.items():
        print(
            f"  {method:22s} {seconds:7.2f} s = {seconds / base_s:5.2f}x pixel_auroc, peak memory "
            f"+{peak / 2**30:5.2f} GiB = {peak / input_bytes:4.2f}x input, value {value:.12f}"
        )
    print("  targets: aupro and f1_max <= ~2x pixel_auroc's time and <= ~2x the input's memory")
    if "sklearn roc_auc_score" in results:
        ref, ref_s, _ = results["sklearn roc_auc_score"]
        ours = results["pixel_auroc"][0]
        print(
            f"  pixel_auroc speed-up over sklearn: {ref_s / base_s:.1f}x (target >= 10); "
            f"|difference| = {abs(ours - ref):.2e} (target <= 1e-9)"
        )


if __name__ == "__main__":
    main()
