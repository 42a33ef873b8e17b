"""Turn what the student points at (exercises/, a .py, a .ipynb, a folder) into a package.

The result is a private temporary directory holding `submission/` with the graded phase's
module and the student's other phase modules (later phases import earlier ones relatively).
The student's files are only read, never modified.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from grader.registry import ROOT, Phase

EXERCISES = ROOT / "exercises"
MAX_SOURCE_BYTES = 2 << 20


class SubmissionError(ValueError):
    """The target cannot be graded at all (missing, unreadable, not Python)."""


def notebook_source(path: Path) -> str:
    """The code cells of a notebook joined into one module (IPython magics dropped)."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds on broken files
        raise SubmissionError(f"{path} is not a readable notebook: {exc}") from None
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            lines = [
                ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))
            ]
            cells.append("\n".join(lines))
    return "\n\n".join(cells) + "\n"


def read_source(path: Path) -> str:
    if not path.exists():
        raise SubmissionError(f"{path} does not exist")
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
    if target.is_dir():
        folder, main = target, target / phase.filename
        if not main.exists():
            raise SubmissionError(f"{target} has no {phase.filename}")
    else:
        folder, main = target.parent, target
    source = read_source(main)
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
