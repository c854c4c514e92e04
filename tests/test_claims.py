"""Claims about stainlib.claims, stainlib.collect and stainlib.evidence: the verdict a page shows is chosen by a
measured condition (all chapters)."""

import csv
import json
import math
import os
import shutil
import statistics
from pathlib import Path

import pytest

from stainlib.book import PROFILES
from stainlib.claims import auroc_se, check
from stainlib.collect import bottle_claims, paper_claims, run_claims
from stainlib.evidence import EvidenceRow, evidence_box, evidence_rows
from stainlib.paper import SHORT

ROOT = Path(__file__).resolve().parents[1]


def test_a_claim_holds_only_beyond_its_spread_and_the_evidence_cell_follows_the_verdict():
    holds, noisy, fails = (
        check("A beats B.", 0.9, 0.7, 0.05),
        check("A beats B.", 0.72, 0.7, 0.05),
        check("A beats B.", 0.6, 0.7, 0.05),
    )
    assert (holds.verdict, noisy.verdict, fails.verdict) == ("holds", "within the spread", "fails")
    box = evidence_box([EvidenceRow(f"row {i}", live=c) for i, c in enumerate((holds, noisy, fails))], {})
    cells = [line.split(" | ")[3] for line in box.splitlines() if line.startswith("| row ")]
    assert [c.rsplit(": ", 1)[1] for c in cells] == ["**holds**", "**within the spread**", "**fails**"]


def test_a_difference_within_the_spread_is_not_shown_whichever_its_sign():
    assert check("A beats B.", 0.68, 0.7, 0.05).verdict == "within the spread"
    assert check("A beats B.", 0.72, 0.7, 0.05).verdict == "within the spread"
    assert check("A beats B.", 0.7, 0.7, 0.0).verdict == "fails"  # no spread stated: a tie does not show A ahead


def test_a_claim_without_a_spread_estimate_says_so_instead_of_printing_a_zero():
    box = evidence_box([EvidenceRow("A > B", live=check("A beats B.", 0.9, 0.7, 0.0, "none stated"))], {})
    assert "(+0.200; no spread estimate [1])" in box and "[1] none stated." in box and "spread 0.000" not in box


def test_auroc_standard_error_shrinks_with_more_images_and_bad_input_is_refused():
    assert auroc_se(0.8, 100, 100) < auroc_se(0.8, 10, 10) < 0.2
    with pytest.raises(ValueError, match="good and defective"):
        auroc_se(0.8, 0, 10)
    with pytest.raises(ValueError, match="finite"):
        check("A beats B.", float("nan"), 0.5)
    with pytest.raises(ValueError, match="spread must be >= 0"):
        check("A beats B.", 0.9, 0.5, -0.1)


def test_the_committed_bottle_runs_give_claims_with_the_seed_spread_floored_at_the_single_run_error():
    bottle = bottle_claims(ROOT / "results")
    assert "3 seeds" in bottle["where"] and "steps" in bottle["where"] and "images seen" in bottle["where"]
    claim = bottle["claims"]["stain_beats_none_image"]
    seeds = [
        json.loads((ROOT / "results" / "bottle" / f"aesc-stain-s{s}" / "metrics.json").read_text())["residual"]
        for s in range(3)
    ]
    none = json.loads((ROOT / "results" / "bottle" / "aesc-none-s0" / "metrics.json").read_text())["residual"]
    sd = statistics.stdev(m["image_auroc"] for m in seeds)  # the Stain side's seed spread, read here directly
    ours, other = statistics.mean(m["image_auroc"] for m in seeds), none["image_auroc"]
    se = math.hypot(*(auroc_se(a, none["n_good"], none["n_defective"]) for a in (ours, other)))
    assert claim.spread == pytest.approx(max(sd, se)) and "3 seeds" in claim.spread_kind


