"""Shared helpers of the phase-7 checks: data, torch references, remote parameter loading."""

from __future__ import annotations

import numpy as np
import torch

import grader.checks.reference  # noqa: F401 - sets the judge's torch to one thread
from grader.checks import CheckFailed
from grader.checks.oracle import as_array
from grader.session import StudentError, fetch, run_probe

F32_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}  # sums of up to a few hundred float32 products
MISSING = np.array([np.nan])  # a fingerprint output the submission could not produce


def normal(seed: int, shape: tuple[int, ...], dtype=np.float64, scale: float = 1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def tensor(x, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(x), requires_grad=requires_grad)


def tolerance(dtype) -> dict:
    return F32_TOLERANCE if np.dtype(dtype) == np.float32 else {}


def attempt(function, *args, **kwargs):
    """The value of a remote call for a fingerprint, or MISSING if the submission raised."""
    try:
        return function(*args, **kwargs)
    except StudentError:
        return MISSING


def load_params(model, arrays: list[np.ndarray]) -> None:
    """Write `arrays` into the model's params() in place, in order (grader/probes/phase7)."""
    shapes = run_probe(model, "phase7.load_params", model, [np.asarray(a) for a in arrays])
    expected = [np.shape(a) for a in arrays]
    if shapes != [list(s) for s in expected]:
        raise CheckFailed(
            f"params() should hold {len(expected)} arrays of shapes {expected}, in the "
            f"documented order; yours holds {len(shapes)} of shapes "
            f"{[tuple(s) for s in shapes]}."
        )


def fetched(value, what: str) -> np.ndarray:
    return as_array(fetch(value), what)


def unchanged(before: np.ndarray, after, what: str) -> None:
    """Fail if the worker's copy of an input was modified by the call (after = fetched copy)."""
    after = np.asarray(after)
    if after.shape != before.shape or not np.array_equal(after, before):
        raise CheckFailed(
            f"{what} was modified in place by your code; inputs must be left unchanged.",
            "Write results into new arrays (x = x + …, not x += …) unless you own the array.",
        )
