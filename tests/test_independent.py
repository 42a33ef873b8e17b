"""The independent implementations of phases 0, 2 and 4 keep full marks.

tests/independent/ holds phase modules written only from the stubs' docstrings and
curriculum.md, without reading the reference solutions or the checks, and deliberately unlike
them (other formulations, other evaluation orders). A check that fails them either rejects
behaviour the contract allows or compares with one formulation: both are grader defects.
The hidden checks are graded too, since an instructor's run includes them. Phases 1, 3 and 5
are tests/test_independent_more.py's.
"""

from __future__ import annotations

import pytest

from grader import registry
from grader.runner import grade
from tests.conftest import ROOT

INDEPENDENT = ROOT / "tests" / "independent"
MODULES = {0: "phase0_foundations", 2: "phase2_attention", 4: "phase4_blocks"}


def failing_checks(result) -> list[str]:
    lines = [f"import: {result.import_error}"] if result.import_error else []
    for exercise in result.exercises:
        lines += [f"{exercise.exercise.id}: forbidden {v}" for v in exercise.violations]
        lines += [
            f"{exercise.exercise.id}/{check.spec.name} ({check.kind}): {check.message}"
            for check in exercise.failures
        ]
    return lines


def test_each_module_is_the_one_its_phase_grades():
    for number, module in MODULES.items():
        assert registry.phase(number).filename == f"{module}.py"
        assert (INDEPENDENT / f"{module}.py").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("number", sorted(MODULES))
def test_independent_implementation_keeps_full_marks(number):
    phase = registry.phase(number)
    result = grade(phase, INDEPENDENT, hidden=True)
    failures = failing_checks(result)
    assert not failures, f"phase {number}: {len(failures)} failing checks\n" + "\n".join(failures)
    assert result.score == result.max_score
