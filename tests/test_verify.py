"""`make verify` (SPEC §1): every phase with a solution is sound; unsound courses are caught.

A phase's verdict is verified live when its committed record (grader/verify_record.py) is
missing or stale, and always for phase 0, so that the machinery itself runs on every test run;
a current record stands for the live verdict it recorded. A stale record also fails on its own
test, naming the command that refreshes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader import registry, verify_record
from grader.mutants import Mutant
from grader.verify import _mutant_task, mutant_problem, verify, verify_phase
from tests.conftest import ROOT

PHASES = [p for p in registry.phases().values() if (ROOT / "solutions" / p.filename).exists()]
ALWAYS_LIVE = 0  # the cheapest phase


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
def test_phase_is_sound(phase):
    if phase.number != ALWAYS_LIVE and verify_record.staleness(phase) is None:
        assert verify_record.load(phase)["problems"] == []  # the recorded live verdict
        return
    verdict = verify_phase(phase, jobs=2, log=lambda message: None)
    assert verdict.problems == []


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
def test_the_committed_verify_record_is_current(phase):
    stale = verify_record.staleness(phase)
    assert stale is None, stale


def test_verify_writes_a_record_that_a_change_makes_stale(monkeypatch, tmp_path, phase0):
    """The record written by `verify` holds until a file it covers changes, and says which."""
    monkeypatch.setattr(verify_record, "path_for", lambda phase: tmp_path / "record.json")
    monkeypatch.setattr("grader.verify.verify_phase", lambda *a, **k: _Sound())
    assert verify([0], log=lambda message: None)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["phase"] == 0 and record["problems"] == []
    assert verify_record.staleness(phase0) is None
    real = verify_record._content

    def edited(path):
        data = real(path)
        return data + b"# edited" if path.name == "session.py" else data

    monkeypatch.setattr(verify_record, "_content", edited)
    assert "(grader changed since)" in verify_record.staleness(phase0)
    assert "make verify PHASE=0" in verify_record.staleness(phase0)


def test_later_phases_and_formatting_do_not_make_a_record_stale(phase0, tmp_path, monkeypatch):
    key = verify_record.parts(phase0)
    later = max(PHASES, key=lambda p: p.number)
    real = verify_record._content

    def edited(path):
        data = real(path)
        return data + b"\n# more" if f"phase{later.number}" in str(path) else data

    monkeypatch.setattr(verify_record, "_content", edited)
    assert verify_record.parts(phase0) == key
    reformatted = tmp_path / "x.py"
    reformatted.write_text("def f( a ):\n    return a  # why\n")
    original = tmp_path / "y.py"
    original.write_text("def f(a):\n    return a\n")
    assert real(reformatted) == real(original)


IMPORTED_BY_VERIFY = """
import importlib, json, pkgutil, sys
import grader.probes, grader.verify, grader.worker.main
from grader import registry
from grader.runner import collect
for number in registry.phases():
    collect(registry.phase(number))
for found in pkgutil.iter_modules(grader.probes.__path__):
    importlib.import_module(f"grader.probes.{found.name}")
print(json.dumps([getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]))
"""


def test_what_the_record_leaves_out_is_never_run_by_verify():
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY_VERIFY], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {str(Path(f).resolve()) for f in json.loads(done.stdout.splitlines()[-1]) if f}
    left_out = {str((ROOT / name).resolve()) for name in verify_record.NOT_RUN_BY_VERIFY}
    reached = [f for f in imported if any(f == n or f.startswith(n + "/") for n in left_out)]
    assert reached == [], "verify runs these: take them out of NOT_RUN_BY_VERIFY"


class _Sound:
    problems: list[str] = []
    ok = True


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
