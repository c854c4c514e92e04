"""Claims about hostile inputs (issue 13): no data lost, no silent wrong result, one clear line for every error.

Each test is one case that failed before the fix: a foreign folder deleted by ``synth``, two trainers on one run
folder, a kill between a checkpoint and its checksum, 16-bit images, 0/1 and coloured masks, unseeded weights, a last
batch of one image, files left behind by a refused run, and exceptions that reached the user as tracebacks.

The second part is issue 26: ``--retrain`` beside another trainer or over files stainlib did not write, unfinished
runs evaluated as finished, resumes on changed data, unlocked evaluations, non-finite learning rates, SIGTERM, results
files edited unseen, and about twenty errors that named the wrong thing (or nothing).
"""

import contextlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SIZE, copy_trained, train_cli
from PIL import Image

import stainlib.runs as runs_module
from stainlib.cli import main
from stainlib.data import DataError, MVTecAD
from stainlib.models import AESc
from stainlib.runs import evaluate, train
from stainlib.spec import RunSpec
from stainlib.synthetic import SYNTHETIC_CATEGORIES, is_synthetic
from stainlib.train import TrainConfig, fit, load_run

ROOT = Path(__file__).resolve().parents[1]


def quiet(*_):
    pass


def write_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


def small_dataset(root, image=None, mask=None, n_train=4):
    """A one-category MVTec layout (``cat``) of 16 px images: good training images and one defect with ``mask``."""
    rng = np.random.default_rng(0)
    for i in range(n_train):
        write_png(root / "cat" / "train" / "good" / f"{i:03d}.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    write_png(root / "cat" / "test" / "good" / "000.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    if image is None:
        image = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    write_png(root / "cat" / "test" / "crack" / "000.png", image)
    if mask is not None:
        write_png(root / "cat" / "ground_truth" / "crack" / "000_mask.png", mask)
    return root


# -- 1. data lost: synth deletes a folder it did not make ------------------------------------------------------------


def test_synth_refuses_to_replace_a_category_folder_it_did_not_make_unless_overwrite(tmp_path, capsys):
    category = SYNTHETIC_CATEGORIES[0]
    mine = tmp_path / category / "train" / "good" / "mine.png"
    write_png(mine, np.zeros((8, 8), np.uint8))
    argv = ["synth", "--out", str(tmp_path), "--categories", category, "--n-train", "2", "--n-test", "3"]
    argv += ["--image-size", "64"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert mine.exists(), "a folder the generator did not make was deleted"
    assert str(tmp_path / category) in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "--overwrite"]) == 0
    assert not mine.exists() and is_synthetic(tmp_path, category)


# -- 2. data lost: two trainers on one run folder -------------------------------------------------------------------


