"""Grids of runs: the paper's Tables I-III, trained and evaluated in one call (book chapters 6 and 7).

The grids are defined once, in :mod:`stainlib.paper`: :data:`TABLE_1_2_GRID` (AE and AESc, each trained with none
and with stain, each scored by the residual and the uncertainty), :data:`TABLE_3_CORRUPTIONS` (AESc trained with
each corruption, in the paper's column order, scored by the residual) and :data:`CLAIMS_GRID` (the three runs that
the claims of Tables I-II compare, to be trained with several seeds).  :func:`sweep` runs a grid in this process or,
with ``jobs`` > 1, in subprocesses started from argument lists (never through a shell); :func:`commands` gives those
argument lists.

Past one process:

* **several GPUs on one node**: with ``jobs`` > 1, each subprocess holds one GPU slot for its whole run and sees only
  that GPU (``CUDA_VISIBLE_DEVICES``); slots are handed out as runs finish, so two runs share a GPU only when there
  are more jobs than GPUs (then the slots are spread evenly over the GPUs).
* **a cluster**: :func:`task_commands` gives one ``stainlib sweep ... --task K`` command per run of the grid
  (``stainlib sweep --print-commands``); ``tools/slurm_array.sh`` runs line K of that list in SLURM array task K.  A
  task whose run is already complete skips it, so a re-submitted array only does what is missing.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from .paper import GRIDS
from .runs import check_run, evaluate, read_metrics, train
from .spec import RunSpec

__all__ = [
    "commands",
    "gpu_slots",
    "grid_runs",
    "spec_flags",
    "sweep",
    "task_commands",
]


def grid_runs(grid: str, base: RunSpec, categories, seeds=(0,)) -> list[tuple[RunSpec, tuple]]:
    """The (spec, methods) of every run of ``grid``: ``base`` with each category, seed, model and corruption."""
    if grid not in GRIDS:
        raise ValueError(f"unknown grid {grid!r}; known: {', '.join(GRIDS)}")
    return [
        (base.replace(category=cat, model=m, corruption=c, seed=s), methods)
        for cat in categories
        for s in seeds
        for m, c, methods in GRIDS[grid]
    ]


def spec_flags(spec: RunSpec, one_run: bool = True) -> list[str]:
    """The ``stainlib train`` / ``sweep`` flags that rebuild ``spec`` (``one_run=False``: its shared settings only,
    without category, model, corruption and seed, which a sweep sets per run).  The one place a spec becomes flags.

    Every field is written (a field that is ``None`` is left out: absent, the flag gives ``None``), so the command
    does not depend on the defaults of the stainlib that runs it; a float is written by ``repr``, which reads back
    exactly.
    """
    flags = []
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if value is None or (f.metadata["per_run"] and not one_run):
            continue
        flags += ["--" + f.name.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
    return flags


def commands(
    spec: RunSpec, out, methods, n_samples: int = 30, device: str = "auto", compile: str = "auto"
) -> list[list[str]]:
    """The ``stainlib`` argument lists (without the program) that train ``spec`` and evaluate it by ``methods``."""
    run = str(spec.folder(out))
    train_args = ["train", *spec_flags(spec), "--device", device, "--compile", compile, "--out", str(out)]
    evals = [["evaluate", run, "--map", m, "--n-samples", str(n_samples), "--device", device] for m in methods]
    return [train_args, *evals]


def task_commands(
    grid: str,
    base: RunSpec,
    categories,
    seeds=(0,),
    out="results",
    n_samples: int = 30,
    device: str = "auto",
    compile: str = "auto",
) -> list[list[str]]:
    """One argument list per run of ``grid``: ``python -m stainlib.cli sweep ... --task K``, for a job array.

    Each command trains and evaluates the K-th run of the grid (the order of :func:`grid_runs`) and skips it if it is
    already complete.  The program is this interpreter (``sys.executable``), so the commands run in the same
    environment on every node that shares the file system.
    """
    runs = grid_runs(grid, base, categories, seeds)
    shared = [
        "sweep",
        "--grid",
        grid,
        *spec_flags(base, one_run=False),
        "--categories",
        *categories,
        "--seeds",
        *map(str, seeds),
        "--n-samples",
        str(n_samples),
        "--device",
        device,
        "--compile",
        compile,
        "--out",
        str(out),
    ]
    return [[sys.executable, "-m", "stainlib.cli", *shared, "--task", str(k)] for k in range(len(runs))]


def gpu_slots(jobs: int, gpus: int, visible: str | None = None) -> queue.Queue:
    """A queue of ``jobs`` GPU slots: the ``CUDA_VISIBLE_DEVICES`` value each concurrent job takes and gives back.

    Slot k is GPU ``k % gpus`` (of the GPUs already visible, where ``visible`` lists them), so the slots spread
    evenly; with no more jobs than GPUs, every running job has a GPU of its own.  With no GPU, every slot is None.
    """
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(gpus)]
    q: queue.Queue = queue.Queue()
    for k in range(jobs):
        q.put(ids[k % len(ids)] if ids and gpus > 0 else None)
    return q


def _in_subprocesses(todo, out, n_samples, device, jobs, log, compile="auto") -> dict:
    import torch

    slots = gpu_slots(jobs, torch.cuda.device_count(), os.environ.get("CUDA_VISIBLE_DEVICES"))

    def work(item):
        spec, methods = item
        gpu = slots.get()  # held for the whole run: no other job uses this slot meanwhile
        try:
            env = dict(os.environ)
            if gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = gpu
            for args in commands(spec, out, methods, n_samples, device, compile):
                proc = subprocess.run(
                    [sys.executable, "-m", "stainlib.cli", *args], env=env, capture_output=True, text=True
                )
                if proc.returncode != 0:
                    lines = (proc.stderr or proc.stdout).strip().splitlines()
                    return spec, lines[-1] if lines else f"exit status {proc.returncode}"
            return spec, None
        finally:
            slots.put(gpu)

    failed = {}
    with ThreadPoolExecutor(jobs) as pool:
        for spec, error in pool.map(work, todo):
            if error is not None:
                failed[str(spec.folder(out))] = error
                log(f"FAILED {spec.folder(out)}: {error}")
    return failed


def sweep(
    grid: str,
    base: RunSpec,
    categories,
    seeds=(0,),
    out="results",
    n_samples: int = 30,
    device: str = "auto",
    jobs: int = 1,
    retrain: bool = False,
    log=print,
    task: int | None = None,
    compile: str = "auto",
    figure: bool = True,
) -> dict:
    """Train and evaluate every run of a grid; skip complete runs, resume unfinished ones, go on after a crash.

    ``base`` gives the data root, image size, colour, budget, learning rate and batch size of every run; the grid
    sets its category, model, corruption and seed.  A run folder made with other settings is a failure (or is
    trained anew with ``retrain``), never reused.  Returns ``{"done": [...], "skipped": [...], "failed": {run:
    error}}`` with each error a string.  With ``jobs`` > 1, runs go to subprocesses, each with a GPU of its own
    where there are enough (see :func:`gpu_slots`).  ``task`` K restricts the sweep to the K-th run of the grid (a
    job-array task, see :func:`task_commands`).  ``compile`` is passed to every training
    (:class:`~stainlib.train.TrainConfig`).  ``figure=False`` skips each evaluation's ``figure_<method>.png`` (in
    this process only: the subprocesses of ``jobs`` > 1 run the CLI, which always draws it).
    """
    report = {"done": [], "skipped": [], "failed": {}}
    todo = []
    runs = grid_runs(grid, base, categories, seeds)
    if task is not None:
        if not 0 <= task < len(runs):
            raise ValueError(f"task must be between 0 and {len(runs) - 1} for this grid ({len(runs)} runs), got {task}")
        runs = [runs[task]]
    for spec, methods in runs:
        run = spec.folder(out)
        try:
            if check_run(spec, run, retrain=retrain, log=log) and all(m in read_metrics(run) for m in methods):
                report["skipped"].append(str(run))
                continue
        except Exception as exc:  # a folder with other settings: reported, the others go on
            report["failed"][str(run)] = f"{type(exc).__name__}: {exc}"
            continue
        todo.append((spec, methods))
    if jobs > 1:
        report["failed"].update(_in_subprocesses(todo, out, n_samples, device, jobs, log, compile))
        report["done"] += [str(s.folder(out)) for s, _ in todo if str(s.folder(out)) not in report["failed"]]
    else:
        for spec, methods in todo:
            run = spec.folder(out)
            try:
                train(spec, out, device=device, retrain=retrain, log=log, compile=compile)
                for method in methods:
                    evaluate(run, method, n_samples=n_samples, device=device, spec=spec, log=log, figure=figure)
                report["done"].append(str(run))
            except Exception as exc:  # one crashed run must not stop the others
                report["failed"][str(run)] = f"{type(exc).__name__}: {exc}"
                log(f"FAILED {run}: {type(exc).__name__}: {exc}")
    log(
        f"sweep {grid}: {len(report['done'])} done, {len(report['skipped'])} already complete, "
        f"{len(report['failed'])} failed"
    )
    for run, error in report["failed"].items():
        log(f"  failed: {run}: {error}")
    return report
