"""FULL=1 tier of phase 0: the MLP on real data (Fashion-MNIST) and on a noisy circle at scale.

Thresholds are computed in the judge on the same data: a ridge-regression linear classifier
(closed form) for Fashion-MNIST, and the true boundary's own accuracy under label noise for
the circle. Held-out labels never leave the judge.
"""

from __future__ import annotations

import math

import numpy as np

from datasets.synthetic import circle
from grader.checks import CheckFailed, check
from grader.checks.oracle import as_array
from grader.evidence import attach
from grader.tests.real_data import fashion, ridge_accuracy

TRAIN, TEST = 5000, 2000
STEPS, BATCH, LR = 1000, 128, 0.05
NOISE = 0.05  # circle labels flipped at random: no classifier beats 1 − NOISE on average
GRID = 60


def _standardised() -> tuple[np.ndarray, ...]:
    X, y = fashion("train", TRAIN)
    X_test, y_test = fashion("test", TEST)
    X, X_test = X.reshape(TRAIN, -1), X_test.reshape(TEST, -1)  # (N, 784)
    mean, scale = X.mean(axis=0), X.std()
    return (X - mean) / scale, y, (X_test - mean) / scale, y_test


@check("mlp", "e2e", full=True, seconds=180)
def an_mlp_trained_by_train_classifier_beats_a_linear_model_on_fashion_mnist(m):
    """On Fashion-MNIST, your MLP and train_classifier beat a linear least-squares classifier.

    A 784-128-10 MLP from your layers, trained by your train_classifier for 1000 steps on 5000
    images, against ridge regression fitted in the judge on the same images (2000 test images).
    """
    X, y, X_test, y_test = _standardised()
    baseline = ridge_accuracy(X, y, X_test, y_test)
    model = m.make_mlp((784, 128, 10), rng=0)
    losses = as_array(
        m.train_classifier(model, X, y, lr=LR, steps=STEPS, batch_size=BATCH, rng=0),
        "the losses train_classifier returned",
    )
    attach("training loss (minibatches of 128)", "curves", loss=losses)
    logits = as_array(model.forward(X_test), "the test logits")
    if logits.shape != (TEST, 10):
        raise CheckFailed(f"the test logits have shape {logits.shape}, expected ({TEST}, 10).")
    accuracy = float((logits.argmax(axis=1) == y_test).mean())
    if not accuracy > baseline:
        raise CheckFailed(
            f"test accuracy {accuracy:.1%}, not above the linear classifier's {baseline:.1%} "
            f"(loss {losses[0]:.3f} → {losses[-1]:.3f} over {STEPS} steps).",
            "The circle checks pass but real data does not? Look at the loss curve: a loss that "
            "stalls near log 10 ≈ 2.30 means the updates do not reach the first layer.",
        )


@check("mlp", "e2e", full=True, seconds=120)
def train_classifier_finds_the_circle_through_label_noise(m):
    """Through 5% label noise, your MLP comes within 3 points of the true circle's accuracy.

    A 2-32-32-2 MLP trained by your train_classifier on 4000 circle points, 2000 held out."""
    X, y = circle(4000, seed=10, noise=NOISE)
    X_test, y_test = circle(2000, seed=11, noise=NOISE)
    radius = math.sqrt(2 / math.pi)
    bayes = float(((np.sum(X_test**2, axis=1) <= radius**2) == y_test).mean())
    model = m.make_mlp((2, 32, 32, 2), rng=0)
    losses = as_array(
        m.train_classifier(model, X, y, lr=0.1, steps=4000, batch_size=64, rng=0), "the losses"
    )
    predicted = as_array(model.forward(X_test), "the test logits").argmax(axis=1)
    xs = np.linspace(-1, 1, GRID)
    grid = np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)  # (GRID², 2)
    regions = as_array(model.forward(grid), "the logits on a grid").argmax(axis=1)
    attach(
        "your decision boundary on held-out points (black circle: the true boundary)",
        "boundary",
        X=X_test, y=y_test, predicted=predicted, xs=xs, ys=xs,
        grid=regions.reshape(GRID, GRID), radius=np.array(radius),
    )  # fmt: skip
    attach("training loss", "curves", loss=losses)
    accuracy = float((predicted == y_test).mean())
    if accuracy < bayes - 0.03:
        raise CheckFailed(
            f"held-out accuracy {accuracy:.1%}, more than 3 points below the true boundary's "
            f"{bayes:.1%} (loss {losses[0]:.3f} → {losses[-1]:.3f}).",
            "Look at the boundary in the HTML report: a straight line means the ReLUs or their "
            "backward are missing; a ragged one, that it memorised the flipped labels.",
        )
