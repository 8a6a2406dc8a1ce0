import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from dlcore import plot
from dlcore.train import History


def test_book_style_sets_the_colour_cycle():
    plot.use_book_style()
    assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0] == plot.BOOK_COLORS[0]


def test_decision_boundary_accepts_labels_scores_and_tensors():
    X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    ax = plot.plot_decision_boundary(lambda g: (g[:, 0] > 0).astype(int), X, y, resolution=30, title="t")
    assert ax.get_title() == "t" and len(ax.collections) >= 2
    scores = lambda g: np.c_[-g[:, 0], g[:, 0]]  # (m, 2) scores: argmax is taken
    plot.plot_decision_boundary(scores, torch.as_tensor(X), torch.as_tensor(y), resolution=20)
    prob = lambda g: torch.sigmoid(torch.as_tensor(g[:, :1]))  # (m, 1) probabilities
    plot.plot_decision_boundary(prob, X, y, resolution=20)


def test_decision_boundary_rejects_non_2d_inputs():
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        plot.plot_decision_boundary(lambda g: g[:, 0], np.zeros((5, 3)), np.zeros(5))


def test_plot_history_draws_one_line_per_metric():
    h = History()
    for i in range(5):
        h.log(train_loss=1 / (i + 1), val_loss=1.2 / (i + 1))
    ax = plot.plot_history(h, logy=True, title="loss")
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    ax = plot.plot_history({"acc": [0.1, 0.5]}, ["acc"])
    assert len(ax.lines) == 1
    with pytest.raises(KeyError, match="history has no"):
        plot.plot_history(h, ["val_acc"])


@pytest.mark.parametrize("shape", [(6, 8, 8), (6, 1, 8, 8), (6, 3, 8, 8)])
def test_image_grid_handles_gray_and_colour(shape):
    fig = plot.image_grid(np.random.rand(*shape), labels=list(range(6)), ncols=4, title="grid")
    assert len(fig.axes) == 8 and fig.axes[0].get_title() == "0"


def test_image_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected images"):
        plot.image_grid(np.zeros((4, 4)))


def test_heatmap_annotates_cells():
    ax = plot.heatmap(np.eye(3), xlabels="abc", ylabels=[1, 2, 3], fmt="{:.0f}", title="h")
    assert len(ax.texts) == 9 and ax.get_title() == "h"
    with pytest.raises(ValueError, match="2-D matrix"):
        plot.heatmap(np.zeros(3))
    plt.close("all")
