"""The Python half of ``tools/gpu_check.sh``: environment, training, evaluation and tables of the GPU check.

    python tools/gpu_check.py --data DATA_ROOT --out results/gpu [--steps N] [--smoke] environment|train|evaluate|tables

The runs are bottle AESc + stain, AESc + none and AE + none (the three columns of Tables I and II that tell the
paper's story) at the authors' budget, :data:`stainlib.spec.BUDGETS` ``paper``: 250 epochs of 2,000 training samples
(125 steps of 16) with 500 validation samples, so 31,250 steps and 500,000 images seen per run.  ``--steps N`` keeps
the authors' epoch and trains ``ceil(N / 125)`` of them.  ``--smoke`` runs the same code on the CPU on a small
synthetic dataset (64 px, 2 steps of 4 per run) in under a minute.  Explained in book chapter 6 ("Tables I and II").

**The time it takes, estimated before measuring** (no GPU was lent when this was written): one training step of AESc
on 16 images of 256^2 is 148 GFLOP (forward and backward, counted by ``benchmarks/bench_train.py``'s
``step_flops``), so a run at the paper budget is 31,250 x 148 GFLOP = 4.6 PFLOP, plus about 8% for the validation
passes.  These narrow convolutions (16 to 512 channels) reach a small fraction of an H200's 989 TFLOP/s dense bf16:
at 10% a run takes about 50 s, at 5% about 100 s.  Three runs therefore take 2.5 to 5 minutes, inside the 6 minutes
the check allows for training; the ``train`` stage prints the projection from the first run's measured speed and says
to pass ``--steps`` where three runs would not fit.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

from stainlib.spec import BUDGETS, RunSpec

GRID = [("aesc", "stain"), ("aesc", "none"), ("ae", "none")]
METHODS = ("residual", "uncertainty")
STEP_FLOPS_256 = 147.6e9  # AESc, batch 16, 256^2, forward + backward (bench_train.step_flops)
H200_BF16 = 989e12
TRAIN_SECONDS = 360  # the share of the 9 minutes left for the three trainings


def _arguments(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=["environment", "train", "evaluate", "tables"])
    p.add_argument("--data", required=True, help="the folder that holds bottle/ (or the bottle folder itself)")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, help="optimiser steps per run (default: the paper budget, 31,250)")
    p.add_argument("--smoke", action="store_true", help="CPU, synthetic 64 px data, 2 steps per run")
    return p.parse_args(argv)


def _data_root(args) -> tuple[Path, str]:
    data = Path(args.data).resolve()
    if args.smoke:
        return data, "synth_cap"
    if (data / "train" / "good").is_dir():  # the category folder itself
        return data.parent, data.name
    if not (data / "bottle" / "train" / "good").is_dir():
        raise SystemExit(f"gpu_check: no bottle/train/good under {data}; give the folder that holds bottle/")
    return data, "bottle"


def specs(args) -> list[RunSpec]:
    root, category = _data_root(args)
    if args.smoke:
        base = RunSpec(str(root), category, image_size=64, epochs=1, samples_per_epoch=8, val_samples=4, batch_size=4)
    else:
        base = RunSpec(str(root), category, image_size=256).with_budget("paper")
        if args.steps:
            per_epoch = math.ceil(base.samples_per_epoch / base.batch_size)
            base = base.replace(epochs=max(1, math.ceil(args.steps / per_epoch)))
    return [base.replace(model=m, corruption=c) for m, c in GRID]


def _device(args) -> str:
    import torch

    if args.smoke:
        return "cpu"
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: CUDA is not available (use --smoke to check the script on the CPU)")
    return "cuda"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git checkout)"


def environment(args) -> dict:
    import torch

    from stainlib.train import pick_precision

    device = _device(args)
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu",
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if device == "cuda" else None,
        "precision": pick_precision(device),
        "commit": _commit(),
        "seeds": sorted({s.seed for s in specs(args)}),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
    for k, v in env.items():
        print(f"{k}: {v}")
    return env


def train(args) -> None:
    from stainlib.runs import train as train_run
    from stainlib.synthetic import make_synthetic

    device = _device(args)
    todo = specs(args)
    if args.smoke:
        make_synthetic(todo[0].data_root, [todo[0].category], n_train=10, n_test=6, size=64)
    spec = todo[0]
    per_epoch = math.ceil((spec.samples_per_epoch or 0) / spec.batch_size)
    steps = spec.epochs * per_epoch
    scale = (spec.image_size / 256) ** 2
    print(
        f"{len(todo)} runs of {spec.epochs} epochs x {per_epoch} steps of {spec.batch_size} = {steps:,} steps, "
        f"{spec.epochs * spec.samples_per_epoch:,} images seen, {spec.val_samples} validation samples each"
        + (f" (the paper budget is {BUDGETS['paper']['epochs'] * 125:,} steps)" if args.steps or args.smoke else "")
    )
    if not args.smoke:
        pflop = len(todo) * steps * STEP_FLOPS_256 * scale / 1e15
        print(
            f"estimate (not a measurement): {pflop:.1f} PFLOP in all; on an H200 at 5-10% of its dense bf16 peak, "
            f"{pflop * 1e15 / (0.10 * H200_BF16):.0f}-{pflop * 1e15 / (0.05 * H200_BF16):.0f} s"
        )
    if not args.smoke:
        per_step = _seconds_per_step(spec, device)
        val_steps = math.ceil(spec.val_samples / spec.batch_size) / 3  # a forward pass is about a third of a step
        per_step_count = per_epoch + val_steps
        projected = len(todo) * spec.epochs * per_step_count * per_step
        print(f"measured: {per_step * 1e3:.1f} ms per step; projected for the {len(todo)} runs: {projected:.0f} s")
        if projected > TRAIN_SECONDS:
            fit_steps = int(TRAIN_SECONDS / (len(todo) * per_step_count * per_step) * per_epoch)
            print(
                f"WARNING: more than the {TRAIN_SECONDS} s planned for training; the runs go on at the budget asked "
                f"for. To fit, stop (Ctrl-C: the runs resume later) and run again with --steps {fit_steps}"
            )
    started = time.perf_counter()
    for i, s in enumerate(todo):
        t0 = time.perf_counter()
        train_run(s, args.out, device=device, progress=True)
        took = time.perf_counter() - t0
        left = took * (len(todo) - i - 1)
        print(f"trained {s.folder(args.out)} in {took:.1f} s; projected for the {len(todo) - i - 1} left: {left:.0f} s")
        if i == 0 and not args.smoke and took * len(todo) > TRAIN_SECONDS:
            fit_steps = int(steps * TRAIN_SECONDS / (took * len(todo)))
            print(
                f"WARNING: {len(todo)} runs at this budget take about {took * len(todo):.0f} s, more than the "
                f"{TRAIN_SECONDS} s planned; to fit, run again with --steps {fit_steps} (the finished run is kept)"
            )
    print(f"training: {time.perf_counter() - started:.1f} s")


def _seconds_per_step(spec: RunSpec, device: str) -> float:
    """Seconds per optimiser step of ``spec`` on ``device``: the second of two 20-step epochs of a throwaway run."""
    import csv
    import tempfile

    from stainlib.runs import train as train_run

    probe = spec.replace(epochs=2, samples_per_epoch=20 * spec.batch_size, val_samples=spec.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        run = train_run(probe, tmp, device=device, progress=False, log=lambda *_: None)
        with open(run / "history.csv") as f:
            rows = list(csv.DictReader(f))
    return float(rows[-1]["seconds"]) / 20


def evaluate(args) -> None:
    from stainlib.runs import evaluate as evaluate_run

    device = _device(args)
    n_samples = 2 if args.smoke else 30
    for s in specs(args):
        for method in METHODS:
            evaluate_run(s.folder(args.out), method, n_samples=n_samples, device=device, figure=not args.smoke, spec=s)


def tables(args) -> None:
    from stainlib.tables import make_table

    out = Path(args.out)
    env = json.loads((out / "environment.json").read_text()) if (out / "environment.json").exists() else {}
    machine = (
        f"Machine: {env.get('device_name', '?')} ({env.get('device', '?')}, compute capability "
        f"{env.get('capability') or '–'}, {env.get('precision', '?')}); torch {env.get('torch', '?')}, CUDA "
        f"{env.get('cuda') or '–'}, Python {env.get('python', '?')}; seeds {env.get('seeds', '?')}; "
        f"commit {env.get('commit', '?')}; written by tools/gpu_check.sh{' --smoke' if args.smoke else ''}.\n"
    )
    for table in ("I", "II"):
        result = make_table(out, table)
        md = out / f"table_{table}.md"
        md.write_text(result["markdown"] + "\n" + machine)
        print(md.read_text())


def main(argv=None) -> int:
    args = _arguments(argv)
    import matplotlib

    matplotlib.use("Agg")  # figures go into files
    {"environment": environment, "train": train, "evaluate": evaluate, "tables": tables}[args.stage](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
