"""Notebooks are first-class (issue 13, item 3): theory before exercises, kernel metadata, check()
cells that grading ignores, errors located by cell, FILE= for progress, edits kept."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from rich.console import Console

from grader import notebook as helper
from grader import progress as progress_module
from grader import registry
from grader.manifest import WouldOverwrite
from grader.notebooks import CURRICULUM, cells_of, theory, write_notebooks
from grader.progress import Row
from grader.registry import ROOT
from grader.submission import notebook_source

SOLUTION = (ROOT / "solutions" / "phase0_foundations.py").read_text()


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("notebooks")
    write_notebooks(target=target, force=True)
    return target


def test_each_section_opens_with_its_curriculum_theory(written):
    sections = theory(CURRICULUM.read_text())
    notebook = nbformat.read(written / "phase0_foundations.ipynb", as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    markdown = [c.source for c in notebook.cells if c.cell_type == "markdown"]
    assert sections["0.3"] in markdown and sections["0.3"].startswith("### §0.3 ")
    position = {c.source: i for i, c in enumerate(notebook.cells)}
    first_code = next(i for i, c in enumerate(notebook.cells) if "def softmax(" in c.source)
    assert position[sections["0.3"]] < first_code  # theory before the exercise
    check = next(i for i, c in enumerate(notebook.cells) if c.source == 'check("softmax")')
    assert first_code < check < position[sections["0.4"]]  # the check closes its section


def test_every_exercise_has_one_check_cell(written):
    for phase in registry.phases().values():
        path = written / f"{phase.module}.ipynb"
        if not path.exists():
            continue
        sources = [c.source for c in nbformat.read(path, as_version=4).cells]
        for exercise in phase.exercises:
            assert sources.count(f'check("{exercise.id}")') == 1, (phase.module, exercise.id)


def test_theory_ends_at_the_next_heading_and_skips_fenced_code():
    text = "### §1.1 A\ntext\n```python\n# not a heading\n```\n#### §1.1.1 B\nsub\n### §1.2 C\nc\n"
    sections = theory(text)
    assert sections["1.1"].endswith("#### §1.1.1 B\nsub") and "# not a heading" in sections["1.1"]
    assert sections["1.1.1"] == "#### §1.1.1 B\nsub" and sections["1.2"] == "### §1.2 C\nc"


def test_check_lines_are_not_graded(tmp_path):
    path = _notebook(tmp_path, SOLUTION)
    source = notebook_source(path)
    assert "from grader.notebook import check" not in source and 'check("' not in source
    assert "def softmax(" in source


def _notebook(tmp_path: Path, source: str, name: str = "phase0_foundations") -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# mine"),
        nbformat.v4.new_code_cell("from grader.notebook import check"),
        *cells_of(source),
        nbformat.v4.new_code_cell('check("activations")'),
    ]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def test_joined_lines_map_back_to_their_cells(tmp_path):
    path = _notebook(tmp_path, SOLUTION)
    joined = notebook_source(path).splitlines()
    cells = nbformat.read(path, as_version=4).cells
    where = helper.code_lines(path)
    assert len(where) == len(joined)
    for line, (cell, in_cell) in zip(joined, where, strict=True):
        if in_cell:
            assert cells[cell - 1].source.splitlines()[in_cell - 1] == line
        else:
            assert line == ""


def test_a_graded_notebook_reports_errors_by_cell_and_check_shows_it(tmp_path, capsys):
    broken = SOLUTION.replace(
        "    return np.maximum(x, 0)\n", "    return np.maximum(x, 0) + undefined_name\n", 1
    )
    assert broken != SOLUTION
    path = _notebook(tmp_path, broken)
    cells = nbformat.read(path, as_version=4).cells
    cell = next(i for i, c in enumerate(cells, 1) if "undefined_name" in c.source)
    line = cells[cell - 1].source.splitlines().index("    return np.maximum(x, 0) + undefined_name")
    result = helper.check("activations", path=path)
    shown = capsys.readouterr().out
    assert 0 < result.score < result.max_score
    assert f"phase0_foundations.ipynb cell {cell}, line {line + 1}" in shown, shown
    assert "NameError" in shown


def test_check_finds_the_notebook_of_the_exercise(tmp_path, monkeypatch):
    path = _notebook(tmp_path, SOLUTION)
    monkeypatch.chdir(tmp_path)
    assert helper.notebook_for("softmax") == (path, 0)
    with pytest.raises(ValueError, match="name"):
        helper.notebook_for(None, tmp_path / "notes.ipynb")


def test_progress_grades_a_notebook_in_place_of_its_module(tmp_path, monkeypatch):
    path = _notebook(tmp_path, SOLUTION)
    targets = {}

    def fake_grade(phase, target):
        targets[phase.number] = target
        return Row(1.0, 1.0, "done", None)

    monkeypatch.setattr(progress_module, "grade_row", fake_grade)
    progress_module.progress(Console(file=None), path, cache=tmp_path / "cache.json")
    assert targets[0] == path and all(t is None for n, t in targets.items() if n)


def test_an_edited_notebook_is_kept_unless_forced(tmp_path):
    write_notebooks(target=tmp_path)
    path = tmp_path / "phase0_foundations.ipynb"
    path.write_text(path.read_text().replace("Fill in every", "My notes. Fill in every"))
    with pytest.raises(WouldOverwrite):
        write_notebooks(target=tmp_path)
    assert "My notes." in path.read_text()
    write_notebooks(target=tmp_path, force=True)
    assert "My notes." not in path.read_text()


def test_every_curriculum_pointer_finds_its_heading():
    """A report's "curriculum.md §0.2" is found by searching the file for "§0.2"."""
    headings = {line for line in CURRICULUM.read_text().splitlines() if line.startswith("#")}
    for phase in registry.phases().values():
        for exercise in phase.exercises:
            pointer = exercise.reading.split(" ", 1)[1]
            assert any(h.split(" ", 2)[1:2] == [pointer] for h in headings), exercise.id
