"""Fixtures shared by the tests of the command line, the runs, the sweeps and the tables."""

import shutil

import pytest

from stainlib.cli import main
from stainlib.synthetic import make_synthetic

SIZE = 64  # the smallest side the default 6-level AESc accepts


def train_cli(data, out, model, corruption, epochs, *extra):
    """``stainlib train`` on the synthetic wood at 64 px, on the CPU; returns the exit status."""
    args = f"train --data-root {data} --category synth_wood --model {model} --corruption {corruption} --epochs {epochs}"
    return main([*args.split(), "--image-size", str(SIZE), "--out", str(out), "--device", "cpu", *extra])


@pytest.fixture(scope="session")
def wood(tmp_path_factory):
    """A small synthetic dataset: wood only, 10 training and 9 test images of 64 px."""
    return make_synthetic(tmp_path_factory.mktemp("cli") / "synthetic", ["synth_wood"], n_train=10, n_test=9, size=SIZE)


@pytest.fixture(scope="session")
def trained(wood, tmp_path_factory):
    """The run folder of AESc + stain trained for 2 epochs on ``wood``."""
    out = tmp_path_factory.mktemp("runs")
    assert train_cli(wood, out, "aesc", "stain", 2, "--batch-size", "4") == 0
    return out / "synth_wood" / "aesc-stain-s0"


EVALUATION_FILES = ("metrics.json", "threshold.json", "figure_residual.png", "figure_uncertainty.png")


def copy_trained(trained, run):
    """A copy of the ``trained`` run at ``run``, trained and never evaluated, whatever other tests did to the shared
    run: its evaluation files and their digests in ``SHA256SUMS`` are left out.  Returns ``run``."""
    from stainlib.checksums import CHECKSUMS

    shutil.copytree(trained, run, ignore=shutil.ignore_patterns(*EVALUATION_FILES))
    kept = [ln for ln in (run / CHECKSUMS).read_text().splitlines() if not ln.endswith(EVALUATION_FILES)]
    (run / CHECKSUMS).write_text("".join(f"{ln}\n" for ln in kept))
    return run
