"""The alternative implementations of phases 7 and 8 keep full marks.

tests/alternative/ holds phase modules written unlike the reference by the reference's own
author (so not independent, unlike tests/independent/). Each is graded in a folder beside the
independent implementations of the earlier phases it imports, so the whole chain is code that
differs from the reference.
"""

from __future__ import annotations

import shutil

import pytest

from grader import registry
from grader.runner import grade
from tests.conftest import ROOT
from tests.test_independent import INDEPENDENT, failing_checks

ALTERNATIVE = ROOT / "tests" / "alternative"


@pytest.mark.slow
@pytest.mark.parametrize("number", [7, 8])
def test_alternative_implementation_keeps_full_marks(number, tmp_path):
    phase = registry.phase(number)
    for module in INDEPENDENT.glob("phase*.py"):
        shutil.copyfile(module, tmp_path / module.name)
    shutil.copyfile(ALTERNATIVE / phase.filename, tmp_path / phase.filename)
    result = grade(phase, tmp_path, hidden=True)
    failures = failing_checks(result)
    assert not failures, f"phase {number}: {len(failures)} failing checks\n" + "\n".join(failures)
    assert result.score == result.max_score
