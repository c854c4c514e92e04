"""Training images per second of the paper's AESc, on the machine at hand (or the ``--device`` named).

Three variants, measured in the same run: plain eager, channels_last, and torch.compile (where it works); each is
printed with its speed-up over eager.  The step is stainlib.train's: batch 16, Stain corruption generated on the
device into the same buffers every step, without the value scan (the trainer checks its images once), MSE loss,
Adam, the loss kept on the device (no read-back per step); in the trainer's precision (``pick_precision``: bf16
autocast from compute capability 8.0, fp16 autocast with a gradient scaler below, fp32 on the CPU).

On CUDA it also prints the GPU lines that ``tools/gpu_check.sh`` reads: the images/s at 256^2 of the fastest
variant, the achieved TFLOP/s and their fraction of the device's dense bf16 peak (from the table below; "unknown" for
a GPU not in it).

    python benchmarks/bench_train.py                 # 256, 128 and 64 px, every variant
    python benchmarks/bench_train.py --quick         # 256 px only, fewer steps (the GPU check)
    python benchmarks/bench_train.py --device cuda --sizes 256
"""

import argparse
import time

import torch
from torch.nn import functional as F

from stainlib.models import AESc
from stainlib.noise import get_corruption
from stainlib.train import adam, pick_device, pick_precision

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets (SXM parts for H100/H200/A100).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12, "T4": 65e12}
BATCH = 16


def peak_bf16(name: str):
    """The dense bf16 peak of a GPU from its name, or None when it is not in :data:`PEAK_BF16`."""
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def step_flops(model, x):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        F.mse_loss(model(x), x).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def images_per_second(side, variant, device, steps, rounds=2):
    torch.manual_seed(0)
    model = AESc().to(device)
    fmt = torch.channels_last if variant in ("channels_last", "compile") else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = torch.compile(model) if variant == "compile" else model
    opt = adam(model.parameters(), 1e-3, device)  # the trainer's optimiser
    stain = get_corruption("stain")
    g = torch.Generator(device=device).manual_seed(0)
    clean = torch.rand(BATCH, 1, side, side, device=device)
    out = (torch.empty_like(clean), torch.empty(BATCH, 1, side, side, dtype=torch.bool, device=device))
    precision = pick_precision(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    losses = []

    def step():
        corrupted, _ = stain(clean, g, out=out, check_values=False)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.mse_loss(net(corrupted.contiguous(memory_format=fmt)).float(), clean)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.detach())

    for _ in range(3):  # warm-up (and compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    best = 0.0
    for _ in range(rounds):  # the best round: the machine may be shared, and other work only ever slows a round
        losses.clear()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        torch.stack(losses).sum().item()  # the one read-back, as once per epoch in the trainer
        best = max(best, steps * BATCH / (time.perf_counter() - start))
    return best, step_flops(model, clean) / BATCH


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:1, ...")
    parser.add_argument("--quick", action="store_true", help="256 px only, fewer steps")
    parser.add_argument("--sizes", type=int, nargs="+", help="image sides (default 256 128 64; 256 with --quick)")
    parser.add_argument("--variants", nargs="+", default=["eager", "channels_last", "compile"])
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    sizes = args.sizes or ([256] if args.quick else [256, 128, 64])
    steps = (10 if args.quick else 30) if cuda else (2 if args.quick else 3)
    rounds = 2 if args.quick else 3
    name = torch.cuda.get_device_name(device) if cuda else f"{device.type}, {torch.get_num_threads()} threads"
    print(
        f"AESc training throughput on {device} ({name}, {pick_precision(device)}), batch {BATCH}, "
        f"best of {rounds} rounds of {steps} steps"
    )
    peak = peak_bf16(name) if cuda else None
    best = {}
    for side in sizes:
        base = None
        for variant in args.variants:
            try:
                ips, flops = images_per_second(side, variant, device, steps, rounds)
            except Exception as exc:  # torch.compile needs a working compiler toolchain
                print(f"  {side} px {variant:13s}: not available ({type(exc).__name__}: {str(exc)[:80]})")
                continue
            base = base or ips
            line = f"  {side} px {variant:13s}: {ips:8.1f} images/s, {ips / base:4.2f}x eager"
            if cuda:
                achieved = ips * flops
                line += f", {achieved / 1e12:6.1f} TFLOP/s"
                line += f" ({achieved / peak:.1%} of bf16 peak)" if peak else " (bf16 peak unknown)"
            print(line)
            if ips > best.get(side, (0, None, 0))[0]:
                best[side] = (ips, variant, ips * flops)
    if cuda and 256 in best:
        ips, variant, achieved = best[256]
        print(f"GPU images/s at 256^2: {ips:.1f} ({variant})")
        fraction = f"{achieved / peak:.1%}" if peak else f"unknown ({name})"
        print(f"GPU fraction of bf16 peak: {fraction}")


if __name__ == "__main__":
    main()
