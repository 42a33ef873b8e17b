"""FULL=1 tier of phase 1: the fashion-rnn capstone in short form, on real images.

Each 28×28 Fashion-MNIST image is read row by row, a sequence of 28 steps of 28 features; the
threshold is the nearest-class-mean accuracy on the same images, computed in the judge.
"""

from __future__ import annotations

import torch

from grader.checks import CheckFailed, check
from grader.checks.oracle import as_array
from grader.evidence import attach
from grader.session import run_probe
from grader.tests.real_data import centroid_accuracy, fashion

TRAIN, TEST = 3000, 1000
MEAN, STD = 0.286, 0.353  # Fashion-MNIST's pixel statistics (train split)
CONFIG = {"seed": 0, "hidden_size": 64, "num_classes": 10, "cell_type": "gru", "lr": 3e-3,
          "steps": 300, "batch_size": 64}  # fmt: skip


@check("sequence_classifier", "e2e", full=True, seconds=180)
def a_gru_classifier_reads_fashion_mnist_rows_better_than_the_class_means(m):
    """Your GRU SequenceClassifier, reading Fashion-MNIST row by row, beats the class means.

    300 Adam steps (the grader's loop) on 3000 images; 1000 held-out images, against the
    nearest-class-mean classifier fitted in the judge on the same images."""
    X, y = fashion("train", TRAIN)
    X_test, y_test = fashion("test", TEST)
    baseline = centroid_accuracy(X, y, X_test, y_test)
    inputs = torch.tensor((X - MEAN) / STD, dtype=torch.float32)  # (N, 28 steps, 28 features)
    held_out = torch.tensor((X_test - MEAN) / STD, dtype=torch.float32)
    logits, losses = run_probe(
        m, "phase1.train_classifier", m, inputs, torch.tensor(y), held_out, CONFIG
    )
    losses = as_array(losses, "the losses")
    attach("training loss (the grader's Adam loop, batches of 64)", "curves", loss=losses)
    logits = as_array(logits, "the held-out logits")
    if logits.shape != (TEST, 10):
        raise CheckFailed(f"the held-out logits have shape {logits.shape}, expected ({TEST}, 10).")
    accuracy = float((logits.argmax(axis=1) == y_test).mean())
    if not accuracy > baseline:
        raise CheckFailed(
            f"held-out accuracy {accuracy:.1%}, not above the class means' {baseline:.1%} "
            f"(loss {losses[0]:.3f} → {losses[-1]:.3f}).",
            "The classifier should read the final hidden state of the last layer (h_n[-1]), "
            "after the whole sequence: check the time axis (batch_first) and the head.",
        )
