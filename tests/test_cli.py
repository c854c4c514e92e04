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


def test_the_map_flag_of_evaluate_and_predict_keeps_its_older_name_method_as_an_alias():
    from stainlib.cli import _parser

    for flag in ("--map", "--method"):
        assert _parser().parse_args(["evaluate", "run", flag, "uncertainty"]).map == "uncertainty"
        assert _parser().parse_args(["predict", "run", "x.png", "--out", "o", flag, "combined"]).map == "combined"
    assert _parser().parse_args(["evaluate", "run"]).map == "residual"
    assert _parser().parse_args(["predict", "run", "x.png", "--out", "o"]).map is None  # the run's best map


@pytest.mark.parametrize("map_name", ["residual", "uncertainty", "combined"])
def test_evaluate_writes_metrics_json_and_a_figure(trained, map_name):
    assert main(["evaluate", str(trained), "--map", map_name, "--n-samples", "4", "--device", "cpu"]) == 0
    metrics = json.loads((trained / "metrics.json").read_text())[map_name]
    for key in ("image_auroc", "pixel_auroc", "pixel_aupro", "image_f1_max", "pixel_f1_max"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["n_images"] == 9 and metrics["n_good"] == 3 and metrics["n_defective"] == 6
    assert set(metrics["image_auroc_per_defect"]) == {"crack", "hole", "contrast"}
    assert metrics["seconds"] > 0
    assert (trained / f"figure_{map_name}.png").stat().st_size > 1000


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


def _spec_flag_dests(command: str) -> list[str]:
    """The destinations of the flags of ``stainlib <command>`` that are RunSpec fields, one entry per flag."""
    import dataclasses

    from stainlib.cli import _parser
    from stainlib.spec import RunSpec

    sub = next(a for a in _parser()._actions if a.dest == "command").choices[command]
    names = {f.name for f in dataclasses.fields(RunSpec)}
    return [a.dest for a in sub._actions if a.option_strings and a.dest in names]


def test_every_runspec_field_has_exactly_one_train_flag_and_a_sweep_flag_for_each_shared_setting():
    import dataclasses

    from stainlib.spec import RunSpec

    fields = dataclasses.fields(RunSpec)
    assert sorted(_spec_flag_dests("train")) == sorted(f.name for f in fields)
    shared = [f.name for f in fields if not f.metadata["per_run"]]
    assert sorted(_spec_flag_dests("sweep")) == sorted(shared)  # the grid, --categories and --seeds set the rest


def test_the_run_flags_defaults_and_help_are_the_fields(capsys):
    import dataclasses

    from stainlib.spec import RunSpec

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(RunSpec):
        assert " ".join(f.metadata["help"].split()) in text, f.name
        if f.default not in (dataclasses.MISSING, None):
            assert f"(default: {f.default}" in text, f.name


SPECS = [
    {},
    {"model": "ae", "corruption": "none", "seed": 7, "image_size": 128, "color": "rgb", "decoder": "legacy"},
    {"epochs": 3, "samples_per_epoch": 2000, "val_samples": 500, "lr": 0.1 + 0.2, "batch_size": 5},
    {"corruption": "gaussian-0.4-code", "seed": 2**63 - 1, "lr": 1e-7, "image_size": 2048, "epochs": 1},
]


@pytest.mark.parametrize("changes", SPECS, ids=["defaults", "per-run", "budget-and-float", "extremes"])
def test_spec_to_flags_to_spec_is_exact(tmp_path, changes):
    from stainlib.cli import _parser, _spec
    from stainlib.spec import RunSpec
    from stainlib.sweep import spec_flags

    spec = RunSpec(tmp_path, "bottle", **changes)
    assert _spec(_parser().parse_args(["train", *spec_flags(spec)])) == spec
    shared = _parser().parse_args(["sweep", "--grid", "claims", "--categories", "bottle", *spec_flags(spec, False)])
    per_run = {k: v for k, v in spec.to_dict().items() if k in ("model", "corruption", "seed")}
    assert _spec(shared, "bottle").replace(**per_run) == spec


def test_a_budget_sets_what_the_flags_leave_and_a_flag_overrides_it(tmp_path):
    from stainlib.cli import _parser, _spec
    from stainlib.spec import BUDGETS, RunSpec

    base = ["train", "--data-root", str(tmp_path), "--category", "bottle", "--budget", "paper"]
    assert _spec(_parser().parse_args(base)) == RunSpec(tmp_path, "bottle").with_budget("paper")
    spec = _spec(_parser().parse_args([*base, "--epochs", "3"]))
    assert (spec.epochs, spec.samples_per_epoch) == (3, BUDGETS["paper"]["samples_per_epoch"])
    assert _spec(_parser().parse_args(base[:5])) == RunSpec(tmp_path, "bottle")


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--seed", "-1", "must be from 0 to 9223372036854775807, got -1"),
        ("--seed", "x", "expected an integer, got 'x'"),
        ("--lr", "inf", "must be a positive, finite number, got inf"),
        ("--lr", "nan", "must be a positive, finite number, got nan"),
        ("--image-size", "4096", "must be from 1 to 2048, got 4096 (MVTec AD's images are at most 1024 px)"),
        ("--batch-size", "0", "must be at least 1, got 0"),
        ("--model", "vae", "invalid choice: 'vae'"),
    ],
)
def test_a_run_flag_out_of_its_range_is_refused_naming_the_flag(tmp_path, capsys, flag, value, words):
    argv = ["train", "--data-root", str(tmp_path), "--category", "bottle", flag, value, "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: {words}" in err
