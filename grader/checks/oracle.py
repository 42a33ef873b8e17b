"""Compare a student's value with a trusted one and say precisely how they differ."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks import CheckFailed

F64 = {"rtol": 1e-9, "atol": 1e-12}
F32 = {"rtol": 1e-5, "atol": 1e-6}


def as_array(value: Any, what: str) -> np.ndarray:
    """The student's value as a numeric array, or CheckFailed saying what it was instead."""
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    if isinstance(value, (int, float, bool, np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.kind in "biufc":
            return array
    raise CheckFailed(f"{what} should be a numeric array, but your code returned {_kind(value)}.")


def _kind(value: Any) -> str:
    if value is None:
        return "None (a missing `return`?)"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    return f"a {type(value).__name__}"


def _torch():
    import sys

    return sys.modules.get("torch")


def plain(value: Any) -> str:
    """A value as a student would write it: 0.5, 3, True, [1.0, 2.0, …] (never np.float64(…))."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        text = f"{value:.8g}"
        return text if any(c in text for c in ".ein") else f"{text}.0"
    if isinstance(value, complex):
        return f"{value:.6g}"
    if isinstance(value, np.ndarray):
        return str(value.item()) if value.ndim == 0 else summarize(value)
    return repr(value)[:200]


def _at(index: tuple, inputs: dict | None, shape: tuple) -> str:
    """' (x[5] = 0.0)': the input elements behind a failing output element, when they have the
    output's shape (elementwise functions)."""
    shown = [
        f"{name}{list(index)} = {plain(np.asarray(x)[index])}"
        for name, x in (inputs or {}).items()
        if np.shape(x) == shape
    ]
    return f" ({', '.join(shown)})" if shown else ""


def summarize(array: np.ndarray, limit: int = 6) -> str:
    flat = np.asarray(array).ravel()
    text = np.array2string(flat[:limit], precision=6, separator=", ", floatmode="maxprec")
    return text[:-1] + ", …]" if flat.size > limit else text


def assert_close(
    got: Any,
    expected: Any,
    what: str,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    hint: str | None = None,
    check_dtype: bool = True,
    inputs: dict | None = None,
) -> None:
    """Fail unless `got` matches `expected` in type, shape, dtype and value (NaN never passes).

    The message gives the shapes, the max absolute and relative errors, the index of the worst
    element, and a few values of each side; `inputs` ({name: array}) adds the input elements at
    that index for those of the output's shape ("at x[5] = 0.0").
    """
    expected = np.asarray(expected)
    got = as_array(got, what)
    default = (
        (F32 if expected.dtype == np.float32 else F64)
        if expected.dtype.kind == "f"
        else {"rtol": 0.0, "atol": 0.0}
    )
    rtol = default["rtol"] if rtol is None else rtol
    atol = default["atol"] if atol is None else atol
    if got.shape != expected.shape:
        raise CheckFailed(
            f"{what} has shape {got.shape}, expected {expected.shape}.",
            hint or "Check which axis you reduce over and whether you kept dims.",
        )
    if check_dtype and expected.dtype.kind == "f" and got.dtype != expected.dtype:
        raise CheckFailed(
            f"{what} has dtype {got.dtype}, expected {expected.dtype}: keep the "
            f"input's precision (do not cast to another float type).",
            hint,
        )
    if got.dtype.kind not in "fc" and expected.dtype.kind not in "fc":
        if not np.array_equal(got, expected):
            bad = np.argwhere(got != expected)
            where = tuple(int(i) for i in bad[0]) if got.ndim else ()
            raise CheckFailed(
                f"{what} differs at {len(bad)} of {got.size} positions; first at "
                f"index {where}{_at(where, inputs, got.shape)}: got {plain(got[where])}, "
                f"expected {plain(expected[where])}.",
                hint,
            )
        return
    wide = np.complex128 if "c" in (got.dtype.kind, expected.dtype.kind) else np.float64
    got64, exp64 = got.astype(wide), expected.astype(wide)
    finite_expected = np.isfinite(exp64)
    bad_nonfinite = ~np.isfinite(got64) & finite_expected
    if bad_nonfinite.any():
        index = tuple(int(i) for i in np.argwhere(bad_nonfinite)[0])
        raise CheckFailed(
            f"{what} contains {int(bad_nonfinite.sum())} non-finite value(s) "
            f"(nan/inf) where the answer is finite, first at index "
            f"{index}{_at(index, inputs, got.shape)}: got {plain(got64[index])}, expected "
            f"{plain(exp64[index])}.",
            hint or "Find the step that overflows or divides by zero for this input.",
        )
    mismatched_special = ~finite_expected & ~(
        (got64 == exp64) | (np.isnan(got64) & np.isnan(exp64))
    )
    with np.errstate(invalid="ignore"):  # inf − inf where the answer is infinite: not used
        error = np.where(finite_expected, np.abs(got64 - exp64), 0.0)
    limit = atol + rtol * np.abs(np.where(finite_expected, exp64, 0.0))
    failing = (error > limit) | mismatched_special
    if failing.any():
        index = np.unravel_index(np.argmax(np.where(failing, error - limit, -np.inf)), got.shape)
        index = tuple(int(i) for i in index)
        nonzero = failing & (np.abs(exp64) > 0)
        relative = (
            f"max rel error {np.max(error[nonzero] / np.abs(exp64[nonzero])):.3g}"
            if nonzero.any()
            else "expected 0 there"
        )
        raise CheckFailed(
            f"{what} is off at {int(failing.sum())} of {got.size} positions: max abs error "
            f"{error.max():.3g}, {relative} (allowed rtol {rtol:g}, atol {atol:g}); worst at "
            f"index {index}{_at(index, inputs, got.shape)}: got {plain(got64[index])}, "
            f"expected {plain(exp64[index])}.\n    got:      {summarize(got64)}\n"
            f"    expected: {summarize(exp64)}",
            hint,
        )


def assert_scalar(got: Any, what: str) -> float:
    """The student's value as a Python float (a 0-d or 1-element array is accepted)."""
    array = as_array(got, what)
    if array.size != 1:
        raise CheckFailed(f"{what} should be a scalar, but has shape {array.shape}.")
    return float(array.reshape(()))


def unpack(value: Any, count: int, what: str) -> tuple:
    """Split a returned tuple, failing with a message if it has the wrong arity."""
    if not isinstance(value, (tuple, list)) or len(value) != count:
        raise CheckFailed(
            f"{what} should return a tuple of {count} values, but returned {_kind(value)}."
        )
    return tuple(value)
