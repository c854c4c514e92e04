"""Where a real training epoch's time goes: ``stainlib train``'s step taken apart, on real data, on this machine.

Reads a category the way ``stainlib.runs.train`` does, then times, with the trainer's own settings (AESc, batch 16,
Stain, Adam, channels_last from 128 px, fp32 on the CPU), each part of an epoch of ``--samples-per-epoch`` images:

* data: reading and resizing the split into one tensor (once per ``fit``, not per epoch);
* per step: the gather of the batch, the Stain (into reused buffers, as the trainer draws it; fresh outputs
  with ``--fresh-outputs``), the layout copy, the forward pass and loss, the backward pass, the
  optimiser step;
* per epoch: the validation PSNR on ``--val-samples`` corrupted images, the in-memory copy of the state, and a
  checkpoint write (``last.pt`` + ``best.pt``, with their digests);

and, in the same run, ``benchmarks/bench_train.py``'s step (random images, the Stain into reused buffers) as the
baseline.  It prints milliseconds per step, the images/s of the trainer's step and of the benchmark's, and the
projected seconds of a whole epoch with its share per part.

    python benchmarks/profile_epoch.py --data-root /work/shared/data/mvtec_ad --category bottle --steps 20
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from stainlib import train as trainer
from stainlib.checkpoints import save_checkpoint
from stainlib.cli import _keep_large_blocks
from stainlib.data import MVTecAD
from stainlib.epochs import epoch_batches
from stainlib.models import AESc
from stainlib.noise import get_corruption


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--category", default="bottle")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20, help="training steps timed (after 2 of warm-up)")
    p.add_argument("--samples-per-epoch", type=int, default=2000)
    p.add_argument("--val-samples", type=int, default=500)
    p.add_argument("--val-timed", type=int, default=128, help="validation images actually timed (scaled up)")
    p.add_argument("--fresh-outputs", action="store_true", help="the Stain into fresh tensors (the trainer before)")
    args = p.parse_args(argv)
    _keep_large_blocks()  # as the command line does
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    cpu0 = time.process_time()

    t = time.perf_counter()
    kw = {"size": args.image_size, "color": "gray", "seed": 0}
    train_images = trainer.stack_images(MVTecAD(args.data_root, args.category, "train", **kw))
    val_images = trainer.stack_images(MVTecAD(args.data_root, args.category, "val", **kw))
    data_s = time.perf_counter() - t
    print(f"data: {len(train_images)} training + {len(val_images)} validation images read in {data_s:.1f} s (once)")

    device = torch.device("cpu")
    layout = trainer.pick_channels_last(device, args.image_size)
    fmt = torch.channels_last if layout == "on" else torch.contiguous_format
    model = AESc().to(memory_format=fmt)
    opt = trainer.adam(model.parameters(), 1e-3, device)
    stain = get_corruption("stain")
    g = torch.Generator().manual_seed(0)
    n, batch = len(train_images), 16
    order = torch.randint(n, ((args.steps + 2) * batch,), generator=g)
    parts = dict.fromkeys(["gather", "stain", "layout", "forward", "backward", "optimiser"], 0.0)
    side = args.image_size
    out = (torch.empty(batch, 1, side, side), torch.empty(batch, 1, side, side, dtype=torch.bool))
    reuse = {"out": out} if not args.fresh_outputs else {}

    def step(i, timed):
        marks = [time.perf_counter()]
        clean = train_images[order[i * batch : (i + 1) * batch]]
        marks.append(time.perf_counter())
        corrupted, _ = stain(clean, g, check_values=False, **reuse)
        marks.append(time.perf_counter())
        corrupted = corrupted.contiguous(memory_format=fmt)
        marks.append(time.perf_counter())
        loss = F.mse_loss(model(corrupted).float(), clean)
        marks.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        opt.step()
        marks.append(time.perf_counter())
        if timed:
            for key, a, b in zip(parts, marks, marks[1:]):
                parts[key] += b - a

    model.train()
    for i in range(2):
        step(i, False)
    t = time.perf_counter()
    for i in range(2, args.steps + 2):
        step(i, True)
    train_s = (time.perf_counter() - t) / args.steps
    print(f"trainer's step (batch {batch}, {args.image_size} px): {1000 * train_s:.0f} ms, {batch / train_s:.1f} img/s")
    for key, v in parts.items():
        print(f"  {key:10s} {1000 * v / args.steps:7.1f} ms  {v / args.steps / train_s:6.1%}")

    # The benchmark's step, in the same run: random images, the Stain into reused buffers.
    clean = torch.rand(batch, 1, side, side)

    def bench_step():
        corrupted, _ = stain(clean, g, out=out, check_values=False)
        loss = F.mse_loss(model(corrupted.contiguous(memory_format=fmt)).float(), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    bench_step()
    t = time.perf_counter()
    for _ in range(args.steps):
        bench_step()
    bench_s = (time.perf_counter() - t) / args.steps
    print(f"bench_train's step, same run: {1000 * bench_s:.0f} ms, {batch / bench_s:.1f} img/s")

    # Per epoch: validation, the in-memory copy of the state, a checkpoint write.
    pick = torch.randint(len(val_images), (args.val_timed,), generator=g)
    val, _ = stain(val_images[pick], g)
    t = time.perf_counter()
    trainer.evaluate_psnr(model, val, val_images[pick], batch)
    val_s = (time.perf_counter() - t) * args.val_samples / args.val_timed
    t = time.perf_counter()
    state = {"model": trainer._copy(model.state_dict()), "optimizer": trainer._copy(opt.state_dict())}
    copy_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        save_checkpoint(Path(tmp), "last.pt", state)
        save_checkpoint(Path(tmp), "best.pt", {"model": state["model"]})
        ckpt_s = time.perf_counter() - t
    steps = len(epoch_batches(args.samples_per_epoch, batch))
    epoch = {
        **{k: v / args.steps * steps for k, v in parts.items()},
        "validation": val_s,
        "state copy": 2 * copy_s,  # the last state and, when it improves, the best weights
        "checkpoint": ckpt_s / 2,  # written about every other epoch at ~150 s an epoch (checkpoint_seconds=300)
    }
    total = sum(epoch.values())
    print(
        f"an epoch of {args.samples_per_epoch} images ({steps} steps, {args.val_samples} validation samples): "
        f"{total:.0f} s projected, {args.samples_per_epoch / total:.1f} img/s"
    )
    for key, v in epoch.items():
        print(f"  {key:10s} {v:7.1f} s  {v / total:6.1%}")
    print(f"CPU time of this profile: {time.process_time() - cpu0:.0f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
