"""The FULL=1 tier: every phase has slow checks of its own; a stub fails them cleanly; the
reference passes them, each within its declared time (slow: the whole tier takes minutes)."""

from __future__ import annotations

import pytest
from conftest import ROOT

from grader import registry
from grader.runner import collect, grade

PHASES = sorted(registry.phases())


def _full(number: int) -> dict[str, list]:
    checks, _ = collect(registry.phase(number))
    found = {id: [s for s in specs if s.full_only] for id, specs in checks.items()}
    return {id: specs for id, specs in found.items() if specs}


@pytest.mark.parametrize("number", PHASES)
def test_every_phase_has_a_full_tier(number):
    full = _full(number)
    assert full, f"phase {number} has no FULL=1 check"
    for specs in full.values():
        assert all(s.seconds and s.category in ("e2e", "stability") for s in specs)


def _run(number: int, target) -> list:
    result = grade(registry.phase(number), target, exercises=list(_full(number)), full=True,
                   recognise=False, prerequisites=False)  # fmt: skip
    return [c for e in result.exercises for c in e.checks if c.spec.full_only]


@pytest.mark.parametrize("number", PHASES)
def test_a_stub_fails_the_full_tier_as_not_implemented(number):
    checks = _run(number, ROOT / "exercises" / registry.phase(number).filename)
    assert checks and all(c.kind == "not_implemented" for c in checks), [
        (c.spec.name, c.kind, c.message[:200]) for c in checks
    ]


@pytest.mark.slow
@pytest.mark.parametrize("number", [n for n in PHASES if n != 6])  # 6: test_capstone_char_gpt
def test_the_reference_passes_the_full_tier(number):
    checks = _run(number, ROOT / "solutions" / registry.phase(number).filename)
    failing = [(c.spec.name, c.message[:300]) for c in checks if not c.passed]
    assert not failing
    assert all(c.seconds < c.spec.seconds for c in checks)
