"""The book's figure style and the plotting helpers chapters share.

Every chapter calls :func:`use_book_style` once; the helpers draw the figures that recur across the book:
decision boundaries of 2-D classifiers, training curves from a :class:`dlcore.train.History` (or a dict of
lists), grids of images and annotated heatmaps.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

BOOK_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

BOOK_STYLE = {
    "figure.figsize": (6.0, 3.8),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=BOOK_COLORS),
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "image.cmap": "viridis",
    "font.size": 10,
}


def use_book_style() -> None:
    """Apply the book's matplotlib style (light grid, no top/right spines, a fixed colour cycle)."""
    mpl.rcParams.update(BOOK_STYLE)


def _axes(ax: plt.Axes | None, figsize: tuple[float, float] | None = None) -> plt.Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def plot_decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X, y, ax: plt.Axes | None = None,
                           resolution: int = 200, margin: float = 0.5, title: str | None = None) -> plt.Axes:
    """Shade the regions a 2-D classifier assigns to each class and scatter the data on top.

    ``predict`` maps an ``(m, 2)`` float array to ``m`` class labels (or to scores of shape ``(m, k)``,
    whose argmax is taken). Works for numpy functions and, through a small wrapper, torch models.
    """
    X, y = _to_numpy(X), _to_numpy(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D inputs of shape (n, 2), got {X.shape}")
    ax = _axes(ax)
    (x0, y0), (x1, y1) = X.min(0) - margin, X.max(0) + margin
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.c_[gx.ravel(), gy.ravel()].astype(np.float32)
    z = _to_numpy(predict(grid))
    if z.ndim == 2:
        z = z.argmax(1) if z.shape[1] > 1 else (z[:, 0] > 0.5)
    z = z.reshape(gx.shape).astype(float)
    k = int(max(y.max(), z.max())) + 1
    cmap = mpl.colors.ListedColormap(BOOK_COLORS[:max(k, 2)])
    ax.contourf(gx, gy, z, levels=np.arange(-0.5, k), cmap=cmap, alpha=0.25)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=k - 0.5, s=14, edgecolors="white",
               linewidths=0.4)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="$x_1$", ylabel="$x_2$")
    ax.set_aspect("equal", adjustable="box")
    if title:
        ax.set_title(title)
    return ax


def plot_history(history, keys: Sequence[str] | None = None, ax: plt.Axes | None = None,
                 xlabel: str = "epoch", logy: bool = False, title: str | None = None) -> plt.Axes:
    """Plot training curves: one line per metric (``train_loss``, ``val_loss``, ...) against the epoch.

    ``history`` is a :class:`dlcore.train.History` or any mapping from names to lists of numbers.
    """
    data: Mapping[str, Sequence[float]] = history.metrics if hasattr(history, "metrics") else history
    keys = list(keys) if keys is not None else [k for k in data if k != "epoch"]
    missing = [k for k in keys if k not in data]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(data)}")
    ax = _axes(ax)
    for k in keys:
        vals = np.asarray(data[k], dtype=float)
        ax.plot(np.arange(1, len(vals) + 1), vals, marker="o" if len(vals) < 30 else None, ms=3, label=k)
    ax.set_xlabel(xlabel)
    if logy:
        ax.set_yscale("log")
    if len(keys) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax


def image_grid(images, labels: Sequence | None = None, ncols: int = 8, cmap: str = "gray_r",
               size: float = 1.0, title: str | None = None) -> plt.Figure:
    """Show images in a grid. ``images``: (n, H, W), (n, 1, H, W) or (n, 3, H, W), numpy or torch."""
    imgs = _to_numpy(images)
    if imgs.ndim == 4 and imgs.shape[1] in (1, 3):
        imgs = imgs[:, 0] if imgs.shape[1] == 1 else imgs.transpose(0, 2, 3, 1)
    if imgs.ndim not in (3, 4):
        raise ValueError(f"expected images of shape (n, H, W) or (n, C, H, W), got {_to_numpy(images).shape}")
    n = len(imgs)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * (1.25 if labels is not None
                                                                                     else 1.0)),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(np.clip(imgs[i], 0, 1) if imgs.ndim == 4 else imgs[i], cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def heatmap(matrix, xlabels: Sequence | None = None, ylabels: Sequence | None = None,
            ax: plt.Axes | None = None, annotate: bool = True, fmt: str = "{:.2f}", cmap: str = "viridis",
            xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
            colorbar: bool = True) -> plt.Axes:
    """An annotated heatmap (confusion matrices, hyperparameter grids, attention weights)."""
    m = _to_numpy(matrix).astype(float)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix, got shape {m.shape}")
    ax = _axes(ax)
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    ax.grid(False)
    if xlabels is not None:
        ax.set_xticks(range(m.shape[1]), [str(v) for v in xlabels])
    if ylabels is not None:
        ax.set_yticks(range(m.shape[0]), [str(v) for v in ylabels])
    if annotate and m.size <= 400:
        mid = np.nanmean(m)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8,
                    color="white" if v < mid else "black")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return ax
