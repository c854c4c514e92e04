"""Claims about stainlib.predict and ``stainlib predict``: a trained run on new images, with a calibrated threshold
(book chapter 8, "Beyond the paper", section "Your own images")."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import copy_trained
from PIL import Image

import stainlib
from stainlib.checkpoints import RunError
from stainlib.checksums import read_checksums, write_listed
from stainlib.cli import main
from stainlib.data import MVTecAD
from stainlib.detect import anomaly_maps, image_score
from stainlib.files import file_sha256
from stainlib.metrics import at_threshold, image_auroc, pixel_auroc
from stainlib.predict import THRESHOLDS, best_map, predict, threshold_at, thresholds
from stainlib.runs import evaluate
from stainlib.train import load_run

T = 4  # MC-dropout passes: enough to exercise the uncertainty, cheap on 64 px images


def quiet(*_):
    pass


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run, never evaluated, so that a test may change its files."""
    return copy_trained(trained, tmp_path / "run")


def test_threshold_at_leaves_at_most_floor_fpr_n_clean_scores_above_and_says_how_many():
    scores = torch.arange(100, dtype=torch.float32).flip(0)  # 99 .. 0, in no sorted order the function relies on
    assert threshold_at(scores, 0.01) == (98.0, 1)
    assert threshold_at(scores, 0.05) == (94.0, 5)
    assert threshold_at(scores, 0.29) == (70.0, 29)  # 0.29 x 100 is 28.999... in floating point
    # ten scores cannot resolve 1 %: the threshold is the highest clean score, exceeded by none
    assert threshold_at(scores[:10], 0.01) == (99.0, 0)
    with pytest.raises(ValueError, match="fpr must lie in"):
        threshold_at(scores, 0.0)


def test_at_threshold_flags_scores_strictly_above_and_counts_the_four_cells():
    scores, labels = [0.1, 0.5, 0.5, 0.9, 0.3], [0, 0, 1, 1, 1]
    r = at_threshold(scores, labels, 0.5)  # only 0.9 lies strictly above
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (1, 0, 2, 2)
    assert (r["precision"], r["recall"], r["f1"]) == (1.0, 1 / 3, 0.5)
    r = at_threshold(scores, labels, 0.2)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (3, 1, 0, 1) and r["precision"] == 0.75
    assert at_threshold(scores, labels, 1.0)["precision"] == 0.0  # nothing flagged


@pytest.mark.parametrize("map_name", ["residual", "uncertainty", "combined"])
def test_predict_scores_equal_evaluate_for_the_same_images_and_map(run, wood, map_name):
    result = evaluate(run, map_name, n_samples=T, device="cpu", figure=False, log=quiet)
    p = predict(run, wood / "synth_wood" / "test", map_name, n_samples=T, device="cpu", log=quiet)
    test = MVTecAD(wood, "synth_wood", "test", size=64).tensors()
    val = MVTecAD(wood, "synth_wood", "val", size=64).tensors()["image"]
    assert p["path"] == test["path"]  # a folder is read in the test split's order
    model, _ = load_run(run)
    assert torch.equal(p["anomaly_map"], anomaly_maps(model, test["image"], (map_name,), T, val)[map_name])
    assert image_auroc(p["pred_score"], test["gt_label"]) == result["image_auroc"]
    assert pixel_auroc(p["anomaly_map"], test["gt_mask"]) == result["pixel_auroc"]
    # evaluate reports the calibrated threshold's precision, recall and F1 beside F1-max: the same decisions
    calibrated = result["calibrated"]
    assert p["image_threshold"] == calibrated["image_threshold"]
    decided = at_threshold(p["pred_score"], test["gt_label"], p["image_threshold"])
    assert [decided[k] for k in ("precision", "recall", "f1")] == [
        calibrated[f"image_{k}"] for k in ("precision", "recall", "f1")
    ]
    assert torch.equal(p["pred_label"], p["pred_score"] > calibrated["image_threshold"])
    assert torch.equal(p["pred_mask"], p["anomaly_map"] > calibrated["pixel_threshold"])
    assert json.loads((run / "metrics.json").read_text())[map_name]["calibrated"]["image_f1"] == calibrated["image_f1"]