def test_a_second_train_on_a_run_folder_in_use_is_refused_with_a_clear_message(wood, tmp_path):
    from stainlib.files import run_lock

    run = tmp_path / "synth_wood" / "aesc-stain-s0"
    run.mkdir(parents=True)
    argv = [sys.executable, "-m", "stainlib.cli", "train", "--data-root", str(wood), "--category", "synth_wood"]
    argv += ["--epochs", "1", "--image-size", str(SIZE), "--out", str(tmp_path), "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with run_lock(run):  # this process is the first trainer
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert "in use by another process" in done.stderr and str(run) in done.stderr
    assert "Traceback" not in done.stderr
    assert not (run / "config.json").exists()


def test_two_writers_of_one_file_use_distinct_temporary_names(tmp_path):
    from stainlib.files import atomic_write

    target = tmp_path / "last.pt"
    seen = []

    def outer(p):
        seen.append(p)
        p.write_text("outer")
        atomic_write(target, lambda q: (seen.append(q), q.write_text("inner")))  # a second writer, meanwhile

    atomic_write(target, outer)  # raised FileNotFoundError on the shared temporary name
    assert seen[0] != seen[1] and target.read_text() == "outer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


# -- 3. data lost: a kill between last.pt and SHA256SUMS -------------------------------------------------------------


def tiny(seed=0):
    torch.manual_seed(seed)
    return AESc(depth=3, base_width=4, dropout=[0.0, 0.1, 0.2])


def images(n, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand((n, 1, 4, 4), generator=g)
    return [{"image": im} for im in torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear")]


@pytest.mark.parametrize(("crash_before", "resumes_after"), [("SHA256SUMS", 2), ("last.pt", 1)])
def test_a_kill_around_replacing_last_pt_leaves_a_run_that_resumes(tmp_path, monkeypatch, crash_before, resumes_after):
    real_replace, replaced = os.replace, []

    def replace(src, dst):
        name = Path(dst).name
        if name == crash_before and replaced.count("last.pt") == (2 if crash_before == "SHA256SUMS" else 1):
            if crash_before == "last.pt" or replaced[-1] == "last.pt":
                raise KeyboardInterrupt  # the process is killed here
        real_replace(src, dst)
        replaced.append(name)

    # A checkpoint after every epoch, so that the crash window comes at every epoch.
    cfg = TrainConfig(
        out=str(tmp_path / "run"), epochs=3, batch_size=4, device="cpu", progress=False, checkpoint_every=1
    )
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(), images(8), images(4, seed=2), "stain", cfg, log=quiet)
    monkeypatch.setattr(os, "replace", real_replace)
    result = fit(tiny(), images(8), images(4, seed=2), "stain", cfg, log=quiet)
    assert result["resumed_from"] == resumes_after and len(result["history"]) == 3
    load_run(tmp_path / "run", "last.pt")


# -- 4. silent wrong result: 16-bit images ---------------------------------------------------------------------------


def test_a_16_bit_png_is_scaled_to_0_1_not_saturated(tmp_path):
    values = (np.arange(256).reshape(16, 16) * 257).astype(np.uint16)  # 0 ... 65535
    root = small_dataset(tmp_path)
    write_png(root / "cat" / "train" / "good" / "000.png", values)
    assert Image.open(root / "cat" / "train" / "good" / "000.png").mode.startswith("I")
    data = MVTecAD(root, "cat", "train", size=16, val_fraction=0)
    image = data[0]["image"]
    expected = torch.from_numpy(values.astype(np.float32) / 65535)[None]
    torch.testing.assert_close(image, expected, atol=1 / 255, rtol=0)
    rgb = MVTecAD(root, "cat", "train", size=16, color="rgb", val_fraction=0)[0]["image"]
    torch.testing.assert_close(rgb, expected.expand(3, -1, -1), atol=1 / 255, rtol=0)


def test_an_image_mode_that_cannot_be_scaled_is_refused_naming_the_mode(tmp_path):
    root = small_dataset(tmp_path)
    (root / "cat" / "train" / "good" / "000.png").unlink()
    write_png(root / "cat" / "train" / "good" / "000.tif", np.full((16, 16), 3.5, np.float32))  # a float TIFF
    data = MVTecAD(root, "cat", "train", size=16, val_fraction=0)
    with pytest.raises(DataError, match=r"000\.tif.*mode 'F'"):
        data[0]


# -- 5. silent wrong result: 0/1 and coloured masks ------------------------------------------------------------------

DEFECT = np.zeros((16, 16), bool)
DEFECT[4:8, 5:10] = True


@pytest.mark.parametrize(
    "mask",
    [
        DEFECT.astype(np.uint8),  # stored as 0/1
        np.stack([np.zeros_like(DEFECT), np.zeros_like(DEFECT), DEFECT], -1).astype(np.uint8) * 255,  # pure blue
        np.stack([DEFECT, np.zeros_like(DEFECT), np.zeros_like(DEFECT)], -1).astype(np.uint8) * 1,  # red at 1
    ],
    ids=["zero-one", "blue", "faint-red"],
)
def test_any_non_zero_mask_pixel_is_a_defect(tmp_path, mask):
    root = small_dataset(tmp_path, mask=mask)
    test = MVTecAD(root, "cat", "test", size=16).tensors()
    defective = test["gt_label"].tolist().index(1)
    assert torch.equal(test["gt_mask"][defective, 0].bool(), torch.from_numpy(DEFECT))


def test_a_defective_image_with_an_empty_mask_is_an_error_naming_the_mask(tmp_path):
    root = small_dataset(tmp_path, mask=np.zeros((16, 16), np.uint8))
    with pytest.raises(DataError, match=r"000_mask\.png.*empty"):
        MVTecAD(root, "cat", "test", size=16).tensors()


# -- 7. silent wrong result: unseeded initialisation -----------------------------------------------------------------


def test_the_same_seed_gives_bit_identical_weights_and_leaves_the_global_rng_alone(wood, tmp_path):
    spec = RunSpec(wood, "synth_wood", "ae", "none", image_size=SIZE, epochs=1, batch_size=8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = load_run(train(spec, tmp_path / "a", device="cpu", progress=False, log=quiet))[0].state_dict()
    assert torch.equal(torch.get_rng_state(), before), "training changed the caller's random state"
    torch.manual_seed(999)  # another global state must not matter
    second = load_run(train(spec, tmp_path / "b", device="cpu", progress=False, log=quiet))[0].state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_another_seed_gives_other_initial_weights(wood, tmp_path, monkeypatch):
    built = {}

    def capture(model, *args, **_):
        built[args[3].seed] = {k: v.clone() for k, v in model.state_dict().items()}
        raise KeyboardInterrupt

    monkeypatch.setattr(runs_module, "fit", capture)
    for seed in (0, 1):
        with pytest.raises(KeyboardInterrupt):
            train(RunSpec(wood, "synth_wood", image_size=SIZE, seed=seed), tmp_path, device="cpu", log=quiet)
    assert not torch.equal(built[0]["head.weight"], built[1]["head.weight"])


# -- 11. crashes: a last batch of one image, files left by a refused run ---------------------------------------------


class Recording:
    """The ``none`` corruption, recording the batch sizes it is called with."""

    name = "none"

    def __init__(self):
        self.sizes = []

    def __call__(self, image, _generator):
        self.sizes.append(len(image))
        return image, torch.zeros_like(image[:, :1])


def test_a_last_batch_of_one_image_is_merged_into_the_previous_batch(tmp_path):
    # 8 px through 3 stride-2 levels is 1x1 at the bottom: BatchNorm cannot train on one such image.
    corruption = Recording()
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, batch_size=16, device="cpu", progress=False)
    result = fit(tiny(), images(17, size=8), images(2, size=8, seed=2), corruption, cfg, log=quiet)
    assert corruption.sizes[1:] == [17]  # the first call corrupts the validation set
    assert np.isfinite(result["history"][0]["train_loss"])


def test_an_image_size_the_network_refuses_writes_nothing_and_a_corrected_retry_runs(wood, tmp_path, capsys):
    assert train_cli(wood, tmp_path, "ae", "none", 1, "--image-size", "50") == 2
    assert "divisible by" in capsys.readouterr().err
    assert not (tmp_path / "synth_wood" / "ae-none-s0" / "config.json").exists()
    assert train_cli(wood, tmp_path, "ae", "none", 1) == 0
    assert train_cli(wood, tmp_path, "ae", "none", 1, "--image-size", "50", "--retrain") == 2
    assert (tmp_path / "synth_wood" / "ae-none-s0" / "best.pt").exists(), "a refused retrain deleted the trained run"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_one_line_and_writes_nothing(wood, tmp_path, capsys):
    assert train_cli(wood, tmp_path, "ae", "none", 1, "--device", "cuda") == 2
    err = capsys.readouterr().err
    assert "cuda" in err and "not available" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "synth_wood" / "ae-none-s0").exists()


# -- 12. crashes: tracebacks and misleading errors on the command line -----------------------------------------------


class Unexpected(Exception):
    pass


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("model"),
        TypeError("bad type"),
        FloatingPointError("loss is nan"),
        AssertionError("Torch not compiled with CUDA enabled"),
        pickle.UnpicklingError("invalid load key"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_known_exception_type_is_one_line_and_exit_2(wood, monkeypatch, capsys, exc):
    def fail(*_, **__):
        raise exc

    monkeypatch.setattr(runs_module, "train", fail)
    assert main(["train", "--data-root", str(wood), "--category", "synth_wood"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stainlib train: error: ") and len(err.strip().splitlines()) == 1


def test_an_unexpected_exception_is_one_line_pointing_at_stainlib_debug(wood, monkeypatch, capsys):
    def fail(*_, **__):
        raise Unexpected("surprise")

    monkeypatch.setattr(runs_module, "train", fail)
    monkeypatch.delenv("STAINLIB_DEBUG", raising=False)
    assert main(["train", "--data-root", str(wood), "--category", "synth_wood"]) == 2
    err = capsys.readouterr().err
    assert "surprise" in err and "STAINLIB_DEBUG=1" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("STAINLIB_DEBUG", "1")
    with pytest.raises(Unexpected):
        main(["train", "--data-root", str(wood), "--category", "synth_wood"])


def test_ctrl_c_says_how_to_resume_and_exits_130(wood, monkeypatch, capsys):
    def fail(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs_module, "train", fail)
    assert main(["train", "--data-root", str(wood), "--category", "synth_wood"]) == 130
    assert capsys.readouterr().err.strip() == "stainlib train: interrupted; run the same command to resume"


@pytest.mark.parametrize("name", ["config.json", "metrics.json"])
def test_a_broken_json_file_is_an_error_naming_the_file(trained, tmp_path, capsys, name):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / name).write_text('{"model": ')
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(run / name) in err and len(err.strip().splitlines()) == 1


def test_evaluate_on_a_run_with_only_its_config_says_not_trained_yet(trained, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(trained / "config.json", run / "config.json")
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    assert "not trained yet" in capsys.readouterr().err


def test_a_checkpoint_that_is_not_a_torch_file_is_an_error_naming_it(trained, tmp_path):
    import hashlib

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "best.pt").write_bytes(b"not a checkpoint")
    digest = hashlib.sha256((run / "best.pt").read_bytes()).hexdigest()
    (run / "SHA256SUMS").write_text(f"{digest}  best.pt\n")
    with pytest.raises(RuntimeError, match=r"best\.pt"):
        evaluate(run, device="cpu", figure=False, log=quiet)


# == issue 26: nothing lost, nothing silently wrong, no misleading error ===========================================


def copy_run(trained, out):
    """A copy of the ``trained`` run at ``out/synth_wood/aesc-stain-s0`` (where ``train_cli(..., "aesc", "stain")``
    trains), never evaluated, for a test to damage."""
    return copy_trained(trained, out / "synth_wood" / "aesc-stain-s0")


@contextlib.contextmanager
def locked_elsewhere(folder):
    """The run lock of ``folder`` held by another thread, as another process holds it (flock is per open file)."""
    from stainlib.files import run_lock

    got, release = threading.Event(), threading.Event()

    def hold():
        with run_lock(folder):
            got.set()
            release.wait(120)

    holder = threading.Thread(target=hold)
    holder.start()
    assert got.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


def snapshot_files(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file() and p.name != ".lock"}


# -- 1, 2. data lost: --retrain beside another trainer, and over files stainlib did not write ----------------------


def test_retrain_is_refused_while_another_process_holds_the_run_folder_and_deletes_nothing(
    wood, trained, tmp_path, capsys
):
    run = copy_run(trained, tmp_path)
    before = snapshot_files(run)
    with locked_elsewhere(run):
        assert train_cli(wood, tmp_path, "aesc", "stain", 1, "--lr", "0.002", "--retrain", "--batch-size", "4") == 2
    assert "in use by another process" in capsys.readouterr().err
    assert snapshot_files(run) == before


def test_retrain_refuses_to_delete_a_folder_holding_files_stainlib_did_not_write_and_names_them(wood, tmp_path, capsys):
    run = tmp_path / "synth_wood" / "aesc-stain-s0"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "notes.txt").write_text("x")
    (run / "figures").mkdir()
    assert train_cli(wood, tmp_path, "aesc", "stain", 1, "--retrain") == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "figures" in err and len(err.strip().splitlines()) == 1
    assert (run / "notes.txt").read_text() == "x" and (run / "config.json").read_text() == "{}"


# -- 3. silent wrong result: an unfinished run evaluated as finished -------------------------------------------------


def test_an_unfinished_run_is_refused_by_evaluate_and_unfinished_records_the_epochs_really_trained(
    trained, tmp_path, capsys
):
    from stainlib.checkpoints import write_config
    from stainlib.tables import make_table

    run = copy_run(trained, tmp_path)
    config = json.loads((run / "config.json").read_text())
    write_config(run, {**config, "train": {**config["train"], "epochs": 400}})  # as a resume to 400 killed at 2
    before = snapshot_files(run)  # the shared run may have been evaluated by another test: compare, not assume
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "2 of its 400 epochs" in err and "--unfinished" in err
    assert snapshot_files(run) == before
    result = evaluate(run, device="cpu", figure=False, unfinished=True, log=quiet)
    assert result["unfinished"] == {"epochs_trained": 2, "epochs_planned": 400}
    steps = config["budget"]["steps_per_epoch"]
    assert result["budget"]["epochs"] == 2 and result["budget"]["steps"] == 2 * steps
    assert "(unfinished: 2 of 400 epochs)" in make_table(tmp_path, "I", write=False)["markdown"]


# -- 4. silent wrong result: a changed dataset used on resume --------------------------------------------------------


def test_resuming_on_changed_training_images_is_refused_naming_the_change_and_retrain_trains_anew(
    wood, tmp_path, capsys
):
    data = tmp_path / "data"
    shutil.copytree(wood, data)
    assert train_cli(data, tmp_path, "ae", "none", 1) == 0
    good = data / "synth_wood" / "train" / "good"
    shutil.copy(good / "000.png", good / "100.png")
    capsys.readouterr()
    assert train_cli(data, tmp_path, "ae", "none", 2) == 2
    err = capsys.readouterr().err
    assert "training images changed" in err and "10 files" in err and "11 files" in err and "--retrain" in err
    run = tmp_path / "synth_wood" / "ae-none-s0"
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 1, "it resumed on the changed data"
    assert train_cli(data, tmp_path, "ae", "none", 2, "--retrain") == 0
    assert json.loads((run / "config.json").read_text())["data"]["fingerprint"]["files"] == 11


def test_a_run_recorded_before_fingerprints_still_resumes(wood, tmp_path):
    from stainlib.checkpoints import write_config

    assert train_cli(wood, tmp_path, "ae", "none", 1) == 0
    run = tmp_path / "synth_wood" / "ae-none-s0"
    config = json.loads((run / "config.json").read_text())
    del config["data"]["fingerprint"]
    write_config(run, config)
    assert train_cli(wood, tmp_path, "ae", "none", 2) == 0
    assert "fingerprint" in json.loads((run / "config.json").read_text())["data"]


# -- 5. silent wrong result: evaluate without the lock ---------------------------------------------------------------


def test_evaluate_is_refused_while_another_process_holds_the_run_folder(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    with locked_elsewhere(run):
        assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    assert "in use by another process" in capsys.readouterr().err
    assert not (run / "metrics.json").exists()


# -- 6. silent wrong result: a non-finite learning rate ---------------------------------------------------------------


def test_a_non_finite_learning_rate_is_refused_naming_the_flag(wood, tmp_path, capsys):
    assert train_cli(wood, tmp_path, "ae", "none", 1, "--lr", "inf") == 2
    assert "--lr" in capsys.readouterr().err
    with pytest.raises(ValueError, match="lr must be a positive, finite number"):
        RunSpec(wood, "synth_wood", lr=float("nan"))
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, lr=float("inf"), device="cpu", progress=False)
    with pytest.raises(ValueError, match="learning rate"):
        fit(tiny(), images(8), images(4, seed=2), "stain", cfg, log=quiet)


def test_weights_that_become_nan_stop_the_run_with_a_clear_error_and_keep_the_epochs_before(tmp_path):
    # One step per epoch: the step's loss is finite, the weights after it are not; the validation PSNR tells.
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=3, batch_size=8, lr=1e30, device="cpu", progress=False)
    with pytest.raises(FloatingPointError, match="validation PSNR is nan at epoch 1.*lower the learning rate"):
        fit(tiny(), images(8), images(4, seed=2), "stain", cfg, log=quiet)
    assert not (tmp_path / "run" / "best.pt").exists() and not (tmp_path / "run" / "config.json").exists()


# -- 7. data lost: SIGTERM ---------------------------------------------------------------------------------------------


class Sigterm:
    """The ``none`` corruption, sending SIGTERM to this process at its ``at``-th call (as ``docker stop`` does)."""

    name = "none"

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, image, _generator):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return image, torch.zeros_like(image[:, :1])


