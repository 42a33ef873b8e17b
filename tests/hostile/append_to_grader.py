"""Appends to the grader's own files, found through the grading processes' working directories
(the attack that made the next submission graded score 100)."""
import os

APPENDED = "\n# appended by a submission\n"


def _targets() -> list[str]:
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        pids = []
    found = []
    for pid in [str(os.getppid()), *pids]:
        for name in ("grader/runner.py", "grader/checks/__init__.py", "grader/tests/phase0/__init__.py"):
            found.append(f"/proc/{pid}/cwd/{name}")
    return found


for target in _targets():
    try:
        with open(target, "a") as fh:
            fh.write(APPENDED)
    except OSError:
        pass


def relu(x):
    raise NotImplementedError("relu")
