"""Claims about the stainlib command line: train, evaluate, sweep, table (book chapters 5, 7, 8)."""

import csv
import json
import shutil

import pytest

from stainlib.cli import main, make_table, sweep
from stainlib.data import make_synthetic

SIZE = 64  # the smallest side the default 6-level AESc accepts


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("cli") / "synthetic", ["wood"], n_train=10, n_test=9, size=SIZE)


def train(data, run, model, corruption, epochs, *extra):
    args = f"train --data {data} --category wood --model {model} --corruption {corruption} --epochs {epochs}"
    return main([*args.split(), "--size", str(SIZE), "--out", str(run), "--device", "cpu", *extra])


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "wood-aesc"
    assert train(data, run, "aesc", "stain", 2, "--batch-size", "4") == 0
    return run


def test_train_prints_device_counts_run_folder_and_best_psnr(data, tmp_path, capsys):
    run = tmp_path / "r"
    train(data, run, "ae", "none", 1)
    out = capsys.readouterr().out
    assert "device: cpu" in out
    assert "8 training, 2 validation images" in out
    assert f"run folder: {run}" in out
    assert "best validation PSNR:" in out
    assert json.loads((run / "config.json").read_text())["model"]["skips"] is False


def test_unknown_corruption_on_the_command_line_lists_the_names(data, tmp_path, capsys):
    code = main(
        ["train", "--data", str(data), "--category", "wood", "--corruption", "stains", "--out", str(tmp_path / "x")]
    )
    assert code == 2
    assert "known: none, stain, scratch, drops" in capsys.readouterr().err


def test_missing_category_on_the_command_line_is_a_clear_error(data, capsys):
    assert main(["train", "--data", str(data), "--category", "bottle"]) == 2
    assert "'bottle' not found" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["residual", "uncertainty", "combined"])
def test_evaluate_writes_metrics_json_and_a_figure(trained, method):
    assert main(["evaluate", str(trained), "--method", method, "--samples", "4", "--device", "cpu"]) == 0
    metrics = json.loads((trained / "metrics.json").read_text())[method]
    for key in ("image_auroc", "pixel_auroc", "pixel_aupro", "image_f1_max", "pixel_f1_max"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["n_images"] == 9 and metrics["n_good"] == 3 and metrics["n_defective"] == 6
    assert set(metrics["image_auroc_per_defect"]) == {"crack", "hole", "contrast"}
    assert metrics["seconds"] > 0
    assert (trained / f"figure_{method}.png").stat().st_size > 1000


def test_sweep_skips_complete_runs_resumes_others_and_survives_a_crash(data, tmp_path):
    out = tmp_path / "results"
    kw = dict(epochs=1, out=out, size=SIZE, samples=3, device="cpu", log=lambda *_: None)
    report = sweep("table1", data, ["wood", "nonexistent"], **kw)
    assert len(report["done"]) == 4 and len(report["failed"]) == 4  # the missing category fails, wood goes on
    assert all("not found" in e for e in report["failed"].values())
    again = sweep("table1", data, ["wood"], **kw)
    assert len(again["skipped"]) == 4 and not again["done"]
    # An unfinished run (no evaluation yet, one epoch of two) is resumed, not restarted.
    run = out / "wood" / "aesc-stain-s0"
    (run / "metrics.json").unlink()
    before = (run / "history.csv").read_text()
    resumed = sweep("table1", data, ["wood"], **kw)
    assert resumed["done"] == [str(run)] and (run / "history.csv").read_text() == before
    table = make_table(out, "I")
    assert (out / "table_I.md").exists() and table["rows"][0]["category"] == "wood"
    assert table["provenance"]["epochs"] == ["1"] and table["provenance"]["size"] == [str(SIZE)]


def test_print_commands_gives_one_self_contained_command_per_run(capsys):
    main(
        [
            "sweep",
            "--grid",
            "table3",
            "--data",
            "/data/mvtec",
            "--categories",
            "bottle",
            "carpet",
            "--epochs",
            "250",
            "--out",
            "/scratch/results",
            "--print-commands",
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 20
    assert all(
        line.startswith("stainlib train --data /data/mvtec") and "&& stainlib evaluate" in line for line in lines
    )
    assert sum("--corruption mix2" in line for line in lines) == 2


def test_table_puts_the_paper_number_beside_ours_with_means(tmp_path, trained):
    for cat in ("bottle", "carpet"):
        run = tmp_path / cat / "aesc-stain-s0"
        run.mkdir(parents=True)
        shutil.copy(trained / "config.json", run / "config.json")
        (run / "metrics.json").write_text(json.dumps({"residual": {"image_auroc": 0.9, "device": "cpu"}}))
    table = make_table(tmp_path, "I")
    rows = {r["category"]: r for r in table["rows"]}
    assert rows["bottle"]["residual/AESc/stain"] == 0.9
    assert rows["bottle"]["residual/AESc/stain (paper)"] == 0.98
    assert rows["carpet"]["residual/AESc/stain (paper)"] == 0.89
    assert rows["mean all"]["residual/AESc/stain"] == pytest.approx(0.9)
    assert rows["mean textures"]["residual/AESc/stain (paper)"] == 0.89
    assert "0.90 (0.98)" in table["markdown"]
    with open(tmp_path / "table_I.csv") as f:
        assert next(csv.DictReader(f))["category"] == "bottle"
