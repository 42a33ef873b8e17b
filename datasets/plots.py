"""Plots for the 2-D toy datasets, drawn with matplotlib's Agg canvas (no display needed,
and pyplot's global state is left alone)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

# one colour per class, light for the regions and dark for the points
REGION_COLOURS = ["#c6dbef", "#fdd0a2", "#c7e9c0", "#dadaeb", "#fcbba1"]
POINT_COLOURS = ["#2171b5", "#d94801", "#238b45", "#6a51a3", "#cb181d"]


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    title: str = "",
    resolution: int = 300,
) -> Path:
    """Save a PNG of predict's class regions over the data's bounding box, with the points.

    predict maps (M, 2) float64 points to (M,) integer classes (or (M, C) scores, reduced
    with argmax). X (n, 2), y (n,) ints. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)  # (R, R) each
    pred = np.asarray(predict(np.column_stack([gx.ravel(), gy.ravel()])))
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    k = int(max(pred.max(), y.max())) + 1

    fig = Figure(figsize=(5, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    levels = np.arange(k + 1) - 0.5  # one filled band per class
    regions = pred.reshape(gx.shape)
    ax.contourf(gx, gy, regions, levels=levels, cmap=ListedColormap(REGION_COLOURS[:k]))
    ax.contour(gx, gy, regions, levels=levels[1:-1], colors="0.3", linewidths=0.8)
    colours = np.asarray(POINT_COLOURS)[y % len(POINT_COLOURS)]
    ax.scatter(X[:, 0], X[:, 1], c=colours, s=8, edgecolors="white", linewidths=0.3)
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    fig.tight_layout()
    fig.savefig(path)
    return path
