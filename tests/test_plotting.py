import matplotlib
import pytest
import torch

from stainlib.noise import PAPER_CORRUPTIONS
from stainlib.plotting import corruption_grid

matplotlib.use("Agg")


def test_corruption_grid_wraps_the_models_into_blocks_of_columns_and_titles_each_model_once():
    images = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    fig = corruption_grid(images, seed=1, columns=5)
    n = len(PAPER_CORRUPTIONS)
    blocks = -(-n // 5)
    assert len(fig.axes) == blocks * 2 * 2 * 6  # blocks x two images x (image, mask) rows x (image + 5 models)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title() not in ("", "image")]
    assert sorted(titles) == sorted(PAPER_CORRUPTIONS)
    assert fig.get_size_inches()[0] == pytest.approx(1.6 * 6)


def test_corruption_grid_refuses_fewer_than_one_column():
    with pytest.raises(ValueError, match="columns"):
        corruption_grid(torch.rand(1, 1, 64, 64), ["stain"], columns=0)
