"""5.6 Softmax and LogSoftmax graded alone on every axis against torch and finite differences,
and at logits of ±1e4, where a form without the max shift overflows."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import check, fingerprint
from grader.checks.oracle import assert_close
from grader.checks.reference import value, vjp
from grader.checks.stability import EXTREME, assert_finite
from grader.tests.phase5._helpers import (
    OpSpec,
    attempt,
    declare_op_checks,
    fail,
    one_array,
    op_outputs,
    run_op,
    upstream,
)

Z = np.random.default_rng(8).normal(size=(3, 4)) * 2
EXTREME_Z = np.array([[EXTREME, 0.0, -EXTREME], [-EXTREME, -EXTREME, -EXTREME],
                      [EXTREME, EXTREME, 0.0], [1.0, 2.0, 3.0]])
SHIFT = "Subtract the max along `axis` (keepdims=True) before exp: nothing changes but overflow."


def _with_axis():
    return one_array(-6, 6).flatmap(lambda x: st.integers(-x.ndim, x.ndim - 1).map(
        lambda axis: ({"axis": axis}, [x])))


OPS = [
    OpSpec("Softmax", ("x",), lambda x, axis=-1: torch.softmax(x, dim=axis), _with_axis(),
           [({"axis": -1}, [Z]), ({"axis": 0}, [Z])],
           "The Jacobian is diag(y) − y yᵀ, so ∂x = y ⊙ (g − Σⱼ gⱼyⱼ), the sum along `axis` "
           "with keepdims=True.", examples=15, forward_hint=SHIFT),
    OpSpec("LogSoftmax", ("x",), lambda x, axis=-1: torch.log_softmax(x, dim=axis), _with_axis(),
           [({"axis": -1}, [Z]), ({"axis": 0}, [Z])],
           "∂x = g − softmax(x) · Σⱼ gⱼ along `axis`; softmax(x) = exp(y). Do not assume Σg = 1.",
           examples=15, forward_hint=SHIFT),
]

for _spec in OPS:
    declare_op_checks(globals(), "ag_softmax", _spec)


@check("ag_softmax", "stability")
def softmax_and_log_softmax_are_stable_at_1e4(m):
    """Softmax and LogSoftmax of logits ±1e4 and their VJPs are finite, quiet and exact."""
    g = upstream(EXTREME_Z.shape, 3)
    for spec in OPS:
        warned: list[str] = []
        y, (gx,) = run_op(m, spec.name, {"axis": -1}, [EXTREME_Z], g, warnings=warned)
        what = f"{spec.name}(axis=-1) of logits ±1e4"
        hint = SHIFT + (" Never take log(softmax(x)): it is −inf where exp underflowed; use "
                        "(x − m) − log Σ exp(x − m)." if spec.name == "LogSoftmax" else "")
        assert_finite(y, what, hint)
        assert_finite(gx, f"the gradient of {what}", hint)
        if warned:
            fail(f"{what} raised a warning: {warned[0]!r}.", hint)
        reference = lambda x, s=spec: s.torch(x, axis=-1)  # noqa: E731
        assert_close(y, value(reference, EXTREME_Z), what, hint=hint)
        assert_close(gx, vjp(reference, [EXTREME_Z], g)[0], f"the gradient of {what}",
                     hint=spec.hint)


@fingerprint("ag_softmax")
def softmax_outputs(m):
    outputs = {}
    for spec in OPS:
        outputs.update(op_outputs(m, spec))
        outputs.update({f"extreme_{k}": v for k, v in
                        op_outputs(m, spec, [({"axis": -1}, [EXTREME_Z])]).items()})
    outputs["sum_of_softmax"] = attempt(lambda: np.sum(run_op(m, "Softmax", {"axis": 1}, [Z])[0],
                                                       axis=1))
    return outputs
