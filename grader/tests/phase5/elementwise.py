"""5.5 Elementwise functions graded alone against torch and finite differences; sigmoid must
stay finite and warning-free at ±1e3 (and ±1e4)."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import check, fingerprint
from grader.checks.oracle import assert_close
from grader.checks.stability import EXTREME, assert_finite
from grader.tests.phase5._helpers import (
    OpSpec,
    attempt,
    declare_op_checks,
    fail,
    one_array,
    op_outputs,
    run_op,
)

X = np.random.default_rng(6).uniform(-3, 3, (3, 4))
X[np.abs(X) < 0.05] = 0.4  # away from ReLU's kink for finite differences
POSITIVE = np.random.default_rng(7).uniform(0.2, 4.0, (3, 4))
KINK = np.array([-2.0, -1e-3, 0.0, 1e-3, 2.0])  # ReLU'(0) is 0, as in torch
EXTREMES = np.array([-EXTREME, -1e3, -745.0, -40.0, 0.0, 40.0, 745.0, 1e3, EXTREME])


def _unary(name: str, reference, hint: str, low: float = -4.0, high: float = 4.0,
           fixed: np.ndarray = X) -> OpSpec:
    return OpSpec(name, ("x",), reference, one_array(low, high).map(lambda x: ({}, [x])),
                  [({}, [fixed])], hint)


OPS = [
    _unary("Exp", torch.exp, "(eˣ)' = eˣ: ∂x = g · y, the output you already computed."),
    _unary("Log", torch.log, "(ln x)' = 1/x: ∂x = g / x.", 0.1, 5.0, POSITIVE),
    _unary("Sin", torch.sin, "sin' = cos: ∂x = g · cos x."),
    _unary("Cos", torch.cos, "cos' = −sin: ∂x = −g · sin x (mind the sign)."),
    _unary("Tanh", torch.tanh, "tanh'(x) = 1 − tanh²(x) = 1 − y²."),
    _unary("Sigmoid", torch.sigmoid, "σ'(x) = σ(x)(1 − σ(x)) = y(1 − y)."),
    OpSpec("ReLU", ("x",), torch.relu, one_array().map(lambda x: ({}, [x])),
           [({}, [X]), ({}, [KINK])], "ReLU'(x) is 1 for x > 0 and 0 for x ≤ 0 (0 at x = 0).",
           smooth=1),
]

for _spec in OPS:
    declare_op_checks(globals(), "ag_elementwise", _spec)


@check("ag_elementwise", "stability")
def sigmoid_is_stable_at_1e3(m):
    """Sigmoid at ±1e3 and ±1e4 is finite, raises no overflow warning, and matches torch."""
    warned: list[str] = []
    y, (gx,) = run_op(m, "Sigmoid", {}, [EXTREMES], np.ones_like(EXTREMES), warnings=warned)
    what = "Sigmoid at x = ±1e3, ±1e4"
    hint = ("1 / (1 + np.exp(−x)) overflows for x < −709: e.g. σ(x) = exp(−logaddexp(0, −x)), "
            "or two branches on the sign of x so exp only sees −|x|.")
    assert_finite(y, f"{what}: the output", hint)
    assert_finite(gx, f"{what}: the gradient", hint)
    if warned:
        fail(f"{what} raised a warning: {warned[0]!r}.", hint)
    x = torch.tensor(EXTREMES, requires_grad=True)
    torch.sigmoid(x).sum().backward()
    assert_close(y, torch.sigmoid(x).detach().numpy(), f"{what}: the output", hint=hint)
    assert_close(gx, x.grad.numpy(), f"{what}: the gradient")


@check("ag_elementwise", "oracle")
def relu_gradient_is_zero_at_zero(m):
    """ReLU.backward is 0 at exactly x = 0 and at x < 0, and g at x > 0 (torch's convention)."""
    _, (gx,) = run_op(m, "ReLU", {}, [KINK], np.full(5, 2.0))
    assert_close(gx, np.array([0.0, 0.0, 0.0, 2.0, 2.0]), "ReLU.backward(2) at x = "
                 "[-2, -0.001, 0, 0.001, 2]", hint="Mask with x > 0, not x >= 0.")


@fingerprint("ag_elementwise")
def elementwise_outputs(m):
    outputs = {}
    for spec in OPS:
        outputs.update(op_outputs(m, spec))

    def extreme():
        warned: list[str] = []
        y, (gx,) = run_op(m, "Sigmoid", {}, [EXTREMES], np.ones_like(EXTREMES), warnings=warned)
        return np.concatenate([np.asarray(y, float), np.asarray(gx, float), [float(bool(warned))]])

    outputs["sigmoid_extremes"] = attempt(extreme)
    return outputs
