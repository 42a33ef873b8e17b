"""Seeded synthetic datasets that need nothing but NumPy.

The 2-D classification sets return ``(X, y)``: X float64 (n, 2), y int64 (n,). Points are
uniform in the square [−1, 1]² and the positive region has area 2, half the square, so
the classes are balanced in expectation. ``noise`` flips that fraction of labels (in
expectation) for circle/triangle/square; for spirals and moons it is Gaussian jitter.

``seed`` is anything ``np.random.default_rng`` accepts (an int, a SeedSequence, a Generator).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Seed = int | np.random.SeedSequence | np.random.Generator | None

# Half-side and height of the upright equilateral triangle whose area *inside the square*
# is exactly 2: its base corners poke out of |x| ≤ 1 by two tiny triangles of area
# (√3/2)·(u − 1)² each, so √3·u² − √3·(u − 1)² = 2 gives u = 1/2 + 1/√3.
TRIANGLE_HALF_SIDE = 0.5 + 1 / math.sqrt(3)
TRIANGLE_HEIGHT = math.sqrt(3) * TRIANGLE_HALF_SIDE


def _square_points(n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniform in [−1, 1]², shape (n, 2)."""
    return rng.uniform(-1.0, 1.0, (n, 2))


def _flip(y: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Flip each binary label with probability `noise`."""
    flip = rng.random(y.shape) < noise
    return np.where(flip, 1 - y, y).astype(np.int64)


def circle(n: int = 1000, seed: Seed = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Label 1 inside the centred circle of radius √(2/π) (area 2), 0 outside."""
    rng = np.random.default_rng(seed)
    X = _square_points(n, rng)
    y = (np.sum(X**2, axis=1) <= 2 / math.pi).astype(np.int64)
    return X, _flip(y, noise, rng)


def triangle(n: int = 1000, seed: Seed = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Label 1 inside an upright equilateral triangle centred at the origin (its bounding
    box spans y ∈ [−h/2, h/2]), sized so that its area inside the square is exactly 2."""
    rng = np.random.default_rng(seed)
    X = _square_points(n, rng)
    h = TRIANGLE_HEIGHT
    # at height y the triangle's half-width shrinks linearly from u (base) to 0 (apex)
    half_width = (h / 2 - X[:, 1]) / math.sqrt(3)
    y = ((X[:, 1] >= -h / 2) & (np.abs(X[:, 0]) <= half_width)).astype(np.int64)
    return X, _flip(y, noise, rng)


def square(n: int = 1000, seed: Seed = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Label 1 inside the diamond |x₁| + |x₂| ≤ 1 (a square turned 45°, area 2)."""
    rng = np.random.default_rng(seed)
    X = _square_points(n, rng)
    y = (np.abs(X).sum(axis=1) <= 1).astype(np.int64)
    return X, _flip(y, noise, rng)


def spirals(
    n: int = 1000, classes: int = 2, seed: Seed = 0, noise: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """`classes` interleaved spiral arms of 1.5 turns from the origin, labels 0..classes−1.

    Arm k at radius r ∈ [0, 1] sits at angle 3π·r + 2πk/classes; `noise` is the standard
    deviation of the Gaussian jitter added to each coordinate. Classes are balanced exactly.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    r = rng.uniform(0.0, 1.0, n)
    theta = 3 * math.pi * r + 2 * math.pi * y / classes
    X = r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return X + noise * rng.standard_normal((n, 2)), y


def moons(n: int = 1000, seed: Seed = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as sklearn's make_moons), centred on the origin;
    `noise` is the standard deviation of the Gaussian jitter."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2).astype(np.int64)
    t = rng.uniform(0.0, math.pi, n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)  # label 0
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)  # label 1
    X = np.where(y[:, None] == 0, upper, lower) - [0.5, 0.25]
    return X + noise * rng.standard_normal((n, 2)), y


def swiss_roll(n: int = 1000, seed: Seed = 0, noise: float = 0.0) -> np.ndarray:
    """Points on a 2-D swiss roll (a spiral of 1.5 turns), scaled into about [−1, 1]²;
    shape (n, 2). A density to model (diffusion), so there are no labels."""
    rng = np.random.default_rng(seed)
    t = 1.5 * math.pi * (1 + 2 * rng.uniform(0.0, 1.0, n))
    X = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 15
    return X + noise * rng.standard_normal((n, 2))


def eight_gaussians(n: int = 1000, seed: Seed = 0, radius: float = 0.8,
                    noise: float = 0.08) -> np.ndarray:
    """A mixture of 8 equally likely isotropic Gaussians (standard deviation `noise`) centred
    on the circle of `radius` at angles 0, π/4, …, 7π/4; shape (n, 2). No labels (a density)."""
    rng = np.random.default_rng(seed)
    angle = rng.integers(0, 8, n) * (math.pi / 4)
    centres = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres + noise * rng.standard_normal((n, 2))


GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "circle": circle,
    "triangle": triangle,
    "square": square,
    "spirals": spirals,
    "moons": moons,
}


def make_classification_split(
    name: str, n_train: int = 1000, n_test: int = 1000, seed: int = 0, **kwargs
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) from GENERATORS[name], the two sets drawn from
    independent streams spawned from `seed`. Extra keyword arguments go to the generator."""
    if name not in GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(GENERATORS)}")
    train_seed, test_seed = np.random.SeedSequence(seed).spawn(2)
    X_train, y_train = GENERATORS[name](n_train, seed=train_seed, **kwargs)
    X_test, y_test = GENERATORS[name](n_test, seed=test_seed, **kwargs)
    return X_train, y_train, X_test, y_test