def test_sigterm_saves_the_finished_epochs_as_ctrl_c_does_and_the_run_resumes(tmp_path):
    from stainlib.train import Terminated

    before = signal.getsignal(signal.SIGTERM)
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=4, batch_size=4, device="cpu", progress=False)
    with pytest.raises(Terminated):  # calls: 1 validation, then 2 steps per epoch: the 6th is epoch 3's first step
        fit(tiny(), images(8), images(4, seed=2), Sigterm(6), cfg, log=quiet)
    assert signal.getsignal(signal.SIGTERM) == before
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 1 + 2
    assert fit(tiny(), images(8), images(4, seed=2), Sigterm(0), cfg, log=quiet)["resumed_from"] == 2


def test_sigterm_on_the_command_line_says_the_epochs_are_saved_and_exits_143(wood, monkeypatch, capsys):
    from stainlib.train import Terminated

    def fail(*_, **__):
        raise Terminated("stopped by SIGTERM")

    monkeypatch.setattr(runs_module, "train", fail)
    assert main(["train", "--data-root", str(wood), "--category", "synth_wood"]) == 143
    err = capsys.readouterr().err
    assert "SIGTERM" in err and "resume" in err and len(err.strip().splitlines()) == 1


# -- 8. silent wrong result: results files edited unseen -------------------------------------------------------------


