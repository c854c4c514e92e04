"""Claims about the stainlib command line: it parses, calls the library and reports errors (book chapters 5, 7, 8)."""

import ast
import json
import shlex
import sys
from pathlib import Path

import pytest
from conftest import SIZE, train_cli

import stainlib
from stainlib.cli import main


def test_train_prints_device_counts_run_folder_and_best_psnr(wood, tmp_path, capsys):
    train_cli(wood, tmp_path, "ae", "none", 1)
    out = capsys.readouterr().out
    run = tmp_path / "synth_wood" / "ae-none-s0"
    assert "device: cpu" in out
    assert "8 training, 2 validation images" in out
    assert f"run folder: {run}" in out
    assert "best validation PSNR:" in out
    assert json.loads((run / "config.json").read_text())["model"]["skips"] is False


def test_config_json_uses_the_names_of_the_command_line(wood, tmp_path):
    train_cli(wood, tmp_path, "ae", "none", 1, "--samples-per-epoch", "8", "--lr", "0.002")
    cfg = json.loads((tmp_path / "synth_wood" / "ae-none-s0" / "config.json").read_text())
    assert cfg["data"]["data_root"] == str(wood.resolve()) and cfg["data"]["image_size"] == SIZE
    assert cfg["train"]["samples_per_epoch"] == 8 and cfg["train"]["lr"] == 0.002


def test_unknown_corruption_on_the_command_line_lists_the_names(wood, tmp_path, capsys):
    code = main(
        ["train", "--data-root", str(wood), "--category", "synth_wood", "--corruption", "stains"]
        + ["--out", str(tmp_path)]
    )
    assert code == 2
    assert "known: none, stain, scratch, drops" in capsys.readouterr().err


def test_missing_category_on_the_command_line_is_a_clear_error(wood, capsys):
    assert main(["train", "--data-root", str(wood), "--category", "bottle"]) == 2
    assert "'bottle' not found" in capsys.readouterr().err


def test_retraining_with_other_settings_is_refused_naming_the_key_unless_asked(wood, tmp_path, capsys):
    assert train_cli(wood, tmp_path, "ae", "none", 1) == 0
    assert train_cli(wood, tmp_path, "ae", "none", 1, "--batch-size", "4") == 2
    assert "batch_size: 16 in the run folder, 4 now" in capsys.readouterr().err
    assert train_cli(wood, tmp_path, "ae", "none", 1, "--batch-size", "4", "--retrain") == 0
    cfg = json.loads((tmp_path / "synth_wood" / "ae-none-s0" / "config.json").read_text())
    assert cfg["train"]["batch_size"] == 4


@pytest.mark.parametrize("method", ["residual", "uncertainty", "combined"])
def test_evaluate_writes_metrics_json_and_a_figure(trained, method):
    assert main(["evaluate", str(trained), "--method", method, "--n-samples", "4", "--device", "cpu"]) == 0
    metrics = json.loads((trained / "metrics.json").read_text())[method]
    for key in ("image_auroc", "pixel_auroc", "pixel_aupro", "image_f1_max", "pixel_f1_max"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["n_images"] == 9 and metrics["n_good"] == 3 and metrics["n_defective"] == 6
    assert set(metrics["image_auroc_per_defect"]) == {"crack", "hole", "contrast"}
    assert metrics["seconds"] > 0
    assert (trained / f"figure_{method}.png").stat().st_size > 1000


def test_print_commands_gives_one_sweep_task_per_run_with_the_same_settings(capsys):
    args = "sweep --grid table3 --data-root /data/mvtec --categories bottle carpet --epochs 250 --out /scratch/results"
    main([*args.split(), "--print-commands"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 20
    for k, line in enumerate(lines):
        argv = shlex.split(line)
        assert argv[:4] == [sys.executable, "-m", "stainlib.cli", "sweep"] and argv[-2:] == ["--task", str(k)]
        assert " ".join(argv[4:-2]) == " ".join(shlex.split(lines[0])[4:-2])  # only the task index differs


def test_compile_choice_reaches_every_sweep_task_and_an_unknown_one_is_refused(capsys):
    args = "sweep --grid table3 --data-root /data/mvtec --categories bottle --out /scratch/results"
    main([*args.split(), "--compile", "on", "--print-commands"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(" --compile on " in f" {line} " for line in lines)
    assert main([*args.split(), "--compile", "yes", "--print-commands"]) == 2  # returned, not raised (SystemExit)
    assert "invalid choice: 'yes'" in capsys.readouterr().err


def test_only_the_command_line_imports_argparse_and_no_module_imports_it():
    for path in Path(stainlib.__file__).parent.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
        assert ("argparse" in imported) == (path.name == "cli.py"), path.name
        assert not any(name in ("cli", ".cli", "stainlib.cli") or name.endswith(".cli") for name in imported), path
