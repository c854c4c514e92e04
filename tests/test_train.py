"""Claims about stainlib.train: the resumable trainer and its run folder (book chapter 5)."""

import csv
import json
import math

import pytest
import torch

from stainlib.checkpoints import write_config
from stainlib.epochs import budget, epoch_batches, epoch_generator, epoch_order
from stainlib.models import AESc
from stainlib.noise import get_corruption
from stainlib.train import (
    RunError,
    TrainConfig,
    fit,
    is_complete,
    load_run,
    pick_channels_last,
    pick_compile,
    pick_precision,
)


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
    # tiny images on the CPU: auto is off below 128 px (pick_channels_last), and config.json records the decision
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["channels_last"] == "off"
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=2, channels_last="on"), log=lambda *_: None)
    assert out["resumed_from"] == 1  # a layout, not a different training: resuming is allowed
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["channels_last"] == "on"
    with pytest.raises(ValueError, match="channels_last must be"):
        fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "bad", channels_last="yes"), log=lambda *_: None)


def test_channels_last_auto_follows_the_measured_sizes_on_the_cpu_and_is_on_for_cuda():
    # benchmarks/bench_train.py: channels_last is faster on 2 CPU cores from 128 px and slower at 64 px
    assert [pick_channels_last("cpu", size) for size in (64, 128, 256)] == ["off", "on", "on"]
    assert pick_channels_last("cuda", 64) == "on"
    assert pick_channels_last("mps", 256) == "off"


def _compile_works() -> str | None:
    """None when torch.compile can build a CPU kernel here, else why not (no C compiler, an unsupported Python)."""
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(3))
    except Exception as exc:  # the inductor backend raises several types when its toolchain is missing
        return f"torch.compile cannot build CPU kernels here: {type(exc).__name__}: {str(exc)[:120]}"
    return None


def test_compile_auto_is_off_on_the_cpu_and_a_bad_value_is_refused(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=1), log=lambda *_: None)
    assert pick_compile("cpu") == "off"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["compile"] == "off"
    with pytest.raises(ValueError, match="compile must be"):
        fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "bad", compile="yes"), log=lambda *_: None)


def test_a_run_trained_compiled_saves_plain_keys_loads_and_resumes_uncompiled(tmp_path):
    reason = _compile_works()
    if reason:
        pytest.skip(reason)
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=1, compile="on"), log=lambda *_: None)
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["train"]["compile"] == "on"
    plain_keys = list(tiny().state_dict())
    for name in ("best.pt", "last.pt"):  # the un-compiled module's state dict: no "_orig_mod." prefix
        assert list(torch.load(run / name, weights_only=True)["model"]) == plain_keys
    model, _ = load_run(run)
    assert list(model.state_dict()) == plain_keys
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=2, compile="off"), log=lambda *_: None)
    assert out["resumed_from"] == 1 and len(out["history"]) == 2  # a runtime setting: resuming is allowed
    assert json.loads((run / "config.json").read_text())["train"]["compile"] == "off"
    assert list(load_run(run, "last.pt")[0].state_dict()) == plain_keys


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
    write_config(tmp_path / "run", cfg)  # through stainlib, so that SHA256SUMS lists it: the checkpoint must object
    with pytest.raises(RunError, match=r"\(best.pt\)(.|\n)*corruption: 'stain' in the run folder, 'drops' now"):
        load_run(tmp_path / "run")


def test_samples_per_epoch_sets_the_steps_of_an_epoch(tmp_path):
    calls = Interrupting(10**6)  # counts the corruption calls: one for validation, then one per step
    fit(tiny(), TRAIN, VAL, calls, config(tmp_path, epochs=1, samples_per_epoch=20), log=lambda *_: None)
    assert calls.calls == 1 + 5  # ceil(20 / batch 4) steps, drawing from 12 training images
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["samples_per_epoch"] == 20


@pytest.mark.parametrize(
    ("device", "capability", "expected"),
    [("cuda", (7, 5), "fp16"), ("cuda", (8, 0), "bf16"), ("cuda", (9, 0), "bf16"), ("cpu", None, "fp32")],
)
def test_pick_precision_is_bf16_from_capability_8_fp16_below_and_fp32_on_the_cpu(
    monkeypatch, device, capability, expected
):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_a, **_k: True)  # as a T4 says, by emulation
    assert pick_precision(device) == expected
    assert pick_precision(device, "off") == "fp32"
    with pytest.raises(ValueError, match="amp must be"):
        pick_precision(device, "half")


