"""Claims about stainlib.tables: the paper's tables from run folders, with the paper's numbers (chapters 7, 8)."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from stainlib.tables import make_table

RESULTS = Path(__file__).resolve().parents[1] / "results"


def fake_run(folder, cat, trained, auroc, dataset=None):
    run = folder / cat / "aesc-stain-s0"
    run.mkdir(parents=True)
    shutil.copy(trained / "config.json", run / "config.json")
    result = {"image_auroc": auroc, "device": "cpu"}
    if dataset:
        result["data"] = {"dataset": dataset}
    (run / "metrics.json").write_text(json.dumps({"residual": result}))


def test_table_puts_the_paper_number_beside_ours_with_means(tmp_path, trained):
    for cat in ("bottle", "carpet"):
        fake_run(tmp_path, cat, trained, 0.9)
    table = make_table(tmp_path, "I")
    rows = {r["category"]: r for r in table["rows"]}
    assert rows["bottle"]["residual/AESc/stain"] == 0.9
    assert rows["bottle"]["residual/AESc/stain (paper)"] == 0.98
    assert rows["carpet"]["residual/AESc/stain (paper)"] == 0.89
    assert rows["mean all"]["residual/AESc/stain"] == pytest.approx(0.9)
    assert rows["mean textures"]["residual/AESc/stain (paper)"] == 0.89
    lines = table["markdown"].splitlines()  # one row per category and model; the residual's columns come last
    assert any(x.startswith("| bottle | AESc + stain |") and x.endswith("| 0.90 | 0.98 |") for x in lines)
    with open(tmp_path / "table_I.csv") as f:
        assert next(csv.DictReader(f))["category"] == "bottle"


def test_a_synthetic_category_is_not_compared_with_the_mvtec_category_of_the_same_name(tmp_path, trained):
    fake_run(tmp_path, "wood", trained, 0.7, dataset="synthetic")
    row = make_table(tmp_path, "I", write=False)["rows"][0]
    assert row["residual/AESc/stain"] == 0.7 and row["residual/AESc/stain (paper)"] is None


@pytest.mark.parametrize("table", ["I", "II", "III"])
def test_the_committed_results_give_the_committed_tables(table):
    expected = (RESULTS / f"table_{table}.csv").read_text()
    made = make_table(RESULTS, table, write=False)
    rows = list(csv.DictReader(expected.splitlines()))
    for want, got in zip(rows, made["rows"], strict=True):
        assert want["category"] == got["category"]
        for key, value in want.items():
            if key != "category":
                assert (round(got[key], 4) if got[key] is not None else "") == (float(value) if value else ""), key


def test_seed_table_lists_each_seed_with_mean_and_spread_and_leaves_the_spread_blank_for_one_seed(tmp_path):
    import json
    import statistics

    from stainlib.tables import seed_table

    for seed, value in enumerate([0.7, 0.8, 0.9]):
        (tmp_path / f"aesc-stain-s{seed}").mkdir()
        m = {"residual": {"image_auroc": value, "pixel_auroc": 0.5}}
        (tmp_path / f"aesc-stain-s{seed}" / "metrics.json").write_text(json.dumps(m))
    (tmp_path / "aesc-none-s0").mkdir()
    (tmp_path / "aesc-none-s0" / "metrics.json").write_text(json.dumps({"residual": m["residual"]}))
    t = seed_table(tmp_path)
    assert t["seeds"] == [0, 1, 2] and [r["corruption"] for r in t["rows"]] == ["none", "stain"]
    stain_image = next(line for line in t["markdown"].splitlines() if "AESc + stain | residual | image" in line)
    assert stain_image.endswith(f"| 0.700 | 0.800 | 0.900 | 0.800 | {statistics.stdev([0.7, 0.8, 0.9]):.3f} |")
    none_image = next(line for line in t["markdown"].splitlines() if "AESc + none | residual | image" in line)
    assert none_image.endswith("| 0.900 |  |  | 0.900 |  |")  # seeds 1 and 2 missing, no spread


def test_provenance_names_the_commit_of_committed_runs_and_never_passes_a_checkout_off_as_the_runs_commit(tmp_path):
    from stainlib.tables import _commit_words

    committed = _commit_words(RESULTS, [RESULTS / "bottle" / "aesc-stain-s0"])
    assert committed.startswith("runs committed at ")
    assert _commit_words(tmp_path, [tmp_path]) == "commit unknown (not a git checkout)"


def test_ablation_table_reads_each_reading_against_its_paper_reading_beyond_the_books_spread_rule(tmp_path):
    from stainlib.claims import single_run_spread
    from stainlib.tables import ablation_table

    head = "row,reading,method,image_auroc,pixel_auroc"
    lines = [
        "seed spread,paper,residual,0.80,0.70",
        "seed spread,paper,residual,0.84,0.74",
        "decoder,paper,residual,0.82,0.72",  # seed 0 of the same model: spread 0.02 at both levels
        "decoder,legacy,residual,0.81,0.62",  # -0.10 pixel: 5 seed sd
        "masks,code,residual,0.82,0.73",  # re-scores the decoder row's paper model: +0.01 pixel
    ]
    (tmp_path / "ablation.csv").write_text("\n".join([head, *lines]) + "\n")
    # 1,000 good and 2,000 defective images: the single-run error (about 0.01) is below the seed sd of 0.02.
    table = ablation_table(tmp_path / "ablation.csv", 1000, 2000)
    assert table["n_seeds"] == 3 and table["spread"]["pixel_auroc"] == pytest.approx(0.02)
    decoder, masks = table["readings"]
    assert decoder["difference"]["pixel_auroc"] == pytest.approx(-0.10) and decoder["in_sd"]["pixel_auroc"] == (
        pytest.approx(5.0)
    )
    assert decoder["spread"]["pixel_auroc"] == pytest.approx(0.02) and decoder["beyond"]["pixel_auroc"]
    assert masks["paper"]["pixel_auroc"] == 0.72 and masks["in_sd"]["pixel_auroc"] == pytest.approx(0.5)
    assert table["moved"] == ["decoder"]
    # 10 good and 20 defective images: the single-run error is the larger, above 0.1.
    small = ablation_table(tmp_path / "ablation.csv", 10, 20)
    se = single_run_spread(0.62, 0.72, 10, 20)[0]
    assert small["readings"][0]["spread"]["pixel_auroc"] == pytest.approx(se) and se > 0.1
    assert small["moved"] == []  # -0.10 is within it


@pytest.mark.parametrize("table", ["I", "II", "III"])
def test_the_page_version_of_a_table_names_its_dataset_seed_steps_and_decoder_and_leaves_the_rest_to_the_box(table):
    # the book shows bottle runs of two budgets and two decoders: each table's title says which it holds
    page = make_table(RESULTS, table, write=False)["page_markdown"]
    title = page.splitlines()[0]
    prov = make_table(RESULTS, table, write=False)["provenance"]
    steps = re.search(r"([\d,]+) steps", prov["budget"][0]).group(1)
    assert "MVTec AD `bottle`" in title and "seed 0 of each run" in title
    from stainlib.describe import decoder_words

    assert f", {steps} steps, {decoder_words(prov['decoder'][0])}" in title
    assert "Provenance" not in page and "commit" not in page and "validation" not in page


def _copy_of(trained, folder, name, metrics, decoder=None, seed=None):
    run = folder / name
    run.mkdir(parents=True)
    config = json.loads((trained / "config.json").read_text())
    if decoder:
        config["model"]["decoder"] = decoder
    if seed is not None:
        config["train"]["seed"] = seed
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps(metrics))


def test_folder_comparison_pairs_runs_by_name_names_the_setting_they_differ_in_and_averages_the_differences(
    tmp_path, trained
):
    from stainlib.tables import folder_comparison

    new, old = tmp_path / "new", tmp_path / "old"
    for name, a, b in (("aesc-stain-s0", 0.9, 0.8), ("aesc-none-s0", 0.6, 0.7)):
        _copy_of(trained, new, name, {"residual": {"image_auroc": a, "pixel_auroc": 0.5}}, decoder="paper")
        _copy_of(trained, old, name, {"residual": {"image_auroc": b, "pixel_auroc": 0.4}}, decoder="legacy")
    _copy_of(trained, old, "ae-none-s0", {"residual": {"image_auroc": 0.5, "pixel_auroc": 0.5}})  # no partner
    c = folder_comparison(new, old)
    assert c["differ"] == {"decoder": ("paper", "legacy")}
    assert [(r["run"], r["map"]) for r in c["rows"]] == [("aesc-none-s0", "residual"), ("aesc-stain-s0", "residual")]
    assert c["rows"][1]["difference"]["image_auroc"] == pytest.approx(0.1)
    assert c["mean"] == pytest.approx({"image_auroc": 0.0, "pixel_auroc": 0.1})


def test_folder_comparison_refuses_pairs_that_differ_in_different_settings(tmp_path, trained):
    from stainlib.tables import folder_comparison

    m = {"residual": {"image_auroc": 0.9, "pixel_auroc": 0.5}}
    _copy_of(trained, tmp_path / "new", "aesc-stain-s0", m, decoder="paper")
    _copy_of(trained, tmp_path / "old", "aesc-stain-s0", m, decoder="legacy")
    _copy_of(trained, tmp_path / "new", "aesc-none-s0", m, seed=1)
    _copy_of(trained, tmp_path / "old", "aesc-none-s0", m, seed=2)
    with pytest.raises(ValueError, match="aesc-stain-s0: differs from its copy in \\['decoder'\\]"):
        folder_comparison(tmp_path / "new", tmp_path / "old")
