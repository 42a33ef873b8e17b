"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import registry

ROOT = Path(__file__).resolve().parent.parent
SOLUTION0 = ROOT / "solutions" / "phase0_foundations.py"
STUB0 = ROOT / "exercises" / "phase0_foundations.py"
MIRROR = Path(os.environ.get("GRADSCHOOL_MIRROR", ROOT.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def phase0() -> registry.Phase:
    return registry.phase(0)


@pytest.fixture(scope="session")
def solution_result(phase0):
    """The reference solution of phase 0, graded once for every test that needs it."""
    from grader.runner import grade

    return grade(phase0, SOLUTION0)


@pytest.fixture(scope="session")
def stub_result(phase0):
    from grader.runner import grade

    return grade(phase0, STUB0)
