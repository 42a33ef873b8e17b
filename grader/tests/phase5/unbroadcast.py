"""5.1 unbroadcast alone: closed-form sums on fixed shapes, and on hypothesis's mutually
broadcastable shapes the gradient torch autograd gives for broadcasting, x ↦ broadcast_to(x, B)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.checks import check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.checks.properties import property_holds
from grader.checks.reference import vjp
from grader.tests.phase5._helpers import attempt, fail, seeds

HINT = ("Sum over the grad.ndim − len(shape) leading axes broadcasting added, then with "
        "keepdims=True over every axis where shape has a 1 and grad does not.")
G = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7 - 1
# (target shape, closed form of unbroadcast(G, shape)) — written out axis by axis
CLOSED_FORMS = [
    ((2, 3, 4), G),
    ((3, 4), G.sum(axis=0)),
    ((4,), G.sum(axis=0).sum(axis=0)),
    ((3, 1), G.sum(axis=0).sum(axis=1)[:, None]),
    ((1, 4), G.sum(axis=0).sum(axis=0)[None, :]),
    ((2, 1, 4), G.sum(axis=1)[:, None, :]),
    ((1, 1, 1), np.full((1, 1, 1), G.sum())),
    ((), np.asarray(G.sum())),
]


class Drawn:
    def __init__(self, grad: np.ndarray, shape: tuple[int, ...]):
        self.grad, self.shape = grad, shape

    def __repr__(self) -> str:
        return f"unbroadcast(grad of shape {self.grad.shape}, shape={self.shape})"


def _pairs():
    def build(drawn):
        shapes, seed = drawn
        grad = np.random.default_rng(seed).standard_normal(shapes.result_shape)
        return Drawn(grad, shapes.input_shapes[0])

    return st.tuples(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                       max_side=3), seeds()).map(build)


def _expected(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """∂/∂x of Σ grad ⊙ broadcast_to(x, grad.shape), by torch autograd."""
    return vjp(lambda x: torch.broadcast_to(x, grad.shape), [np.zeros(shape)], grad)[0]


@check("ag_unbroadcast", "oracle")
def unbroadcast_matches_closed_form_sums(m):
    """unbroadcast(g, shape) of a (2, 3, 4) gradient equals the sums written out by hand."""
    for shape, expected in CLOSED_FORMS:
        assert_close(m.unbroadcast(G, shape), expected,
                     f"unbroadcast(g of shape (2, 3, 4), {shape})", hint=HINT)


@check("ag_unbroadcast", "oracle")
def unbroadcast_is_the_gradient_of_broadcasting(m):
    """On random broadcastable shapes, unbroadcast equals torch's gradient of broadcasting."""
    def prop(drawn: Drawn):
        assert_close(m.unbroadcast(drawn.grad, drawn.shape), _expected(drawn.grad, drawn.shape),
                     repr(drawn), hint=HINT)

    property_holds(prop, _pairs(), examples=30)


@check("ag_unbroadcast", "invariant")
def unbroadcast_keeps_the_total_and_the_dtype(m):
    """unbroadcast preserves Σg (each copy's gradient is counted once) and keeps float32."""
    for shape, _ in CLOSED_FORMS:
        got = as_array(m.unbroadcast(G, shape), f"unbroadcast(g, {shape})")
        if got.shape != shape:
            fail(f"unbroadcast(g of shape (2, 3, 4), {shape}) has shape {got.shape}, expected "
                 f"{shape}: a gradient always has its input's shape.", HINT)
        assert_close(got.sum(), G.sum(), f"the total of unbroadcast(g, {shape})",
                     hint="Sum the copies; do not average them.")
    got = m.unbroadcast(G.astype(np.float32), (3, 1))
    assert_close(got, CLOSED_FORMS[3][1].astype(np.float32), "unbroadcast of a float32 gradient")


@fingerprint("ag_unbroadcast")
def unbroadcast_outputs(m):
    return {f"to_{'x'.join(map(str, shape)) or 'scalar'}":
            attempt(lambda s=shape: m.unbroadcast(G, s)) for shape, _ in CLOSED_FORMS}
