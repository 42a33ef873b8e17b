"""End-to-end grading of phase 0 through the CLI contract of SPEC §1."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from grader.runner import grade
from tests.conftest import ROOT, SOLUTION0, STUB0


def test_solution_scores_full_marks(solution_result):
    failing = [
        f"{e.exercise.id}/{c.spec.name}: {c.message}"
        for e in solution_result.exercises
        for c in e.failures
    ]
    assert failing == []
    assert solution_result.score == solution_result.max_score == 100


def test_every_stub_check_fails_as_not_implemented(stub_result):
    assert stub_result.score == 0
    kinds = {c.kind for e in stub_result.exercises for c in e.checks}
    assert kinds == {"not_implemented"}
    assert all(e.status == "not implemented yet" for e in stub_result.exercises)


def test_grading_twice_gives_identical_results(phase0, solution_result):
    again = grade(phase0, SOLUTION0)
    assert [(e.exercise.id, e.score, [c.kind for c in e.checks]) for e in again.exercises] == [
        (e.exercise.id, e.score, [c.kind for c in e.checks]) for e in solution_result.exercises
    ]


def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_writes_gradescope_results(tmp_path):
    out = tmp_path / "r.json"
    run = _cli(
        "grade",
        "--phase",
        "0",
        "--file",
        str(SOLUTION0),
        "--json",
        str(out),
        "--exercise",
        "softmax",
        "--exercise",
        "regularization",
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert results["score"] == results["max_score"] == 12
    assert {"score", "max_score", "execution_time", "output", "tests", "extra_data"} <= set(results)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "tags"} <= set(test)
        assert test["status"] == "passed" and test["tags"][0] in ("softmax", "regularization")
    assert set(results["extra_data"]["exercises"]) == {"softmax", "regularization"}


def test_cli_on_the_stub_exits_zero_with_zero_points(tmp_path):
    out = tmp_path / "r.json"
    run = _cli("grade", "--phase", "0", "--json", str(out), "--exercise", "softmax")
    assert run.returncode == 0, run.stderr
    assert "not implemented yet" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    results = json.loads(out.read_text())
    assert results["score"] == 0 and results["max_score"] == 8
    assert all(t["status"] == "failed" for t in results["tests"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["grade", "--phase", "42"], "there is no phase 42"),
        (["grade", "--phase", "0", "--exercise", "nope"], "has no exercise 'nope'"),
        (["grade", "--phase", "0", "--file", "/no/such/file.py"], "does not exist"),
    ],
)
def test_cli_exits_2_when_it_cannot_grade(args, message):
    run = _cli(*args)
    assert run.returncode == 2
    assert message in run.stdout + run.stderr


def test_a_notebook_is_graded_like_its_code(phase0, tmp_path):
    source = SOLUTION0.read_text()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Phase 0"),
        nbformat.v4.new_code_cell("%matplotlib inline"),
        nbformat.v4.new_code_cell(source),
    ]
    path = tmp_path / "phase0_foundations.ipynb"
    nbformat.write(notebook, path)
    result = grade(phase0, path, exercises=["softmax", "layernorm"])
    assert result.score == result.max_score == 16


def test_a_folder_submission_is_graded(phase0, tmp_path):
    (tmp_path / "phase0_foundations.py").write_text(SOLUTION0.read_text())
    result = grade(phase0, tmp_path, exercises=["dropout"])
    assert result.score == 6


def test_known_mistake_is_named(phase0, tmp_path):
    source = SOLUTION0.read_text().replace(
        "e = np.exp(x - x.max(axis=axis, keepdims=True))", "e = np.exp(x)"
    )
    path = tmp_path / "phase0_foundations.py"
    path.write_text(source)
    result = grade(phase0, path, exercises=["softmax"])
    softmax = result.exercises[0]
    assert 0 < softmax.score < softmax.max_score
    assert any("stable" in c.spec.name or "1e4" in c.spec.description for c in softmax.failures)


def test_prerequisite_failures_are_named(phase0, tmp_path):
    source = SOLUTION0.read_text().replace("return dout * (x > 0)", "return dout")
    path = tmp_path / "phase0_foundations.py"
    path.write_text(source)
    result = grade(phase0, path, exercises=["activations", "mlp"])
    mlp = next(e for e in result.exercises if e.exercise.id == "mlp")
    assert mlp.blocked_by == ["activations"]


def test_the_student_file_is_never_modified(phase0):
    before = STUB0.read_bytes()
    grade(phase0, STUB0, exercises=["activations"])
    assert STUB0.read_bytes() == before


def test_generated_notebooks_grade_like_the_modules(phase0, tmp_path):
    from grader.notebooks import write_notebooks

    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / phase0.filename).write_text(SOLUTION0.read_text())
    (path,) = write_notebooks(solutions, tmp_path / "notebooks")
    notebook = nbformat.read(path, as_version=4)
    assert sum(c.cell_type == "code" for c in notebook.cells) > 20
    assert grade(phase0, path, exercises=["batchnorm"]).score == 12


def test_junit_and_markdown_reports(tmp_path):
    import xml.etree.ElementTree as ET

    broken = tmp_path / "phase0_foundations.py"
    broken.write_text(SOLUTION0.read_text().replace("return dout * (x > 0)", "return dout"))
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    run = _cli("grade", "--phase", "0", "--file", str(broken), "--exercise", "activations",
               "--junit", str(junit), "--markdown", str(markdown))
    assert run.returncode == 0, run.stderr
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert failures and all(f.text for f in failures)
    text = markdown.read_text()
    assert "| activations |" in text and "relu_backward" in text
