"""Claims about tools/gpu_check.sh, the prepared GPU check: its --smoke run works end to end on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_stage_and_writes_tables_with_provenance(tmp_path):
    out = tmp_path / "gpu"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", "tools/gpu_check.sh", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "gpu_check.log").read_text()
    for stage in ("environment", "cuda-tests", "benchmarks", "train", "evaluate", "tables"):
        assert f"== stage {stage}: done in" in log, stage
    for run in ("aesc-stain-s0", "aesc-none-s0", "ae-none-s0"):
        metrics = json.loads((out / "synth_cap" / run / "metrics.json").read_text())
        assert set(metrics) == {"residual", "uncertainty"}
        assert metrics["residual"]["budget"]["steps"] == 2 and metrics["residual"]["budget"]["images_seen"] == 8
    for table in ("I", "II"):
        md = (out / f"table_{table}.md").read_text()
        assert "in batches of 4: 2 steps, 8 images seen" in md and "Machine: " in md and "torch " in md
        assert (out / f"table_{table}.csv").read_text().startswith("category,")
    assert json.loads((out / "environment.json").read_text())["precision"] == "fp32"  # the CPU


def test_gpu_check_refuses_to_start_without_data_or_with_an_unknown_option():
    for args in ([], ["--nope"]):
        proc = subprocess.run(["bash", "tools/gpu_check.sh", *args], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 2 and "gpu_check.sh" in proc.stderr, (args, proc.stderr)
