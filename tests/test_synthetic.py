"""Claims about stainlib.synthetic: the seeded, MVTec-like offline dataset (book chapter 2)."""

import numpy as np

from stainlib.noise import CORRUPTIONS
from stainlib.synthetic import SYNTHETIC_CATEGORIES, SYNTHETIC_DEFECTS, is_synthetic, make_synthetic, synthetic_sample


def test_synthetic_defect_pixels_lie_inside_their_mask():
    for category in SYNTHETIC_CATEGORIES:
        clean, _ = synthetic_sample(category, 11, 128)
        for defect in SYNTHETIC_DEFECTS[category]:
            img, mask = synthetic_sample(category, 11, 128, defect)
            diff = np.abs(img.astype(int) - clean.astype(int)).max(-1)
            assert mask.sum() > 10, (category, defect)
            assert (diff[~mask] == 0).all(), (category, defect)  # nothing changed outside the mask
            assert diff[mask].mean() > 8, (category, defect)  # and the mask covers a visible change


def test_synthetic_defects_are_not_training_corruption_models():
    for defects in SYNTHETIC_DEFECTS.values():
        assert 2 <= len(defects) <= 4
        assert not set(defects) & set(CORRUPTIONS) and "stain" not in defects
    assert len(SYNTHETIC_CATEGORIES) >= 5


def test_synthetic_generation_is_deterministic_and_seeded(tmp_path):
    a = make_synthetic(tmp_path / "a", ["synth_mesh"], n_train=3, n_test=3, size=48, seed=1)
    b = make_synthetic(tmp_path / "b", ["synth_mesh"], n_train=3, n_test=3, size=48, seed=1)
    c = make_synthetic(tmp_path / "c", ["synth_mesh"], n_train=3, n_test=3, size=48, seed=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)


def test_synthetic_images_vary_between_samples():
    first, _ = synthetic_sample("synth_weave", 1, 64)
    second, _ = synthetic_sample("synth_weave", 2, 64)
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 5


def test_a_generated_category_is_recognised_as_synthetic_and_another_folder_is_not(tmp_path):
    make_synthetic(tmp_path, ["synth_wood"], n_train=2, n_test=3, size=32)
    (tmp_path / "bottle" / "train" / "good").mkdir(parents=True)
    assert is_synthetic(tmp_path, "synth_wood") and not is_synthetic(tmp_path, "bottle")


def test_no_synthetic_category_shares_a_name_with_an_mvtec_ad_category():
    from stainlib.data import MVTEC_CATEGORIES

    assert not set(SYNTHETIC_CATEGORIES) & set(MVTEC_CATEGORIES)
    assert all(c.startswith("synth_") for c in SYNTHETIC_CATEGORIES)
    assert not any(c.startswith("synth_") for c in MVTEC_CATEGORIES)


def test_synthetic_or_real_is_told_by_the_category_name_alone_with_no_data_on_the_machine():
    from stainlib.data import MVTEC_CATEGORIES
    from stainlib.synthetic import is_synthetic_category

    assert all(is_synthetic_category(c) for c in SYNTHETIC_CATEGORIES)
    assert not any(is_synthetic_category(c) for c in MVTEC_CATEGORIES)


def test_grain_defects_stay_inside_the_grey_range_of_their_own_good_image():
    # An identity network trained on good images can copy such a defect (book chapter 4); the 'wood' defects cannot
    # be copied that way: a hole is darker than any good wood pixel.
    for seed in range(3):
        clean, _ = synthetic_sample("synth_grain", seed, 64)
        lo, hi = clean.min(), clean.max()
        for defect in SYNTHETIC_DEFECTS["synth_grain"]:
            img, mask = synthetic_sample("synth_grain", seed, 64, defect)
            assert mask.any() and img[mask].min() >= lo and img[mask].max() <= hi, (seed, defect)
    clean, _ = synthetic_sample("synth_wood", 0, 64)
    img, mask = synthetic_sample("synth_wood", 0, 64, "hole")
    assert img[mask].min() < clean.min()


def test_a_defect_unknown_to_the_category_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="spot, faded, crack"):
        synthetic_sample("synth_grain", 0, 64, "hole")