def test_an_edited_metrics_json_or_config_json_is_refused_naming_the_file(trained, tmp_path, capsys):
    from stainlib.runs import read_metrics

    run = copy_run(trained, tmp_path)
    evaluate(run, device="cpu", figure=False, log=quiet)
    sums = (run / "SHA256SUMS").read_text()
    assert "  metrics.json\n" in sums and "  config.json\n" in sums
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["residual"]["image_auroc"] = 0.99
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert main(["table", str(tmp_path), "--table", "I"]) == 2
    assert str(run / "metrics.json") in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="changed after stainlib wrote it"):
        read_metrics(run)
    (run / "config.json").write_text((run / "config.json").read_text().replace('"lr": 0.001', '"lr": 0.002'))
    with pytest.raises(RuntimeError, match=r"config\.json was changed after stainlib wrote it"):
        load_run(run)


def test_the_committed_legacy_decoder_runs_without_listed_json_files_still_load():
    from stainlib.checksums import read_checksums
    from stainlib.runs import read_config, read_metrics
    from stainlib.tables import make_table

    runs = [
        p for p in sorted((ROOT / "results" / "bottle" / "legacy-decoder").iterdir()) if (p / "metrics.json").exists()
    ]
    assert runs and all("metrics.json" not in read_checksums(r) for r in runs)  # legacy: not listed
    assert all(read_metrics(r) and read_config(r) for r in runs)
    assert make_table(ROOT / "results", "I", write=False)["rows"]


