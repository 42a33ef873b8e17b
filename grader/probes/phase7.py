"""Trusted code run in the worker next to the student's phase-7 objects. Returns arrays only."""

from __future__ import annotations

import importlib

import numpy as np


def load_params(model, arrays):
    """Write arrays into model.params() in place, in order, when every shape matches; return
    the shapes of params() either way (the judge explains a mismatch)."""
    params = list(model.params())
    shapes = [list(np.shape(p)) for p in params]
    if shapes == [list(np.shape(a)) for a in arrays]:
        for p, a in zip(params, arrays, strict=True):
            p[...] = a
    return shapes


def call_with_inputs(target, method: str, args: list):
    """target.method(*args), and the argument arrays as they are after the call: the judge
    compares them with what it sent to see whether an input was modified in place."""
    result = getattr(target, method)(*args)
    return result, [np.array(a) for a in args]


def adam_run(module, params, grads, kwargs):
    """Run the student's Adam over `params` (arrays made here) for len(grads) steps; return
    the trajectory as seen through the caller's own arrays (in place) and the grads after."""
    held = [np.array(p) for p in params]
    optimizer = module.Adam(held, **kwargs)
    trajectory = []
    for step_grads in grads:
        optimizer.step(step_grads)
        trajectory.append([np.array(p) for p in held])
    return trajectory, grads


def train_resnet(module, X, y, X_test, steps: int, batch: int, lr: float, seed: int):
    """Train a tiny float32 ResNet with the student's Adam and phase-0 cross-entropy on (X, y)
    by minibatches; return the eval-mode test logits and the losses."""
    foundations = importlib.import_module(f"{module.__package__}.phase0_foundations")
    rng = np.random.default_rng(seed)
    model = module.ResNet(X.shape[1], int(y.max()) + 1, (8, 16), (1, 1), rng=seed, dtype=np.float32)
    optimizer = module.Adam(model.params(), lr=lr)
    losses = np.empty(steps)
    for step in range(steps):
        idx = rng.choice(len(X), batch, replace=False)
        losses[step], dlogits = foundations.softmax_cross_entropy(model.forward(X[idx]), y[idx])
        model.backward(np.asarray(dlogits, dtype=np.float32))
        optimizer.step(model.grads())
    model.eval()
    return np.asarray(model.forward(X_test), dtype=np.float64), losses
