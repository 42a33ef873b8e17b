"""`make notebooks`: the same exercises as Jupyter notebooks, gradable with FILE=….

Each stub becomes notebooks/<module>.ipynb (Python 3 kernel metadata): at each section comment
(`# ---- 0.3 Softmax ----`) the section's theory from curriculum.md (§0.3, as markdown), then a
code cell per top-level definition, so a student fills in one function per cell, then a
`check("id")` cell per exercise of the section, which grades the saved notebook and shows the
result inline (grader/notebook.py). Grading joins the code cells back into the module, less the
check lines (grader/submission.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from grader.manifest import write_generated
from grader.registry import ROOT, Phase, phases
from grader.submission import EXERCISES

NOTEBOOKS = ROOT / "notebooks"
CURRICULUM = ROOT / "curriculum.md"
SECTION = re.compile(r"^# -{2,} (.+?) -*$")
NUMBER = re.compile(r"^(\d+(?:\.\d+)+)\b")
HEADING = re.compile(r"^(#{1,6}) (?:§(\d+(?:\.\d+)+) )?")
KERNEL = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}
SETUP = 'from grader.notebook import check  # check("id") grades this saved notebook'


def theory(markdown: str) -> dict[str, str]:
    """{"0.3": the text of curriculum section §0.3, its heading included} for every numbered
    section, up to the next heading of the same or a higher level (fenced code is skipped)."""
    sections: dict[str, str] = {}
    open_: list[tuple[str, int, list[str]]] = []  # (number, level, lines) being collected
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            while open_ and open_[-1][1] >= level:
                number, _, lines = open_.pop()
                sections[number] = "\n".join(lines).strip()
            if heading.group(2):
                open_.append((heading.group(2), level, []))
        for _, _, lines in open_:
            lines.append(line)
    for number, _, lines in open_:
        sections[number] = "\n".join(lines).strip()
    return sections


def cells_of(source: str, sections: dict[str, str] | None = None) -> list:
    """Split a module into notebook cells at top-level statements and section comments; with
    `sections` (theory()), a section comment becomes that section's theory as markdown."""
    sections = sections or {}
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
            number = NUMBER.match(heading.group(1))
            text = (number and sections.get(number.group(1))) or f"## {heading.group(1)}"
            cells.append(nbformat.v4.new_markdown_cell(text))
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


def with_checks(cells: list, phase: Phase, sections: dict[str, str]) -> list:
    """`cells` with a `check("id")` cell after the cell that defines each exercise's last symbol,
    and the theory of an exercise's section before its first symbol when no section comment
    brought it there."""
    defines: list[set[str]] = []
    for cell in cells:
        try:
            body = ast.parse(cell.source).body if cell.cell_type == "code" else []
        except SyntaxError:
            body = []
        defines.append({getattr(node, "name", "") for node in body})
    after: dict[int, list[str]] = {}
    before: dict[int, list[str]] = {}
    shown = {c.source for c in cells if c.cell_type == "markdown"}
    for exercise in phase.exercises:
        places = [i for i, names in enumerate(defines) if names & set(exercise.symbols)]
        if not places:
            continue
        after.setdefault(places[-1], []).append(exercise.id)
        text = sections.get(exercise.anchor)
        if text and text not in shown:
            shown.add(text)
            before.setdefault(places[0], []).append(text)
    out = []
    for index, cell in enumerate(cells):
        out += [nbformat.v4.new_markdown_cell(text) for text in before.get(index, [])]
        out.append(cell)
        out += [nbformat.v4.new_code_cell(f'check("{e}")') for e in after.get(index, [])]
    return out


def _is_import_run(chunk: list[str], line: str) -> bool:
    return line.startswith(("import ", "from ")) and chunk[-1].startswith(("import ", "from "))


def write_notebooks(
    source_dir: Path = EXERCISES, target: Path = NOTEBOOKS, force: bool = False
) -> list[Path]:
    """One notebook per phase module of `source_dir`; a notebook a student has edited is never
    overwritten (grader/manifest.py) unless `force`."""
    files = {}
    sections = theory(CURRICULUM.read_text()) if CURRICULUM.exists() else {}
    for phase in phases().values():
        module = source_dir / phase.filename
        if not module.exists():
            continue
        notebook = nbformat.v4.new_notebook(metadata=KERNEL)
        intro = (
            f"# Phase {phase.number} — {phase.title}\n\nFill in every "
            f'`raise NotImplementedError(...)`, save (Ctrl-S), and run a `check("id")` cell: '
            f"it grades the saved notebook and shows the result here. Or grade it all with\n"
            f"`make grade PHASE={phase.number} FILE=notebooks/{phase.module}.ipynb`. "
            f"The theory is curriculum.md's, section by section."
        )
        notebook.cells = [
            nbformat.v4.new_markdown_cell(intro),
            nbformat.v4.new_code_cell(SETUP),
            *with_checks(cells_of(module.read_text(), sections), phase, sections),
        ]
        for index, cell in enumerate(notebook.cells):
            cell.id = f"cell-{index}"  # fixed ids: the same stub gives the same notebook bytes
        files[target / f"{phase.module}.ipynb"] = nbformat.writes(notebook) + "\n"
    return write_generated(files, force)
