"""FULL=1 tier of phase 5: backward through a graph of 2·10⁵ operations, in linear time."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check
from grader.checks.oracle import assert_close
from grader.session import WorkerTimeout, run_probe

PAIRS, SCALE, SHIFT = 100_000, 0.99999, 1e-5


@check("ag_engine", "stability", full=True, seconds=90)
def backward_through_200_000_ops_runs_in_linear_time(m):
    """backward() through a chain of 2·10⁵ operations finishes and is exact.

    y = x, then n = 10⁵ times y = s·y + c (s = 0.99999, c = 10⁻⁵); closed forms:
    y = x·sⁿ + c·(1 − sⁿ)/(1 − s) and ∂Σy/∂x = sⁿ."""
    x = np.array([0.5, -1.5, 3.0])
    try:
        y, grad = run_probe(m, "phase5.deep_chain", m, x, PAIRS, SCALE, SHIFT)
    except WorkerTimeout as timeout:
        raise CheckFailed(
            f"backward through 2·10⁵ operations {timeout}.",
            "A topological sort that checks `node in visited` on a list is quadratic: keep "
            "`visited` in a set (of ids), and the stack explicit.",
        ) from None
    factor = SCALE**PAIRS
    assert_close(y, x * factor + SHIFT * (1 - factor) / (1 - SCALE), "y after the chain", rtol=1e-8)
    assert_close(
        grad,
        np.full_like(x, factor),
        "∂Σy/∂x through 2·10⁵ operations",
        rtol=1e-8,
        hint="Accumulate each node's gradient once all its consumers have run.",
    )
