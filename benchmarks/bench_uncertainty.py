"""Time of uncertainty_map (30 MC-dropout samples) against 30 plain forward passes of the same model and batch.

Both in one run, on the best device at hand: the paper's AESc, a batch of 8 grayscale images at 256 px (4 on the CPU
at 128 px, to keep the run short there).  Target: ratio <= 1.0 (the levels before the first dropout are computed
once per image and shared by its 30 samples).  Each time is the fastest of several calls.
"""

import time

import torch

from stainlib.detect import uncertainty_map
from stainlib.models import AESc
from stainlib.train import pick_device


def timed(fn, device, repeats=5):
    """Seconds of the fastest of ``repeats`` calls (other work on a shared machine only ever slows a call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    device = pick_device()
    cpu = device.type == "cpu"
    batch, side = (4, 128) if cpu else (8, 256)
    model = AESc().to(device).eval()
    x = torch.rand(batch, 1, side, side, device=device)

    @torch.no_grad()
    def plain():
        for _ in range(30):
            model(x)

    t_plain = timed(plain, device)
    t_mc = timed(lambda: uncertainty_map(model, x, n_samples=30), device)
    t_plain = min(t_plain, timed(plain, device))  # again after: neither side gets only the quiet moments
    print(f"uncertainty_map, 30 samples, batch {batch} at {side} px on {device}")
    print(f"  30 plain forward passes: {t_plain * 1000:8.1f} ms")
    print(f"  uncertainty_map:         {t_mc * 1000:8.1f} ms")
    print(f"  ratio: {t_mc / t_plain:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
