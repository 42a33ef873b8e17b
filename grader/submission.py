"""Turn what the student points at (exercises/, a .py, a .ipynb, a folder, a .zip) into a package.

The result is a private temporary directory holding `submission/` with the graded phase's
module and the student's other phase modules (later phases import earlier ones relatively).
The student's files are only read, never modified.

Bad targets are refused before anything runs, with one message (SubmissionError; the CLI exits
2): a file of another kind (notes.txt), and a file whose top-level definitions are all another
phase's exercises (phase1_rnn.py graded as phase 0). A file that defines none of the phase's
exercises at all (an empty file) is graded, and `nothing_defined` gives the one line that
stands for all its failures.
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
from pathlib import Path

from grader.registry import ROOT, Phase, phases

EXERCISES = ROOT / "exercises"
MAX_SOURCE_BYTES = 2 << 20
GRADABLE = (".py", ".ipynb", ".zip")


class SubmissionError(ValueError):
    """The target cannot be graded at all (missing, unreadable, not Python)."""


# notebook lines that are not part of the graded module: IPython magics and shell escapes, and
# the grading helper (grader/notebook.py: `from grader.notebook import check`, `check("id")`)
NOT_GRADED = re.compile(r"^\s*[%!]|^from grader\.notebook import check\b|^check\(")


def graded_line(line: str) -> bool:
    return not NOT_GRADED.match(line)


def notebook_source(path: Path) -> str:
    """The code cells of a notebook joined into one module (the lines `graded_line` refuses
    dropped)."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds on broken files
        raise SubmissionError(f"{path} is not a readable notebook: {exc}") from None
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            lines = [ln for ln in cell.source.splitlines() if graded_line(ln)]
            cells.append("\n".join(lines))
    return "\n\n".join(cells) + "\n"


def read_source(path: Path) -> str:
    if not path.exists():
        raise SubmissionError(f"{path} does not exist")
    if path.suffix not in (".py", ".ipynb"):
        raise SubmissionError(
            f"{path} is not a Python file: grade a .py, a .ipynb notebook, a folder holding "
            f"the phase module, or a .zip of one"
        )
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise SubmissionError(f"{path} is larger than {MAX_SOURCE_BYTES >> 20} MiB")
    if path.suffix == ".ipynb":
        return notebook_source(path)
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise SubmissionError(f"{path} cannot be read as UTF-8 text: {exc}") from None


def prepare(phase: Phase, target: Path | None = None) -> tuple[Path, str]:
    """Copy the submission into a fresh directory; returns (directory, graded module source).

    `target` is None (exercises/), a file (.py or .ipynb) for this phase, or a folder holding
    the phase module. Earlier phases come from the same folder, else from exercises/.
    """
    target = Path(target) if target is not None else EXERCISES
    if target.is_file() and target.suffix not in GRADABLE:
        raise SubmissionError(
            f"{target}: cannot grade a {target.suffix or 'suffix-less'} file; give a .py, a "
            f".ipynb notebook, a folder holding {phase.filename}, or a .zip of one"
        )
    if target.suffix == ".zip" and target.is_file():
        return _prepare_zip(phase, target)
    if target.is_dir():
        folder, main = target, target / phase.filename
        if not main.exists():
            raise SubmissionError(f"{target} has no {phase.filename}")
    else:
        folder, main = target.parent, target
    source = read_source(main)
    _refuse_other_phase(main, source, phase)
    directory = Path(tempfile.mkdtemp(prefix="gradschool-submission-"))
    package = directory / "submission"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for other_folder in (EXERCISES, folder):  # the submission's own folder wins
        if other_folder.is_dir():
            for other in other_folder.glob("phase*.py"):
                if other.name != phase.filename and other.stat().st_size <= MAX_SOURCE_BYTES:
                    shutil.copyfile(other, package / other.name)
    (package / phase.filename).write_text(source, encoding="utf-8")
    return directory, source


def _prepare_zip(phase: Phase, archive: Path) -> tuple[Path, str]:
    """A .zip is unpacked by grader.intake (which refuses zip-slip, bombs, links), then graded
    as the folder it holds."""
    from grader.intake import stage

    unpacked = Path(tempfile.mkdtemp(prefix="gradschool-zip-"))
    try:
        folder = stage(archive, phase, unpacked)
        return prepare(phase, folder)
    except ValueError as error:
        raise SubmissionError(str(error)) from None
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def defined_names(source: str) -> set[str] | None:
    """Names `source` defines at module level, in `if`/`try`/`with` blocks too (parsed, never
    run); None when a `from … import *` makes them unknowable."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    blocks = list(tree.body)
    while blocks:
        node = blocks.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                blocks += getattr(node, field, [])
        elif isinstance(node, ast.ExceptHandler):
            blocks += node.body
    return names


def _symbols(phase: Phase) -> set[str]:
    return {symbol for exercise in phase.exercises for symbol in exercise.symbols}


def _refuse_other_phase(path: Path, source: str, phase: Phase) -> None:
    """A file defining none of this phase's exercises but some of another phase's is refused."""
    names = defined_names(source)
    if not names or names & _symbols(phase):  # None (a star import) or nothing: graded as is
        return
    for other in phases().values():
        found = sorted(names & _symbols(other))
        if other.number != phase.number and found:
            raise SubmissionError(
                f"{path} defines {', '.join(found[:4])}{'…' if len(found) > 4 else ''}: "
                f"exercises of phase {other.number} ({other.title}), none of phase "
                f"{phase.number}'s. Grade it with `make grade PHASE={other.number} FILE={path}`."
            )


def nothing_defined(source: str, phase: Phase) -> str | None:
    """One line for a file defining none of the phase's exercises (None when it defines some)."""
    names = defined_names(source)
    if names is None or names & _symbols(phase) or _syntax_error(source):
        return None
    missing = [exercise.symbols[0] for exercise in phase.exercises if exercise.symbols]
    return (
        f"your file defines none of phase {phase.number}'s exercises; missing: "
        f"{', '.join(missing)} (start from exercises/{phase.filename})"
    )


def _syntax_error(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return True
    return False
