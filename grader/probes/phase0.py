"""Trusted code run in the worker next to the student's phase-0 objects. Returns arrays only."""

from __future__ import annotations

import numpy as np


def train_with_grader_loop(module, X, y, X_test, steps: int, lr: float, seed: int):
    """Train make_mlp((2, 4, 4, 2)) with the grader's own full-batch loop built from the
    student's pieces (forward, softmax_cross_entropy, backward, sgd_step); return the test
    logits and the losses."""
    model = module.make_mlp((2, 4, 4, 2), rng=seed)
    losses = np.empty(steps)
    for step in range(steps):
        losses[step], dlogits = module.softmax_cross_entropy(model.forward(X), y)
        model.backward(dlogits)
        module.sgd_step(model.params(), model.grads(), lr)
    return np.asarray(model.forward(X_test), dtype=np.float64), losses


def train_with_student_loop(module, X, y, X_test, seed: int):
    """Train with the student's own train_classifier (its defaults); return test logits."""
    model = module.make_mlp((2, 4, 4, 2), rng=seed)
    losses = module.train_classifier(model, X, y, rng=seed)
    return np.asarray(model.forward(X_test), dtype=np.float64), np.asarray(losses, np.float64)


def sgd_on_linear(module, layer, lr: float):
    """Apply the student's sgd_step to a layer's own params() and grads() in place."""
    module.sgd_step(layer.params(), layer.grads(), lr)
    return np.array(layer.weight), np.array(layer.bias)