def test_an_fp16_run_with_the_gradient_scaler_trains_and_records_its_precision(tmp_path):
    # CPU autocast supports fp16 in torch >= 2.4, so the scaler path (GradScaler("cpu")) runs here as on a T4.
    out = fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=6, lr=3e-3, amp="fp16"), log=lambda *_: None)
    losses = [r["train_loss"] for r in out["history"]]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.8 * losses[0]
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["precision"] == "fp16"
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["scaler"]["scale"] > 0


def test_checkpoints_are_written_every_n_epochs_and_at_the_end_not_every_epoch(tmp_path, monkeypatch):
    import stainlib.checkpoints

    written = []
    real = stainlib.checkpoints.save_checkpoint
    monkeypatch.setattr(
        stainlib.checkpoints,
        "save_checkpoint",
        lambda run, name, st: (written.append((name, st["epoch"])), real(run, name, st)),
    )
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=5, checkpoint_every=2), log=lambda *_: None)
    assert [e for name, e in written if name == "last.pt"] == [2, 4, 5]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["budget"]["steps"] == 5 * 3
    assert is_complete(tmp_path / "run") and len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 6


def test_an_interruption_between_checkpoints_writes_the_last_finished_epoch(tmp_path):
    # 1 validation call, then 3 steps per epoch: call 9 is in epoch 3, after epochs 1 and 2 finished unsaved.
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(), TRAIN, VAL, Interrupting(9), config(tmp_path, epochs=4), log=lambda *_: None)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 2
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 1 + 2
    assert fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=4), log=lambda *_: None)["resumed_from"] == 2


def test_val_samples_and_samples_per_epoch_are_recorded_as_steps_and_images_seen(tmp_path):
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=2, samples_per_epoch=20, val_samples=10), log=print)
    b = json.loads((tmp_path / "run" / "config.json").read_text())["budget"]
    assert b == budget(12, 4, 2, 4, 20, 10)
    assert (b["steps"], b["images_seen"], b["val_samples"]) == (2 * 5, 2 * 20, 10)
    with pytest.raises(RunError, match="val_samples: 10 in the run folder, 5 now"):
        fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=3, samples_per_epoch=20, val_samples=5))


def _snapshot(run, step):
    from stainlib.checkpoints import load_checkpoint, snapshot_name

    return load_checkpoint(run, snapshot_name(step))


def test_a_snapshot_holds_the_weights_of_a_run_trained_to_that_step_with_its_images_seen(tmp_path):
    from stainlib.checkpoints import kept_steps
    from stainlib.checksums import read_checksums

    # 12 training images, batch 4: 3 steps per epoch, so step 3 ends epoch 1, step 6 epoch 2; step 2 is mid-epoch.
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "curve", epochs=3, keep_steps=[6, 2, 3]), log=lambda *_: None)
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "one", epochs=1), log=lambda *_: None)
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "two", epochs=2), log=lambda *_: None)
    run = tmp_path / "curve"
    assert kept_steps(run) == [2, 3, 6]
    assert {"steps/step-000002.pt", "steps/step-000003.pt", "steps/step-000006.pt"} <= set(read_checksums(run))
    for step, short in ((3, "one"), (6, "two")):
        kept = _snapshot(run, step)["model"]
        final = torch.load(tmp_path / short / "last.pt", weights_only=True)["model"]
        assert kept.keys() == final.keys() and all(torch.equal(kept[k], final[k]) for k in kept)
    mid = _snapshot(run, 2)
    assert (mid["step"], mid["images_seen"]) == (2, 8) and set(mid) == {
        "model",
        "step",
        "epoch",
        "images_seen",
        "config",
    }
    assert "optimizer" not in mid  # weights only


