"""The independent implementations of phases 1, 3 and 5 keep full marks.

tests/independent/ holds correct implementations written from the stubs' docstrings alone,
deliberately unlike the reference solutions. A check that fails here either caught a real
contract violation in them or rejects behaviour the docstring allows; the message says which
checks failed so the two can be told apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import registry
from grader.runner import grade

FOLDER = Path(__file__).parent / "independent"

# The phases whose independent implementation this file owns (0, 2 and 4: test_independent.py).
PHASES = [1, 3, 5]


@pytest.mark.parametrize("number", PHASES)
def test_independent_implementation_keeps_full_marks(number: int) -> None:
    # Every check counts here: the slow end-to-end tier and the hidden checks too.
    result = grade(registry.phase(number), FOLDER, full=True, hidden=True)
    assert result.import_error is None, result.import_error
    failing = [
        f"{e.exercise.id}.{c.spec.name} ({c.kind}): {c.message}"
        for e in result.exercises
        for c in e.checks
        if not c.passed
    ]
    assert result.exercises, f"phase {number}: nothing was graded"
    assert result.score == result.max_score, (
        f"phase {number}: {result.score}/{result.max_score}; failing checks:\n" + "\n".join(failing)
    )
