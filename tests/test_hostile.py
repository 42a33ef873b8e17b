"""Hostile submissions (SPEC §7): each scores 0 with a clear message, the grader returns
normally, the file is unchanged and no process is left behind. Those that reach outside their
directory (ESCAPES) are also graded from a throwaway clone of the project, which must come out
of it unchanged, as must the virtual environment."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from grader import sandbox
from grader.runner import grade
from grader.session import Limits, _descendants

HOSTILE = Path(__file__).parent / "hostile"
PIDS = Path("/tmp/gradschool-hostile-pids")
LIMITS = Limits(call_seconds=2, check_seconds=6, import_seconds=4, memory_bytes=3 << 30)

# file → a phrase that must appear in the report (alternatives separated by "|")
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
    "big_reply": "(14000, 14000)|1.46 GiB|timed out",  # which comes first depends on the load
    "steal_by_path": "",
    "steal_via_proc": "",
    "steal_via_sys_path": "",
    "steal_by_walking": "",
    "append_to_grader": "",
    "append_to_numpy": "",
    "open_socket": "reached []",
}
# they reach for files outside their directory or for the network: only a sandbox stops them
ESCAPES = {n for n in EXPECTED if n.startswith(("steal_", "append_to_", "open_socket"))}
SANDBOXED = sandbox.choose().sandboxed
ROOT = Path(__file__).resolve().parent.parent


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
    if name in ESCAPES and not SANDBOXED:
        pytest.skip("no sandbox on this system: this submission would reach the project")
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
        assert any(alternative in text for alternative in phrase.split("|"))
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


def _venv_state() -> dict[str, str]:
    """numpy's own source and the listing of site-packages: what append_to_numpy goes for."""
    import numpy

    site = Path(numpy.__file__).parent.parent
    return {
        "numpy": hashlib.sha256(Path(numpy.__file__).read_bytes()).hexdigest(),
        "site-packages": "\n".join(sorted(p.name for p in site.iterdir())),
    }


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def project_clone(tmp_path_factory) -> Path:
    """A clone of the project holding the working tree's files, committed, so that any change
    a submission makes shows in `git status`."""
    clone = tmp_path_factory.mktemp("clone") / "gradschool"
    _git(ROOT, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone))
    for name in _git(ROOT, "ls-files", "--deleted").splitlines():
        (clone / name).unlink(missing_ok=True)
    for name in _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    _git(clone, "add", "--all")
    identity = ("-c", "user.name=t", "-c", "user.email=t@t")
    _git(clone, *identity, "commit", "--quiet", "--allow-empty", "-m", "tree")
    return clone


GRADE_EACH = """
import json, sys
from pathlib import Path
from grader import registry
from grader.report import gradescope
from grader.runner import grade
from grader.session import Budget
for target in sys.argv[1:]:
    limits = Budget().limits(require_sandbox=True)
    result = grade(registry.phase(0), Path(target), exercises=["activations"], limits=limits)
    print(json.dumps({"target": target, **gradescope(result)}))
"""


@pytest.fixture(scope="module")
def escapes_graded(project_clone, tmp_path_factory) -> dict:
    """Every escape graded by the clone's own grader, from the clone (as `make grade` runs),
    in one judge process; with the venv's state before and after."""
    folder = tmp_path_factory.mktemp("escapes")
    targets = []
    for name in sorted(ESCAPES):
        (folder / name).mkdir()
        targets.append(folder / name / "phase0_foundations.py")
        shutil.copyfile(HOSTILE / f"{name}.py", targets[-1])
    before = _venv_state()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", GRADE_EACH, *map(str, targets)],
        cwd=project_clone,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {
        "results": {Path(r["target"]).parent.name: r for r in results},
        "venv": (before, _venv_state()),
        "status": _git(project_clone, "status", "--porcelain"),
    }


@pytest.mark.skipif(not SANDBOXED, reason="no sandbox on this system")
@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escapes_score_zero_in_the_sandbox(name, escapes_graded):
    results = escapes_graded["results"][name]
    assert results["score"] == 0
    assert results["extra_data"]["isolation"] == sandbox.choose().label


@pytest.mark.skipif(not SANDBOXED, reason="no sandbox on this system")
def test_escapes_change_nothing_in_the_project_or_the_venv(escapes_graded):
    assert escapes_graded["status"] == "", "a submission changed the project's files"
    before, after = escapes_graded["venv"]
    assert after == before, "a submission changed the virtual environment"
