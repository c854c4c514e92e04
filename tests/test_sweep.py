"""Claims about stainlib.sweep: grids of runs, in this process or in subprocesses without a shell (chapters 7, 8)."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import SIZE

from stainlib import sweep as sweep_module
from stainlib.noise import PAPER_CORRUPTIONS
from stainlib.paper import GRIDS, TABLE_3_CORRUPTIONS
from stainlib.spec import RunSpec
from stainlib.sweep import sweep
from stainlib.tables import make_table

ROOT = Path(__file__).resolve().parents[1]


def quiet(*_):
    pass


def test_table_3_covers_every_registered_corruption_once():
    assert sorted(TABLE_3_CORRUPTIONS) == sorted(PAPER_CORRUPTIONS)
    assert [c for _, c, _ in GRIDS["table3"]] == list(TABLE_3_CORRUPTIONS)


def test_sweep_skips_complete_runs_resumes_others_and_survives_a_crash(wood, tmp_path):
    out = tmp_path / "results"
    base = RunSpec(wood, "synth_wood", image_size=SIZE, epochs=1)
    kw = dict(out=out, n_samples=3, device="cpu", log=quiet)
    report = sweep("table1", base, ["synth_wood", "nonexistent"], **kw)
    assert len(report["done"]) == 4 and len(report["failed"]) == 4  # the missing category fails, wood goes on
    assert all(isinstance(e, str) and "not found" in e for e in report["failed"].values())
    again = sweep("table1", base, ["synth_wood"], **kw)
    assert len(again["skipped"]) == 4 and not again["done"]
    # An unfinished run (no evaluation yet) is resumed, not restarted.
    run = out / "synth_wood" / "aesc-stain-s0"
    (run / "metrics.json").unlink()
    before = (run / "history.csv").read_text()
    resumed = sweep("table1", base, ["synth_wood"], **kw)
    assert resumed["done"] == [str(run)] and (run / "history.csv").read_text() == before
    assert (run / "figure_residual.png").exists()  # the CLI's default: a figure per evaluation
    # figure=False (the book's pages, which draw their own) scores the run without writing a figure.
    (run / "metrics.json").unlink()
    for png in run.glob("figure_*.png"):
        png.unlink()
    assert sweep("table1", base, ["synth_wood"], figure=False, **kw)["done"] == [str(run)]
    assert set(json.loads((run / "metrics.json").read_text())) >= {"residual", "uncertainty"}
    assert not list(run.glob("figure_*.png"))
    # A run folder made with other settings is reported, not reused.
    other = sweep("table1", base.replace(image_size=2 * SIZE), ["synth_wood"], **kw)
    assert len(other["failed"]) == 4 and all(
        "image_size: 64 in the run folder, 128 now" in e for e in other["failed"].values()
    )
    table = make_table(out, "I")
    assert (out / "table_I.md").exists() and table["rows"][0]["category"] == "synth_wood"
    assert table["provenance"]["epochs"] == ["1"] and table["provenance"]["size"] == [str(SIZE)]


@pytest.mark.slow
def test_parallel_sweep_runs_no_shell_passes_device_and_lr_and_reports_strings(wood, tmp_path, monkeypatch):
    monkeypatch.setitem(GRIDS, "one", [("ae", "none", ("residual",))])
    data = tmp_path / "data"
    shutil.copytree(wood / "synth_wood", data / "my wood")  # a category with a space
    monkeypatch.chdir(tmp_path)
    base = RunSpec(data, "my wood", image_size=SIZE, epochs=1, lr=2e-3)
    hostile = "$(touch pwned)"
    report = sweep_module.sweep(
        "one", base, ["my wood", hostile], out=tmp_path / "out", device="cpu", jobs=2, log=quiet
    )
    assert not (tmp_path / "pwned").exists()
    run = tmp_path / "out" / "my wood" / "ae-none-s0"
    assert report["done"] == [str(run)]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["lr"] == 2e-3 and cfg["train"]["device"] == "cpu"
    [(failed, error)] = report["failed"].items()
    assert hostile in failed and isinstance(error, str) and "not found" in error


def test_gpu_slots_give_each_concurrent_job_its_own_gpu_when_there_are_enough():
    slots = sweep_module.gpu_slots(jobs=2, gpus=2)
    held = [slots.get(), slots.get()]
    assert sorted(held) == ["0", "1"] and slots.empty()
    slots.put(held[0])  # the first job ends: the next one gets the GPU it freed, not the busy one
    assert slots.get() == held[0]
    spread = sweep_module.gpu_slots(jobs=4, gpus=2, visible="3,5")  # more jobs than GPUs: evenly, visible ids kept
    assert sorted(spread.get() for _ in range(4)) == ["3", "3", "5", "5"]
    assert sweep_module.gpu_slots(jobs=2, gpus=0).get() is None


def test_parallel_sweep_never_runs_two_jobs_on_one_gpu_at_once(wood, tmp_path, monkeypatch):
    import threading
    import time

    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    busy, clashes, lock = {}, [], threading.Lock()

    class Done:
        returncode, stdout, stderr = 0, "", ""

    def fake_run(argv, env, **_):
        gpu = env["CUDA_VISIBLE_DEVICES"]
        with lock:
            if busy.get(gpu):
                clashes.append(gpu)
            busy[gpu] = True
        time.sleep(0.05 if "train" in argv else 0.01 * (len(argv) % 3))  # uneven durations
        with lock:
            busy[gpu] = False
        return Done()

    monkeypatch.setattr(sweep_module.subprocess, "run", fake_run)
    base = RunSpec(wood, "synth_wood", image_size=SIZE, epochs=1)
    report = sweep("table3", base, ["synth_wood"], out=tmp_path / "out", device="cuda", jobs=2, log=quiet)
    assert len(report["done"]) == len(TABLE_3_CORRUPTIONS) and not clashes


def test_sweep_task_runs_only_that_run_and_refuses_an_index_outside_the_grid(wood, tmp_path):
    base = RunSpec(wood, "synth_wood", image_size=SIZE, epochs=1)
    with pytest.raises(ValueError, match="between 0 and 3"):
        sweep("table1", base, ["synth_wood"], out=tmp_path, task=4, log=quiet)


@pytest.mark.slow
def test_slurm_array_script_runs_one_run_per_task_and_skips_complete_ones(wood, tmp_path):
    import subprocess
    import sys

    from stainlib.cli import main

    listing = tmp_path / "sweep.txt"
    out = tmp_path / "out"
    args = f"sweep --grid table1 --data-root {wood} --categories synth_wood --epochs 1 --image-size {SIZE}"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main([*args.split(), "--n-samples", "2", "--device", "cpu", "--out", str(out), "--print-commands"]) == 0
    listing.write_text(buffer.getvalue())
    lines = listing.read_text().splitlines()
    assert len(lines) == 4 and all(line.endswith(f"--task {k}") for k, line in enumerate(lines))
    assert all(line.startswith(sys.executable) for line in lines)

    def task(k):
        env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": str(k), "PYTHONPATH": str(ROOT)}
        return subprocess.run(
            ["bash", str(ROOT / "tools" / "slurm_array.sh"), str(listing)],
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
        )

    first = task(3)
    assert first.returncode == 0, first.stderr
    done = [p.name for p in (out / "synth_wood").iterdir()]
    assert done == ["aesc-stain-s0"]  # the 4th run of the grid: AESc + stain
    metrics = json.loads((out / "synth_wood" / "aesc-stain-s0" / "metrics.json").read_text())
    assert set(metrics) >= {"residual", "uncertainty"}
    again = task(3)
    assert again.returncode == 0 and "1 already complete" in again.stdout
    assert task(4).returncode == 2 and "no command for task 4" in task(4).stderr


def test_the_claims_grid_trains_exactly_the_runs_the_claims_of_tables_1_2_compare():
    from stainlib.paper import RUN_LABELS

    grid = {f"{m}-{c}": methods for m, c, methods in GRIDS["claims"]}
    assert set(grid) == set(RUN_LABELS)
    assert grid["aesc-stain"] == ("residual", "uncertainty")  # residual against uncertainty is on this run


def test_the_train_and_task_commands_rebuild_exactly_the_specs_of_the_grid_whatever_the_budget_and_decoder(tmp_path):
    # A setting left out of the flags would make a job-array task train (or refuse) another run than the sweep's.
    from stainlib.cli import _parser, _spec
    from stainlib.sweep import commands, grid_runs, task_commands

    base = RunSpec(
        tmp_path,
        "bottle",
        image_size=128,
        epochs=7,
        samples_per_epoch=2000,
        val_samples=500,
        lr=5e-4,
        batch_size=4,
        decoder="legacy",
        color="rgb",
    )
    runs = grid_runs("claims", base, ["bottle", "screw"], seeds=(0, 2))
    for k, argv in enumerate(task_commands("claims", base, ["bottle", "screw"], seeds=(0, 2), out=tmp_path)):
        args = _parser().parse_args(argv[3:])  # after: python -m stainlib.cli
        rebuilt = [
            spec for spec, _ in grid_runs(args.grid, _spec(args, args.categories[0]), args.categories, args.seeds)
        ]
        assert rebuilt[args.task] == runs[k][0]
    for spec, methods in runs:
        train_args = commands(spec, tmp_path, methods)[0]
        assert _spec(_parser().parse_args(train_args)) == spec
