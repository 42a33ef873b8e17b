"""Capstone of phase 8: your DDPM learns three 2-D densities — a swiss roll, two moons and eight
Gaussians — and samples them from pure noise.

For each dataset your Denoiser (an MLP with your phase-2 sinusoidal time embedding) is trained by
your train_denoiser (your phase-3 AdamW and WarmupCosine) on the linear schedule, T = 1000; then
your ddpm_sample (1000 ancestral steps) and your ddim_sample (50 deterministic steps) draw fresh
points. Sample quality is the squared energy distance to held-out data,

    E²(P, Q) = 2·E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖   (X, X' ~ P, Y, Y' ~ Q; V-statistic, ≥ 0),

reported as a ratio to the distance between two independent draws of the data themselves (the
floor a perfect sampler would reach with this many points). Target: ancestral samples within 2×
of that floor on every dataset. Writes runs/ddpm-2d-<time>/{<dataset>.png (forward noising and
reverse sampling), losses.png, summary.json}.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from datasets.synthetic import eight_gaussians, moons, swiss_roll
from grader.capstones import course_module, run_directory
from grader.capstones.plots import finish, plot_point_grid

NAME = "ddpm-2d"
TARGET_RATIO = 2.0
DATASETS: dict[str, Callable[[int, np.random.SeedSequence], np.ndarray]] = {
    "swiss-roll": lambda n, seed: swiss_roll(n, seed=seed, noise=0.02),
    "moons": lambda n, seed: moons(n, seed=seed, noise=0.05)[0],
    "eight-gaussians": lambda n, seed: eight_gaussians(n, seed=seed),
}
CONFIG = {"T": 1000, "hidden_dim": 128, "num_layers": 3, "time_dim": 32, "steps": 6000,
          "batch_size": 512, "lr": 2e-3, "warmup_steps": 200, "n_train": 20_000,
          "n_eval": 2000, "ddim_steps": 50, "seed": 0,
          # one intra-op thread: the matmuls are small and a second thread gains little
          "threads": 1}
FRAMES = (999, 500, 250, 100)  # the steps x_t shown in the forward and reverse rows


def describe() -> str:
    return (f"DDPM on swiss roll, moons and 8 Gaussians with your phase-8 diffusion; target: "
            f"samples within {TARGET_RATIO:g}× of the data-to-data energy distance")


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The squared energy distance 2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (V-statistic: ≥ 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def mean_distance(p: np.ndarray, q: np.ndarray) -> float:
        return float(np.sqrt(((p[:, None, :] - q[None, :, :]) ** 2).sum(-1)).mean())

    return 2 * mean_distance(a, b) - mean_distance(a, a) - mean_distance(b, b)


class _Ticking(torch.nn.Module):
    """The model, with a progress bar that advances on every training forward pass."""

    def __init__(self, model: torch.nn.Module, bar: tqdm):
        super().__init__()
        self.model, self.bar = model, bar

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.bar.update(1)
        return self.model(x, t)


@torch.no_grad()
def _reverse_frames(course, model, x_T: torch.Tensor, betas: torch.Tensor,
                    generator: torch.Generator) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Ancestral sampling with your p_sample: ({t: x_t for t in FRAMES}, the samples)."""
    frames, x = {}, x_T
    for t in reversed(range(len(betas))):
        if t in FRAMES:
            frames[t] = x.numpy()
        x = course.p_sample(model, x, t, betas, generator=generator)
    return frames, x.numpy()


