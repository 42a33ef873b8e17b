"""5.3 Sum, Mean and Max over axes (None, one axis of either sign, tuples; keepdims or not),
graded alone against torch.sum / torch.mean / torch.amax and finite differences; ties of Max
share the gradient evenly, as torch.amax does."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import check, fingerprint
from grader.checks.oracle import assert_close
from grader.tests.phase5._helpers import (
    OpSpec,
    attempt,
    axis_choices,
    declare_op_checks,
    fail,
    one_array,
    op_outputs,
    run_op,
    torch_axis,
)

X = np.random.default_rng(3).normal(size=(2, 3, 4))
# k tied maxima per row: each receives g / k (torch.amax's rule); rows with 1, 2 and 3 ties
TIES = np.array([[1.0, 5.0, 2.0], [4.0, 4.0, 0.0], [7.0, 7.0, 7.0]])
TIES_GRAD = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
AXES_HINT = ("Without keepdims the reduced axes are missing from g: put them back "
             "(np.expand_dims(g, axis)) before broadcasting g to x's shape.")


def _reduction_cases(distinct: bool = False):
    """(params, [x]) for random shapes and axes; distinct=True avoids ties in x."""
    def build(drawn):
        x, (axis, keepdims) = drawn
        return {"axis": axis, "keepdims": keepdims}, [x]

    arrays = one_array()
    if not distinct:  # integer-valued entries: ties happen, and must share the gradient
        arrays = st.tuples(arrays, st.booleans()).map(lambda t: np.round(t[0]) if t[1] else t[0])
    return arrays.flatmap(lambda x: st.tuples(st.just(x), st.tuples(axis_choices(x.ndim),
                                                                    st.booleans()))).map(build)


def _torch_reduce(name: str):
    def reduce(x, axis=None, keepdims=False):
        dim = torch_axis(axis, x.ndim)
        if name == "amax":
            return torch.amax(x, dim=dim, keepdim=keepdims)
        return getattr(torch, name)(x, dim=dim, keepdim=keepdims)

    return reduce


FIXED = [({"axis": 1, "keepdims": False}, [X]), ({"axis": (0, -1), "keepdims": True}, [X]),
         ({"axis": None, "keepdims": False}, [X]), ({"axis": -1, "keepdims": False}, [X])]
OPS = [
    OpSpec("Sum", ("x",), _torch_reduce("sum"), _reduction_cases(), FIXED,
           "Every element enters its sum once: ∂x = g copied over the summed axes. " + AXES_HINT,
           examples=15),
    OpSpec("Mean", ("x",), _torch_reduce("mean"), _reduction_cases(), FIXED,
           "∂x = g / n copied over the averaged axes, n = the number of elements averaged. "
           + AXES_HINT, examples=15),
    OpSpec("Max", ("x",), _torch_reduce("amax"), _reduction_cases(), FIXED,
           "g goes only to the elements equal to the maximum; k tied maxima get g / k each. "
           + AXES_HINT, examples=15),
]

for _spec in OPS:
    declare_op_checks(globals(), "ag_reductions", _spec)


@check("ag_reductions", "invariant")
def max_splits_the_gradient_evenly_among_ties(m):
    """Max(axis=1) gives each of k tied maxima g / k, so the row's gradient still sums to g."""
    _, (gx,) = run_op(m, "Max", {"axis": 1}, [TIES], np.ones(3))
    assert_close(gx, TIES_GRAD, "Max(axis=1).backward(ones) on rows with 1, 2 and 3 ties",
                 hint="Divide the is-maximum mask by its count along the axis (torch.amax's "
                      "rule); routing the whole g to every tie counts it k times.")
    _, (gx,) = run_op(m, "Max", {}, [TIES], np.asarray(2.0))
    assert_close(gx, np.where(TIES == 7.0, 2 / 3, 0.0), "Max().backward(2.0) with 3 tied maxima")


@check("ag_reductions", "invariant")
def keepdims_keeps_reduced_axes_as_ones(m):
    """Sum, Mean and Max with keepdims=True keep each reduced axis with size 1."""
    for name in ("Sum", "Mean", "Max"):
        for axis, shape in ((1, (2, 1, 4)), ((0, 2), (1, 3, 1)), (None, (1, 1, 1))):
            y, _ = run_op(m, name, {"axis": axis, "keepdims": True}, [X])
            if np.shape(y) != shape:
                fail(f"{name}(axis={axis}, keepdims=True) of a (2, 3, 4) array has shape "
                     f"{np.shape(y)}, expected {shape}.", "Pass keepdims on to NumPy.")


@check("ag_reductions", "invariant")
def reductions_keep_the_other_axes_of_size_one(m):
    """Reducing axis 2 of a (3, 1, 4) array gives (3, 1): an axis of size 1 that is not reduced
    stays, and the gradient comes back in x's shape."""
    x = np.random.default_rng(4).normal(size=(3, 1, 4))
    for name in ("Sum", "Mean", "Max"):
        y, (gx,) = run_op(m, name, {"axis": 2}, [x], np.ones((3, 1)))
        if np.shape(y) != (3, 1) or np.shape(gx) != x.shape:
            fail(f"{name}(axis=2) of a (3, 1, 4) array gives shape {np.shape(y)} and a gradient "
                 f"of shape {np.shape(gx)}; expected (3, 1) and (3, 1, 4).",
                 "Squeeze only the reduced axes: np.squeeze(y, axis=self.axis) — np.squeeze(y) "
                 "drops every axis of size 1.")


@fingerprint("ag_reductions")
def reduction_outputs(m):
    outputs = {}
    for spec in OPS:
        outputs.update(op_outputs(m, spec))
    outputs["max_ties"] = attempt(lambda: run_op(m, "Max", {"axis": 1}, [TIES], np.ones(3))[1][0])
    return outputs
