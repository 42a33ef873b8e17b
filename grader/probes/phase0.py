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


def grads_after_backward(module, layer, x, dout):
    """The arrays grads() returned BEFORE forward/backward, read after them: an optimiser
    holds on to those arrays, so backward must write into them."""
    held = layer.grads()
    layer.forward(x)
    layer.backward(dout)
    return [np.array(g) for g in held]


class _RecordingModel:
    """Wraps a student model and records which rows of X each forward call saw."""

    def __init__(self, model, X):
        self.model, self.X, self.batches = model, X, []

    def forward(self, x):
        rows = [int(np.flatnonzero((self.X == row).all(axis=1))[0]) for row in np.asarray(x)]
        self.batches.append(rows)
        return self.model.forward(x)

    def backward(self, dout):
        return self.model.backward(dout)

    def params(self):
        return self.model.params()

    def grads(self):
        return self.model.grads()


def batches_seen(module, X, y, batch_size: int, steps: int, seed: int):
    """Row indices of every minibatch the student's train_classifier fed to the model."""
    recorder = _RecordingModel(module.make_mlp((2, 4, 4, 2), rng=seed), X)
    module.train_classifier(recorder, X, y, lr=0.1, steps=steps, batch_size=batch_size, rng=seed)
    return np.array(recorder.batches, dtype=np.int64)


def student_loop_losses(module, X, y, steps: int, lr: float, seed: int):
    """Full-batch losses of the student's train_classifier from make_mlp(rng=seed)."""
    model = module.make_mlp((2, 4, 4, 2), rng=seed)
    losses = module.train_classifier(model, X, y, lr=lr, steps=steps, batch_size=None, rng=seed)
    return np.asarray(losses, np.float64)
