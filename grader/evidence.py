"""What a check leaves beside its verdict for the reports to draw: arrays, curves, notes.

One mechanism, two sources, both ending in `CheckResult.evidence`:
- a check states it: `attach("loss per epoch", "curves", loss=losses)` while it runs (a no-op
  outside a graded run: fixtures and mutation analysis call checks too);
- a failing assertion implies it: `from_failure` reads the arguments of the library assertion
  that raised (grader/checks: assert_close's `got` and `expected`, a full-Jacobian gradient
  check's analytic gradient), so every failing oracle check gets its picture without a line
  in the check, and the checks library stays untouched.

Kinds (grader/html_report.py draws each): "compare" (got, expected: one array each side and
their difference), "curves" (named 1-D series), "boundary" (points X, labels y, a grid of
predictions over xs × ys), "note" (text only; perf measurements).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

KINDS = ("compare", "curves", "boundary", "note")
MAX_PER_CHECK = 4
MAX_ELEMENTS = 1 << 16  # per array: a picture needs no more, and results stay small in memory


@dataclass
class Evidence:
    title: str
    kind: str  # one of KINDS
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    note: str = ""


_sink: ContextVar[list[Evidence] | None] = ContextVar("evidence", default=None)


def attach(title: str, kind: str, note: str = "", **arrays) -> None:
    """Keep `arrays` (judge-side values: never remote handles) for the report of this check."""
    if kind not in KINDS:
        raise ValueError(f"unknown evidence kind {kind!r}")
    sink = _sink.get()
    if sink is None or len(sink) >= MAX_PER_CHECK:
        return
    sink.append(Evidence(title, kind, {k: _small(v) for k, v in arrays.items()}, note))


@contextmanager
def collecting() -> Iterator[list[Evidence]]:
    """Collect what the checks run inside this block attach."""
    sink: list[Evidence] = []
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)


def _small(value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError("evidence holds numeric arrays only")
    if array.size > MAX_ELEMENTS:  # keep the leading block: the picture shows its first slices
        while array.size > MAX_ELEMENTS and array.ndim > 2:
            array = array[0]
        if array.size > MAX_ELEMENTS:
            array = array.reshape(-1)[:MAX_ELEMENTS] if array.ndim == 1 else array[:256, :256]
    return np.array(array)


# the failing assertion's own data -------------------------------------------------------
ASSERT_CLOSE = ("oracle.py", "assert_close")
FULL_JACOBIAN = ("gradient.py", "_full_jacobian")


def from_failure(error: BaseException) -> list[Evidence]:
    """Evidence implied by the library assertion that raised `error`, if one did."""
    found = []
    for frame, function in _library_frames(error):
        local = frame.f_locals
        try:
            if function == ASSERT_CLOSE[1] and "got" in local and "expected" in local:
                got, expected = np.asarray(local["got"]), np.asarray(local["expected"])
                if got.shape == expected.shape and got.dtype.kind in "biuf":
                    found.append(
                        Evidence(
                            str(local.get("what", "the output")),
                            "compare",
                            {"got": _small(got), "expected": _small(expected)},
                        )
                    )
            elif function == FULL_JACOBIAN[1]:
                found.append(_jacobian_evidence(local))
        except Exception:  # noqa: BLE001 - a picture must never cost a verdict
            continue
    return found[:MAX_PER_CHECK]


def _jacobian_evidence(local: dict) -> Evidence:
    """The student's gradient beside central differences of the student's forward, element by
    element, for the input the full-Jacobian check found wrong (small by design: that check
    runs two forwards per element already)."""
    key, x = local["key"], np.asarray(local["inputs"][local["key"]])
    if x.size > MAX_JACOBIAN:
        raise ValueError("too large to redo")
    numeric = np.zeros_like(x)
    step = 1e-6
    for index in np.ndindex(x.shape):
        delta = np.zeros_like(x)
        delta[index] = step
        plus = np.asarray(local["forward"]({**local["inputs"], key: x + delta}))
        minus = np.asarray(local["forward"]({**local["inputs"], key: x - delta}))
        numeric[index] = np.sum(local["v"] * (plus - minus)) / (2 * step)
    return Evidence(
        f"{local.get('what', 'the gradient')}: d/d{key}, yours against finite differences",
        "compare",
        {"got": _small(local["grads"][key]), "expected": _small(numeric)},
    )


MAX_JACOBIAN = 400


def _library_frames(error: BaseException):
    trace = error.__traceback__
    while trace is not None:
        code = trace.tb_frame.f_code
        for filename, function in (ASSERT_CLOSE, FULL_JACOBIAN):
            if code.co_name == function and code.co_filename.endswith(f"grader/checks/{filename}"):
                yield trace.tb_frame, function
        trace = trace.tb_next


def worst(item: Evidence, count: int = 5) -> list[tuple[tuple[int, ...], float, float]]:
    """(index, got, expected) at the `count` largest differences of a "compare" item."""
    got, expected = item.arrays.get("got"), item.arrays.get("expected")
    if got is None or expected is None or got.shape != expected.shape or got.size == 0:
        return []
    with np.errstate(invalid="ignore"):
        error = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    error = np.where(np.isnan(error), np.inf, error)
    order = np.argsort(-error, axis=None, kind="stable")[:count]
    rows = []
    for flat in order:
        index = tuple(int(i) for i in np.unravel_index(flat, got.shape))
        if error[index] > 0:
            rows.append((index, float(got[index]), float(expected[index])))
    return rows
