"""`make gradescope PHASE=n`: the autograder zip of one phase, and what runs inside Gradescope.

The zip holds, at its root (Gradescope unpacks it into /autograder/source):
    setup.sh          run once when Gradescope builds the image: a venv with the CPU build of
                      torch==2.13.0, then the grader (grader/gradescope_files/setup.sh)
    run_autograder    run for every submission: `python -m grader gradescope --phase n --run
                      /autograder`, i.e. `autograde` below
    the course        the student release's tree (grader/release.py) with the hidden checks
                      kept; still no solutions and no mutants' text
`autograde` stages /autograder/submission like any batch submission (grader/intake.py: a .py, a
notebook, a folder or a zip, unsafe ones refused), grades it with the hidden checks and writes
/autograder/results/results.json (grader/report.py): hidden checks carry `visibility:
after_due_date`, the autograder's stdout is hidden from students.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from rich.console import Console

from grader import intake, release
from grader.registry import ROOT, Phase
from grader.submission import SubmissionError

TEMPLATES = Path(__file__).parent / "gradescope_files"
EXECUTABLE = 0o100755 << 16
FILE = 0o100644 << 16
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same course gives the same zip


def build(phase: Phase, out: Path | None = None) -> Path:
    """Write the autograder zip of `phase`; returns its path."""
    out = Path(out or ROOT / "build" / f"gradescope-phase{phase.number}.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gradschool-gradescope-") as scratch:
        # this phase and the earlier ones its prerequisites may come from
        earlier = [n for n in release.default_phases() if n <= phase.number]
        tree = release.build(Path(scratch) / "source", phases=earlier, hidden=True, git=False)
        for template in TEMPLATES.iterdir():
            text = template.read_text().replace("{phase}", str(phase.number))
            (tree / template.name).write_text(text)
        temporary = out.with_suffix(".tmp")
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in tree.rglob("*") if p.is_file()):
                name = path.relative_to(tree).as_posix()
                info = zipfile.ZipInfo(name, EPOCH)
                info.external_attr = EXECUTABLE if name in _scripts() else FILE
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
        temporary.replace(out)
    return out


def _scripts() -> set[str]:
    return {p.name for p in TEMPLATES.iterdir()}


def autograde(phase: Phase, root: Path, console: Console | None = None) -> Path:
    """Grade root/submission with the hidden checks into root/results/results.json."""
    from grader.report import render_terminal, write_json
    from grader.runner import grade

    root = Path(root)
    results = root / "results" / "results.json"
    scratch = Path(tempfile.mkdtemp(prefix="gradschool-autograde-"))
    try:
        folder = intake.stage(root / "submission", phase, scratch / "submission")
        result = grade(phase, folder, hidden=True)
    except (intake.Rejected, SubmissionError) as error:
        write_rejection(phase, str(error).replace(str(scratch), "…"), results)
        return results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_json(result, results)
    render_terminal(result, console, details=True)  # stdout: for the instructor only
    return results


def write_rejection(phase: Phase, message: str, path: Path) -> None:
    """A results.json for a submission that could not be graded: 0 points and the reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "score": 0.0,
        "max_score": float(phase.max_points),
        "output": f"Phase {phase.number} — {phase.title}: not graded. {message}",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
    }
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False), encoding="utf-8")
