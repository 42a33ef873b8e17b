"""5.7 The Tensor methods a student calls, through the engine: the axis and keepdims of reductions
and of softmax, reshape and transpose in each of NumPy's spellings, `.T`, `.ndim`, `.numpy()`,
an array or a number on the left of `@` and `**`, and the errors backward documents. The random
graphs of engine.py build their nodes from the op classes' defaults and miss these arguments."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import check
from grader.checks.contracts import raises
from grader.checks.oracle import as_array, assert_close
from grader.session import fetch, operator_call
from grader.tests.phase5._helpers import fail, upstream

X = np.random.default_rng(57).normal(size=(2, 3, 4))
A = np.random.default_rng(58).normal(size=(2, 4))
PASS_ON = "A Tensor method passes every argument it was given on to its op: `{call}`."
SPELLINGS = (
    "As in NumPy: `x.reshape(2, 12)`, `x.reshape((2, 12))` and `x.reshape(24)` are "
    "one request; so are `x.transpose(1, 0, 2)` and `x.transpose((1, 0, 2))`, and "
    "`x.transpose()` reverses every axis."
)


def _method_and_grad(m, x: np.ndarray, call, label: str):
    """(value, ∂⟨y, g⟩/∂x) of `call(tensor)` on the student's Tensor, and the upstream g."""
    t = m.Tensor(x, requires_grad=True)
    y = call(t)
    value = as_array(fetch(y.data), label)
    g = upstream(value.shape, seed=value.size)
    y.backward(g)
    grad = fetch(t.grad)
    if grad is None:
        fail(f"after {label}.backward(g), x.grad is None.")
    return value, as_array(grad, f"x.grad after {label}.backward(g)"), g


def _compare(m, x: np.ndarray, label: str, student, reference, hint: str) -> None:
    value, grad, g = _method_and_grad(m, x, student, label)
    t = torch.tensor(x, requires_grad=True)
    expected = reference(t)
    if value.shape != tuple(expected.shape):
        fail(f"{label} has shape {value.shape}, expected {tuple(expected.shape)}.", hint)
    assert_close(value, expected.detach().numpy(), label, hint=hint)
    expected.backward(torch.tensor(g))
    assert_close(grad, t.grad.numpy(), f"x.grad after {label}.backward(g)", hint=hint)


REDUCTIONS = [  # (label, student's call, torch's)
    ("x.mean(axis=0)", lambda t: t.mean(axis=0), lambda t: t.mean(dim=0)),
    (
        "x.mean(axis=1, keepdims=True)",
        lambda t: t.mean(axis=1, keepdims=True),
        lambda t: t.mean(dim=1, keepdim=True),
    ),
    (
        "x.sum(axis=(0, 2), keepdims=True)",
        lambda t: t.sum(axis=(0, 2), keepdims=True),
        lambda t: t.sum(dim=(0, 2), keepdim=True),
    ),
    (
        "x.max(axis=2, keepdims=True)",
        lambda t: t.max(axis=2, keepdims=True),
        lambda t: t.amax(dim=2, keepdim=True),
    ),
    ("x.softmax(axis=0)", lambda t: t.softmax(axis=0), lambda t: t.softmax(dim=0)),
    ("x.log_softmax(axis=1)", lambda t: t.log_softmax(axis=1), lambda t: t.log_softmax(dim=1)),
]

SHAPES = [
    ("x.reshape(24)", lambda t: t.reshape(24), lambda t: t.reshape(24)),
    ("x.reshape((4, 6))", lambda t: t.reshape((4, 6)), lambda t: t.reshape(4, 6)),
    ("x.reshape(2, -1)", lambda t: t.reshape(2, -1), lambda t: t.reshape(2, -1)),
    ("x.transpose(1, 0, 2)", lambda t: t.transpose(1, 0, 2), lambda t: t.permute(1, 0, 2)),
    ("x.transpose((2, 0, 1))", lambda t: t.transpose((2, 0, 1)), lambda t: t.permute(2, 0, 1)),
    ("x.transpose()", lambda t: t.transpose(), lambda t: t.permute(2, 1, 0)),
    ("x.T", lambda t: t.T, lambda t: t.permute(2, 1, 0)),
]