def test_calibrated_threshold_is_reproducible_from_the_run_and_kept_under_its_checksum(run, wood, monkeypatch):
    first = thresholds(run, "residual", n_samples=T, device="cpu", log=quiet)
    stored = run / THRESHOLDS
    assert read_checksums(run)[THRESHOLDS] == [file_sha256(stored)]
    # by definition: the (floor(0.01 n) + 1)-th largest score of the clean validation images and of their pixels
    val = MVTecAD(wood, "synth_wood", "val", size=64).tensors()["image"]
    maps = anomaly_maps(load_run(run)[0], val, ("residual",), T)["residual"]
    pixels = maps.flatten().sort(descending=True).values
    assert first["pixel_threshold"] == float(pixels[int(0.01 * len(pixels))])
    assert first["image_threshold"] == float(image_score(maps).max())  # 2 images resolve no 1 %
    # kept: a second call reads it back without computing a map
    monkeypatch.setattr("stainlib.predict.anomaly_maps", lambda *_, **__: pytest.fail("recalibrated"))
    assert thresholds(run, "residual", n_samples=T, device="cpu", log=quiet) == first
    monkeypatch.undo()
    # reproducible: made anew from the run alone, it is the same
    stored.unlink()
    assert thresholds(run, "residual", n_samples=T, device="cpu", log=quiet) == first
    # another false-positive rate is calibrated anew, and replaces the record
    assert (
        thresholds(run, "residual", fpr=0.2, n_samples=T, device="cpu", log=quiet)["pixel_threshold"]
        < (first["pixel_threshold"])
    )


def test_a_changed_threshold_json_is_refused_naming_the_file(run):
    thresholds(run, "residual", n_samples=T, device="cpu", log=quiet)
    record = json.loads((run / THRESHOLDS).read_text())
    record["residual"]["image_threshold"] = 0.0
    (run / THRESHOLDS).write_text(json.dumps(record))
    with pytest.raises(RunError, match=f"checksum mismatch for .*{THRESHOLDS}"):
        predict(run, torch.zeros(1, 1, 64, 64), "residual", device="cpu", log=quiet)


def test_predict_cli_writes_the_csv_a_heatmap_per_image_and_a_summary(run, wood, tmp_path):
    test = wood / "synth_wood" / "test"
    out = tmp_path / "out"
    assert main(["predict", str(run), str(test), "--out", str(out), "--map", "residual", "--device", "cpu"]) == 0
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    files = sorted(p for p in test.rglob("*.png"))
    assert [r["file"] for r in rows] == [str(p) for p in files]
    assert list(rows[0]) == ["file", "pred_score", "pred_label", "threshold", "map", "heatmap"]
    assert {r["map"] for r in rows} == {"residual"} and {r["pred_label"] for r in rows} <= {"0", "1"}
    heatmaps = sorted((out / "heatmaps").glob("*.png"))
    assert len(heatmaps) == len(files) == len({r["heatmap"] for r in rows})  # same names in two folders stay apart
    assert all((out / r["heatmap"]).is_file() for r in rows)
    with Image.open(heatmaps[0]) as im:
        assert im.size[0] > 64  # a figure with its colour bar, not the bare map
    summary = (out / "summary.txt").read_text()
    flagged = sum(r["pred_label"] == "1" for r in rows)
    assert f"images scored: {len(files)}" in summary and f"flagged defective: {flagged} of {len(files)}" in summary
    assert "image threshold:" in summary and "calibrated on the run's 2 clean validation images" in summary
    assert "smallest rate they resolve is 1/2" in summary  # 2 images cannot resolve 1 %, and it says so
    # a second run into an output folder inside the input folder does not read the first one's heatmaps
    inside = tmp_path / "new"
    shutil.copytree(test, inside)
    assert main(["predict", str(run), str(inside), "--out", str(inside / "out"), "--device", "cpu"]) == 0
    assert main(["predict", str(run), str(inside), "--out", str(inside / "out"), "--device", "cpu"]) == 0
    assert len(list(csv.DictReader((inside / "out" / "predictions.csv").open()))) == len(files)


