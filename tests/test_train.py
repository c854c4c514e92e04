"""Claims about stainlib.train: the resumable trainer and its run folder (book chapter 5)."""

import csv
import json

import pytest
import torch

from stainlib.models import AESc
from stainlib.noise import get_corruption
from stainlib.train import RunError, TrainConfig, fit, is_complete, load_run


def tiny():
    torch.manual_seed(0)
    return AESc(depth=3, base_width=4, dropout=[0.0, 0.1, 0.2])


def dataset(n, seed):
    g = torch.Generator().manual_seed(seed)
    # Smooth images (low-frequency patterns) so that a tiny network can learn something in a few steps.
    base = torch.rand((n, 1, 4, 4), generator=g)
    images = torch.nn.functional.interpolate(base, size=(32, 32), mode="bilinear", align_corners=False)
    return [{"image": im} for im in images]


TRAIN, VAL = dataset(12, 1), dataset(4, 2)


def config(tmp_path, name="run", **kw):
    return TrainConfig(
        **{"out": str(tmp_path / name), "epochs": 2, "batch_size": 4, "device": "cpu", "progress": False, **kw}
    )


class Interrupting:
    """The stain model, raising KeyboardInterrupt on its n-th call (as if the user pressed Ctrl-C)."""

    name = "stain"

    def __init__(self, n):
        self.stain, self.n, self.calls = get_corruption("stain"), n, 0

    def __call__(self, image, generator):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.stain(image, generator)


def test_interrupted_and_resumed_run_ends_with_bit_identical_weights(tmp_path):
    straight = tiny()
    fit(straight, TRAIN, VAL, "stain", config(tmp_path, "straight"), log=lambda *_: None)

    interrupted = tiny()
    # Calls: 1 validation corruption, then 3 steps per epoch; call 6 is the 2nd step of epoch 2.
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, TRAIN, VAL, Interrupting(6), config(tmp_path, "resumed"), log=lambda *_: None)
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["corruption"] == "stain"
    resumed = tiny()  # a fresh process would start from fresh weights
    out = fit(resumed, TRAIN, VAL, "stain", config(tmp_path, "resumed"), log=lambda *_: None)
    assert out["resumed_from"] == 1

    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    h1 = (tmp_path / "straight" / "history.csv").read_text().splitlines()
    h2 = (tmp_path / "resumed" / "history.csv").read_text().splitlines()
    assert [r.rsplit(",", 1)[0] for r in h1] == [r.rsplit(",", 1)[0] for r in h2]  # all but the seconds column


def test_run_folder_holds_config_checkpoints_checksums_and_history(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, data={"category": "toy"}), log=lambda *_: None)
    run = tmp_path / "run"
    files = sorted(p.name for p in run.iterdir())
    assert files == [".lock", "SHA256SUMS", "best.pt", "config.json", "history.csv", "last.pt"]  # no temporary left
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["name"] == "aesc" and cfg["model"]["depth"] == 3 and cfg["data"] == {"category": "toy"}
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert is_complete(run)


def test_training_improves_validation_psnr_on_smooth_images(tmp_path):
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=6, lr=3e-3), log=lambda *_: None)
    psnrs = [r["val_psnr"] for r in out["history"]]
    assert psnrs[-1] > psnrs[0] + 1.0  # at least 1 dB better after 6 epochs (seeded, deterministic on CPU)


def test_load_run_gives_the_best_weights_and_refuses_a_damaged_checkpoint(tmp_path):
    model = tiny()
    out = fit(model, TRAIN, VAL, "stain", config(tmp_path), log=lambda *_: None)
    loaded, cfg = load_run(tmp_path / "run")
    best_epoch = max(out["history"], key=lambda r: r["val_psnr"])["epoch"]
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["epoch"] == best_epoch
    assert not loaded.training and cfg["corruption"] == "stain"
    raw = bytearray((tmp_path / "run" / "best.pt").read_bytes())
    raw[-10] ^= 0xFF
    (tmp_path / "run" / "best.pt").write_bytes(bytes(raw))
    with pytest.raises(RunError, match="checksum mismatch"):
        load_run(tmp_path / "run")


