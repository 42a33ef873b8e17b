"""Capstones: `make train TASK=name` trains a real model built from the student's own code.

Each task is a module here, named after the task with "_" for "-" (fashion_rnn.py is
`TASK=fashion-rnn`), with `describe() -> str` (one line for the task list) and
`run(solution: bool, epochs: int | None, out: Path | None) -> dict` (the summary it also writes).
Capstones are not graded: they import exercises/ (or solutions/ for the reference run,
`SOLUTION=1`) in this process, train with tqdm progress bars, and write plots and a
summary.json under runs/<task>-<time>/.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from pathlib import Path
from types import ModuleType

from grader.registry import ROOT

RUNS = ROOT / "runs"
HELPERS = {"plots"}  # modules here that are not tasks


def tasks() -> list[str]:
    """Every task name, from the modules of this package (nothing is imported)."""
    return sorted(info.name.replace("_", "-") for info in pkgutil.iter_modules(__path__)
                  if info.name not in HELPERS)


def task(name: str) -> ModuleType:
    if name not in tasks():
        raise KeyError(f"unknown capstone {name!r}; tasks: {', '.join(tasks())}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


STUDENT = ROOT / "exercises"  # `make train FILE=…` points this at a prepared copy (grader/train.py)


def course_module(phase_module: str, solution: bool) -> ModuleType:
    """The student's phase module from exercises/ (or the reference from solutions/)."""
    folder = ROOT / "solutions" if solution else STUDENT
    if not (folder / f"{phase_module}.py").exists():
        raise KeyError(f"{folder.name}/{phase_module}.py does not exist")
    return importlib.import_module(f"{folder.name}.{phase_module}")


def run_directory(name: str, out: Path | None) -> Path:
    directory = out or RUNS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
