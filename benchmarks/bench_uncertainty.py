"""Time of uncertainty_map (30 MC-dropout samples) against 30 plain forward passes of the same model and batch.

All in one run, on the best device at hand: the paper's AESc, a batch of 8 grayscale images at 256 px (4 on the CPU
at 128 px, to keep the run short there).  Target: ratio <= 1.0 (the levels before the first dropout are computed
once per image and shared by its 30 samples).  The plain passes are timed in both memory layouts: contiguous (a
model as :func:`stainlib.train.load_run` gives it) and channels_last, the layout ``uncertainty_map`` switches the
network to on the CPU; the ratio against the layout the library uses on the device is the one that counts, and both
are printed.  Each time is the fastest of several rounds, the variants alternating from round to round (other work
on a shared machine only ever slows a round down).

    python benchmarks/bench_uncertainty.py [--rounds 5] [--threads N]
"""

import argparse
import copy
import time

import torch

from stainlib.detect import uncertainty_map
from stainlib.models import AESc
from stainlib.train import pick_device


def best_times(variants: dict, device, rounds: int) -> dict:
    """Seconds of the fastest call of each variant over ``rounds`` rounds, alternating their order."""
    for fn in variants.values():  # warm-up
        fn()
    best = dict.fromkeys(variants, float("inf"))
    names = list(variants)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            variants[name]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads on the CPU (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    cpu = device.type == "cpu"
    batch, side = (4, 128) if cpu else (8, 256)
    torch.manual_seed(0)
    model = AESc().to(device).eval()
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = torch.rand(batch, 1, side, side, device=device)

    def plain(net):
        with torch.no_grad():
            for _ in range(30):
                net(x)

    times = best_times(
        {
            "contiguous": lambda: plain(model),
            "channels_last": lambda: plain(model_cl),
            "uncertainty_map": lambda: uncertainty_map(model, x, n_samples=30),
        },
        device,
        args.rounds,
    )
    library = "channels_last" if cpu else "contiguous"  # the layout uncertainty_map runs the network in
    threads = f", {torch.get_num_threads()} threads" if cpu else ""
    print(f"uncertainty_map, 30 samples, batch {batch} at {side} px on {device}{threads}, best of {args.rounds}")
    for name in ("contiguous", "channels_last"):
        mark = "  <- the library's layout here" if name == library else ""
        print(f"  30 plain forward passes, {name:13s}: {times[name] * 1000:8.1f} ms{mark}")
    print(f"  uncertainty_map:                         {times['uncertainty_map'] * 1000:8.1f} ms")
    for name in ("contiguous", "channels_last"):
        print(f"  ratio to the {name} passes: {times['uncertainty_map'] / times[name]:.2f}")
    print(f"ratio: {times['uncertainty_map'] / times[library]:.2f} (target <= 1.0; plain passes in {library})")


if __name__ == "__main__":
    main()
