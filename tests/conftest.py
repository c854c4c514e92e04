"""Fixtures shared by the tests of the command line, the runs, the sweeps and the tables."""

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
