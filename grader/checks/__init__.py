"""The checks library: how a phase's graded tests are declared and what they assert with.

A graded test is a plain function of the student's module (a RemoteRef, see grader.session)
decorated with `@check(exercise, category)`; it passes by returning and fails by raising
CheckFailed (the assert helpers in oracle / gradient / stability do that with a diagnosis).
Its docstring's first line says what was checked, in one sentence, for the report.

Categories (SPEC §4): oracle, gradient, invariant, stability, e2e, forbidden, perf.

Tolerances used across the course (override per call where a check needs to):
- float64 against a closed form or a torch float64 built-in: rtol 1e-9, atol 1e-12
  (agreement is usually ~1e-15; 1e-9 leaves room for a different but exact summation order).
- float32: rtol 1e-5, atol 1e-6.
- gradient checks, float64 central differences with h = 1e-6: symmetric relative error
  |a − b| / max(1e-8, |a| + |b|) ≤ 1e-6 passes (CS231n: ≤ 1e-7 good, > 1e-2 certainly wrong;
  1e-6 keeps smooth functions with large second derivatives from failing spuriously).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CATEGORIES = ("oracle", "gradient", "invariant", "stability", "e2e", "forbidden", "perf")


class CheckFailed(AssertionError):
    """A check's verdict, with a message written for the student."""

    def __init__(self, message: str, hint: str | None = None):
        self.hint = hint
        self.example: str | None = None  # the smallest failing input, when hypothesis found one
        super().__init__(message)


@dataclass(frozen=True)
class CheckSpec:
    exercise: str
    category: str
    weight: float
    full_only: bool
    seconds: float | None
    function: Callable
    hidden: bool = False  # graded in batch and Gradescope runs only; absent from releases

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def title(self) -> str:
        return self.name.replace("_", " ")

    @property
    def description(self) -> str:
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.title


def check(
    exercise: str,
    category: str,
    *,
    weight: float = 1.0,
    full: bool = False,
    seconds: float | None = None,
    hidden: bool = False,
):
    """Declare a graded test of `exercise`; `full=True` puts it in the slow FULL=1 tier.

    `hidden=True` makes it a hidden check: it must live in a module named `hidden*.py` (which
    `make release` leaves out), and it is graded only by batch, Gradescope and verify runs;
    students see how many there are, never what they check."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown check category {category!r}")

    def declare(function: Callable) -> Callable:
        function.__check__ = CheckSpec(exercise, category, weight, full, seconds, function, hidden)
        return function

    return declare


def fingerprint(exercise: str):
    """Declare the fixed-input run of `exercise` whose outputs identify known mistakes.

    The function takes the student's module and returns {name: array}; `make fixtures` records
    it for the reference solution and for every mutant, and the report compares a failing
    student's fingerprint with the mutants' to name the mistake.
    """

    def declare(function: Callable) -> Callable:
        function.__fingerprint__ = exercise
        return function

    return declare
