"""Draw every learning-rate schedule of phase 3 (curriculum §3.5–3.7) from the reference solution.

    .venv/bin/python docs/plot_schedules.py        # writes docs/img/schedule_*.png

The schedulers only need an object with `param_groups`, so a one-group stand-in drives them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solutions import phase3_optim as optim  # noqa: E402

OUT = ROOT / "docs" / "img"
BASE_LR = 0.1
STEPS = 1000


class OneGroup:
    """What a scheduler needs from an optimizer: param_groups with an "lr"."""

    def __init__(self, lr: float) -> None:
        self.param_groups = [{"lr": lr, "params": []}]


def trajectory(name: str, steps: int = STEPS, **kwargs) -> np.ndarray:
    """The lr after construction and after each of `steps` scheduler steps."""
    optimizer = OneGroup(BASE_LR)
    scheduler = getattr(optim, name)(optimizer, **kwargs)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return np.array(lrs)


def plateau_trajectory(metrics: np.ndarray, **kwargs) -> np.ndarray:
    optimizer = OneGroup(BASE_LR)
    scheduler = optim.ReduceLROnPlateau(optimizer, **kwargs)
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append(optimizer.param_groups[0]["lr"])
    return np.array(lrs)


# file stem → (title, [(label, scheduler, kwargs)], log scale)
SCHEDULES = {
    "step": ("StepLR", [("step_size=200, γ=0.5", "StepLR", {"step_size": 200, "gamma": 0.5})],
             False),
    "exponential": ("ExponentialLR", [("γ=0.995", "ExponentialLR", {"gamma": 0.995}),
                                      ("γ=0.999", "ExponentialLR", {"gamma": 0.999})], False),
    "polynomial": ("PolynomialLR", [
        (f"total_iters=800, power={p}", "PolynomialLR", {"total_iters": 800, "power": p})
        for p in (0.5, 1.0, 2.0)], False),
    "linear_warmup": ("LinearLR (linear warmup)", [
        ("start_factor=0.01, total_iters=300", "LinearLR",
         {"start_factor": 0.01, "total_iters": 300}),
        ("start_factor=1, end_factor=0.1, total_iters=700", "LinearLR",
         {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 700})], False),
    "cosine": ("CosineAnnealingLR", [
        ("T_max=1000", "CosineAnnealingLR", {"T_max": 1000}),
        ("T_max=300, η_min=0.01 (past T_max it climbs back)", "CosineAnnealingLR",
         {"T_max": 300, "eta_min": 0.01})], False),
    "warm_restarts": ("CosineAnnealingWarmRestarts (SGDR)", [
        ("T_0=200", "CosineAnnealingWarmRestarts", {"T_0": 200}),
        ("T_0=50, T_mult=2", "CosineAnnealingWarmRestarts", {"T_0": 50, "T_mult": 2})], False),
    "warmup_cosine": ("WarmupCosine", [
        ("warmup_steps=100, total_steps=1000", "WarmupCosine",
         {"warmup_steps": 100, "total_steps": 1000}),
        ("warmup_steps=300, total_steps=800, η_min=0.01", "WarmupCosine",
         {"warmup_steps": 300, "total_steps": 800, "eta_min": 0.01})], False),
}


def _figure():
    fig = Figure(figsize=(6.4, 3.4), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_schedule(stem: str, title: str, curves: list, log: bool) -> Path:
    fig = _figure()
    ax = fig.add_subplot()
    for label, name, kwargs in curves:
        ax.plot(trajectory(name, **kwargs), label=label, linewidth=1.6)
    ax.set_title(title)
    ax.set_xlabel("step t")
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = OUT / f"schedule_{stem}.png"
    fig.savefig(path)
    return path


def plot_plateau() -> Path:
    """A noisy loss curve with plateaus, and the lr ReduceLROnPlateau sets from it."""
    rng = np.random.default_rng(0)
    t = np.arange(300)
    loss = 1.0 / (1 + t / 15) + 0.3 * (t < 150) + rng.normal(0, 0.003, t.size)
    lrs = plateau_trajectory(loss, patience=10, factor=0.5, cooldown=5)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(lrs, color="C0", linewidth=1.6, label="lr (patience=10, factor=0.5, cooldown=5)")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("learning rate", color="C0")
    ax.set_yscale("log")
    other = ax.twinx()
    other.plot(loss, color="C1", linewidth=1.0, alpha=0.8, label="validation loss")
    other.set_ylabel("validation loss", color="C1")
    ax.set_title("ReduceLROnPlateau")
    ax.grid(alpha=0.3)
    fig.legend(loc="center left", fontsize=8, bbox_to_anchor=(0.12, 0.45))
    fig.tight_layout()
    path = OUT / "schedule_plateau.png"
    fig.savefig(path)
    return path


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for stem, (title, curves, log) in SCHEDULES.items():
        print(f"wrote {plot_schedule(stem, title, curves, log).relative_to(ROOT)}")
    print(f"wrote {plot_plateau().relative_to(ROOT)}")


if __name__ == "__main__":
    main()
