"""Claims about the package as it is installed: a wheel carries the paper's numbers, and its ``stainlib table``
works outside the checkout (the package's layout, stainlib/paper.py).

The wheel is built offline from a copy of the package's files (``pip wheel --no-build-isolation --no-index``: the
environment's setuptools, no download), installed into a temporary folder, and run from another working directory
with only that folder on ``PYTHONPATH``.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stainlib.tables import make_table

ROOT = Path(__file__).resolve().parents[1]
TABLE_I_RUNS = ("ae-none-s0", "ae-stain-s0", "aesc-none-s0", "aesc-stain-s0")


def pip(*args, cwd=None):
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.mark.slow
def test_the_installed_wheel_draws_table_i_with_the_papers_numbers_from_another_folder(tmp_path):
    pytest.importorskip("setuptools", minversion="77")  # the [dev] extra's; it reads pyproject's SPDX licence
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "stainlib", source / "stainlib", ignore=shutil.ignore_patterns("__pycache__"))
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(tmp_path / "dist"), str(source))
    (wheel,) = (tmp_path / "dist").glob("stainlib-*.whl")
    assert "stainlib/paper_tables.csv" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))

    work = tmp_path / "elsewhere"  # no checkout, no data/ folder: only a results folder
    for run in TABLE_I_RUNS:
        folder = work / "results" / "bottle" / run
        folder.mkdir(parents=True)
        for name in ("config.json", "metrics.json"):
            shutil.copy(ROOT / "results" / "bottle" / run / name, folder / name)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}

    def run(*args):
        return subprocess.run(args, capture_output=True, text=True, cwd=work, env=env)

    where = run(sys.executable, "-c", "import json, stainlib.paper as p; print(json.dumps(p.__file__))")
    assert Path(json.loads(where.stdout)).is_relative_to(site), where.stdout + where.stderr  # the wheel's copy
    script = site / "bin" / "stainlib"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "stainlib.cli"]
    table = run(*command, "table", "results", "--table", "I")
    assert table.returncode == 0 and not table.stderr, table.stderr
    lines = table.stdout.splitlines()
    # ours, then the paper's, per map: read here from the copied run and from the paper's CSV in the checkout
    ours = json.loads((work / "results" / "bottle" / "aesc-stain-s0" / "metrics.json").read_text())
    with open(ROOT / "stainlib" / "paper_tables.csv", newline="") as f:
        paper = {
            r["method"]: float(r["auroc"])
            for r in csv.DictReader(f)
            if (r["table"], r["dataset"], r["category"], r["network"], r["corruption"])
            == ("I", "mvtec_ad", "bottle", "AESc", "stain")
        }
    cells = [f"{ours[m]['image_auroc']:.2f} | {paper[m]:.2f}" for m in ("uncertainty", "residual")]
    assert f"| bottle | AESc + stain | {' | '.join(cells)} |" in lines
    assert table.stdout == make_table(work / "results", "I", write=False)["markdown"] + "\n"  # as the checkout says
