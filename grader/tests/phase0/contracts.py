"""Phase 0's declared contracts: how to call every numeric function, once per exercise.

Each declaration becomes part of one graded check per exercise (grader/checks/contracts.py):
float32 inputs give float32 outputs and float64 give float64, the float32 result agrees with
the float64 one, a second call with the same input gives the same result, and — as for every
call — the inputs are left unchanged. Layers are not here: their parameters are float64 by
contract, so their outputs follow NumPy's promotion; their repeated-call checks are in their
own modules.
"""

from __future__ import annotations

import numpy as np

from grader.checks.contracts import Numeric, contract_checks


def _randn(seed: int, *shape: int, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _elementwise(name: str, **kwargs) -> Numeric:
    return Numeric(name, lambda m, dt: (getattr(m, name), [_randn(1, 3, 4, dtype=dt)], kwargs))


def _backward(name: str, **kwargs) -> Numeric:
    return Numeric(
        name,
        lambda m, dt: (
            getattr(m, name),
            [_randn(2, 3, 4, dtype=dt), _randn(3, 3, 4, dtype=dt)],
            kwargs,
        ),
    )


ACTIVATIONS = [
    make(f"{name}{suffix}")
    for name in ("relu", "leaky_relu", "sigmoid", "tanh", "silu", "gelu_tanh")
    for make, suffix in ((_elementwise, ""), (_backward, "_backward"))
]

LINEAR_REGRESSION = [
    Numeric(
        "mse_loss",
        lambda m, dt: (
            m.mse_loss,
            [_randn(4, 6, 3, dtype=dt), _randn(5, 6, dtype=dt), _randn(6, 3, dtype=dt), 0.5],
            {},
        ),
        outputs=("scalar", "float", "scalar"),
    ),
    Numeric(
        "fit_linear_regression",
        lambda m, dt: (
            m.fit_linear_regression,
            [_randn(7, 8, 2, dtype=dt), _randn(8, 8, dtype=dt)],
            {"steps": 20},
        ),
        outputs=("float", "scalar", None),
    ),
]

SOFTMAX = [
    Numeric("softmax", lambda m, dt: (m.softmax, [_randn(9, 3, 5, dtype=dt)], {"axis": 0})),
    Numeric("log_softmax", lambda m, dt: (m.log_softmax, [_randn(10, 3, 5, dtype=dt)], {})),
]

LOSSES = [
    Numeric(
        "softmax_cross_entropy",
        lambda m, dt: (
            m.softmax_cross_entropy,
            [_randn(11, 4, 3, dtype=dt), np.array([0, 2, 1, 2])],
            {},
        ),
        outputs=("scalar", "float"),
    ),
    Numeric(
        "bce_with_logits",
        lambda m, dt: (
            m.bce_with_logits,
            [_randn(12, 2, 3, dtype=dt), (_randn(13, 2, 3) > 0).astype(dt)],
            {},
        ),
        outputs=("scalar", "float"),
    ),
]

REGULARIZATION = [
    Numeric(
        name,
        lambda m, dt, name=name: (
            getattr(m, name),
            [[_randn(14, 3, 2, dtype=dt), _randn(15, 4, dtype=dt)], 0.1],
            {},
        ),
        outputs=("scalar", "floats"),
    )
    for name in ("l1_penalty", "l2_penalty")
]

INIT = [
    Numeric(
        name,
        lambda m, dt, name=name: (getattr(m, name), [(5, 3)], {"rng": 0}),
        dtypes=("float64",),  # no input array: float64 by contract, the same for one seed
    )
    for name in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal")
] + [
    Numeric(
        "compute_fans",
        lambda m, dt: (m.compute_fans, [(5, 3, 2)], {}),
        outputs=("scalar", "scalar"),
        dtypes=("float64",),
    ),
]

for _exercise, _declared in (
    ("activations", ACTIVATIONS),
    ("linear_regression", LINEAR_REGRESSION),
    ("softmax", SOFTMAX),
    ("losses", LOSSES),
    ("regularization", REGULARIZATION),
    ("init", INIT),
):
    globals().update(contract_checks(__name__, _exercise, _declared))
