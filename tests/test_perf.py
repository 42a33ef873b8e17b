"""The perf category: informational by default (weight 0, a note, always passing when the code
works), scored when the course sets GRADSCHOOL_PERF=scored; perf entries where promised."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, SOLUTION0

from grader import registry
from grader.runner import collect, grade

PROMISED = {0: "softmax", 2: "attn_sdpa", 7: "cnn_conv2d"}
# 0.2 s of sleep against torch.softmax's ~1 ms: slower than the allowed 8× by two orders of
# magnitude on any machine, so the verdicts below do not depend on the load
FAST = "    e = np.exp(x - x.max(axis=axis, keepdims=True))\n"
SLOW = "    import time\n\n    time.sleep(0.2)\n" + FAST


@pytest.mark.parametrize("number, exercise", sorted(PROMISED.items()))
def test_the_promised_perf_entries_exist_and_weigh_nothing_by_default(number, exercise):
    checks, _ = collect(registry.phase(number))
    perf = [s for s in checks[exercise] if s.category == "perf"]
    assert perf and all(s.weight == 0 and not s.full_only for s in perf)


@pytest.fixture(scope="module")
def slow_softmax(tmp_path_factory):
    path = tmp_path_factory.mktemp("perf") / "phase0_foundations.py"
    source = SOLUTION0.read_text()
    assert source.count(FAST) == 1
    path.write_text(source.replace(FAST, SLOW))
    return path


def _perf(result):
    (ex,) = result.exercises
    return next(c for c in ex.checks if c.spec.category == "perf"), ex


def test_informational_perf_passes_and_says_what_it_measured(slow_softmax):
    check, ex = _perf(grade(registry.phase(0), slow_softmax, exercises=["softmax"]))
    assert check.passed and ex.score == ex.max_score
    (note,) = [e.note for e in check.evidence if e.kind == "note"]
    assert "× torch's time" in note and "slower than the 8× expected" in note
    assert "Python loop over rows" in note  # the teaching hint travels with the measurement
    assert "peak memory" in note


def test_the_reference_gets_a_note_without_a_verdict_or_points():
    check, ex = _perf(grade(registry.phase(0), SOLUTION0, exercises=["softmax"]))
    assert check.passed and check.spec.weight == 0
    assert [e.note for e in check.evidence if e.kind == "note"][0].startswith("softmax: ")


def test_a_course_can_score_perf(slow_softmax, tmp_path):
    out = tmp_path / "r.json"
    run = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--phase", "0", "--exercise", "softmax",
         "--file", str(slow_softmax), "--json", str(out), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "GRADSCHOOL_PERF": "scored"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    tests = json.loads(out.read_text())["tests"]
    (perf,) = [t for t in tests if "perf" in t["tags"]]
    assert perf["status"] == "failed" and perf["max_score"] > 0
    assert "the time of torch's built-in" in perf["output"]
    assert all(t["status"] == "passed" for t in tests if t is not perf)
