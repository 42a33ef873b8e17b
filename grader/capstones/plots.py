"""Every capstone's plots and summary, in one place: PNGs drawn on matplotlib's Agg canvas (no
display, pyplot's global state left alone), and `finish`, which writes summary.json and prints
the verdict the same way for every task.

Plots: training curves per epoch or per step, a confusion matrix, a grid of 2-D point clouds,
and a 2-D decision boundary with its legend, the true boundary and the misclassified points.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

# one colour per class, light for the regions and dark for the points
REGION_COLOURS = ["#c6dbef", "#fdd0a2", "#c7e9c0", "#dadaeb", "#fcbba1"]
POINT_COLOURS = ["#2171b5", "#d94801", "#238b45", "#6a51a3", "#cb181d"]


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


def plot_step_losses(losses: Sequence[float], path: Path, title: str = "", window: int = 100,
                     ylabel: str = "cross-entropy") -> Path:
    """Per-step minibatch losses, faint, and their running mean over `window` steps."""
    losses = np.asarray(losses, dtype=np.float64)
    fig = Figure(figsize=(6, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(losses, alpha=0.35, label="minibatch loss")
    if len(losses) > window:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(losses)), smooth, label=f"mean of {window} steps")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    title: str = "",
    resolution: int = 300,
    true_boundary: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    classes: Sequence[str] | None = None,
) -> Path:
    """Save a PNG of predict's class regions over the data's bounding box, with the points.

    predict maps (M, 2) float64 points to (M,) integer classes (or (M, C) scores, reduced
    with argmax). X (n, 2), y (n,) ints. `true_boundary(gx, gy)` is a function whose zero set
    is the true boundary (x² + y² − r² for a circle), drawn dashed. Misclassified points are
    ringed in red; the legend names the classes, the regions and both boundaries.
    Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)  # (R, R) each
    grid = _classes(predict(np.column_stack([gx.ravel(), gy.ravel()])))  # (R·R,)
    k = int(max(grid.max(), y.max())) + 1
    names = list(classes) if classes is not None else [f"class {c}" for c in range(k)]

    fig = Figure(figsize=(7.4, 5.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    levels = np.arange(k + 1) - 0.5  # one filled band per class
    regions = grid.reshape(gx.shape)  # (R, R)
    ax.contourf(gx, gy, regions, levels=levels, cmap=ListedColormap(REGION_COLOURS[:k]))
    ax.contour(gx, gy, regions, levels=levels[1:-1], colors="0.3", linewidths=0.8)
    handles = [Patch(color=REGION_COLOURS[c], label=f"predicted {names[c]}") for c in range(k)]
    handles.append(Line2D([], [], color="0.3", linewidth=0.8, label="model's boundary"))
    if true_boundary is not None:
        ax.contour(gx, gy, true_boundary(gx, gy), levels=[0.0], colors="black",
                   linewidths=1.4, linestyles="--")
        handles.append(Line2D([], [], color="black", linestyle="--", label="true boundary"))
    for c in range(k):
        points = X[y == c]
        ax.scatter(points[:, 0], points[:, 1], s=8, color=POINT_COLOURS[c % len(POINT_COLOURS)],
                   edgecolors="white", linewidths=0.3, label=names[c])
    wrong = _classes(predict(np.asarray(X, dtype=np.float64))) != y  # (n,)
    if wrong.any():
        ax.scatter(X[wrong, 0], X[wrong, 1], s=40, facecolors="none", edgecolors="red",
                   linewidths=1.0, label=f"misclassified ({int(wrong.sum())})")
    handles = ax.get_legend_handles_labels()[0] + handles
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7,
              frameon=False)
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")  # the legend sits outside the axes
    return path


def _classes(predicted) -> np.ndarray:
    predicted = np.asarray(predicted)
    return predicted.argmax(axis=1) if predicted.ndim == 2 else predicted.astype(np.int64)


def chance_accuracy(labels) -> float:
    """The accuracy of always answering the most frequent class: what learning nothing gives."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).ravel())
    return float(counts.max() / max(counts.sum(), 1))


def finish(directory: Path, summary: dict, measured: str, target: str | None,
           files: str = "plots") -> dict:
    """Write summary.json and print the verdict line every capstone ends with:
    "<measured> — target <target> reached|NOT reached." and where the files are.

    `summary` holds "reached_target" (and "chance_accuracy" where accuracy is the measure:
    `make train` warns when a run ends there); a capstone without a target (a comparison)
    leaves "reached_target" out and passes target None, and only <measured> is printed."""
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    if "reached_target" in summary:
        verdict = "reached" if summary["reached_target"] else "NOT reached"
        measured = f"{measured} — target {target} {verdict}."
    print(f"{measured}\n{files} and summary.json in {directory}")
    return summary