@check("ag_engine", "oracle")
def tensor_reductions_pass_axis_and_keepdims_on(m):
    """x.mean / sum / max with axis and keepdims, x.softmax / log_softmax with axis: values and
    gradients against torch on a (2, 3, 4) tensor."""
    for label, student, reference in REDUCTIONS:
        _compare(m, X, label, student, reference, PASS_ON.format(call=label))


@check("ag_engine", "oracle")
def tensor_reshape_and_transpose_accept_numpys_spellings(m):
    """reshape(24), reshape((4, 6)), reshape(2, -1), transpose(1, 0, 2), transpose((2, 0, 1)),
    transpose() and .T: values and gradients against torch; `.ndim` is the number of axes."""
    for label, student, reference in SHAPES:
        _compare(m, X, label, student, reference, SPELLINGS)
    ndim = fetch(m.Tensor(X).ndim)
    if not isinstance(ndim, (int, np.integer)) or ndim != 3:
        fail(
            f"Tensor(x).ndim is {ndim!r} for a (2, 3, 4) array, expected the int 3.",
            "ndim is the data's number of axes: self.data.ndim.",
        )


@check("ag_engine", "oracle")
def arrays_and_numbers_on_the_left_of_an_operator(m):
    """`array @ x` and `2.0 ** x` (the reflected __rmatmul__ and __rpow__): values and gradients
    against torch, and a float32 x keeps float32 through them and through `.numpy()`."""
    x = X[0].T  # (4, 3)
    hint = (
        "`a @ x` with a NumPy array a calls x.__rmatmul__(a) (Tensor sets __array_ufunc__ = "
        "None): lift a to a Tensor and keep the order, a on the left."
    )
    _compare(
        m,
        x,
        "a @ x",
        lambda t: operator_call(t, "matmul", A, t),
        lambda t: torch.tensor(A) @ t,
        hint,
    )
    _compare(
        m,
        x,
        "2.0 ** x",
        lambda t: 2.0**t,
        lambda t: 2.0**t,
        "`2.0 ** x` calls x.__rpow__(2.0): the base is the constant, x the exponent.",
    )
    for dtype in (np.float32, np.float64):
        t = m.Tensor(x.astype(dtype), requires_grad=True)
        for label, y in (
            ("a @ x", operator_call(t, "matmul", A.astype(dtype), t)),
            ("2.0 ** x", 2.0**t),
            ("x.T", t.T),
            ("x", t),
        ):
            got = as_array(y.numpy(), f"({label}).numpy()")
            if got.dtype != dtype:
                fail(
                    f"({label}).numpy() is {got.dtype} for a {np.dtype(dtype)} x: an op's "
                    f"output and numpy() keep the tensor's dtype.",
                    "Lift constants with the tensor's dtype, and return self.data itself from "
                    "numpy().",
                )


@check("ag_engine", "invariant")
def backward_raises_the_documented_errors(m):
    """backward() without `grad` on a tensor of several elements raises RuntimeError, and so
    does backward() on a tensor that does not require grad; a `grad` of another shape raises
    ValueError, while a nested list of the right shape is accepted."""
    G = upstream((2, 3))
    x = m.Tensor(X[0].T[:2], requires_grad=True)  # (2, 3)
    (x * 2.0).backward(G.tolist())
    grad = fetch(x.grad)
    if grad is None:
        fail("after (x * 2.0).backward(g) with g a nested list, x.grad is None.")
    assert_close(
        as_array(grad, "x.grad"),
        2 * G,
        "x.grad after (x * 2.0).backward(g.tolist())",
        hint="`grad` is array-like: np.asarray(grad, dtype=self.dtype) first.",
    )
    hint = (
        "As torch: a loss of several elements needs its upstream gradient, a tensor outside "
        "the graph has none to give, and `grad` must have the tensor's own shape."
    )
    raises(
        lambda: (x * 2.0).backward(),
        "RuntimeError",
        "(x * 2.0).backward() on a (2, 3) tensor, without grad",
        hint,
    )
    raises(
        lambda: m.Tensor(np.array(3.0)).backward(),
        "RuntimeError",
        "Tensor(3.0).backward() (requires_grad False)",
        hint,
    )
    for shape in ((3,), (1, 3)):  # shapes that broadcast: NumPy would not object to them
        raises(
            lambda s=shape: (x * 2.0).backward(np.ones(s)),
            "ValueError",
            f"(x * 2.0).backward(g) with g of shape {shape} for a (2, 3) tensor",
            hint,
        )
