"""Working in a notebook: `check("softmax")` grades the saved notebook and shows the result here.

    from grader.notebook import check
    check("softmax")          # one exercise of this notebook's phase
    check()                   # every exercise of the phase

The notebook is found from the kernel's working directory and the phase of the exercise id
(notebooks/<phase module>.ipynb), or given with `path=`. Grading reads the file on disk, so save
first (Ctrl-S): an unsaved cell is not graded.
Errors are located as "cell 7, line 3" of the notebook, not as a line of the joined module.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from grader import registry
from grader.submission import graded_line

NOTEBOOKS = registry.ROOT / "notebooks"
MODULE_LINE = re.compile(r"\b(phase\d+_\w+)\.py:(\d+)")


def code_lines(path: Path) -> list[tuple[int, int]]:
    """(cell number, line in cell), both 1-based, for every line of the module that grading
    joins from the notebook (grader.submission.notebook_source: the lines `graded_line` refuses
    dropped, cells joined by one blank line). Cells are counted from the top, markdown too."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    where: list[tuple[int, int]] = []
    first = True
    for number, cell in enumerate(notebook.cells, 1):
        if cell.cell_type != "code":
            continue
        if not first:
            where.append((number, 0))  # the blank line between two cells
        first = False
        kept = [(number, i) for i, ln in enumerate(cell.source.splitlines(), 1) if graded_line(ln)]
        where += kept or [(number, 0)]  # an emptied cell still leaves its empty line
    return where


def locate(path: Path, line: int) -> str:
    """Where line `line` (1-based) of the joined module is in the notebook: "cell 7, line 3"."""
    where = code_lines(path)
    if not 1 <= line <= len(where) or where[line - 1][1] == 0:
        return f"line {line} of the joined notebook"
    cell, in_cell = where[line - 1]
    return f"cell {cell}, line {in_cell}"


def in_cells(text: str, path: Path) -> str:
    """`text` with every "phaseN_name.py:LINE" of this notebook's module written as a cell."""
    try:
        where = code_lines(path)
    except Exception:  # noqa: BLE001 - an unreadable notebook keeps the module's line numbers
        return text

    def replace(match: re.Match) -> str:
        if match.group(1) != path.stem:
            return match.group(0)
        line = int(match.group(2))
        if 1 <= line <= len(where) and where[line - 1][1]:
            cell, in_cell = where[line - 1]
            return f"{path.name} cell {cell}, line {in_cell}"
        return match.group(0)

    return MODULE_LINE.sub(replace, text)


def notebook_for(exercise: str | None, path: str | Path | None = None) -> tuple[Path, int]:
    """The notebook to grade and its phase number."""
    if path is not None:
        path = Path(path)
        phase = next((p for p in registry.phases().values() if p.module == path.stem), None)
        if phase is None:
            raise ValueError(f"{path.name}: a notebook's name is its phase module's")
        return path, phase.number
    if exercise is None:
        raise ValueError("give an exercise id, check('softmax'), or the notebook: path=…")
    phase = registry.phase(registry.exercise_by_id(exercise).phase)
    for folder in (Path.cwd(), NOTEBOOKS):
        candidate = folder / f"{phase.module}.ipynb"
        if candidate.is_file():
            return candidate, phase.number
    raise ValueError(f"no {phase.module}.ipynb here or in {NOTEBOOKS}: pass path=")


def check(exercise: str | None = None, path: str | Path | None = None, full: bool = False):
    """Grade the saved notebook (one exercise, or its whole phase) and show the result inline.

    Returns the grading result (its .score and .max_score), shown as a table in the notebook."""
    from rich.console import Console

    from grader.report import render_terminal
    from grader.runner import grade

    notebook, number = notebook_for(exercise, path)
    phase = registry.phase(number)
    result = grade(phase, notebook, exercises=[exercise] if exercise else None, full=full)
    text = io.StringIO()
    console = Console(file=text, force_jupyter=False, width=100, highlight=False)
    render_terminal(result, console, details=True)
    print(in_cells(text.getvalue(), notebook))
    return result


def locate_results(results: list, import_error: str | None, path: Path) -> str | None:
    """Rewrite the module lines in graded `results` (their checks' messages) and `import_error`
    as cells of notebook `path`; returns the rewritten import error."""
    for result in results:
        for check in result.checks:
            check.message = in_cells(check.message, path)
    return in_cells(import_error, path) if import_error else import_error
