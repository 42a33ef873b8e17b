"""Extreme-input helpers: finite outputs and no overflow warnings from the submission.

Every call names its own hint: what keeps *this* function finite (subtracting the maximum
helps a softmax, not a BPTT or an erf), so the hint a student reads is the failing assertion's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks import CheckFailed
from grader.checks.oracle import as_array, plain

EXTREME = 1e4


def assert_finite(value: Any, what: str, hint: str) -> np.ndarray:
    """`value` as an array, or CheckFailed naming its first nan/inf element."""
    array = as_array(value, what)
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CheckFailed(
            f"{what} contains {int(bad.sum())} nan/inf value(s), first at index "
            f"{index} ({plain(array[index])}).",
            hint,
        )
    return array


def assert_quiet(module_ref, what: str, hint: str) -> None:
    """Fail if the last call into the worker raised NumPy warnings (overflow, divide by zero)."""
    warned = module_ref._session.warnings
    if warned:
        raise CheckFailed(f"{what} raised a warning: {warned[0]}.", hint)
