"""Hostile submissions (SPEC §7): each scores 0 with a clear message, the grader returns
normally, the file is unchanged and no process is left behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from grader.runner import grade
from grader.session import Limits, _descendants

HOSTILE = Path(__file__).parent / "hostile"
PIDS = Path("/tmp/gradschool-hostile-pids")
LIMITS = Limits(call_seconds=2, check_seconds=6, import_seconds=4, memory_bytes=3 << 30)

# file → a phrase that must appear in the report of every failing check (or of the import)
EXPECTED = {
    "loop_at_import": "timed out",
    "loop_in_call": "timed out",
    "memory_bomb": "MemoryError",
    "sys_exit": "SystemExit",
    "os_exit": "crashed the worker",
    "segfault": "forbids",  # ctypes is refused statically; the crash is caught anyway
    "sigterm_ignored": "timed out",
    "detached_child": "has no attribute",
    "recursion_bomb": "Recursion",
    "stdout_flood": "could not be imported",
    "fake_output": "",
    "monkeypatch_helpers": "",
    "equals_anything": "",
    "syntax_error": "SyntaxError",
    "keyboard_interrupt": "KeyboardInterrupt",
    "import_solutions": "solutions",
    "dynamic_torch": "forbids",
    "garbage_values": "",
}


def _worker_processes() -> set[int]:
    """Processes below this test process (the grader is a subreaper: orphans come back here)."""
    return {pid for pid in _descendants(os.getpid()) if _alive(pid)}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_the_corpus_is_complete():
    assert sorted(p.stem for p in HOSTILE.glob("*.py")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_submission_scores_zero_cleanly(name, phase0, tmp_path):
    shutil.rmtree(PIDS, ignore_errors=True)
    source = HOSTILE / f"{name}.py"
    target = tmp_path / "phase0_foundations.py"
    shutil.copyfile(source, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    before = _worker_processes()

    result = grade(phase0, target, limits=LIMITS)

    assert result.score == 0
    checks = [c for e in result.exercises for c in e.checks]
    assert checks and not any(c.passed for c in checks)
    assert not [c.message for c in checks if c.kind == "internal"]
    assert all(c.message for c in checks), "every failure says why"
    phrase = EXPECTED[name]
    if phrase:
        text = " ".join(
            [result.import_error or ""]
            + [c.message for c in checks]
            + [v.describe() for e in result.exercises for v in e.violations]
        )
        assert phrase in text
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert _worker_processes() <= before, "a worker process outlived grading"
    left = [int(p.name) for p in PIDS.glob("*")] if PIDS.exists() else []
    survivors = [pid for pid in left if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "a detached child outlived grading"


def test_fake_output_cannot_reach_the_grader_files(phase0, tmp_path):
    target = tmp_path / "phase0_foundations.py"
    shutil.copyfile(HOSTILE / "fake_output.py", target)
    grade(phase0, target, limits=LIMITS, exercises=["activations"])
    assert not (tmp_path / "results.json").exists()
