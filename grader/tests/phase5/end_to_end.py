"""5.9 End to end with nothing but the student's engine: linear regression recovers known
coefficients, and the 2-4-4-2 circle MLP classifies held-out points (the training runs in the
worker through a probe; the held-out labels never leave the judge)."""

from __future__ import annotations

import numpy as np
import torch

from datasets.synthetic import circle
from grader.checks import check, fingerprint
from grader.checks.oracle import as_array, assert_close, unpack
from grader.session import fetch, run_probe
from grader.tests.phase5._helpers import attempt, fail

TARGET_ACCURACY = 0.93
SEEDS = (0, 1, 2, 3, 4)  # init seeds tried in turn (a few die: dead ReLUs); one must pass
CIRCLE_PARAMETERS = 2 * 4 + 4 + 4 * 4 + 4 + 4 * 2 + 2
LAYOUT = [(4, 2), (4,), (4, 4), (4,), (2, 4), (2,)]  # W1, b1, W2, b2, W3, b3


def _regression(seed: int, outputs: int | None):
    """Standardised features, known coefficients, no noise: gradient descent must find them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 3))
    w = rng.normal(size=(3,) if outputs is None else (3, outputs))
    b = rng.normal(size=() if outputs is None else (outputs,))
    return X, X @ w + b, w, b


@check("ag_end_to_end", "e2e")
def linear_regression_recovers_the_coefficients(m):
    """fit_linear_regression finds w and b of noise-free data (one output, then three), to 1e-6."""
    for outputs in (None, 3):
        X, y, w, b = _regression(outputs or 1, outputs)
        got_w, got_b = unpack(m.fit_linear_regression(X, y), 2, "fit_linear_regression")
        got_w, got_b = as_array(got_w, "w"), as_array(got_b, "b")
        if got_w.shape != w.shape or got_b.shape != np.shape(b):
            fail(f"for y of shape {y.shape}, fit_linear_regression returned w {got_w.shape} and "
                 f"b {got_b.shape}; expected {w.shape} and {np.shape(b)}.",
                 "w has shape X.shape[1:] + y.shape[1:], b has shape y.shape[1:].")
        hint = ("Each step: zero_grad, mse(X @ w + b, y).backward(), step. Without zero_grad the "
                "gradients of all past steps pile up and descent overshoots.")
        assert_close(got_w, w, f"w fitted to y of shape {y.shape}", rtol=1e-6, atol=1e-6,
                     hint=hint)
        assert_close(got_b, b, f"b fitted to y of shape {y.shape}", rtol=1e-6, atol=1e-6,
                     hint=hint)


def _circle_task():
    X, y = circle(1000, seed=0)
    X_test, y_test = circle(1000, seed=1)
    return X, y, X_test, y_test


@check("ag_end_to_end", "e2e", weight=2, seconds=60)
def circle_mlp_classifies_held_out_points(m):
    """train_circle_mlp's 2-4-4-2 MLP classifies ≥ 93% of 1000 held-out circle points.

    Init seeds 0 to 4 are tried in turn; one reaching the target is enough.
    """
    X, y, X_test, y_test = _circle_task()
    accuracies = []
    for seed in SEEDS:
        logits, count = run_probe(m, "phase5.train_circle", m, X, y, X_test, rng=seed)
        if count != CIRCLE_PARAMETERS:
            fail(f"the model returned by train_circle_mlp has {count} parameters; a 2-4-4-2 MLP "
                 f"has {CIRCLE_PARAMETERS} (weights and biases of Linear(2, 4), Linear(4, 4), "
                 f"Linear(4, 2)).")
        logits = as_array(logits, "the test logits")
        if logits.shape != (len(y_test), 2):
            fail(f"the model's logits on 1000 test points have shape {logits.shape}, expected "
                 f"(1000, 2).")
        accuracies.append(float((logits.argmax(axis=1) == y_test).mean()))
        if accuracies[-1] >= TARGET_ACCURACY:
            return
    fail(f"held-out accuracy {', '.join(f'{a:.1%}' for a in accuracies)} with init seeds "
         f"{', '.join(map(str, SEEDS))}; the target is {TARGET_ACCURACY:.0%}.",
         "ReLU between the layers, cross_entropy on the logits, zero_grad before every "
         "backward, SGD(lr=0.1, momentum=0.9) for 1500 full-batch steps.")


@check("ag_end_to_end", "invariant")
def linear_regression_keeps_the_inputs_dtype(m):
    """float32 X and y give float32 w and b (the parameters are made in X's dtype)."""
    X, y, _, _ = _regression(5, 2)
    got_w, got_b = unpack(m.fit_linear_regression(X.astype(np.float32), y.astype(np.float32),
                                                  steps=5), 2, "fit_linear_regression")
    for name, got in (("w", got_w), ("b", got_b)):
        dtype = as_array(got, name).dtype
        if dtype != np.float32:
            fail(f"fit_linear_regression on float32 X and y returned {name} of dtype {dtype}.",
                 "Start w and b from np.zeros(shape, dtype=X.dtype): np.zeros alone is float64, "
                 "and so is every gradient step after it.")


def _by_shape(m, model) -> list[np.ndarray]:
    """The MLP's parameters as [W1, b1, W2, b2, W3, b3]: parameters() lists each Linear's
    weight and bias, layer after layer; the shapes tell a weight from a bias."""
    arrays = [as_array(fetch(p.data), "a parameter") for p in model.parameters()]
    if sorted(a.shape for a in arrays) != sorted(LAYOUT):
        fail(f"the model's parameters have shapes {[a.shape for a in arrays]}; a 2-4-4-2 MLP "
             f"has {LAYOUT}.")
    ordered = []
    for shape in LAYOUT:
        index = next(i for i, a in enumerate(arrays) if a.shape == shape)
        ordered.append(arrays.pop(index))
    return ordered


def _torch_circle_run(start: list[np.ndarray], X, y, steps: int) -> list[np.ndarray]:
    params = [torch.tensor(a, requires_grad=True) for a in start]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    for _ in range(steps):
        h = torch.tensor(X)
        for i in range(0, 6, 2):
            h = h @ params[i].T + params[i + 1]
            h = h.relu() if i < 4 else h
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(h, torch.tensor(y)).backward()
        optimizer.step()
    return [p.detach().numpy() for p in params]


@check("ag_end_to_end", "oracle")
def circle_mlp_trains_like_torch_sgd_with_momentum(m):
    """25 steps of train_circle_mlp equal torch.optim.SGD(lr=0.1, momentum=0.9) on full-batch
    cross-entropy from the same start (its steps=0 model); the three Linears draw from one
    Generator, so the second layer is not a fresh Linear(4, 4, rng)."""
    X, y = circle(200, seed=2)
    start = _by_shape(m, m.train_circle_mlp(X, y, steps=0, rng=3))
    fresh = as_array(fetch(m.Linear(4, 4, rng=3).weight.data), "Linear(4, 4, rng=3).weight")
    if np.array_equal(start[2], fresh):
        fail("the second layer of train_circle_mlp(rng=3) equals a fresh Linear(4, 4, rng=3): "
             "every layer restarted the generator from the seed.",
             "Make one Generator, rng = np.random.default_rng(rng), and pass it to every "
             "Linear: the layers then draw different weights, in layer order.")
    expected = _torch_circle_run(start, X, y, steps=25)
    got = _by_shape(m, m.train_circle_mlp(X, y, steps=25, rng=3))
    for name, g, e in zip(("W1", "b1", "W2", "b2", "W3", "b3"), got, expected, strict=True):
        assert_close(g, e, f"{name} after 25 steps of train_circle_mlp", rtol=1e-6, atol=1e-9,
                     hint="Full batch, cross_entropy on the logits, zero_grad before backward, "
                          "SGD(model.parameters(), lr=lr, momentum=0.9).")


@fingerprint("ag_end_to_end")
def end_to_end_outputs(m):
    X, y, _, _ = _regression(1, None)
    X3, y3, _, _ = _regression(3, 3)
    Xc, yc, Xc_test, _ = _circle_task()

    def fit(X, y):
        got_w, got_b = m.fit_linear_regression(X[:20], y[:20], steps=3)
        return np.concatenate([np.ravel(got_w), np.ravel(got_b), [np.size(got_b)]])

    return {
        "regression": attempt(lambda: fit(X, y)),
        "regression_3": attempt(lambda: fit(X3, y3)),
        "circle": attempt(lambda: run_probe(m, "phase5.circle_logits", m, Xc[:100], yc[:100],
                                            Xc_test[:8], steps=5, rng=0)),
    }
