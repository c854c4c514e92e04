"""Training images per second of the paper's AESc at 256 px and 128 px, on the machine at hand.

Three variants, measured in the same run: plain eager, channels_last, and torch.compile (where it works); each is
printed with its speed-up over eager.  On CUDA, training runs in bf16 autocast (as stainlib.train does) and the
achieved FLOP/s are printed with their fraction of the device's dense bf16 peak.  Batch 16, stain corruption on the
device, Adam, as in stainlib.train.
"""

import time

import torch
from torch.nn import functional as F

from stainlib.models import AESc
from stainlib.noise import get_corruption
from stainlib.train import pick_device

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "T4": 65e12, "A10": 125e12}


def step_flops(model, x):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        F.mse_loss(model(x), x).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def images_per_second(side, variant, device, steps):
    torch.manual_seed(0)
    model = AESc().to(device)
    fmt = torch.channels_last if variant in ("channels_last", "compile") else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = torch.compile(model) if variant == "compile" else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stain = get_corruption("stain")
    g = torch.Generator(device=device).manual_seed(0)
    clean = torch.rand(16, 1, side, side, device=device)
    amp = device.type == "cuda"

    def step():
        corrupted, _ = stain(clean, g)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.mse_loss(net(corrupted.contiguous(memory_format=fmt)).float(), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * 16 / (time.perf_counter() - start), step_flops(model, clean) / 16


def main():
    device = pick_device()
    steps = 20 if device.type == "cuda" else 3
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"AESc training throughput on {device} ({name}), batch 16")
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    for side in (256, 128):
        base = None
        for variant in ("eager", "channels_last", "compile"):
            try:
                ips, flops = images_per_second(side, variant, device, steps)
            except Exception as exc:  # torch.compile needs a working compiler toolchain
                print(f"  {side} px {variant:13s}: not available ({type(exc).__name__}: {str(exc)[:80]})")
                continue
            base = base or ips
            line = f"  {side} px {variant:13s}: {ips:8.1f} images/s, {ips / base:4.2f}x eager"
            if device.type == "cuda":
                achieved = ips * flops
                line += f", {achieved / 1e12:6.1f} TFLOP/s"
                if peak:
                    line += f" ({achieved / peak:.1%} of bf16 peak)"
            print(line)


if __name__ == "__main__":
    main()
