"""Finite-difference gradient checks in float64 (the CS231n method, torch's fast mode idea).

A function under test is given as
    forward(inputs: dict[str, ndarray]) -> ndarray                (the output y)
    vjp(inputs, v: ndarray) -> dict[str, ndarray]                 (∂(v·y)/∂input for each input)
Fast mode draws random directions u (one per input) and compares the central difference of
v·y along u with Σ vjp·u: two forward calls per pass instead of two per element. Full mode
perturbs every element and names the worst input and element.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from grader.checks import CheckFailed
from grader.checks.oracle import as_array, unpack

STEP = 1e-6
TOLERANCE = 1e-6

Forward = Callable[[dict[str, np.ndarray]], np.ndarray]
VJP = Callable[[dict[str, np.ndarray], np.ndarray], dict[str, np.ndarray]]


def relative_error(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """|a − b| / max(1e-8, |a| + |b|), elementwise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def _shifted(inputs: dict, key: str, delta: np.ndarray) -> dict:
    return {**inputs, key: inputs[key] + delta}


def _directional(forward: Forward, inputs: dict, u: dict, v: np.ndarray, what: str) -> float:
    plus = as_array(forward({k: x + STEP * u[k] for k, x in inputs.items()}), what)
    minus = as_array(forward({k: x - STEP * u[k] for k, x in inputs.items()}), what)
    return float(np.sum(v * (plus - minus)) / (2 * STEP))


def check_gradients(
    forward: Forward,
    vjp: VJP,
    inputs: dict[str, np.ndarray],
    *,
    what: str,
    mode: str = "fast",
    passes: int = 3,
    seed: int = 0,
    tolerance: float = TOLERANCE,
    hint: str | None = None,
) -> None:
    """Fail unless the analytic VJP agrees with central differences of `forward`."""
    rng = np.random.default_rng(seed)
    inputs = {k: np.asarray(x, dtype=np.float64) for k, x in inputs.items()}
    y = as_array(forward(inputs), f"{what}: the forward output")
    v = rng.standard_normal(y.shape)
    grads = vjp(inputs, v)
    if not isinstance(grads, dict):
        raise CheckFailed(f"{what}: the backward pass returned {type(grads).__name__}.")
    for key, x in inputs.items():
        g = as_array(grads.get(key), f"{what}: the gradient with respect to {key}")
        if g.shape != x.shape:
            raise CheckFailed(
                f"{what}: the gradient with respect to {key} has shape {g.shape}, "
                f"but {key} has shape {x.shape} (a gradient has its input's shape: "
                f"sum over broadcast or batch axes).",
                hint,
            )
        grads[key] = g.astype(np.float64)
    if mode == "full":
        _full_jacobian(forward, grads, inputs, v, what, tolerance, hint)
        return
    for _ in range(passes):
        u = {k: rng.standard_normal(x.shape) for k, x in inputs.items()}
        numeric = _directional(forward, inputs, u, v, what)
        analytic = float(sum(np.sum(grads[k] * u[k]) for k in inputs))
        error = float(relative_error(numeric, analytic))
        if error > tolerance:
            raise CheckFailed(
                f"{what}: your backward pass disagrees with finite differences of your forward "
                f"pass (random direction vᵀJu: numeric {numeric:.8g}, analytic {analytic:.8g}, "
                f"relative error {error:.2g} > {tolerance:g}).",
                hint,
            )


def _full_jacobian(
    forward: Forward,
    grads: dict,
    inputs: dict,
    v: np.ndarray,
    what: str,
    tolerance: float,
    hint: str | None,
) -> None:
    worst = (0.0, "", (), 0.0, 0.0)
    for key, x in inputs.items():
        for index in np.ndindex(x.shape):
            delta = np.zeros_like(x)
            delta[index] = STEP
            plus = as_array(forward(_shifted(inputs, key, delta)), what)
            minus = as_array(forward(_shifted(inputs, key, -delta)), what)
            numeric = float(np.sum(v * (plus - minus)) / (2 * STEP))
            analytic = float(grads[key][index])
            error = float(relative_error(numeric, analytic))
            if error > worst[0]:
                worst = (error, key, index, numeric, analytic)
    error, key, index, numeric, analytic = worst
    if error > tolerance:
        raise CheckFailed(
            f"{what}: the gradient with respect to {key} is wrong; worst element {key}{list(index)}"
            f": finite differences give {numeric:.8g}, your backward gives {analytic:.8g} "
            f"(relative error {error:.2g} > {tolerance:g}).",
            hint,
        )


def function_pair(forward_fn, backward_fn, name: str = "x") -> tuple[Forward, VJP]:
    """Adapt `f(x)` and `f_backward(x, dout) -> dx` to the (forward, vjp) form above."""
    return (
        lambda inputs: forward_fn(inputs[name]),
        lambda inputs, v: {name: backward_fn(inputs[name], v)},
    )


def loss_and_grad_pair(
    fn, argument: str, other: dict, count: int = 2, grad_index: int = 1
) -> tuple[Forward, VJP]:
    """Adapt `fn(**args) -> (loss, d loss/d argument, …)` (a scalar loss with its gradient)."""

    def forward(inputs):
        loss = unpack(fn(**{argument: inputs[argument]}, **other), count, "the loss function")[0]
        return np.asarray(as_array(loss, "the loss"), dtype=np.float64)

    def vjp(inputs, v):
        result = unpack(fn(**{argument: inputs[argument]}, **other), count, "the loss function")
        return {argument: float(v) * as_array(result[grad_index], f"d loss / d {argument}")}

    return forward, vjp
