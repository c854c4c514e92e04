"""Claims about stainlib.costs: FLOPs of a training step, time estimates, measured step times (book chapter 4)."""

import csv
import json

import pytest
import torch

from stainlib.costs import DEVICES, estimate_seconds, measured_step_seconds, step_flops
from stainlib.models import build_model


def conv_flops_by_hand(model: str, side: int, batch: int) -> tuple[int, int]:
    """Forward FLOPs of every convolution (2 x MACs) from the layer shapes, and those of the first convolution."""
    net, sizes = build_model(model).eval(), []
    hooks = [
        m.register_forward_hook(lambda m, _, o: sizes.append((m, o.shape)))
        for m in net.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        net(torch.zeros(1, 1, side, side))
    for h in hooks:
        h.remove()
    per = [
        2 * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * s[2] * s[3] // m.groups * batch
        for m, s in sizes
    ]
    return sum(per), per[0]


@pytest.mark.parametrize("model", ["aesc", "ae"])
def test_a_step_counts_three_forward_passes_of_convolutions_less_the_input_gradient(model):
    # backward = gradient w.r.t. the weights + w.r.t. the inputs, each as costly as the forward; the image needs no
    # input gradient, so the first convolution's is not computed.  Exact integer equality: both count the same MACs.
    forward, first = conv_flops_by_hand(model, 128, 2)
    assert step_flops(model, 128, 2) == 3 * forward - first


def test_step_flops_grow_with_the_batch_and_the_square_of_the_side():
    base = step_flops("aesc", 128, 2)  # batch 2 at least: batch norm trains on more than one value per channel
    assert step_flops("aesc", 128, 6) == 3 * base
    assert step_flops("aesc", 256, 2) == 4 * base


def test_step_flops_refuses_a_side_the_network_cannot_take():
    with pytest.raises(ValueError, match="multiple of 64"):
        step_flops("aesc", 100, 1)


def test_an_estimate_is_a_range_that_never_beats_the_peak_or_the_floor_per_step():
    for key, d in DEVICES.items():
        lo, hi = estimate_seconds(1e12, 10, key)
        assert lo <= hi
        assert lo >= 10 * 1e12 / (d.peak_tflops * 1e12)  # never faster than the datasheet peak
        assert lo >= 10 * d.min_step_seconds


def test_measured_step_seconds_is_the_median_epoch_time_over_the_recorded_steps_per_epoch(tmp_path):
    with open(tmp_path / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["epoch", "seconds"])
        w.writeheader()
        w.writerows({"epoch": e, "seconds": s} for e, s in enumerate([50.0, 11.0, 12.0, 30.0, 13.0], 1))
    (tmp_path / "config.json").write_text(json.dumps({"budget": {"steps_per_epoch": 4}}))
    assert measured_step_seconds(tmp_path) == pytest.approx(13.0 / 4)  # the median ignores the slow epochs
    (tmp_path / "config.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match="no recorded budget"):
        measured_step_seconds(tmp_path)
