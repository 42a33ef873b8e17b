"""Extreme-input helpers: finite outputs and no overflow warnings from the submission."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks import CheckFailed
from grader.checks.oracle import as_array

EXTREME = 1e4


def assert_finite(value: Any, what: str, hint: str | None = None) -> np.ndarray:
    array = as_array(value, what)
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CheckFailed(
            f"{what} contains {int(bad.sum())} nan/inf value(s), first at index "
            f"{index} ({array[index]!r}).",
            hint or "Subtract the maximum before exp, or use a two-branch form.",
        )
    return array


def assert_quiet(module_ref, what: str, hint: str | None = None) -> None:
    """Fail if the last call into the worker raised NumPy warnings (overflow, divide by zero)."""
    warned = module_ref._session.warnings
    if warned:
        raise CheckFailed(
            f"{what} raised a warning: {warned[0]!r}.",
            hint or "An intermediate overflowed even if the result looks right.",
        )
