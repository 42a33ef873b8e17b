"""`make verify` (SPEC §1): every phase with a solution is sound; unsound courses are caught."""

from __future__ import annotations

import pytest

from grader import registry
from grader.mutants import Mutant
from grader.verify import _mutant_task, mutant_problem, verify_phase
from tests.conftest import ROOT

PHASES = [p for p in registry.phases().values() if (ROOT / "solutions" / p.filename).exists()]


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
def test_phase_is_sound(phase):
    verdict = verify_phase(phase, jobs=2, log=lambda message: None)
    assert verdict.problems == []


def test_an_uncaught_mutant_is_reported(phase0):
    harmless = Mutant(
        "renamed_local",
        "softmax",
        "not a mistake at all",
        old="    e = np.exp(x - x.max(axis=axis, keepdims=True))\n"
        "    return e / e.sum(axis=axis, keepdims=True)",
        new="    ex = np.exp(x - x.max(axis=axis, keepdims=True))\n"
        "    return ex / ex.sum(axis=axis, keepdims=True)",
    )
    _, summary = _mutant_task(0, harmless)
    assert summary["score"] == summary["max"]
    assert "scores full marks" in mutant_problem(harmless, summary)


def test_a_mutant_must_match_the_solution_exactly_once():
    with pytest.raises(ValueError, match="occurs 0 times"):
        Mutant("x", "softmax", "why", old="no such text", new="").apply("source")
