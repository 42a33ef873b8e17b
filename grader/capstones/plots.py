"""Training curves and confusion matrices as PNGs, drawn on matplotlib's Agg canvas (no display,
pyplot's global state left alone)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def plot_curves(history: dict[str, Sequence[float]], path: Path, title: str = "") -> Path:
    """Loss (left) and accuracy (right) per epoch; keys like train_loss, test_accuracy."""
    fig = Figure(figsize=(10, 4), dpi=110)
    FigureCanvasAgg(fig)
    for index, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, index + 1)
        for name, values in history.items():
            if name.endswith(metric) and len(values):
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, marker="o", label=name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows = true class) with the counts written in each cell."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(8, 7), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=45, ha="right")
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_loss_steps(rows: Sequence[dict], path: Path, title: str = "") -> Path:
    """Training loss and validation loss against the optimizer step, from a Trainer's log rows
    ({"step", "loss", and "val_loss" on validation steps})."""
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, style in (("loss", "-"), ("val_loss", "o-")):
        points = [(row["step"], row[key]) for row in rows if key in row]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, style, label="train loss" if key == "loss" else "val loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_point_grid(rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], path: Path,
                    title: str = "", limit: float = 2.0) -> Path:
    """A grid of 2-D scatter plots: one row per (label, [(panel title, points (N, 2)), …]),
    every panel on the same square [−limit, limit]² (the forward noising and reverse sampling
    of a diffusion model, one frame per panel)."""
    columns = max(len(panels) for _, panels in rows)
    fig = Figure(figsize=(2.4 * columns, 2.5 * len(rows)), dpi=110)
    FigureCanvasAgg(fig)
    for r, (label, panels) in enumerate(rows):
        for c, (name, points) in enumerate(panels):
            ax = fig.add_subplot(len(rows), columns, r * columns + c + 1)
            points = np.asarray(points)
            ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.5, linewidths=0)
            ax.set_xlim(-limit, limit)
            ax.set_ylim(-limit, limit)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=8)
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return path
