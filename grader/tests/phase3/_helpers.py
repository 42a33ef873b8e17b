"""What the phase-3 checks share: trajectory comparison and fault-tolerant fingerprint runs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from grader.checks import CheckFailed
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, WorkerFault

# float64 trajectories of the same algorithm agree to ~1e-12 even after hundreds of steps (a
# different but exact summation order is all that separates them); 1e-10 leaves room for that.
TRAJECTORY = {"rtol": 1e-10, "atol": 1e-10}


def assert_trajectory(got, expected: np.ndarray, what: str, *, rtol: float = TRAJECTORY["rtol"],
                      atol: float = TRAJECTORY["atol"], hint: str | None = None,
                      step_name: str = "step") -> None:
    """Compare two (steps, …) sequences; a failure names the first step where they part."""
    got = as_array(got, what)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        raise CheckFailed(f"{what} has shape {got.shape}, expected {expected.shape}.", hint)
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if not bad.any():
        return
    first = int(np.argwhere(bad)[0][0])
    assert_close(got[first], expected[first], f"{what} at {step_name} {first}", rtol=rtol,
                 atol=atol, hint=hint)
    raise CheckFailed(f"{what} differs from the reference from {step_name} {first} on.", hint)


def attempt(run: Callable[[], object]) -> np.ndarray | object:
    """run(), or NaN when the submission fails there: fingerprints must always produce outputs,
    and a mutant that crashes at the same place as a student is the same mistake."""
    try:
        return run()
    except (StudentError, WorkerFault, CheckFailed):
        return np.array(np.nan)


def number(value) -> np.ndarray:
    """A returned scalar (0-d tensor, float) as an array, NaN when it is not numeric."""
    try:
        return np.asarray(as_array(value, "value"), dtype=np.float64)
    except CheckFailed:
        return np.array(np.nan)
