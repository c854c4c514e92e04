"""Claims about stainlib.book's profiles: "auto" is "full" only with a GPU and the real data (book, every chapter)."""

import pytest
import torch

from stainlib.book import (
    _auto_profile,
    below_chance,
    below_chance_by_map,
    book_budgets,
    fetch_instructions,
    project_dir,
    setup,
)


def fake_mvtec(root, category="bottle"):
    (root / category / "train" / "good").mkdir(parents=True)
    return root


def test_auto_is_fast_on_a_gpu_without_the_data_and_fetch_instructions_say_how_to_get_it(tmp_path):
    profile, why = _auto_profile(cuda=True, data_root=tmp_path / "mvtec_ad")
    assert profile == "fast" and why == "no MVTec AD bottle"
    call = f"download_mvtec({str(tmp_path / 'mvtec_ad')!r}, ['bottle'])"
    assert call in fetch_instructions(tmp_path / "mvtec_ad")


def test_auto_is_fast_without_a_gpu_even_with_the_data(tmp_path):
    profile, why = _auto_profile(cuda=False, data_root=fake_mvtec(tmp_path))
    assert profile == "fast" and why == "no CUDA GPU"


def test_auto_is_full_with_a_gpu_and_the_data(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    lines = []
    settings = setup("auto", data_root=str(fake_mvtec(tmp_path)), log=lines.append)
    assert settings.profile == "full" and settings.data_root == tmp_path.resolve()
    assert len(lines) == 1
    assert lines[0].startswith("profile full (auto: a CUDA GPU and the MVTec AD data): MVTec AD bottle, 256 px, ")


def test_fetch_instructions_inside_the_project_print_no_machine_path_and_their_call_finds_the_folder():
    data = project_dir() / "data" / "no_such_mvtec"
    why = fetch_instructions(data)
    assert str(project_dir()) not in why
    assert "in data/no_such_mvtec." in why and "download_mvtec(project_dir() / 'data/no_such_mvtec', ['bottle'])" in why
    target = why.split("download_mvtec(", 1)[1].split(", [", 1)[0]
    assert eval(target, {"project_dir": project_dir}) == data  # the printed call names the same folder


def test_below_chance_names_every_auroc_under_half_and_only_those():
    sentence = below_chance(
        {"the image AUROC of AE": 0.37, "the image AUROC of AESc": 0.5, "the pixel AUROC of S": 0.499}
    )
    assert "the image AUROC of AE (0.370) and the pixel AUROC of S (0.499) are under 0.5" in sentence
    assert "AESc" not in sentence and "good pixels" in sentence
    assert "good pixels" not in below_chance({"the image AUROC of AE": 0.4})
    assert below_chance({"a": 0.5, "b": 0.9}) == ""


def test_below_chance_by_map_says_it_once_for_a_map_below_chance_overall_and_per_defect_type():
    overall = {"residual": (0.9, 0.8), "uncertainty": (0.31, 0.6)}
    per_defect = {"residual": {"crack": 0.95, "hole": 0.8}, "uncertainty": {"crack": 0.233, "hole": 0.386}}
    sentence = below_chance_by_map(overall, per_defect)
    assert sentence.count("Below chance") == 1 and sentence.count("more often than not") == 1
    assert (
        "the uncertainty map, over all images (image AUROC 0.310) and on every defect type: `crack` (0.233)" in sentence
    )
    assert "residual" not in sentence and "pixel" not in sentence
    sentence = below_chance_by_map({"residual": (0.9, 0.4)}, {"residual": {"crack": 0.45, "hole": 0.8}})
    assert "the residual map, over all pixels (pixel AUROC 0.400) and on the defect type `crack` (0.450)" in sentence
    assert "good pixels" in sentence
    assert below_chance_by_map({"residual": (0.9, 0.8)}, {"residual": {"crack": 0.9}}) == ""


def test_setup_prints_one_line_and_only_fetch_instructions_print_the_call(tmp_path, monkeypatch):
    import stainlib.book

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(stainlib.book.PROFILES["full"], "data_root", str(tmp_path / "mvtec_ad"))
    lines = []
    settings = setup("auto", log=lines.append)
    assert settings.profile == "fast" and len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("profile fast (auto: no CUDA GPU, no MVTec AD bottle): synthetic synth_cap, 64 px, ")
    assert "download_mvtec" not in lines[0] and str(tmp_path) not in lines[0]
    assert "download_mvtec(" in fetch_instructions(tmp_path / "mvtec_ad")
    assert fetch_instructions(fake_mvtec(tmp_path / "real")) == ""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(FileNotFoundError):  # the fast profile is then pointed at the same (empty) folder
        setup("auto", data_root=str(tmp_path / "mvtec_ad"), log=lines.append)


def test_book_budgets_are_the_pages_the_committed_grids_the_studys_snapshots_and_the_authors():
    from stainlib.runs import read_config, read_step_metrics
    from stainlib.spec import BUDGETS

    settings = setup("fast", log=lambda *_: None)
    rows = book_budgets(settings)
    paper = rows["paper"]
    assert paper["images_seen"] == BUDGETS["paper"]["epochs"] * BUDGETS["paper"]["samples_per_epoch"]
    assert paper["steps"] == paper["images_seen"] // paper["batch"] and paper["share"] == 1
    page = rows["page"]
    assert page["batch"] == settings.batch_size and page["steps"] == page["budget"]["steps_per_epoch"] * settings.epochs
    results = project_dir() / "results" / "bottle"
    if "grid" in rows:
        assert rows["grid"]["steps"] == read_config(results / "aesc-stain-s0")["budget"]["steps"]
        assert rows["grid"]["share"] == rows["grid"]["images_seen"] / paper["images_seen"]
    if "study" in rows:
        snapshots = sorted(read_step_metrics(results / "budget" / "aesc-stain-s0"))
        assert rows["study"]["steps"] == (snapshots[0], snapshots[-1])
        assert rows["study"]["images_seen"][-1] == snapshots[-1] * rows["study"]["batch"]