def _plot_losses(losses: dict[str, np.ndarray], path: Path) -> Path:
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    window = max(1, min(100, min(map(len, losses.values())) // 10))
    for name, values in losses.items():
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(values)), smooth, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"ε-prediction loss (mean of {window} steps)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def _run_one(course, name: str, config: dict, seed: np.random.SeedSequence,
             directory: Path) -> tuple[dict, np.ndarray]:
    train_seed, held_seed, other_seed = seed.spawn(3)
    make = DATASETS[name]
    data = torch.from_numpy(make(config["n_train"], train_seed)).float()
    held_out, other = make(config["n_eval"], held_seed), make(config["n_eval"], other_seed)
    betas = course.linear_beta_schedule(config["T"])
    generator = torch.Generator().manual_seed(config["seed"])
    model = course.Denoiser(2, config["hidden_dim"], config["num_layers"], config["time_dim"],
                            config["T"])
    started = time.monotonic()
    with tqdm(total=config["steps"], desc=f"{name}: training", unit="step") as bar:
        losses = course.train_denoiser(_Ticking(model, bar), data, betas, config["steps"],
                                       config["batch_size"], config["lr"],
                                       config["warmup_steps"], generator=generator)
    train_seconds = time.monotonic() - started
    model.eval()
    x_T = torch.randn(config["n_eval"], 2, generator=generator)
    started = time.monotonic()
    frames, samples = _reverse_frames(course, model, x_T, betas, generator)
    ancestral_seconds = time.monotonic() - started
    started = time.monotonic()
    ddim = course.ddim_sample(model, x_T, betas, steps=config["ddim_steps"]).numpy()
    ddim_seconds = time.monotonic() - started

    floor = energy_distance(other, held_out)
    distances = {"data": floor, "ddpm": energy_distance(samples, held_out),
                 "ddim": energy_distance(ddim, held_out)}
    shown = data[: config["n_eval"]]
    forward = [("data x₀", shown.numpy())] + [
        (f"t = {t}", course.q_sample(shown, torch.full((len(shown),), t), betas,
                                     generator=generator).numpy()) for t in reversed(FRAMES)]
    reverse = [(f"t = {t}", frames[t]) for t in FRAMES] + [("samples", samples)]
    plot_point_grid([("forward q(x_t | x₀)", forward), ("reverse p_θ(x_{t−1} | x_t)", reverse),
                     ("compare", [("held-out data", held_out), ("ancestral", samples),
                                  (f"DDIM, {config['ddim_steps']} steps", ddim)])],
                    directory / f"{name}.png",
                    f"{name}: energy distance ratio {distances['ddpm'] / floor:.2f} (ancestral), "
                    f"{distances['ddim'] / floor:.2f} (DDIM)")
    result = {"energy_distance": distances,
              "ratio_ddpm": distances["ddpm"] / floor, "ratio_ddim": distances["ddim"] / floor,
              "seconds": {"train": round(train_seconds, 1),
                          "ancestral": round(ancestral_seconds, 1),
                          "ddim": round(ddim_seconds, 2)},
              "final_loss": float(losses[-200:].mean())}
    result["reached_target"] = result["ratio_ddpm"] <= TARGET_RATIO
    return result, losses.detach().numpy()


def run(solution: bool = False, epochs: int | None = None, out: Path | None = None) -> dict:
    """`epochs` here counts thousands of training steps per dataset (default 6)."""
    course = course_module("phase8_diffusion", solution)
    config = dict(CONFIG)
    if epochs:
        config["steps"] = epochs * 1000
    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["threads"])
    directory = run_directory(NAME, out)
    who = "the reference solution" if solution else "your exercises/phase8_diffusion.py"
    print(f"{describe()}\nmodel: {who}; {config}\nwriting to {directory}")

    started = time.monotonic()
    results, losses = {}, {}
    for name, seed in zip(DATASETS, np.random.SeedSequence(config["seed"]).spawn(len(DATASETS)),
                          strict=True):
        results[name], losses[name] = _run_one(course, name, config, seed, directory)
        r = results[name]
        print(f"{name}: energy distance {r['energy_distance']['ddpm']:.5f} (ancestral), "
              f"{r['energy_distance']['ddim']:.5f} (DDIM) vs {r['energy_distance']['data']:.5f} "
              f"between two draws of the data: ratios {r['ratio_ddpm']:.2f}, "
              f"{r['ratio_ddim']:.2f}")
    seconds = time.monotonic() - started
    _plot_losses(losses, directory / "losses.png")
    summary = {"task": NAME, "solution": solution, "config": config,
               "seconds": round(seconds, 1), "datasets": results, "target_ratio": TARGET_RATIO,
               "reached_target": all(r["reached_target"] for r in results.values())}
    return finish(directory, summary, f"{len(results)} datasets in {seconds / 60:.1f} min",
                  f"(ancestral samples within {TARGET_RATIO:g}× of the data-to-data energy "
                  f"distance on every dataset)")
