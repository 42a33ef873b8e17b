"""5.2 Arithmetic ops and matmul, each graded alone: forward and VJP against torch autograd
(broadcasting shapes from hypothesis), and the VJP against finite differences."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.checks import fingerprint
from grader.tests.phase5._helpers import (
    OpSpec,
    broadcast_arrays,
    declare_op_checks,
    op_outputs,
    seeds,
    uniform,
)

UNBROADCAST = ("The output has the broadcast shape, each input's gradient must have that "
               "input's shape: pass every gradient through unbroadcast(g, input.shape).")
rng = np.random.default_rng(5)
A23, B3, B21 = rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(2, 1))
POSITIVE = rng.uniform(0.5, 2.5, (2, 3))
C33 = rng.normal(size=(3, 3))
SQUARE = [({}, [C33, C33.T + 1.0])]


def _no_params(arrays):
    return arrays.map(lambda a: ({}, a))


def _exponents():
    """Pow(p) on positive bases: p may be fractional or negative there."""
    return st.tuples(st.sampled_from([2.0, 3.0, 0.5, -1.5, 1.0, 0.0]),
                     broadcast_arrays(1, 0.3, 3.0)).map(lambda t: ({"exponent": t[0]}, t[1]))


@st.composite
def _matmul_operands(draw):
    """a (..., n, k) @ b (..., k, m) with broadcasting batch dims; either may be a 1-D vector."""
    n, k, mm = draw(st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                   max_side=3)).input_shapes
    shape_a = (k,) if draw(st.booleans()) and draw(st.booleans()) else (*batch[0], n, k)
    shape_b = (k,) if draw(st.booleans()) and draw(st.booleans()) else (*batch[1], k, mm)
    rng = np.random.default_rng(draw(seeds()))
    return {}, [uniform(rng, shape_a, -2, 2), uniform(rng, shape_b, -2, 2)]


OPS = [
    OpSpec("Add", ("a", "b"), lambda a, b: a + b, _no_params(broadcast_arrays(2)),
           [({}, [A23, B3]), ({}, [A23, B21])], UNBROADCAST),
    OpSpec("Sub", ("a", "b"), lambda a, b: a - b, _no_params(broadcast_arrays(2)),
           [({}, [A23, B21]), ({}, [B3, A23])],
           "∂(a − b)/∂b = −1: b's gradient is −g, unbroadcast to b's shape."),
    OpSpec("Mul", ("a", "b"), lambda a, b: a * b, _no_params(broadcast_arrays(2)),
           [({}, [A23, B3]), ({}, [B21, A23])],
           "Each input's gradient is g times the *other* input, then unbroadcast."),
    OpSpec("Div", ("a", "b"), lambda a, b: a / b,
           _no_params(broadcast_arrays(2, away_from_zero=(0.0, 0.5))),
           [({}, [A23, POSITIVE[0]]), ({}, [B21, -POSITIVE])],
           "∂(a/b)/∂a = 1/b and ∂(a/b)/∂b = −a/b²."),
    OpSpec("Neg", ("x",), lambda x: -x, _no_params(broadcast_arrays(1)), [({}, [A23])],
           "∂(−x)/∂x = −1: return (−g,)."),
    OpSpec("Pow", ("x",), lambda x, exponent: x**exponent, _exponents(),
           [({"exponent": 3.0}, [POSITIVE]), ({"exponent": -1.5}, [POSITIVE])],
           "d(xᵖ)/dx = p·x^(p−1): the exponent drops by one."),
    OpSpec("PowTensor", ("a", "b"), lambda a, b: a**b,
           broadcast_arrays(2).map(lambda ab: ({}, [np.abs(ab[0]) + 0.3, ab[1]])),
           [({}, [POSITIVE, B3]), ({}, [POSITIVE[:, :1], A23])],
           "∂(aᵇ)/∂a = b·a^(b−1) and ∂(aᵇ)/∂b = aᵇ·ln a, each unbroadcast."),
    OpSpec("MatMul", ("a", "b"), lambda a, b: a @ b, _matmul_operands(),
           [({}, [A23, rng.normal(size=(3, 4))]), ({}, [rng.normal(size=(2, 1, 2, 3)), B3]),
            ({}, [B3, rng.normal(size=(2, 3, 2))])],
           "∂a = g @ bᵀ and ∂b = aᵀ @ g (ᵀ swaps the last two axes); sum over broadcast batch "
           "dims; a 1-D operand is a row (a) or a column (b) that matmul then drops.",
           examples=15),
]

for _spec in OPS:
    declare_op_checks(globals(), "ag_arithmetic", _spec)


@fingerprint("ag_arithmetic")
def arithmetic_outputs(m):
    outputs = {}
    for spec in OPS:
        outputs.update(op_outputs(m, spec))
    # square matrices: a backward that forgets a transpose still has the right shapes here
    outputs.update({f"square_{k}": v for k, v in op_outputs(m, OPS[-1], SQUARE).items()})
    return outputs
