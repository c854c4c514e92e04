"""Claims about stainlib.data: the MVTec AD loader and its errors on broken folders (book chapter 2)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stainlib.data import DataError, MVTecAD
from stainlib.synthetic import SYNTHETIC_DEFECTS, make_synthetic

SIZE, N_TRAIN, N_TEST = 64, 10, 9


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic(
        tmp_path_factory.mktemp("synth"),
        ["synth_weave", "synth_cap"],
        n_train=N_TRAIN,
        n_test=N_TEST,
        size=SIZE,
        seed=3,
    )


def snapshot(root: Path):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_loader_reads_the_synthetic_set_with_the_right_counts_labels_and_masks(synth):
    before = snapshot(synth)
    test = MVTecAD(synth, "synth_weave", "test", size=SIZE)
    assert len(test) == N_TEST
    labels = [test[i]["gt_label"] for i in range(len(test))]
    assert labels.count(0) == N_TEST // 3
    for i in range(len(test)):
        item = test[i]
        assert item["image"].shape == (1, SIZE, SIZE) and item["gt_mask"].shape == (1, SIZE, SIZE)
        assert item["image"].dtype == torch.float32 and 0 <= item["image"].min() and item["image"].max() <= 1
        assert set(torch.unique(item["gt_mask"]).tolist()) <= {0.0, 1.0}
        assert (item["gt_mask"].sum() > 0) == bool(item["gt_label"])
        assert (item["defect_type"] == "good") == (item["gt_label"] == 0)
    assert set(test.defect_types) == {"good", *SYNTHETIC_DEFECTS["synth_weave"]}
    assert snapshot(synth) == before  # the loader writes nothing into the dataset folder


def test_val_is_a_seeded_20_percent_of_train_good_disjoint_from_train(synth):
    train = MVTecAD(synth, "synth_cap", "train", size=SIZE)
    val = MVTecAD(synth, "synth_cap", "val", size=SIZE)
    again = MVTecAD(synth, "synth_cap", "val", size=SIZE)
    other = MVTecAD(synth, "synth_cap", "val", size=SIZE, seed=5)
    t = {p for p, _, _ in train.samples}
    v = {p for p, _, _ in val.samples}
    assert len(v) == round(0.2 * N_TRAIN) and len(t) == N_TRAIN - len(v)
    assert not t & v and len(t | v) == N_TRAIN
    assert [p for p, _, _ in again.samples] == [p for p, _, _ in val.samples]
    assert {p for p, _, _ in other.samples} != v


def test_rgb_gives_three_channels_and_gray_one_and_size_is_applied(synth):
    rgb = MVTecAD(synth, "synth_cap", "test", size=32, color="rgb")[0]["image"]
    gray = MVTecAD(synth, "synth_cap", "test", size=32, color="gray")[0]["image"]
    assert rgb.shape == (3, 32, 32) and gray.shape == (1, 32, 32)


def test_grayscale_files_are_expanded_for_rgb(tmp_path):
    make_category(tmp_path, mode="L")
    item = MVTecAD(tmp_path, "toy", "test", size=32, color="rgb")[0]
    assert item["image"].shape == (3, 32, 32)
    assert torch.equal(item["image"][0], item["image"][1])


def make_category(root: Path, name="toy", n_good=5, mode="RGB", size=40):
    rng = np.random.default_rng(0)

    def save(path, channels=3):
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 255, (size, size, channels) if channels == 3 else (size, size), dtype=np.uint8)
        Image.fromarray(arr).convert(mode).save(path)

    for i in range(n_good):
        save(root / name / "train" / "good" / f"{i:03d}.png")
    save(root / name / "test" / "good" / "000.png")
    save(root / name / "test" / "crack" / "000.png")
    mask = np.zeros((size, size), np.uint8)
    mask[5:10, 5:10] = 255
    (root / name / "ground_truth" / "crack").mkdir(parents=True)
    Image.fromarray(mask).save(root / name / "ground_truth" / "crack" / "000_mask.png")
    return root / name


def test_non_image_files_are_ignored(tmp_path):
    cat = make_category(tmp_path)
    (cat / "license.txt").write_text("CC BY-NC-SA")
    (cat / "train" / "good" / ".DS_Store").write_bytes(b"\0\1")
    (cat / "test" / "crack" / "notes.txt").write_text("x")
    assert len(MVTecAD(tmp_path, "toy", "train")) + len(MVTecAD(tmp_path, "toy", "val")) == 5
    assert len(MVTecAD(tmp_path, "toy", "test")) == 2


def test_missing_category_lists_the_categories_found(tmp_path):
    make_category(tmp_path, "toy")
    make_category(tmp_path, "other")
    with pytest.raises(DataError, match="'bottle' not found.*other, toy"):
        MVTecAD(tmp_path, "bottle")


def test_defect_image_without_mask_names_the_expected_mask(tmp_path):
    cat = make_category(tmp_path)
    (cat / "ground_truth" / "crack" / "000_mask.png").unlink()
    with pytest.raises(DataError, match="000.png has no mask.*000_mask.png"):
        MVTecAD(tmp_path, "toy", "test")


def test_mask_without_image_names_the_mask(tmp_path):
    cat = make_category(tmp_path)
    Image.new("L", (40, 40)).save(cat / "ground_truth" / "crack" / "001_mask.png")
    with pytest.raises(DataError, match="001_mask.png has no image"):
        MVTecAD(tmp_path, "toy", "test")


def test_truncated_image_names_the_file(tmp_path):
    cat = make_category(tmp_path)
    path = cat / "train" / "good" / "002.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="002.png"):
        for split in ("train", "val"):
            ds = MVTecAD(tmp_path, "toy", split)
            for i in range(len(ds)):
                ds[i]


def test_unreadable_image_names_the_file(tmp_path):
    cat = make_category(tmp_path)
    (cat / "test" / "crack" / "000.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="cannot read image .*000.png"):
        MVTecAD(tmp_path, "toy", "test")


def test_mask_of_another_size_than_its_image_is_refused(tmp_path):
    cat = make_category(tmp_path)
    Image.new("L", (20, 20)).save(cat / "ground_truth" / "crack" / "000_mask.png")
    with pytest.raises(DataError, match="000_mask.png is \\(20, 20\\) but its image"):
        MVTecAD(tmp_path, "toy", "test")


def test_empty_split_names_the_folder(tmp_path):
    cat = make_category(tmp_path, n_good=0)
    (cat / "train" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match="split 'train' of .*toy is empty"):
        MVTecAD(tmp_path, "toy", "train")
    assert cat.exists()


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec_ad"


@pytest.mark.mvtec
@pytest.mark.skipif(not (SHARED / "bottle").is_dir(), reason="real MVTec AD bottle is not beside the checkout")
def test_real_mvtec_bottle_has_the_published_counts():
    train, val = MVTecAD(SHARED, "bottle", "train"), MVTecAD(SHARED, "bottle", "val")
    test = MVTecAD(SHARED, "bottle", "test")
    assert (len(train), len(val), len(test)) == (167, 42, 83)
    assert sum(1 for _, m, _ in test.samples if m is None) == 20
    assert sum(1 for _, m, _ in test.samples if m is not None) == 63
    item = test[len(test) - 1]
    assert item["image"].shape == (1, 256, 256)


def test_code_mask_reading_thins_a_downsized_mask_and_nearest_keeps_it(tmp_path):
    make_category(tmp_path, size=40)  # the crack's mask: a 5 x 5 square at rows and columns 5..9
    nearest = MVTecAD(tmp_path, "toy", "test", size=20)
    code = MVTecAD(tmp_path, "toy", "test", size=20, mask_reading="code")
    crack = [i for i in range(len(nearest)) if nearest[i]["defect_type"] == "crack"][0]
    a, b = nearest[crack]["gt_mask"], code[crack]["gt_mask"]
    assert set(a.unique().tolist()) <= {0.0, 1.0} and set(b.unique().tolist()) <= {0.0, 1.0}
    assert 0 < b.sum() < a.sum()  # antialiasing blurs the edges, and > 0.9 drops the blurred ones
    assert bool((b <= a).all())
    with pytest.raises(ValueError, match="mask_reading"):
        MVTecAD(tmp_path, "toy", "test", size=20, mask_reading="bilinear")
