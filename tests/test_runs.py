"""Claims about stainlib.runs and stainlib.spec: a run's identity is its spec, never its folder name (chapter 5)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SIZE, train_cli

from stainlib.runs import evaluate, load_or_train, read_metrics
from stainlib.spec import RunSpec
from stainlib.synthetic import make_synthetic
from stainlib.train import RunError


def quiet(*_):
    pass


def test_the_run_folder_name_is_made_from_model_corruption_seed_and_colour(tmp_path):
    spec = RunSpec(tmp_path, "synth_wood", "ae", "gaussian-0.1", seed=2)
    assert spec.folder("out") == Path("out") / "synth_wood" / "ae-gaussian-0.1-s2"
    assert spec.replace(color="rgb").name == "ae-gaussian-0.1-s2-rgb"
    assert spec.data_root == str(tmp_path.resolve())


@pytest.mark.parametrize(
    "change, message",
    [({"model": "vae"}, "unknown model 'vae'"), ({"color": "bgr"}, "color must be"), ({"category": "../x"}, "folder")],
)
def test_a_spec_with_a_bad_setting_is_refused_naming_it(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        RunSpec(**{"data_root": tmp_path, "category": "synth_wood", **change})


def test_changed_epochs_or_image_size_are_never_loaded_silently(wood, tmp_path):
    spec = RunSpec(wood, "synth_wood", "ae", "none", image_size=SIZE, epochs=2, batch_size=8)
    _, run = load_or_train(spec, tmp_path, device="cpu", log=quiet)
    with pytest.raises(RunError, match="image_size: 64 in the run folder, 128 now"):
        load_or_train(spec.replace(image_size=128), tmp_path, device="cpu", log=quiet)
    with pytest.raises(RunError, match="epochs: 2 in the run folder, 1 now"):
        load_or_train(spec.replace(epochs=1), tmp_path, device="cpu", log=quiet)
    messages = []
    load_or_train(spec.replace(epochs=3), tmp_path, device="cpu", log=messages.append)  # more epochs: extended
    assert messages[-1].startswith("trained") and len((run / "history.csv").read_text().splitlines()) == 1 + 3
    load_or_train(spec.replace(epochs=3), tmp_path, device="cpu", log=messages.append)
    assert messages[-1].startswith("loaded")
    load_or_train(spec.replace(batch_size=4), tmp_path, retrain=True, device="cpu", log=messages.append)
    assert json.loads((run / "config.json").read_text())["train"]["batch_size"] == 4


def test_evaluate_reads_the_data_the_run_was_trained_on_from_any_folder(wood, tmp_path, monkeypatch):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    shutil.copytree(wood, here / "data")
    make_synthetic(elsewhere / "data", ["synth_wood"], n_train=10, n_test=6, size=SIZE, seed=1)  # same name, other data
    monkeypatch.chdir(here)
    assert train_cli("data", "runs", "ae", "none", 1) == 0  # a relative data root
    run = here / "runs" / "synth_wood" / "ae-none-s0"
    monkeypatch.chdir(elsewhere)
    result = evaluate(run, "residual", device="cpu", figure=False, log=quiet)
    assert result["n_images"] == 9  # the 9 test images of the training data, not the 6 of ./data here
    data = read_metrics(run)["residual"]["data"]
    assert data == {
        "data_root": str((here / "data").resolve()),
        "dataset": "synthetic",
        "category": "synth_wood",
        "n_test": 9,
        "n_val": None,
    }


def test_a_run_made_before_the_decoder_readings_loads_as_legacy_and_is_never_reused_by_a_paper_spec(wood, tmp_path):
    from stainlib.checkpoints import load_run, save_checkpoint, write_config
    from stainlib.spec import stored_settings

    committed = json.loads(
        (Path(__file__).parents[1] / "results/bottle/legacy-decoder/aesc-drops-s0/config.json").read_text()
    )
    assert "decoder" not in committed["model"] and stored_settings(committed)["decoder"] == "legacy"
    spec = RunSpec(wood, "synth_wood", "aesc", "none", image_size=SIZE, epochs=1, batch_size=8, decoder="legacy")
    _, run = load_or_train(spec, tmp_path, device="cpu", log=quiet)
    config = json.loads((run / "config.json").read_text())
    del config["model"]["decoder"], config["model"]["decoder_dropout"]  # the layout of the committed runs
    write_config(run, config)
    state = torch.load(run / "last.pt", weights_only=True)  # the checkpoint's config is compared too: strip it
    save_checkpoint(run, "last.pt", {**state, "config": config})
    model, _ = load_run(run, which="last.pt")
    assert len(model.decoder) == 6 and model.config["decoder"] == "legacy"
    assert RunSpec.from_config(config).decoder == "legacy"
    with pytest.raises(RunError, match="decoder: 'legacy' in the run folder, 'paper' now"):
        load_or_train(spec.replace(decoder="paper"), tmp_path, device="cpu", log=quiet)


def test_an_unknown_decoder_in_a_spec_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown decoder 'code'"):
        RunSpec(tmp_path, "synth_wood", decoder="code")


def test_evaluate_at_step_scores_the_snapshot_and_records_it_by_step_leaving_metrics_json_alone(wood, tmp_path, capsys):
    from stainlib.cli import main
    from stainlib.runs import read_step_metrics

    # 8 training images (2 go to validation), batch 4: 2 steps per epoch, 4 in the run.
    assert train_cli(wood, tmp_path, "aesc", "stain", 2, "--batch-size", "4", "--keep-steps", "1", "4") == 0
    run = tmp_path / "synth_wood" / "aesc-stain-s0"
    assert main(["evaluate", str(run), "--map", "residual", "--device", "cpu", "--at-step", "1"]) == 0
    assert not (run / "metrics.json").exists()
    final = evaluate(run, "residual", device="cpu", figure=False, log=quiet)
    at_end = evaluate(run, "residual", device="cpu", figure=False, log=quiet, at_step=4)
    curve = read_step_metrics(run)
    assert sorted(curve) == [1, 4] and (curve[1]["residual"]["step"], curve[1]["residual"]["images_seen"]) == (1, 4)
    assert curve[4]["residual"]["images_seen"] == 16 and 0 <= curve[1]["residual"]["pixel_auroc"] <= 1
    assert read_metrics(run) == {"residual": final} and at_end["image_auroc"] == curve[4]["residual"]["image_auroc"]
    assert (run / "steps" / "figure_residual-000001.png").exists()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--device", "cpu", "--at-step", "3"]) == 2
    assert "no snapshot of step 3 (it has [1, 4])" in capsys.readouterr().err
    for step in (1, 4):  # a committed result keeps the metrics, not the weights: its learning curve still reads
        (run / "steps" / f"step-{step:06d}.pt").unlink()
    assert sorted(read_step_metrics(run)) == [1, 4]
