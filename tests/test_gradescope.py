"""`make gradescope PHASE=n`: the autograder zip, rehearsed in a simulated /autograder tree."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from grader import gradescope
from tests.conftest import SOLUTION0, STUB0
from tests.test_hostile import HOSTILE


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory, phase0):
    return gradescope.build(phase0, tmp_path_factory.mktemp("gs") / "autograder.zip")


def test_the_zip_has_gradescopes_scripts_at_its_root_and_no_solutions(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        setup = archive.read("setup.sh").decode()
        run = archive.read("run_autograder").decode()
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} must be executable"
    assert "grader/tests/phase0/hidden.py" in names  # hidden checks run on Gradescope
    assert "grader/gradescope.py" in names
    assert not [n for n in names if n.startswith("solutions/")]
    assert not [n for n in names if n.startswith(("grader/tests/phase6", "grader/tests/phase1"))]
    assert "torch==2.13.0" in setup and "-e" in setup
    assert "--index-url" not in setup and "http" not in setup
    assert setup.index("torch==2.13.0") < setup.index('-e "$ROOT/source"')
    assert "--phase 0 --run" in run


def _rehearse(autograder_zip, root, submission_files):
    """Lay out /autograder as Gradescope does, then run run_autograder from it."""
    source = root / "source"
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(source)
    shutil.copyfile(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for name, path in submission_files.items():
        shutil.copyfile(path, root / "submission" / name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    run = subprocess.run(
        ["bash", str(root / "run_autograder")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def _hidden_tests(results):
    return [t for t in results["tests"] if t["visibility"] == "after_due_date"]


@pytest.mark.slow
def test_the_solution_scores_full_marks_hidden_checks_included(autograder_zip, tmp_path):
    results = _rehearse(autograder_zip, tmp_path, {"phase0_foundations.py": SOLUTION0})
    assert results["score"] == results["max_score"] == 100
    assert results["stdout_visibility"] == "hidden" and results["visibility"] == "visible"
    assert len(_hidden_tests(results)) == 3
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "tags", "visibility"} <= set(test)
        assert test["status"] == "passed"


@pytest.mark.slow
def test_a_stub_uploaded_under_another_name_scores_zero(autograder_zip, tmp_path):
    results = _rehearse(autograder_zip, tmp_path, {"my_homework.py": STUB0})
    assert results["score"] == 0 and results["tests"]
    assert all(t["status"] == "failed" for t in results["tests"])
    assert len(_hidden_tests(results)) == 3


@pytest.mark.slow
def test_a_hostile_submission_cannot_write_its_own_results(autograder_zip, tmp_path):
    results = _rehearse(
        autograder_zip, tmp_path, {"phase0_foundations.py": HOSTILE / "fake_output.py"}
    )
    assert results["score"] == 0
    assert len(results["tests"]) > 1 and len(_hidden_tests(results)) == 3
    assert not (tmp_path / "submission" / "results.json").exists()
