"""5.4 Reshape, Transpose and GetItem graded alone against torch (reshape, permute, indexing)
and finite differences. Indices of every kind cross to the worker as they are: ints, slices,
Ellipsis, None, lists, integer and boolean arrays, and tuples of them."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from grader.checks import check, fingerprint
from grader.checks.oracle import assert_close
from grader.tests.phase5._helpers import (
    OpSpec,
    attempt,
    declare_op_checks,
    one_array,
    op_outputs,
    run_op,
    torch_index,
)

X = np.random.default_rng(4).normal(size=(2, 3, 4))
V = np.arange(5.0)
REPEATS = np.array([0, 0, 3, 0])  # V[REPEATS] picks V[0] three times: its gradient is 3g


def _reshape_targets(x: np.ndarray):
    shape = x.shape
    return st.sampled_from([shape[::-1], (-1,), (1, *shape), (x.size, 1), (*shape[:-1], -1)]).map(
        lambda s: ({"shape": tuple(s)}, [x]))


def _permutations(x: np.ndarray):
    n = x.ndim
    signed = st.permutations(list(range(n))).flatmap(
        lambda p: st.lists(st.booleans(), min_size=n, max_size=n).map(
            lambda neg: tuple(a - n if flip else a for a, flip in zip(p, neg, strict=True))))
    return st.one_of(st.none(), signed).map(lambda axes: ({"axes": axes}, [x]))


def _indices(x: np.ndarray):
    """Every index kind NumPy and torch agree on, for an array of x's shape."""
    n0 = x.shape[0]
    picks = st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=5)
    kinds = [
        st.integers(-n0, n0 - 1),
        st.builds(slice, st.none() | st.integers(-n0, n0), st.none() | st.integers(-n0, n0),
                  st.sampled_from([None, 1, 2])),
        picks.map(np.array),  # repeats allowed: their gradients must add up
        picks,  # a Python list is an integer-array index too
        st.lists(st.booleans(), min_size=n0, max_size=n0).map(np.array),
        st.integers(-x.shape[-1], x.shape[-1] - 1).map(lambda i: (Ellipsis, i)),
        st.just((slice(None), None)),
    ]
    if x.ndim >= 2:
        n1 = x.shape[1]
        kinds.append(st.lists(st.integers(0, n1 - 1), min_size=1, max_size=4).map(
            lambda p: (slice(None), np.array(p))))
        kinds.append(st.tuples(st.integers(0, n0 - 1), st.builds(slice, st.just(1))))
    return st.one_of(kinds).map(lambda index: ({"index": index}, [x]))


def _torch_getitem(x, index):
    return x[torch_index(index)]


OPS = [
    OpSpec("Reshape", ("x",), lambda x, shape: x.reshape(shape),
           one_array().flatmap(_reshape_targets),
           [({"shape": (4, 3, 2)}, [X]), ({"shape": (6, -1)}, [X])],
           "Reshape moves no element: ∂x = g.reshape(x.shape), the input's shape (save it)."),
    OpSpec("Transpose", ("x",), lambda x, axes: x.permute(
        tuple(reversed(range(x.ndim))) if axes is None else axes),
           one_array().flatmap(_permutations),
           [({"axes": (1, 2, 0)}, [X]), ({"axes": (-1, 0, 1)}, [X]), ({"axes": None}, [X])],
           "Output axis i came from input axis axes[i]: transpose g back with the inverse "
           "permutation np.argsort(axes) (map negative axes first with np.mod)."),
    OpSpec("GetItem", ("x",), _torch_getitem, one_array().flatmap(_indices),
           [({"index": (slice(None), np.array([2, 0, 2]))}, [X]),
            ({"index": (Ellipsis, slice(1, None, 2))}, [X]), ({"index": REPEATS}, [V])],
           "Scatter g into zeros of x's shape with np.add.at(gx, index, g): a plain "
           "`gx[index] = g` (or +=) keeps only one of several picks of the same element.",
           examples=30),
]

for _spec in OPS:
    declare_op_checks(globals(), "ag_shape_ops", _spec)


@check("ag_shape_ops", "invariant")
def repeated_indices_accumulate_their_gradients(m):
    """An element picked k times by an integer-array index receives the sum of its k gradients."""
    _, (gx,) = run_op(m, "GetItem", {"index": REPEATS}, [V], np.ones(4))
    assert_close(gx, np.array([3.0, 0.0, 0.0, 1.0, 0.0]),
                 "GetItem(index=np.array([0, 0, 3, 0])).backward(ones) on x of shape (5,)",
                 hint="x[[0, 0, 3, 0]] uses x[0] three times: use np.add.at, which adds once "
                      "per pick; `gx[index] += g` writes each repeated place only once.")
    index = (np.array([1, 1, 0]), np.array([2, 2, 2]))
    _, (gx,) = run_op(m, "GetItem", {"index": index}, [X[0]], np.array([1.0, 2.0, 4.0]))
    expected = np.zeros((3, 4))
    expected[1, 2], expected[0, 2] = 3.0, 4.0
    assert_close(gx, expected, "GetItem(index=([1, 1, 0], [2, 2, 2])).backward([1, 2, 4])")


@fingerprint("ag_shape_ops")
def shape_op_outputs(m):
    outputs = {}
    for spec in OPS:
        outputs.update(op_outputs(m, spec))
    outputs["repeats"] = attempt(lambda: run_op(m, "GetItem", {"index": REPEATS}, [V],
                                                np.ones(4))[1][0])
    return outputs
