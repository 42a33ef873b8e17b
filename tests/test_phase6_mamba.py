"""Phase 6 §6.9–6.11: the judge's Mamba reference equals the reference solution, and an
alternative implementation written unlike the reference keeps full marks (slow)."""

from __future__ import annotations

import shutil

import pytest
import torch

from grader.registry import ROOT, phase
from grader.runner import grade
from grader.tests.phase6 import mamba, scan
from solutions import phase6_models as course

EXERCISES = ["selective_scan", "mamba_block", "mamba_lm", "sentiment_classifier"]


def test_the_judge_closed_form_equals_the_judge_loop():
    inputs = scan.scan_inputs(1, 2, 17, 3, 4)
    torch.testing.assert_close(scan.closed_form(*inputs).numpy(),
                               scan.recurrence_numpy(*inputs), rtol=1e-12, atol=1e-12)


def test_judge_reference_block_equals_the_reference_solution():
    kwargs = mamba.BLOCK_CONFIGS[1][1]
    reference = mamba.randomised(mamba.ReferenceBlock(**kwargs), 3)
    block = course.MambaBlock(**kwargs).double()
    block.load_state_dict(reference.state_dict())
    u = torch.randn(2, 9, kwargs["d_model"], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(block(u), reference(u), rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_alternative_mamba_keeps_full_marks(tmp_path):
    """tests/alternative/phase6_mamba.py spliced in place of the reference's §6.9–6.11."""
    for module in (ROOT / "solutions").glob("phase*.py"):
        shutil.copyfile(module, tmp_path / module.name)
    source = (ROOT / "solutions" / "phase6_models.py").read_text()
    start = source.index("# ---- 6.9 ")
    alternative = (ROOT / "tests" / "alternative" / "phase6_mamba.py").read_text()
    alternative = alternative[alternative.index('"""', 3) + 3:]  # its docstring dropped
    (tmp_path / "phase6_models.py").write_text(source[:start] + alternative)
    result = grade(phase(6), tmp_path, exercises=EXERCISES, full=True, prerequisites=False,
                   hidden=True)
    assert result.import_error is None, result.import_error
    failures = [f"{e.exercise.id}/{c.spec.name}: {c.message}" for e in result.exercises
                for c in e.failures]
    assert not failures, "\n".join(failures)
    assert result.score == result.max_score
