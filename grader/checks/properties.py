"""Property-based checks with hypothesis: deterministic, shrinking, reported in the student's terms.

    property_holds(lambda x: ..., arrays(shapes(max_dims=2)), examples=25)

runs the body on drawn inputs; the first failure is shrunk to the smallest failing input, which
the report prints. Runs are derandomised so grading a file twice gives the same result.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.checks import CheckFailed
from grader.checks.oracle import summarize
from grader.session import StudentError

SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
)


def describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}, dtype {value.dtype}: {summarize(value, 8)}"
    return repr(value)[:200]


def property_holds(body: Callable[..., None], *strategies, examples: int = 25) -> None:
    """Run `body(*drawn)` for drawn inputs; re-raise its failure with the smallest input named."""

    def annotated(args):
        try:
            body(*args)
        except (CheckFailed, StudentError) as failure:
            failure.example = "; ".join(describe(a) for a in args)
            raise

    runner = settings(max_examples=examples, **SETTINGS)(given(st.tuples(*strategies))(annotated))
    try:
        runner()
    except BaseExceptionGroup as group:  # several distinct failures: report the first
        raise group.exceptions[0] from None


def shapes(min_dims: int = 1, max_dims: int = 2, min_side: int = 1, max_side: int = 5):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def floats(low: float = -10.0, high: float = 10.0, avoid_zero: float = 0.0):
    """Finite float64 values in [low, high], optionally keeping |x| ≥ avoid_zero (kinks at 0)."""
    values = st.floats(low, high, allow_nan=False, allow_infinity=False)
    if avoid_zero:
        values = values.filter(lambda x: abs(x) >= avoid_zero)
    return values


def arrays(
    shape=None, low: float = -10.0, high: float = 10.0, avoid_zero: float = 0.0, dtype=np.float64
):
    return hnp.arrays(
        dtype, shape if shape is not None else shapes(), elements=floats(low, high, avoid_zero)
    )