# -- 9, 10. silent wrong results: synth with no images, mixture weights that are not probabilities -------------------


@pytest.mark.parametrize("flag", ["--n-train", "--n-test"])
def test_synth_refuses_a_count_below_one_naming_the_flag_and_writes_nothing(tmp_path, capsys, flag):
    argv = ["synth", "--out", str(tmp_path / "S"), "--categories", "synth_cap", "--image-size", "32", flag, "-1"]
    assert main(argv) == 2
    assert flag in capsys.readouterr().err and not (tmp_path / "S").exists()
    from stainlib.synthetic import make_synthetic

    with pytest.raises(ValueError, match="n_train must be an integer at least 1"):
        make_synthetic(tmp_path / "S", ["synth_cap"], n_train=0, size=32)
    assert not (tmp_path / "S").exists()


def test_mixture_weights_must_each_be_a_probability():
    from stainlib.noise import Mixture

    with pytest.raises(ValueError, match="'drops' must be a probability"):
        Mixture({"stain": 1.5, "drops": -0.5})
    with pytest.raises(ValueError, match="'drops' must be a probability"):
        Mixture({"stain": 1.0, "drops": float("nan")})


# -- errors that mislead ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", str(2**70)])
def test_a_seed_out_of_range_is_refused_naming_the_flag(wood, tmp_path, capsys, seed):
    assert train_cli(wood, tmp_path, "ae", "none", 1, "--seed", seed) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and "from 0 to" in err
    with pytest.raises(ValueError, match="seed must be an integer from 0"):
        RunSpec(wood, "synth_wood", seed=int(seed))


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_device_that_cannot_run_a_model_is_refused_naming_the_flag(wood, trained, tmp_path, capsys, command):
    if command == "train":
        status = train_cli(wood, tmp_path, "ae", "none", 1, "--device", "meta")
    else:
        status = main(["evaluate", str(copy_run(trained, tmp_path)), "--device", "meta"])
    err = capsys.readouterr().err
    assert status == 2 and "'meta' cannot train or evaluate" in err and "--device" in err


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_training_images_say_at_least_three_are_needed(tmp_path, n):
    root = small_dataset(tmp_path, n_train=n)
    with pytest.raises(DataError, match=f"split 'val' .* holds {n} image.*at least 3 are needed"):
        MVTecAD(root, "cat", "val", size=16)