def test_executing_a_chapter_where_a_claim_fails_changes_the_verdict_its_evidence_box_renders(tmp_path):
    """tables_1_2 run twice in a copy of the project, its box's real-bottle column read from the committed budget
    study's largest budget: with AESc + none's residual image AUROC there set far below AESc + stain's (0.3), then far
    above it (0.999): the box's real-bottle cell for that claim changes from holds to fails."""
    papermill = pytest.importorskip("papermill")
    from stainlib.synthetic import make_synthetic

    project = tmp_path / "project"
    project.mkdir()
    for name in ("_toc.yml", "stainlib"):
        (project / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "results", project / "results")
    (project / "data").mkdir()
    make_synthetic(project / "data" / "synthetic", PROFILES["fast"]["categories"], n_train=8, n_test=6, size=64)
    env = {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    os.environ.update(env)

    def bottle_cell():
        """The real-bottle cell of the row "AESc + Stain > AESc + none, image" in the page's evidence box."""
        out = tmp_path / "out.ipynb"
        papermill.execute_notebook(
            str(ROOT / "book" / "tables_1_2.ipynb"),
            str(out),
            cwd=str(project),
            kernel_name="python3",
            parameters={"profile": "fast", "epochs": 1},
            progress_bar=False,
        )
        texts = [
            "".join(o.get("data", {}).get("text/markdown", ""))
            for cell in json.loads(out.read_text())["cells"]
            for o in cell.get("outputs", [])
        ]
        boxes = [t for t in texts if t.startswith("````{admonition} Does it reproduce?")]
        assert len(boxes) == 1, "one evidence box per chapter"
        row = next(line for line in boxes[0].splitlines() if line.startswith(f"| {SHORT['stain_beats_none_image']} |"))
        return row.split(" | ")[2]  # claim | the paper | ours on real bottle | ...

    study = project / "results" / "bottle" / "budget" / "budget.csv"
    committed = study.read_text()

    def set_none(image_auroc):
        """The study with AESc + none's residual scored ``image_auroc`` at the largest budget (other rows kept)."""
        rows = list(csv.DictReader(committed.splitlines()))
        top = max(int(r["steps"]) for r in rows)
        stain = next(
            r
            for r in rows
            if (r["network"], r["corruption"], r["map"], int(r["steps"])) == ("aesc", "stain", "residual", top)
        )
        rows = [
            r
            for r in rows
            if not (r["network"], r["corruption"], r["map"], int(r["steps"])) == ("aesc", "none", "residual", top)
        ]
        rows.append({**stain, "corruption": "none", "image_auroc": image_auroc})
        with study.open("w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    set_none(0.3)
    before = bottle_cell()
    set_none(0.999)
    after = bottle_cell()
    assert before.endswith("**holds**") and after.endswith("**fails**")


def test_the_stain_is_ranked_among_the_corruptions_only_when_every_corruption_of_table_3_was_run(tmp_path):
    from stainlib.paper import TABLE_3_CORRUPTIONS

    def write(corruption, value):
        run = tmp_path / f"aesc-{corruption}-s0"
        run.mkdir()
        metrics = {"residual": {"image_auroc": value, "pixel_auroc": 0.7, "n_good": 10, "n_defective": 20}}
        (run / "metrics.json").write_text(json.dumps(metrics))

    write("stain", 0.9)
    write("none", 0.6)  # only none beside the Stain: "the best corruption" would mean "better than none"
    assert "stain_best" not in run_claims(tmp_path)["claims"]
    for c in TABLE_3_CORRUPTIONS:
        if c not in ("stain", "none"):
            write(c, 0.8)
    assert run_claims(tmp_path)["claims"]["stain_best"].other == 0.8


def test_the_stain_is_ranked_by_the_mean_of_its_seeds_never_by_its_best_seed(tmp_path):
    # The committed bottle study has 3 Stain seeds and one of each other corruption: seed 0 of the Stain alone was
    # the best of its three seeds, and would have made the Stain look first.
    from stainlib.paper import TABLE_3_CORRUPTIONS

    for c in TABLE_3_CORRUPTIONS:
        if c != "stain":
            _write_seeds(tmp_path, f"aesc-{c}", [0.85 if c == "mix2" else 0.7])
    _write_seeds(tmp_path, "aesc-stain", [0.89, 0.87, 0.84])
    claim = run_claims(tmp_path)["claims"]["stain_best"]
    assert claim.ours == pytest.approx(0.8667, abs=1e-4) and claim.other == 0.85
    assert "the mean of 3 seeds of AESc + stain against seed 0 of AESc + mix2" in claim.spread_kind
    assert claim.verdict == "within the spread"  # +0.017 against a spread of 0.025


def _write_seeds(folder, run, image_aurocs, map_name="residual", counts=(10, 20)):
    for seed, value in enumerate(image_aurocs):
        path = folder / f"{run}-s{seed}" / "metrics.json"
        path.parent.mkdir(exist_ok=True)
        metrics = json.loads(path.read_text()) if path.exists() else {}
        metrics[map_name] = {"image_auroc": value, "pixel_auroc": 0.7, "n_good": counts[0], "n_defective": counts[1]}
        path.write_text(json.dumps(metrics))


def test_each_side_of_a_claim_is_the_mean_of_its_seeds_and_a_wide_spread_of_either_side_hides_the_gap(tmp_path):
    # 1,000 good and 2,000 defective test images: the single-run error (about 0.01) is below these seed spreads.
    _write_seeds(tmp_path, "aesc-stain", [0.8, 0.9, 1.0], counts=(1000, 2000))  # mean 0.9, sd 0.1
    _write_seeds(tmp_path, "aesc-none", [0.60, 0.62, 0.64], counts=(1000, 2000))  # mean 0.62, sd 0.02
    claim = run_claims(tmp_path)["claims"]["stain_beats_none_image"]
    assert claim.ours == pytest.approx(0.9) and claim.other == pytest.approx(0.62)
    assert claim.spread == pytest.approx(0.1) and "means over 3 seeds of each" in claim.spread_kind
    assert claim.verdict == "holds"  # +0.28 against a spread of 0.1
    _write_seeds(tmp_path, "aesc-none", [0.50, 0.95, 0.90], counts=(1000, 2000))  # sd 0.24: the other side counts
    claim = run_claims(tmp_path)["claims"]["stain_beats_none_image"]
    assert claim.spread == pytest.approx(0.2466, abs=1e-4) and claim.verdict == "within the spread"


def test_with_one_seed_on_each_side_the_spread_is_the_standard_error_and_its_kind_says_one_seed(tmp_path):
    _write_seeds(tmp_path, "aesc-stain", [0.9])
    _write_seeds(tmp_path, "aesc-none", [0.6])
    claim = run_claims(tmp_path)["claims"]["stain_beats_none_image"]
    se = (auroc_se(0.9, 10, 20) ** 2 + auroc_se(0.6, 10, 20) ** 2) ** 0.5
    assert claim.spread == pytest.approx(se) and "one seed" in claim.spread_kind


def test_a_run_at_the_authors_budget_is_described_by_its_own_steps_not_by_one_pass_per_epoch(tmp_path):
    # The authors' epoch is 2,000 samples drawn from the training split: 250 epochs are 31,250 steps of 16.
    from stainlib.describe import run_where

    run = tmp_path / "aesc-stain-s0"
    shutil.copytree(ROOT / "results" / "bottle" / "aesc-stain-s0", run)
    (run / "SHA256SUMS").unlink()  # the config is edited below, as an older run's unlisted one
    config = json.loads((run / "config.json").read_text())
    config["train"].update(epochs=250, samples_per_epoch=2000, val_samples=500)
    for recorded in (True, False):  # recorded by the trainer, or computed from the settings of an older run
        if recorded:
            config["budget"] = {**config["budget"], "samples_per_epoch": 2000, "steps_per_epoch": 125}
            config["budget"].update(epochs=250, steps=31250, images_seen=500000)
        else:
            config.pop("budget")
        (run / "config.json").write_text(json.dumps(config))
        where = run_where(run, n_train=None if recorded else 167)
        assert "250 epochs of 2,000 images drawn from 167 training images" in where, where
        assert "31,250 steps, 500,000 images seen" in where, where


def test_the_papers_own_numbers_give_verdicts_where_two_decimals_allow_and_a_one_hundredth_gap_shows_nothing():
    paper = paper_claims("bottle")  # the paper's bottle row: AESc + Stain 0.98, AE + none 0.98; Drops 0.99 > Stain
    assert paper["stain_beats_ae_image"].verdict == "within the spread"  # a tie
    assert paper["stain_best"].verdict == "within the spread"  # 0.98 against 0.99: rounding can explain it
    assert paper["stain_beats_none_image"].verdict == "holds"
    assert paper_claims("synth_cap") == {}  # the paper has no synthetic category
    mean = paper_claims("mean")  # Table III over the 15 categories: best Gaussian 0.70 against none 0.62
    assert mean["gaussian_beats_none"].ours == 0.70 and mean["gaussian_beats_none"].other == 0.62


def _box(**kw):
    rows = [
        EvidenceRow(
            "A > B",
            paper=check("A", 0.9, 0.8, 0.01, "two decimals"),
            bottle=check("A", 0.85, 0.7, 0.03, "seed sd"),
            live=check("A", 0.6, 0.7, 0.05, "one standard error"),
        )
    ]
    return evidence_box(rows, {"the paper": "Tables I-III", "real bottle": "256 px, 3 seeds"}, **kw)


def test_the_evidence_box_is_one_collapsed_admonition_holding_one_table_with_the_five_columns():
    box = _box(live_name="this page's run (synthetic `synth_cap`, 64 px)")
    assert box.startswith("````{admonition} Does it reproduce?\n:class: dropdown") and box.endswith("\n````")
    assert box.count("````") == 2  # one box, nothing nested that could close it
    head = (
        "| claim | the paper | ours on real bottle | ours on this page's run (synthetic `synth_cap`, 64 px) | verdict |"
    )
    assert head in box.splitlines()
    assert sum(line.startswith("|---") for line in box.splitlines()) == 1  # one table


def test_each_cell_of_the_evidence_box_shows_both_numbers_the_difference_its_spread_and_the_computed_verdict():
    row = next(line for line in _box().splitlines() if line.startswith("| A > B |")).split(" | ")
    assert row[1] == "0.90 vs 0.80 (+0.10; spread 0.01 [1]): **holds**"  # the paper: two decimals, as printed
    assert row[2] == "0.850 vs 0.700 (+0.150; spread 0.030 [2]): **holds**"
    assert row[3] == "0.600 vs 0.700 (-0.100; spread 0.050 [3]): **fails**"


def test_the_evidence_box_states_each_spread_kind_and_each_source_provenance_once():
    rows = evidence_rows(
        ["stain_beats_none_image", "stain_beats_ae_image"],
        paper={
            k: check("A", 0.9, 0.8, 0.01, "two decimals") for k in ("stain_beats_none_image", "stain_beats_ae_image")
        },
    )
    box = evidence_box(rows, {"the paper": "Tables I-III, bottle row"})
    assert box.count("two decimals") == 1 and box.count("[1]") == 3  # two cells and the one note
    assert box.count("Tables I-III, bottle row") == 1


def test_the_verdict_column_reads_the_real_bottle_result_first_and_names_where_this_run_disagrees():
    verdict = next(line for line in _box().splitlines() if line.startswith("| A > B |")).split(" | ")[4]
    assert verdict.startswith("**reproduced** on real bottle") and "on this page's data: fails" in verdict
    only_live = evidence_box([EvidenceRow("C > D", live=check("C", 0.72, 0.7, 0.05))], {})
    assert "**not reproduced (within the spread)** on this page's data" in only_live


def test_a_claim_the_paper_does_not_make_is_marked_as_the_books_own_and_never_as_reproduced():
    rows = evidence_rows(
        ["combined_wins_image"], bottle={"combined_wins_image": check("C", 0.9, 0.8, 0.02)}, own={"combined_wins_image"}
    )
    line = next(x for x in evidence_box(rows, {}).splitlines() if x.startswith(f"| {SHORT['combined_wins_image']} |"))
    assert "— (the book's own)" in line and "the book's own claim: **holds** on real bottle" in line
    assert "reproduced" not in line


def test_evidence_rows_keep_the_order_asked_and_leave_out_a_claim_no_source_checks():
    some = {"stain_best": check("S", 0.9, 0.8, 0.01)}
    rows = evidence_rows(["stain_beats_none_image", "stain_best"], paper=some, bottle=None, live={})
    assert [r.label for r in rows] == [SHORT["stain_best"]]


def test_a_claim_that_runs_against_the_papers_text_reads_as_contradicting_it_where_it_holds_never_as_reproduced():
    key = "gaussian_beats_none"
    rows = evidence_rows([key], bottle={key: check("G", 0.75, 0.53, 0.09)}, live={key: check("G", 0.76, 0.75, 0.04)})
    line = next(x for x in evidence_box(rows, {}).splitlines() if x.startswith(f"| {SHORT[key]} |"))
    assert "**the paper's text contradicted** on real bottle" in line and "reproduced" not in line
    assert "on this page's data: within the spread" in line


def test_two_seeds_that_agree_do_not_shrink_a_comparisons_spread_below_the_single_run_standard_error():
    from stainlib.claims import comparison_spread, single_run_spread

    # Two seeds 0.001 apart against one run 0.002 better: the seed sd (0.0007) would call the difference real.
    spread, kind = comparison_spread(0.9525, 0.954, 20, 63, [[0.953, 0.952], [0.954]], ["ours", "theirs"])
    se = single_run_spread(0.9525, 0.954, 20, 63)[0]
    assert spread == pytest.approx(se) and se > 0.03  # 20 good images: the error is a few hundredths
    assert kind.startswith("the standard error of the difference") and "2 seeds of ours" in kind
    assert check("s", 0.9525, 0.954, spread).verdict == "within the spread"
    # Seeds far apart: their sd is the larger, and named.
    spread, kind = comparison_spread(0.75, 0.7, 20, 63, [[0.5, 1.0], [0.7]], ["ours", "theirs"])
    assert spread == pytest.approx(statistics.stdev([0.5, 1.0])) and kind.startswith("the standard deviation over 2")
    # One seed each: the single-run error, its kind unchanged.
    assert comparison_spread(0.9, 0.8, 20, 63, [[0.9], [0.8]]) == single_run_spread(0.9, 0.8, 20, 63)


def test_seed_spread_is_the_larger_seed_sd_of_the_sides_with_several_seeds_and_none_for_single_runs():
    from stainlib.claims import seed_spread

    assert seed_spread([[0.6], [0.8, 0.9, 1.0]]) == (pytest.approx(0.1), 1)  # the single-run side does not count
    assert seed_spread([[0.7, 0.9], [0.8, 0.9, 1.0]])[1] == 0  # sd 0.141 beats 0.1
    assert seed_spread([[0.9], [0.6]]) is None