def test_a_resumed_run_writes_the_snapshots_it_had_not_reached_bit_identical_to_an_uninterrupted_one(tmp_path):
    keep = {"keep_steps": [3, 5, 9]}
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "straight", epochs=3, **keep), log=lambda *_: None)
    with pytest.raises(KeyboardInterrupt):  # call 6 is the corruption of step 5: steps 1-4 done, 3 kept
        fit(tiny(), TRAIN, VAL, Interrupting(6), config(tmp_path, "resumed", epochs=3, **keep), log=lambda *_: None)
    assert sorted(p.name for p in (tmp_path / "resumed" / "steps").glob("*.pt")) == ["step-000003.pt"]
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "resumed", epochs=3, **keep), log=lambda *_: None)
    for step in (3, 5, 9):
        a, b = _snapshot(tmp_path / "straight", step)["model"], _snapshot(tmp_path / "resumed", step)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_keep_steps_may_change_on_resume_and_a_damaged_snapshot_is_refused_by_its_checksum(tmp_path):
    from stainlib.checkpoints import snapshot_name

    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=1, keep_steps=[1]), log=lambda *_: None)
    fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, epochs=2, keep_steps=[1, 4]), log=lambda *_: None)
    load_run(tmp_path / "run", snapshot_name(4))
    path = tmp_path / "run" / snapshot_name(1)
    path.write_bytes(path.read_bytes()[:-8] + b"damaged!")
    with pytest.raises(RunError, match="checksum mismatch"):
        load_run(tmp_path / "run", snapshot_name(1))
    with pytest.raises(ValueError, match="keep_steps must be"):
        fit(tiny(), TRAIN, VAL, "stain", config(tmp_path, "bad", keep_steps=[0]), log=lambda *_: None)


def test_the_stain_into_reused_buffers_trains_the_same_weights_as_into_fresh_outputs(tmp_path):
    reused, fresh = tiny(), tiny()
    # 12 images in batches of 5: sizes 5, 5, 2, so two pairs of buffers.  Interrupting(huge) is a plain callable:
    # the trainer gives it no out= and it draws the Stain into fresh tensors.
    fit(reused, TRAIN, VAL, "stain", config(tmp_path, "reused", batch_size=5), log=lambda *_: None)
    fit(fresh, TRAIN, VAL, Interrupting(10**6), config(tmp_path, "fresh", batch_size=5), log=lambda *_: None)
    a, b = reused.state_dict(), fresh.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trainconfig_takes_the_defaults_and_values_of_runspec_for_the_settings_both_have(tmp_path):
    import dataclasses

    from stainlib.spec import RunSpec, defaults

    shared = [f.name for f in dataclasses.fields(TrainConfig) if f.name in defaults()]
    assert shared == ["epochs", "batch_size", "lr", "seed", "samples_per_epoch", "val_samples"]
    assert all(getattr(TrainConfig(out=""), name) == defaults()[name] for name in shared)
    spec = RunSpec(tmp_path, "bottle", epochs=3, batch_size=5, lr=0.01, seed=4, samples_per_epoch=9, val_samples=2)
    cfg = TrainConfig.from_spec(spec, tmp_path / "run", device="cpu")
    assert {name: getattr(cfg, name) for name in shared} == {name: getattr(spec, name) for name in shared}
    assert (cfg.out, cfg.device) == (str(tmp_path / "run"), "cpu")


def test_the_training_core_is_short_enough_for_a_chapter_to_print():
    import inspect

    from stainlib.train import fit_epoch, train_step

    lines = sum(len(inspect.getsource(f).splitlines()) for f in (train_step, fit_epoch))
    assert lines <= 35, lines


def test_fit_epoch_with_train_step_is_what_fit_trains_in_an_epoch_bit_for_bit(tmp_path):
    # What a chapter prints is what fit runs: the same step and epoch give the same weights, tolerance 0.
    from stainlib import train
    from stainlib.precision import grad_scaler

    cfg = config(tmp_path, epochs=1, amp="off", channels_last="off")
    by_fit, by_hand = tiny(), tiny()
    fit(by_fit, TRAIN, VAL, "stain", cfg, log=lambda *_: None)
    images = torch.stack([x["image"] for x in TRAIN])
    order = epoch_order(len(images), len(images), cfg.seed, 0)
    optimizer = train.adam(by_hand.parameters(), cfg.lr, "cpu")
    batches = epoch_batches(len(images), cfg.batch_size)
    generator = epoch_generator(cfg.seed, 0, 2, "cpu")  # fit's corruption generator of epoch 0
    scaler = grad_scaler("cpu", "fp32")
    train.fit_epoch(by_hand, images, order, batches, get_corruption("stain"), generator, optimizer, scaler)
    for (name, a), b in zip(by_fit.state_dict().items(), by_hand.state_dict().values()):
        assert torch.equal(a, b), name