def test_an_empty_split_names_the_suffixes_read_and_the_files_skipped(tmp_path):
    root = small_dataset(tmp_path)
    good = root / "cat" / "train" / "good"
    for p in good.iterdir():
        p.rename(p.with_suffix(".webp"))  # a format the loader does not read
    with pytest.raises(DataError, match=r"no image in .*good \(read: \.bmp, .*\.png.*skipped: \.webp files: 4"):
        MVTecAD(root, "cat", "train", size=16)


def test_sub_folders_and_links_to_nothing_are_counted_in_the_load_line(wood, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(wood, data)
    good = data / "synth_wood" / "train" / "good"
    (good / "more").mkdir()
    shutil.copy(good / "000.png", good / "more" / "000.png")
    (good / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert sorted(why for _, why in MVTecAD(data, "synth_wood", "train", size=SIZE).skipped) == [
        "links to nothing",
        "sub-folders",
    ]

    def stop(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs_module, "fit", stop)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        train(RunSpec(data, "synth_wood", image_size=SIZE), tmp_path / "runs", device="cpu", log=lines.append)
    assert "(skipped: links to nothing: 1, sub-folders: 1);" in lines[0]


def test_a_file_in_ground_truth_not_named_as_a_mask_is_named_as_such(tmp_path):
    root = small_dataset(tmp_path, mask=DEFECT.astype(np.uint8) * 255)
    write_png(root / "cat" / "ground_truth" / "crack" / "notes.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(DataError, match=r"notes\.png is not named as a mask.*<name>_mask\.png"):
        MVTecAD(root, "cat", "test", size=16)


def test_two_test_images_with_one_name_are_refused_naming_both(tmp_path):
    root = small_dataset(tmp_path, mask=DEFECT.astype(np.uint8) * 255)
    Image.open(root / "cat" / "test" / "crack" / "000.png").save(root / "cat" / "test" / "crack" / "000.jpg")
    with pytest.raises(DataError, match=r"two images named '000' \(000\.jpg and 000\.png\)"):
        MVTecAD(root, "cat", "test", size=16)


@pytest.mark.parametrize("command", ["train", "synth"])
def test_an_image_size_beyond_the_bound_is_refused_before_any_allocation(wood, tmp_path, capsys, command):
    if command == "train":
        status = train_cli(wood, tmp_path, "ae", "none", 1, "--image-size", "100000")
    else:
        status = main(["synth", "--out", str(tmp_path / "S"), "--categories", "synth_cap", "--image-size", "100000"])
    err = capsys.readouterr().err
    assert status == 2 and "--image-size" in err and "2048" in err
    with pytest.raises(ValueError, match="image_size must be at most 2048"):
        RunSpec(wood, "synth_wood", image_size=100000)


def test_synth_image_size_zero_is_refused_and_leaves_no_hidden_folder(tmp_path, capsys):
    from stainlib.synthetic import make_synthetic

    assert main(["synth", "--out", str(tmp_path), "--categories", "synth_cap", "--image-size", "0"]) == 2
    assert "--image-size" in capsys.readouterr().err
    with pytest.raises(ValueError, match="size must be an integer from 16"):
        make_synthetic(tmp_path, ["synth_cap"], n_train=2, n_test=3, size=8)
    assert list(tmp_path.iterdir()) == []


def test_a_generator_failure_leaves_no_hidden_folder(tmp_path, monkeypatch):
    import stainlib.synthetic as synthetic

    def fail(*_, **__):
        raise ZeroDivisionError("drawn")

    monkeypatch.setattr(synthetic, "synthetic_sample", fail)
    with pytest.raises(ZeroDivisionError):
        synthetic.make_synthetic(tmp_path, ["synth_cap"], n_train=2, n_test=3, size=32)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_with_one_mc_sample_is_refused_before_any_work(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    assert main(["evaluate", str(run), "--n-samples", "1", "--device", "cpu"]) == 2
    assert "--n-samples" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"n_samples must be at least 2, got 1 \(--n-samples\).*figure"):
        evaluate(run, "residual", n_samples=1, device="cpu", log=quiet)
    assert not (run / "metrics.json").exists()
    assert evaluate(run, "residual", n_samples=1, device="cpu", figure=False, log=quiet)["n_samples"] is None


def test_a_garbage_line_in_sha256sums_is_an_error_naming_the_file_and_line(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    (run / "SHA256SUMS").write_text((run / "SHA256SUMS").read_text() + "garbage\n")
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(run / "SHA256SUMS") in err and "line" in err and "garbage" in err and "unpack" not in err


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("config.json", [], "holds a JSON list, not an object"),
        ("config.json", "data-null", "'data' is null, not an object"),
        ("metrics.json", [1, 2], "holds a JSON list, not an object"),
    ],
)
def test_json_files_of_the_wrong_shape_are_errors_naming_the_file_before_any_work(
    trained, tmp_path, capsys, name, content, words
):
    from stainlib.checksums import CHECKSUMS

    run = copy_run(trained, tmp_path)
    if content == "data-null":
        content = {**json.loads((run / name).read_text()), "data": None}
    (run / name).write_text(json.dumps(content))
    (run / CHECKSUMS).write_text(
        "".join(f"{ln}\n" for ln in (run / CHECKSUMS).read_text().splitlines() if name not in ln)
    )
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(run / name) in err and words in err and "AttributeError" not in err
    assert not (run / "figure_residual.png").exists()


def test_a_metrics_entry_without_the_numbers_of_a_table_is_an_error_naming_file_and_key(tmp_path, trained, capsys):
    run = tmp_path / "bottle" / "aesc-stain-s0"
    run.mkdir(parents=True)
    shutil.copy(trained / "config.json", run / "config.json")
    (run / "metrics.json").write_text(json.dumps({"residual": {"image_auroc": 0.9}}))
    assert main(["table", str(tmp_path), "--table", "I"]) == 2
    err = capsys.readouterr().err
    assert str(run / "metrics.json") in err and "'device'" in err and "KeyError" not in err


def test_a_lost_best_pt_has_a_way_out_retrain(wood, trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    (run / "best.pt").unlink()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    assert "--retrain" in capsys.readouterr().err
    assert train_cli(wood, tmp_path, "aesc", "stain", 2, "--batch-size", "4") == 2
    err = capsys.readouterr().err
    assert "best.pt is missing" in err and "--retrain" in err
    assert train_cli(wood, tmp_path, "aesc", "stain", 2, "--batch-size", "4", "--retrain") == 0
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0


def test_a_damaged_last_pt_is_cleared_by_retrain(wood, trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    data = bytearray((run / "last.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run / "last.pt").write_bytes(bytes(data))
    assert train_cli(wood, tmp_path, "aesc", "stain", 2, "--batch-size", "4") == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert train_cli(wood, tmp_path, "aesc", "stain", 2, "--batch-size", "4", "--retrain") == 0
    load_run(run, "last.pt")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:9/{0}.tar.xz", "holds {0}; the only field it may hold is {category}"),
        ("http://127.0.0.1:9/{foo}.tar.xz", "holds {foo}; the only field it may hold is {category}"),
        ("http://127.0.0.1:9/a/..", "does not end in an archive's file name"),
    ],
)
def test_a_bad_download_address_is_refused_before_any_download(tmp_path, capsys, url, words):
    assert main(["download", "--out", str(tmp_path / "mvtec"), "--categories", "bottle", "--url", url]) == 2
    err = capsys.readouterr().err
    assert words in err and "--url" in err and "delete" not in err
    assert not (tmp_path / "mvtec" / ".download").exists()


def test_a_full_disk_names_the_checkpoint_and_leaves_the_old_one_loadable(trained, tmp_path, monkeypatch):
    import errno

    import stainlib.checkpoints as checkpoints

    run = copy_run(trained, tmp_path)
    state = torch.load(run / "last.pt", weights_only=True)
    written = [0]

    def write(self, data):
        written[0] += len(data)
        if written[0] > 4096:
            self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise self.error
        return self.f.write(data)

    monkeypatch.setattr(checkpoints._Recorded, "write", write)
    with pytest.raises(OSError, match=r"cannot write .*last\.pt: No space left on device"):
        checkpoints.save_checkpoint(run, "last.pt", state)
    monkeypatch.undo()
    load_run(run, "last.pt")
    assert not list(run.glob(".*.tmp"))


def test_a_closed_output_pipe_ends_quietly(monkeypatch, capsys):
    class Closed:
        def write(self, _):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Closed())
    args = "sweep --grid claims --data-root /data --categories bottle --out /results --print-commands"
    assert main(args.split()) == 141
    assert capsys.readouterr().err == ""


def test_reconstruct_and_uncertainty_of_an_empty_batch_say_so():
    from stainlib.detect import reconstruct, uncertainty_map

    with pytest.raises(ValueError, match=r"reconstruct needs a \(B, C, H, W\) batch of at least one image"):
        reconstruct(tiny(), torch.rand(0, 1, 32, 32))
    with pytest.raises(ValueError, match="uncertainty_map needs"):
        uncertainty_map(tiny(), torch.rand(0, 1, 32, 32))


def test_main_returns_a_non_zero_status_on_an_argument_error_instead_of_raising(capsys):
    assert main(["train", "--category", "x"]) == 2  # --data-root missing
    assert "--data-root" in capsys.readouterr().err
    assert main(["evaluate", "/nowhere", "--method", "nonsense"]) == 2


# -- also: temporary files left by a kill, file modes, skipped files --------------------------------------------------


def test_temporaries_left_by_a_killed_writer_are_deleted_when_the_run_resumes(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, batch_size=4, device="cpu", progress=False)
    fit(tiny(), images(8), images(4, seed=2), "stain", cfg, log=quiet)
    orphan = tmp_path / "run" / ".last.pt.k9x_2ab.tmp"
    orphan.write_bytes(b"half a checkpoint")
    fit(tiny(), images(8), images(4, seed=2), "stain", replace(cfg, epochs=2), log=quiet)
    assert not orphan.exists()


def test_run_files_follow_the_umask_so_that_others_can_read_a_shared_results_folder(tmp_path):
    old = os.umask(0o022)
    try:
        cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, batch_size=4, device="cpu", progress=False)
        fit(tiny(), images(8), images(4, seed=2), "stain", cfg, log=quiet)
    finally:
        os.umask(old)
    for name in ("config.json", "last.pt", "best.pt", "SHA256SUMS", "history.csv"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


def test_meta_tensors_given_to_the_noise_and_the_metrics_are_refused_in_words():
    from stainlib import metrics
    from stainlib.noise import get_corruption

    meta = torch.rand(2, 1, 64, 64, device="meta")
    with pytest.raises(ValueError, match="'meta' device"):
        get_corruption("stain")(meta, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="'meta' device"):
        metrics.image_auroc(torch.rand(4, device="meta"), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="'meta' device"):
        metrics.pixel_auroc(torch.rand(4, 1, 8, 8), torch.zeros(4, 1, 8, 8, device="meta"))


def test_a_full_disk_while_writing_a_small_run_file_names_the_file(tmp_path):
    import errno

    from stainlib.files import atomic_write

    target = tmp_path / "history.csv"
    target.write_text("old")

    def full(_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match=r"cannot write .*history\.csv: No space left on device"):
        atomic_write(target, full)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_a_checkpoint_the_disk_refuses_stops_the_run_naming_it_and_is_not_written_again(tmp_path, monkeypatch):
    import errno

    import stainlib.checkpoints
    from stainlib.files import write_error

    real, calls = stainlib.checkpoints.save_checkpoint, []

    def save(run, name, state):
        calls.append(name)
        if name == "last.pt":
            raise write_error(run / name, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        real(run, name, state)

    monkeypatch.setattr(stainlib.checkpoints, "save_checkpoint", save)
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, batch_size=4, device="cpu", progress=False)
    with pytest.raises(OSError, match=r"cannot write .*last\.pt: No space left on device"):
        fit(tiny(), images(8), images(4, seed=2), "stain", cfg, log=quiet)
    assert calls == ["best.pt", "last.pt"]


def test_retrain_clears_a_run_whose_steps_folder_holds_snapshots_and_refuses_one_with_a_foreign_file_naming_it(
    wood, tmp_path, capsys
):
    # 8 training images, batch 4: 2 steps per epoch; the snapshots of steps 1 and 2 go to steps/.
    assert train_cli(wood, tmp_path, "aesc", "stain", 1, "--batch-size", "4", "--keep-steps", "1", "2") == 0
    run = tmp_path / "synth_wood" / "aesc-stain-s0"
    assert sorted(p.name for p in (run / "steps").iterdir()) == ["step-000001.pt", "step-000002.pt"]
    assert train_cli(wood, tmp_path, "aesc", "stain", 1, "--batch-size", "4", "--lr", "0.002", "--retrain") == 0
    assert not (run / "steps").exists()  # the snapshots of the other settings are gone with their run
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 0.002

    assert train_cli(wood, tmp_path, "aesc", "stain", 1, "--batch-size", "4", "--keep-steps", "1", "--retrain") == 0
    (run / "steps" / "my-notes.txt").write_text("mine")
    capsys.readouterr()
    assert train_cli(wood, tmp_path, "aesc", "stain", 1, "--batch-size", "4", "--lr", "0.003", "--retrain") == 2
    err = capsys.readouterr().err
    assert "refusing to retrain" in err and "my-notes.txt" in err and len(err.strip().splitlines()) == 1
    assert (run / "steps" / "my-notes.txt").read_text() == "mine" and (run / "steps" / "step-000001.pt").exists()