def test_a_corrupt_file_is_named_and_skipped_the_exit_status_is_nonzero_and_strict_stops(run, wood, tmp_path, capsys):
    folder = tmp_path / "today"
    folder.mkdir()
    for name in ("000.png", "001.png"):
        shutil.copy(wood / "synth_wood" / "test" / "good" / name, folder / name)
    (folder / "002.png").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    assert main(["predict", str(run), str(folder), "--out", str(out), "--device", "cpu"]) == 1
    printed = capsys.readouterr()
    assert f"cannot read image {folder / '002.png'}" in printed.out
    assert f"1 path(s) skipped: {folder / '002.png'}" in printed.err
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [r["file"] for r in rows] == [str(folder / "000.png"), str(folder / "001.png")]
    assert "002.png" in (out / "summary.txt").read_text()
    assert main(["predict", str(run), str(folder), "--out", str(tmp_path / "o2"), "--device", "cpu", "--strict"]) == 2
    assert f"cannot read image {folder / '002.png'}" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "predictions.csv").exists()


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_an_rgb_1000_px_image_given_to_a_grey_64_px_run_is_converted_as_in_training(run, tmp_path, suffix):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    # the same file in the MVTec layout, read by the training data's reader
    layout = tmp_path / "data" / "c"
    for split in ("train/good", "test/good"):
        (layout / split).mkdir(parents=True)
        Image.fromarray(pixels).save(layout / split / f"a{suffix}")
    path = layout / "test" / "good" / f"a{suffix}"
    as_trained = MVTecAD(tmp_path / "data", "c", "test", size=64, color="gray")[0]["image"]
    p = predict(run, [path], "residual", device="cpu", log=quiet)
    assert p["image"].shape == (1, 1, 64, 64)
    assert torch.equal(p["image"][0], as_trained)
    with Image.open(path) as im:  # and that is: grey by PIL's L conversion, then Lanczos to 64 px
        expected = np.asarray(im.convert("L").resize((64, 64), Image.LANCZOS)) / 255
    assert torch.equal(p["image"][0, 0], torch.from_numpy(expected).float())


def test_a_given_threshold_overrides_the_calibrated_one_and_needs_no_validation_data(run, tmp_path):
    images = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    p = predict(run, images, "residual", threshold=-1, pixel_threshold=1e9, data_root=tmp_path / "gone", device="cpu")
    assert p["pred_label"].all() and not p["pred_mask"].any()
    assert p["threshold_how"] == {"image": "given (-1)", "pixel": "given (1e+09)"}
    assert not (run / THRESHOLDS).exists()


def test_a_kept_threshold_needs_no_validation_data_on_the_inspection_machine(run, tmp_path):
    images = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    kept = thresholds(run, "residual", device="cpu", log=quiet)
    p = predict(run, images, "residual", data_root=tmp_path / "gone", device="cpu", log=quiet)
    assert (p["image_threshold"], p["pixel_threshold"]) == (kept["image_threshold"], kept["pixel_threshold"])
    with pytest.raises(ValueError, match="not found"):  # another rate must be calibrated, and that needs the data
        predict(run, images, "residual", fpr=0.2, data_root=tmp_path / "gone", device="cpu", log=quiet)


