"""Claims about stainlib.sweep: grids of runs, in this process or in subprocesses without a shell (chapters 7, 8)."""

import json
import shutil

import pytest
from conftest import SIZE

from stainlib import sweep as sweep_module
from stainlib.noise import CORRUPTIONS
from stainlib.spec import RunSpec
from stainlib.sweep import GRIDS, TABLE_3_CORRUPTIONS, sweep
from stainlib.tables import make_table


def quiet(*_):
    pass


def test_table_3_covers_every_registered_corruption_once():
    assert sorted(TABLE_3_CORRUPTIONS) == sorted(CORRUPTIONS)
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
