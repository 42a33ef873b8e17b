"""Synthetic generators: seeded, balanced, shaped as documented; the plot helper writes a PNG."""

from __future__ import annotations

import numpy as np
import pytest

from datasets import GENERATORS, eight_gaussians, make_classification_split, swiss_roll


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_seeded_and_shaped(name):
    X, y = GENERATORS[name](500, seed=3)
    X2, y2 = GENERATORS[name](500, seed=3)
    assert X.shape == (500, 2) and X.dtype == np.float64 and y.shape == (500,)
    assert y.dtype == np.int64
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert not np.array_equal(X, GENERATORS[name](500, seed=4)[0])


@pytest.mark.parametrize("name", ["circle", "triangle", "square"])
def test_shape_regions_cover_half_the_square(name):
    X, y = GENERATORS[name](40_000, seed=0)
    assert np.all(np.abs(X) <= 1)
    assert abs(y.mean() - 0.5) < 0.01  # the positive region has area 2 of 4


def test_circle_labels_follow_the_radius():
    X, y = GENERATORS["circle"](2000, seed=1)
    assert np.array_equal(y == 1, (X**2).sum(1) <= 2 / np.pi)


def test_label_noise_flips_the_requested_fraction():
    _, clean = GENERATORS["square"](20_000, seed=2)
    _, noisy = GENERATORS["square"](20_000, seed=2, noise=0.1)
    assert abs((clean != noisy).mean() - 0.1) < 0.01


def test_spirals_have_balanced_classes():
    _, y = GENERATORS["spirals"](999, classes=3, seed=0)
    assert np.bincount(y).tolist() == [333, 333, 333]


def test_splits_are_disjoint_draws():
    X_train, _, X_test, _ = make_classification_split("circle", 100, 100, seed=0)
    assert not np.isin(X_train[:, 0], X_test[:, 0]).any()
    with pytest.raises(ValueError, match="unknown dataset"):
        make_classification_split("hexagon")


def test_swiss_roll_is_unlabelled_and_bounded():
    X = swiss_roll(1000, seed=0)
    assert X.shape == (1000, 2) and np.abs(X).max() < 1.1


def test_eight_gaussians_are_seeded_and_centred_on_the_circle():
    X = eight_gaussians(8000, seed=0)
    assert X.shape == (8000, 2) and X.dtype == np.float64
    assert np.array_equal(X, eight_gaussians(8000, seed=0))
    assert not np.array_equal(X, eight_gaussians(8000, seed=1))
    angles = np.arange(8) * np.pi / 4
    centres = 0.8 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nearest = np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert np.all(np.abs(np.bincount(nearest, minlength=8) / 8000 - 1 / 8) < 0.02)
    offsets = X - centres[nearest]
    assert np.all(np.abs(offsets.std(axis=0) - 0.08) < 0.005)
    assert np.abs(offsets.mean(axis=0)).max() < 0.005


def test_decision_boundary_plot_is_written(tmp_path):
    from datasets.plots import plot_decision_boundary

    X, y = GENERATORS["circle"](200, seed=0)
    path = plot_decision_boundary(
        lambda P: ((P**2).sum(1) <= 2 / np.pi).astype(int),
        X,
        y,
        tmp_path / "boundary.png",
        title="circle",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
