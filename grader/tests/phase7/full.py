"""FULL=1 tier of phase 7: the resnet-fashion capstone in short form, on real images.

A small ResNet of your blocks (the grader's loop, your Adam) trains for 500 minibatch steps on
14×14 Fashion-MNIST images; the threshold is the nearest-class-mean accuracy on the same
images, computed in the judge.
"""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check
from grader.checks.oracle import as_array
from grader.evidence import attach
from grader.session import run_probe
from grader.tests.real_data import centroid_accuracy, fashion

TRAIN, TEST = 3000, 1000
STEPS, BATCH, LR = 500, 32, 5e-3
MEAN, STD = 0.286, 0.353


def _thumbnails(split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = fashion(split, count)
    return images.reshape(count, 14, 2, 14, 2).mean(axis=(2, 4)), labels  # (N, 14, 14)


@check("cnn_resnet", "e2e", full=True, seconds=240)
def a_small_resnet_trained_on_fashion_mnist_beats_the_class_means(m):
    """A small ResNet of your layers, trained on Fashion-MNIST, beats the class means.

    500 steps of 32 images (3000 in all, 14×14) with your Adam; 1000 held-out images, against
    the nearest-class-mean classifier fitted in the judge on the same images."""
    X, y = _thumbnails("train", TRAIN)
    X_test, y_test = _thumbnails("test", TEST)
    baseline = centroid_accuracy(X, y, X_test, y_test)
    inputs = ((X - MEAN) / STD).astype(np.float32)[:, None]  # (N, 1, 14, 14)
    held_out = ((X_test - MEAN) / STD).astype(np.float32)[:, None]
    logits, losses = run_probe(
        m, "phase7.train_resnet", m, inputs, y, held_out, steps=STEPS, batch=BATCH, lr=LR, seed=0
    )
    losses = as_array(losses, "the losses")
    attach("training loss (minibatches of 32)", "curves", loss=losses)
    logits = as_array(logits, "the held-out logits")
    if logits.shape != (TEST, 10):
        raise CheckFailed(f"the held-out logits have shape {logits.shape}, expected ({TEST}, 10).")
    accuracy = float((logits.argmax(axis=1) == y_test).mean())
    if not accuracy > baseline:
        raise CheckFailed(
            f"held-out accuracy {accuracy:.1%}, not above the class means' {baseline:.1%} "
            f"(loss {losses[0]:.3f} → {losses[-1]:.3f} over {STEPS} steps).",
            "Every graded check passes but real images do not train? Look at the loss curve: "
            "BatchNorm2d's running statistics (used in eval mode) and Adam's bias correction "
            "are the usual suspects.",
        )
