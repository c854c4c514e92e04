"""Claims about stainlib.learning_curve: a budget study's CSV read strictly, the budget from which each claim holds,
and the curve drawn with the paper's numbers and the authors' budget.  Synthetic CSVs written here; no training."""

import csv

import pytest

from stainlib.learning_curve import COLUMNS, authors_budget, claim_onsets, curve_figure, onset_markdown, read_budget
from stainlib.spec import BUDGETS
from stainlib.train import budget


def _write(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({"seed": 0, "decoder": "paper", "pixel_auroc": 0.7, **r})
    return path


def _row(network, corruption, steps, image_auroc, map="residual", pixel_auroc=0.7, seed=0):
    return dict(
        seed=seed,
        network=network,
        corruption=corruption,
        steps=steps,
        images_seen=16 * steps,
        map=map,
        image_auroc=image_auroc,
        pixel_auroc=pixel_auroc,
    )


def test_read_budget_names_the_missing_columns(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("network,steps\naesc,125\n")
    with pytest.raises(ValueError, match="missing the columns corruption, seed"):
        read_budget(path)


def test_read_budget_names_the_line_of_a_number_that_does_not_parse(tmp_path):
    path = _write(tmp_path / "b.csv", [_row("aesc", "stain", 125, 0.9), _row("aesc", "stain", 250, "n/a")])
    with pytest.raises(ValueError, match="line 3"):
        read_budget(path)


def test_read_budget_types_the_numbers(tmp_path):
    (row,) = read_budget(_write(tmp_path / "b.csv", [_row("aesc", "stain", 125, 0.9)]))
    assert (row["steps"], row["images_seen"], row["image_auroc"]) == (125, 2000, 0.9)


def test_authors_budget_is_the_trainers_count_of_the_paper_budget():
    paper = BUDGETS["paper"]
    expected = budget(167, 42, paper["epochs"], 16, paper["samples_per_epoch"])
    assert authors_budget() == {"steps": expected["steps"], "images_seen": expected["images_seen"]}


def test_a_claim_holds_from_the_smallest_budget_after_which_it_never_fails(tmp_path):
    # stain vs none at image level: a lead of 0.4 (far beyond one standard error of about 0.1 for 20 + 63 images)
    # at 125 steps, none at 250, then 0.4 again at 500 and 1000: it holds from 500 steps (8,000 images) on.
    stain = [0.9, 0.6, 0.9, 0.95]
    none = [0.5, 0.6, 0.5, 0.55]
    rows = [_row("aesc", "stain", s, a) for s, a in zip((125, 250, 500, 1000), stain)]
    rows += [_row("aesc", "none", s, a) for s, a in zip((125, 250, 500, 1000), none)]
    onsets = {o["key"]: o for o in claim_onsets(read_budget(_write(tmp_path / "b.csv", rows)), 20, 63)}
    assert onsets["stain_beats_none_image"]["from_images"] == 8000
    assert [p[-1] for p in onsets["stain_beats_none_image"]["points"]] == [True, False, True, True]
    # equal pixel AUROCs never hold, and a claim whose sides were not both studied is left out
    assert onsets["stain_beats_none_pixel"]["from_images"] is None
    assert "stain_beats_ae_image" not in onsets


def test_onset_table_names_its_data_and_says_when_a_claim_never_holds(tmp_path):
    rows = [_row("aesc", "stain", 125, 0.9), _row("aesc", "none", 125, 0.5)]
    text = onset_markdown(claim_onsets(read_budget(_write(tmp_path / "b.csv", rows)), 20, 63), "synthetic, seed 0")
    assert text.splitlines()[0].startswith("| claim (synthetic, seed 0) |")
    assert "| 2,000 |" in text and "none of the budgets studied" in text


def test_curve_draws_one_line_per_run_and_the_papers_number_and_authors_budget(tmp_path):
    rows = [_row("aesc", "stain", s, 0.9) for s in (125, 250)] + [_row("ae", "none", s, 0.7) for s in (125, 250)]
    fig = curve_figure(read_budget(_write(tmp_path / "b.csv", rows)))
    image = fig.axes[0]
    assert image.get_xscale() == "log"
    assert [line.get_label() for line in image.get_lines() if not line.get_label().startswith("_")] == [
        "AESc + stain, residual",
        "AE + none, residual",
    ]
    # the paper's bottle numbers for both runs (dashed) and the authors' budget (a vertical line at 500,000 images)
    assert len(image.collections) == 2
    assert any(list(line.get_xdata()) == [500_000, 500_000] for line in image.get_lines())
    assert not any(line.get_label() == "_other_seed" for line in image.get_lines())  # one seed: no thin lines


def test_curve_draws_a_runs_other_seeds_as_thin_lines_named_once_in_the_legend(tmp_path):
    rows = [_row("aesc", "stain", s, 0.9, seed=k) for k in (0, 1, 2) for s in (125, 250)]
    rows += [_row("ae", "none", s, 0.7) for s in (125, 250)]
    fig = curve_figure(read_budget(_write(tmp_path / "b.csv", rows)))
    thin = [line for line in fig.axes[0].get_lines() if line.get_label() == "_other_seed"]
    assert len(thin) == 2 and all(line.get_linewidth() < 1 for line in thin)  # seeds 1 and 2 of AESc + stain only
    assert "thin: seeds 1, 2 of the same run" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert not any(
        line.get_label() == "_other_seed"
        for line in curve_figure(read_budget(tmp_path / "b.csv"), other_seeds=False).axes[0].get_lines()
    )


def test_budget_claims_check_the_committed_study_at_its_largest_budget_on_its_own_test_counts():
    from pathlib import Path

    from stainlib.learning_curve import budget_claims, claims_at
    from stainlib.runs import read_step_metrics

    study = Path(__file__).resolve().parents[1] / "results" / "bottle" / "budget"
    found = budget_claims(study)
    rows = read_budget(study / "budget.csv")
    assert found["images_seen"] == max(r["images_seen"] for r in rows)
    counts = read_step_metrics(study / "aesc-stain-s0")[found["steps"]]["residual"]
    expected = claims_at(rows, found["images_seen"], counts["n_good"], counts["n_defective"])
    assert found["claims"] == expected and expected  # the same claims, and at least one is checked
    assert "MVTec AD `bottle`" in found["where"] and f"{found['steps']:,} steps" in found["where"]
    assert budget_claims(study / "missing") is None


def test_the_real_bottle_column_falls_back_to_the_committed_grid_only_where_no_budget_study_is_committed(tmp_path):
    import shutil
    from pathlib import Path

    from stainlib.collect import bottle_claims
    from stainlib.learning_curve import bottle_aurocs, bottle_evidence, budget_claims

    results = Path(__file__).resolve().parents[1] / "results"
    with_study = bottle_evidence(results)
    assert with_study["claims"] == budget_claims(results / "bottle" / "budget")["claims"]
    assert with_study["decoders"] == {"paper"} and "results/bottle/budget" in with_study["where"]
    grid_only = tmp_path / "results"
    shutil.copytree(results / "bottle", grid_only / "bottle", ignore=shutil.ignore_patterns("budget"))
    fallback = bottle_evidence(grid_only)
    assert fallback["claims"] == bottle_claims(grid_only)["claims"] and "budget" not in fallback["where"]
    # AUROCs for a page's table: the study where it holds every run asked for, the grid otherwise, and the header
    # words say which.
    values, words = bottle_aurocs(results, ["aesc-stain"], "uncertainty")
    study_rows = [r for r in read_budget(results / "bottle" / "budget" / "budget.csv") if r["map"] == "uncertainty"]
    top = max(study_rows, key=lambda r: r["steps"])
    assert values == {"aesc-stain": (top["image_auroc"], top["pixel_auroc"])} and f"{top['steps']:,} steps" in words
    values, words = bottle_aurocs(grid_only, ["aesc-stain"], "uncertainty")
    assert "seed 0" in words and values["aesc-stain"] != (top["image_auroc"], top["pixel_auroc"])
    assert bottle_evidence(tmp_path / "nothing") is None and bottle_aurocs(tmp_path / "nothing", ["ae-none"]) == (
        {},
        "",
    )


def test_with_several_seeds_a_claim_compares_the_seed_means_against_the_larger_seed_standard_deviation(tmp_path):
    # (Where the seed sd is the smaller, the single-run error is the spread: test_claims tests that floor.)
    import statistics

    # AESc + stain scored with three seeds at 125 steps, AESc + none with one: the sides are the means, the spread is
    # the stain seeds' standard deviation (0.1), so a lead of 0.15 holds, where the single-run formula is not used.
    stain = [0.8, 0.9, 1.0]
    rows = [_row("aesc", "stain", 125, a, seed=s) for s, a in enumerate(stain)] + [_row("aesc", "none", 125, 0.75)]
    (onset,) = [
        o
        for o in claim_onsets(read_budget(_write(tmp_path / "b.csv", rows)), 20, 63)
        if o["key"] == "stain_beats_none_image"
    ]
    images, steps, difference, spread, holds = onset["points"][0]
    assert difference == pytest.approx(statistics.mean(stain) - 0.75)
    assert spread == pytest.approx(statistics.stdev(stain)) and holds
    assert "3 and 1 seeds" in onset["spread_kind"]
    # seed 0 alone: the single-run spread again
    (alone,) = [
        o
        for o in claim_onsets(read_budget(_write(tmp_path / "c.csv", rows)), 20, 63, seeds={0})
        if o["key"] == "stain_beats_none_image"
    ]
    assert alone["points"][0][2] == pytest.approx(0.05) and alone["spread_kind"].endswith("(one seed)")
    text = onset_markdown([onset], "synthetic, seeds 0 to 2")
    assert text.splitlines()[-1].endswith(f"| {statistics.stdev(stain):.3f} (seed sd) |")  # the cell names its error


def test_seed_means_words_give_the_seed_means_the_boxes_compare_and_nothing_for_single_seed_runs(tmp_path):
    from stainlib.learning_curve import seed_means_words

    study = tmp_path / "bottle" / "budget"
    study.mkdir(parents=True)
    rows = [_row("aesc", "stain", 250, a, seed=s, pixel_auroc=p) for s, (a, p) in enumerate([(0.8, 0.6), (0.9, 0.7)])]
    rows += [_row("aesc", "stain", 125, 0.1, seed=s) for s in (0, 1)]  # a smaller budget: not counted
    rows += [_row("ae", "none", 250, 0.7)]
    _write(study / "budget.csv", rows)
    words = seed_means_words(tmp_path, ["ae-none", "aesc-stain"])
    assert "over its 2 seeds, AESc + stain's residual scores 0.850 (image AUROC) and 0.650 (pixel AUROC)" in words
    assert "AE + none" not in words  # one seed: seed 0 is already the number shown
    assert seed_means_words(tmp_path, ["ae-none"]) == "" and seed_means_words(tmp_path / "none", ["ae-none"]) == ""