def test_stainlib_predict_is_the_function_and_the_map_defaults_to_the_runs_best(run):
    images = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert best_map(run)[0] == "residual"  # never evaluated: the paper's map
    metrics = {"residual": {"image_auroc": 0.6}, "uncertainty": {"image_auroc": 0.7}}
    write_listed(run, "metrics.json", lambda p: p.write_text(json.dumps(metrics)))
    best, why = best_map(run)
    assert best == "uncertainty" and "residual 0.600, uncertainty 0.700" in why
    p = stainlib.predict(run, images, threshold=0, pixel_threshold=0, n_samples=T, device="cpu", log=quiet)
    assert p["map"] == "uncertainty" and p["map_reason"] == why
    assert set(p) >= {"pred_score", "anomaly_map", "pred_label", "pred_mask"}
    assert p["pred_score"].shape == (2,) and p["pred_mask"].shape == p["anomaly_map"].shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match=r"images must be \(N, 1, 64, 64\)"):
        stainlib.predict(run, torch.rand(2, 3, 64, 64), "residual", threshold=0, pixel_threshold=0, device="cpu")


def test_predictions_replace_hard_linked_files_instead_of_writing_through_them(run, wood, tmp_path):
    # A copied output folder (cp -al) shares its files with the original: a new call must not change the original.
    test = wood / "synth_wood" / "test"
    out, copy = tmp_path / "out", tmp_path / "copy"
    assert main(["predict", str(run), str(test), "--out", str(out), "--map", "residual", "--device", "cpu"]) == 0
    shutil.copytree(out, copy, copy_function=os.link)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["predict", str(run), str(test), "--out", str(copy), "--map", "uncertainty", "--device", "cpu"]) == 0
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert "uncertainty" in (copy / "predictions.csv").read_text() and not list(copy.rglob("*.tmp"))


def _fake_result(scores, threshold=0.5):
    """A predict() result for len(scores) 16 px images, without a run: each map is uniform at its score."""
    scores = torch.tensor(scores)
    maps = scores.view(-1, 1, 1, 1).expand(-1, 1, 16, 16).clone()
    return {
        "image": torch.rand(len(scores), 1, 16, 16, generator=torch.Generator().manual_seed(0)),
        "anomaly_map": maps,
        "pred_mask": maps > threshold,
        "pred_score": scores,
        "pred_label": scores > threshold,
        "image_threshold": threshold,
        "pixel_threshold": threshold,
        "map": "residual",
    }


def test_the_showcase_picks_the_highest_and_lowest_scored_defective_and_good_images_and_needs_both():
    from stainlib.predictions import showcase

    result = _fake_result([0.9, 0.2, 0.7, 0.6, 0.1, 0.8])
    truth = [True, True, True, False, False, False]
    assert showcase(result, truth) == {
        "defective, highest score": 0,
        "defective, lowest score": 1,
        "good, highest score": 5,
        "good, lowest score": 4,
    }
    with pytest.raises(ValueError, match="defective and good"):
        showcase(result, [True] * 6)


def test_the_showcase_figure_reads_at_column_width_with_each_decision_and_one_colour_bar_marking_the_threshold():
    from stainlib.predictions import showcase_figure

    result = _fake_result([0.9, 0.2, 0.7, 0.6, 0.1, 0.8])
    fig = showcase_figure(result, [True, True, True, False, False, False], "synthetic test")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 4 and fig.get_figwidth() <= 7.5  # shown about at its size in a book's column
    assert panels[0].get_title() == "truth: defective, highest score\ndecision: DEFECTIVE\n(score 0.9 > 0.5)"
    assert panels[1].get_title() == "truth: defective, lowest score\ndecision: good\n(score 0.2 <= 0.5)"
    assert min(ax.title.get_fontsize() for ax in panels) >= 9  # item 7 of the book's figures: 9 pt or more
    (bar,) = [ax for ax in fig.axes if not ax.get_title()]
    assert "pixel threshold" in bar.get_ylabel() and bar.yaxis.label.get_fontsize() >= 9
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in bar.get_lines())  # the threshold on the bar
