"""0.3 Stable softmax and log-softmax."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import assert_close
from grader.checks.properties import arrays, property_holds, shapes
from grader.checks.reference import value
from grader.checks.stability import EXTREME, assert_finite, assert_quiet

AXIS_HINT = "Reduce along `axis` (max and sum both) with keepdims=True so the result broadcasts."
LOGITS = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 0.5, -3.0], [2.0, 2.0, 2.0, 2.0]])
EXTREME_LOGITS = np.array(
    [[EXTREME, 0.0, -EXTREME], [-EXTREME, -EXTREME, -EXTREME], [EXTREME, EXTREME, 0.0]]
)


def _with_axis():
    return shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
        lambda shape: st.tuples(arrays(st.just(shape)), st.integers(-len(shape), len(shape) - 1))
    )


@check("softmax", "oracle")
def softmax_matches_torch_on_every_axis(m):
    """softmax(x, axis) equals torch.softmax for random shapes and every axis."""

    def prop(drawn):
        x, axis = drawn
        assert_close(
            m.softmax(x, axis=axis),
            value(torch.softmax, x, dim=axis),
            f"softmax(x, axis={axis})",
            hint=AXIS_HINT,
        )

    prop((LOGITS, 0))
    property_holds(prop, _with_axis(), examples=15)


@check("softmax", "oracle")
def log_softmax_matches_torch_on_every_axis(m):
    """log_softmax(x, axis) equals torch.log_softmax for random shapes and every axis."""

    def prop(drawn):
        x, axis = drawn
        assert_close(
            m.log_softmax(x, axis=axis),
            value(torch.log_softmax, x, dim=axis),
            f"log_softmax(x, axis={axis})",
            hint=AXIS_HINT,
        )

    prop((LOGITS, 0))
    property_holds(prop, _with_axis(), examples=15)


@check("softmax", "invariant")
def softmax_rows_sum_to_one_and_ignore_shifts(m):
    """softmax rows are in [0, 1], sum to 1, and do not change when a constant is added."""

    def prop(drawn):
        x, shift = drawn
        p = np.asarray(m.softmax(x))
        if p.shape != x.shape or np.any(p < 0) or np.any(p > 1):
            raise CheckFailed("softmax(x) must have x's shape with every entry in [0, 1].")
        assert_close(p.sum(-1), np.ones(x.shape[:-1]), "softmax(x).sum(-1)")
        assert_close(
            m.softmax(x + shift),
            p,
            f"softmax(x + {shift}) vs softmax(x)",
            rtol=1e-9,
            atol=1e-12,
            hint="softmax is shift-invariant; subtract the max before exp.",
        )

    property_holds(
        prop,
        st.tuples(arrays(shapes(2, 2, 1, 5)), st.sampled_from([-50.0, 7.0, 300.0])),
        examples=15,
    )


@check("softmax", "stability")
def softmax_family_is_stable_at_1e4(m):
    """softmax and log_softmax of logits ±1e4 are finite, warning-free and exact."""
    hint = "Subtract each row's maximum before exp: exp(1e4) overflows, exp(x − max) ≤ 1 never."
    p = assert_finite(m.softmax(EXTREME_LOGITS), "softmax of logits ±1e4", hint)
    assert_quiet(m, "softmax of logits ±1e4", hint)
    assert_close(p, value(torch.softmax, EXTREME_LOGITS, dim=-1), "softmax of logits ±1e4")
    logp = assert_finite(
        m.log_softmax(EXTREME_LOGITS),
        "log_softmax of logits ±1e4",
        "log(softmax(x)) is −inf where a probability underflows: compute "
        "(x − max) − log Σ exp(x − max) instead.",
    )
    assert_quiet(
        m,
        "log_softmax of logits ±1e4",
        "(x − max) − log Σ exp(x − max): every exp sees a non-positive argument.",
    )
    assert_close(
        logp, value(torch.log_softmax, EXTREME_LOGITS, dim=-1), "log_softmax of logits ±1e4"
    )


@fingerprint("softmax")
def softmax_outputs(m):
    return {
        "softmax_rows": m.softmax(LOGITS),
        "softmax_axis0": m.softmax(LOGITS, axis=0),
        "log_softmax_rows": m.log_softmax(LOGITS),
        "log_softmax_axis0": m.log_softmax(LOGITS, axis=0),
        "softmax_extreme": m.softmax(EXTREME_LOGITS),
        "log_softmax_extreme": m.log_softmax(EXTREME_LOGITS),
    }