def test_a_complete_run_is_not_trained_again(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path), log=lambda *_: None)
    before = (tmp_path / "run" / "last.pt").read_bytes()
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path), log=lambda *_: None)
    assert out["resumed_from"] == 2 and (tmp_path / "run" / "last.pt").read_bytes() == before


def test_run_folder_with_other_settings_is_refused_naming_the_keys(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path), log=lambda *_: None)
    with pytest.raises(RunError, match="corruption: 'stain' in the run folder, 'drops' now(.|\n)*train.lr"):
        fit(tiny(), TRAIN, VAL, "drops", config(tmp_path, lr=1e-2), log=lambda *_: None)


def test_nan_loss_stops_with_the_epoch_and_step(tmp_path):
    def poison(image, _generator):
        return torch.full_like(image, float("nan")), torch.zeros_like(image)

    poison.name = "poison"
    with pytest.raises(FloatingPointError, match="epoch 1, step 1"):
        fit(tiny(), TRAIN, VAL, poison, config(tmp_path), log=lambda *_: None)


def test_empty_dataset_and_unknown_corruption_are_refused(tmp_path):
    with pytest.raises(ValueError, match="training set is empty"):
        fit(tiny(), [], VAL, "stain", config(tmp_path), log=lambda *_: None)
    with pytest.raises(ValueError, match="unknown corruption 'stian'"):
        fit(tiny(), TRAIN, VAL, "stian", config(tmp_path), log=lambda *_: None)


def test_channels_last_auto_is_recorded_resolved_and_does_not_block_resuming(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=1), log=lambda *_: None)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["channels_last"] == "on"  # CPU
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=2, channels_last="off"), log=lambda *_: None)
    assert out["resumed_from"] == 1  # a layout, not a different training: resuming is allowed
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["channels_last"] == "off"
    with pytest.raises(ValueError, match="channels_last must be"):
        fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "bad", channels_last="yes"), log=lambda *_: None)


def test_resume_without_config_json_compares_with_the_settings_stored_in_the_checkpoint(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(), TRAIN, VAL, Interrupting(6), config(tmp_path), log=lambda *_: None)
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(RunError, match=r"\(last.pt\)(.|\n)*train.lr: 0.001 in the run folder, 0.01 now"):
        fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, lr=1e-2), log=lambda *_: None)
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path), log=lambda *_: None)  # the same settings resume
    assert (
        out["resumed_from"] == 1 and json.loads((tmp_path / "run" / "config.json").read_text())["train"]["lr"] == 1e-3
    )


def test_a_finished_run_asked_for_fewer_epochs_keeps_its_config(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path), log=lambda *_: None)
    before = (tmp_path / "run" / "config.json").read_text()
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=1), log=lambda *_: None)
    assert out["resumed_from"] == 2 and (tmp_path / "run" / "config.json").read_text() == before
    assert json.loads(before)["train"]["epochs"] == 2 and is_complete(tmp_path / "run")


def test_load_run_refuses_a_config_json_that_disagrees_with_the_checkpoint(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path), log=lambda *_: None)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    cfg["corruption"] = "drops"
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RunError, match=r"\(best.pt\)(.|\n)*corruption: 'stain' in the run folder, 'drops' now"):
        load_run(tmp_path / "run")


def test_samples_per_epoch_sets_the_steps_of_an_epoch(tmp_path):
    calls = Interrupting(10**6)  # counts the corruption calls: one for validation, then one per step
    fit(tiny(), TRAIN, VAL, calls, config(tmp_path, epochs=1, samples_per_epoch=20), log=lambda *_: None)
    assert calls.calls == 1 + 5  # ceil(20 / batch 4) steps, drawing from 12 training images
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["samples_per_epoch"] == 20
