"""`make test` in a student release: the grader works here, and this copy is what it says."""

from __future__ import annotations

import numpy as np

from grader import fingerprints, registry
from grader.runner import collect, grade, hidden_counts


def test_every_phase_declares_its_checks_and_ships_no_hidden_one():
    for phase in registry.phases().values():
        checks, _ = collect(phase)
        assert not [s.name for specs in checks.values() for s in specs if s.hidden]
        assert all(n >= 0 for n in hidden_counts(phase, checks).values())


def test_the_recorded_outputs_of_known_mistakes_load():
    phase = registry.phase(0)
    for exercise in phase.exercises:
        recorded = fingerprints.load(phase, exercise.id)
        assert recorded, f"no fixture for {exercise.id}"
        for outputs in recorded.values():
            assert all(isinstance(v, np.ndarray) for v in outputs.values())


def test_grading_an_empty_module_fails_every_check_cleanly(tmp_path):
    """Whatever state your exercises/ is in: the grader itself runs and explains each failure."""
    empty = tmp_path / "phase0_foundations.py"
    empty.write_text("")
    result = grade(registry.phase(0), empty)
    checks = [c for e in result.exercises for c in e.checks]
    assert result.score == 0 and checks
    assert not [c.message for c in checks if c.kind == "internal"]
    assert all(c.message for c in checks)
