"""Capstone of phase 0: your NumPy 2-4-4-2 MLP learns which points lie inside a circle.

`make train TASK=circle` builds the model with your make_mlp, trains it with your
train_classifier in chunks (a progress bar per chunk of steps), and writes
runs/circle-<time>/{boundary.png, loss.png, summary.json}. Target: ≥ 93% held-out accuracy.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.synthetic import circle
from grader.capstones import course_module, run_directory
from grader.capstones.plots import (
    chance_accuracy,
    finish,
    plot_decision_boundary,
    plot_step_losses,
)

NAME = "circle"
TARGET_ACCURACY = 0.93
CONFIG = {"sizes": (2, 4, 4, 2), "lr": 0.1, "steps": 4000, "batch_size": 64, "chunk": 100,
          "n_train": 1000, "n_test": 1000, "seed": 0}


def describe() -> str:
    return (f"circle points with your NumPy MLP (phase 0); target ≥ {TARGET_ACCURACY:.0%} "
            f"held-out accuracy")


def run(solution: bool = False, epochs: int | None = None, out: Path | None = None) -> dict:
    """`epochs` here counts chunks of CONFIG["chunk"] steps (default: steps / chunk)."""
    course = course_module("phase0_foundations", solution)
    config = dict(CONFIG)
    if epochs:
        config["steps"] = epochs * config["chunk"]
    X, y = circle(config["n_train"], seed=config["seed"])
    X_test, y_test = circle(config["n_test"], seed=config["seed"] + 1)
    rng = np.random.default_rng(config["seed"])  # one stream for init and every minibatch
    model = course.make_mlp(config["sizes"], rng=rng)
    directory = run_directory(NAME, out)
    who = "the reference solution" if solution else "your exercises/phase0_foundations.py"
    print(f"{describe()}\nmodel: {who}; {config}\nwriting to {directory}")

    started = time.monotonic()
    losses = []
    chunks = config["steps"] // config["chunk"]
    bar = tqdm(range(chunks), desc="training", unit=f"×{config['chunk']} steps")
    for _ in bar:
        chunk = course.train_classifier(model, X, y, lr=config["lr"], steps=config["chunk"],
                                        batch_size=config["batch_size"], rng=rng)
        losses.extend(np.asarray(chunk, dtype=np.float64).tolist())
        bar.set_postfix(loss=f"{np.mean(losses[-config['chunk']:]):.3f}")
    seconds = time.monotonic() - started

    def predict(points: np.ndarray) -> np.ndarray:
        return np.asarray(model.forward(points)).argmax(axis=1)

    accuracy = float((predict(X_test) == y_test).mean())
    plot_decision_boundary(predict, X_test, y_test, directory / "boundary.png",
                           title=f"held-out accuracy {accuracy:.1%}",
                           true_boundary=lambda gx, gy: gx**2 + gy**2 - 2 / math.pi,
                           classes=("outside", "inside"))
    plot_step_losses(losses, directory / "loss.png", "circle: your MLP's training loss")
    summary = {"task": NAME, "solution": solution, "config": config,
               "seconds": round(seconds, 2), "test_accuracy": accuracy,
               "final_loss": float(np.mean(losses[-config["chunk"]:])),
               "chance_accuracy": chance_accuracy(y_test),
               "target_accuracy": TARGET_ACCURACY,
               "reached_target": accuracy >= TARGET_ACCURACY}
    return finish(directory, summary, f"held-out accuracy {accuracy:.1%} in {seconds:.1f} s",
                  f"≥ {TARGET_ACCURACY:.0%}")
