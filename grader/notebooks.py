"""`make notebooks`: the same exercises as Jupyter notebooks, gradable with FILE=….

Each stub becomes notebooks/<module>.ipynb: a markdown cell per section comment
(`# ---- 0.3 Softmax ----`) and a code cell per top-level definition, so a student fills in one
function per cell. Grading joins the code cells back into the module (grader/submission.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from grader.manifest import write_generated
from grader.registry import ROOT, phases
from grader.submission import EXERCISES

NOTEBOOKS = ROOT / "notebooks"
SECTION = re.compile(r"^# -{2,} (.+?) -*$")


def cells_of(source: str) -> list:
    """Split a module into notebook cells at top-level statements and section comments."""
    lines = source.splitlines()
    starts = sorted(
        {
            node.lineno - 1 - len(getattr(node, "decorator_list", []))
            for node in ast.parse(source).body
        }
    )
    cells, chunk = [], []

    def flush() -> None:
        text = "\n".join(chunk).strip("\n")
        if text:
            cells.append(nbformat.v4.new_code_cell(text))
        chunk.clear()

    for index, line in enumerate(lines):
        heading = SECTION.match(line)
        if heading:
            flush()
            cells.append(nbformat.v4.new_markdown_cell(f"## {heading.group(1)}"))
            continue
        if (
            index in starts
            and chunk
            and any(ln.strip() for ln in chunk)
            and not _is_import_run(chunk, lines[index])
        ):
            flush()
        chunk.append(line)
    flush()
    return cells


def _is_import_run(chunk: list[str], line: str) -> bool:
    return line.startswith(("import ", "from ")) and chunk[-1].startswith(("import ", "from "))


def write_notebooks(
    source_dir: Path = EXERCISES, target: Path = NOTEBOOKS, force: bool = False
) -> list[Path]:
    """One notebook per phase module of `source_dir`; a notebook a student has edited is never
    overwritten (grader/manifest.py) unless `force`."""
    files = {}
    for phase in phases().values():
        module = source_dir / phase.filename
        if not module.exists():
            continue
        notebook = nbformat.v4.new_notebook()
        intro = (
            f"# Phase {phase.number} — {phase.title}\n\nFill in every "
            f"`raise NotImplementedError(...)`, then grade this notebook with\n"
            f"`make grade PHASE={phase.number} FILE=notebooks/{phase.module}.ipynb`."
        )
        notebook.cells = [nbformat.v4.new_markdown_cell(intro), *cells_of(module.read_text())]
        for index, cell in enumerate(notebook.cells):
            cell.id = f"cell-{index}"  # fixed ids: the same stub gives the same notebook bytes
        files[target / f"{phase.module}.ipynb"] = nbformat.writes(notebook) + "\n"
    return write_generated(files, force)
