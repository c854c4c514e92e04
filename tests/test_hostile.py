"""Claims about hostile inputs (issue 13): no data lost, no silent wrong result, one clear line for every error.

Each test is one case that failed before the fix: a foreign folder deleted by ``synth``, two trainers on one run
folder, a kill between a checkpoint and its checksum, 16-bit images, 0/1 and coloured masks, unseeded weights, a last
batch of one image, files left behind by a refused run, and exceptions that reached the user as tracebacks.
"""

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SIZE, train_cli
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
