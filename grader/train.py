"""`make train TASK=name`: run a capstone on the student's code, and explain what goes wrong.

- An unfinished exercise (NotImplementedError) or any error raised in the student's code: the
  student's frames (file, line, code) and the error, exit 1 (their code failed, the grader did
  not); a run folder left empty by the failure is removed.
- A dataset that cannot be had (offline, no mirror): the loader's one message, exit 2.
- A run that ends with a non-finite loss or at chance accuracy: what that usually means.
`FILE=` a notebook (or a .py) trains on that file in place of its phase's module in exercises/.
"""

from __future__ import annotations

import math
import shutil
import sys
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from grader import capstones, registry
from grader.notebook import locate

EXIT_OK, EXIT_STUDENT, EXIT_USAGE = 0, 1, 2
FRAMES = 6  # the student's innermost frames shown
DIVERGED = (
    "the loss became NaN or infinite: the model diverged. Usually the learning rate is too "
    "large for your code, or a formula overflows (exp of a large logit: subtract the max first; "
    "log of 0: clip or use log-sum-exp), or a gradient has the wrong sign or scale (grade the "
    "phase: `make grade PHASE=n`)."
)
AT_CHANCE = (
    "accuracy stayed at chance ({chance:.0%}): the model learned nothing. Usually the gradients "
    "never reach the parameters (backward returns zeros, or the update is not applied in place), "
    "the labels are shuffled apart from their inputs, or the learning rate is far too small."
)


def student_frames(error: BaseException, folders: list[Path]) -> list[traceback.FrameSummary]:
    """The traceback's frames in the student's files, innermost last (a SyntaxError's line
    is one: the student's file never ran)."""
    roots = [str(f.resolve()) for f in folders]
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, SyntaxError) and error.filename:
        frames.append(traceback.FrameSummary(error.filename, error.lineno or 0, "<module>",
                                             line=(error.text or "").strip()))  # fmt: skip
    return [f for f in frames if any(str(Path(f.filename).resolve()).startswith(r) for r in roots)]


def explain(error: BaseException, folders: list[Path], file: Path | None) -> str:
    """Where in the student's code `error` was raised, and what it says. Frames in the prepared
    copy of `file` name `file` itself, and a notebook's lines are given as its cells."""
    lines = []
    for frame in student_frames(error, folders)[-FRAMES:]:
        own = file is not None and Path(frame.filename).name == f"{file.stem}.py"
        if own and file.suffix == ".ipynb":
            lines.append(f'  File "{file}", {locate(file, frame.lineno)}, in {frame.name}')
        else:
            name = file if own else frame.filename
            lines.append(f'  File "{name}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    lines.append(f"{type(error).__name__}: {error}")
    return "\n".join(lines)


def diagnose(summary: dict) -> list[str]:
    """What a finished run's numbers usually mean, when they are bad."""
    advice = []
    if any(not math.isfinite(v) for v in _numbers(summary.get("history", {}))) or any(
        isinstance(v, float) and not math.isfinite(v) for k, v in summary.items() if "loss" in k
    ):
        advice.append(DIVERGED)
    chance = summary.get("chance_accuracy")
    accuracy = summary.get("test_accuracy")
    if chance is not None and accuracy is not None and accuracy <= chance + 0.05:
        advice.append(AT_CHANCE.format(chance=chance))
    return advice


def _numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, (int, float)) else []


def train(
    console: Console,
    name: str,
    solution: bool = False,
    epochs: int | None = None,
    out: Path | None = None,
    file: Path | None = None,
) -> int:
    capstone = capstones.task(name)
    folders = [registry.ROOT / ("solutions" if solution else "exercises")]
    prepared = _use_file(file) if file is not None else None
    try:
        if prepared is not None:
            folders.append(capstones.STUDENT)
        return _train(console, capstone, folders, solution, epochs, out, file)
    finally:
        if prepared is not None:
            shutil.rmtree(prepared, ignore_errors=True)


def _train(
    console: Console,
    capstone,
    folders: list[Path],
    solution: bool,
    epochs: int | None,
    out: Path | None,
    file: Path | None,
) -> int:
    from datasets.download import DatasetError

    before = set(capstones.RUNS.iterdir()) if capstones.RUNS.is_dir() else set()
    out_existed = out is not None and out.exists()
    try:
        summary = capstone.run(solution=solution, epochs=epochs, out=out)
    except DatasetError as error:
        _remove_empty(before, out, out_existed)
        console.print(f"[red]the data set is not available:[/red] {escape(str(error))}")
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - the student's code may raise anything
        _remove_empty(before, out, out_existed)
        if not student_frames(error, folders) and not isinstance(error, NotImplementedError):
            raise  # not the student's code: a grader bug, shown as one
        headline = (
            "your code is not finished"
            if isinstance(error, NotImplementedError)
            else "your code raised an error"
        )
        console.print(f"[red]{headline}:[/red]", markup=True)
        console.print(explain(error, folders, file), markup=False, highlight=False, soft_wrap=True)
        console.print(
            "Grade it with `make grade PHASE=n`, or watch the reference run with SOLUTION=1.",
            markup=False,
        )
        return EXIT_STUDENT
    for advice in diagnose(summary or {}):
        console.print(f"[yellow]note:[/yellow] {escape(advice)}")
    return EXIT_OK


def _use_file(file: Path) -> Path:
    """Point the capstones at a prepared copy of the submission with `file` as its phase module;
    returns the temporary folder to remove afterwards."""
    from grader.submission import SubmissionError, prepare

    phase = next((p for p in registry.phases().values() if p.module == file.stem), None)
    if phase is None:
        raise SubmissionError(
            f"{file}: the name must be a phase module's, e.g. notebooks/phase0_foundations.ipynb"
        )
    directory, _ = prepare(phase, file)
    sys.path.insert(0, str(directory))
    capstones.STUDENT = directory / "submission"
    return directory


def _remove_empty(before: set[Path], out: Path | None, out_existed: bool) -> None:
    """Remove the run folder a failed run created and left empty."""
    created = [out] if out is not None and not out_existed else []
    if capstones.RUNS.is_dir():
        created += [p for p in capstones.RUNS.iterdir() if p not in before]
    for folder in created:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
