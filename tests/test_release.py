"""`make release OUT=dir`: the student bundle holds no solution and grades like the course."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from grader import mutants, registry, release
from grader.runner import grade
from tests.conftest import ROOT, SOLUTION0

PHASES = [0, 1, 2, 3, 4, 5]  # the phases that are complete; later ones are still being written
INSTRUCTOR_FILES = ["verify.py", "stubgen.py", "release.py", "batch.py", "gradescope.py"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return release.build(tmp_path_factory.mktemp("release") / "course", phases=PHASES)


@pytest.fixture(scope="module")
def clone(bundle, tmp_path_factory):
    target = tmp_path_factory.mktemp("clone") / "course"
    subprocess.run(["git", "clone", "-q", str(bundle), str(target)], check=True)
    return target


def _make(clone, *args, timeout=600):
    return subprocess.run(
        ["make", "-s", *args, f"PY={sys.executable}"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_no_line_of_a_solution_region_is_in_the_bundle(bundle):
    assert release.secret_lines(), "the rule must leave lines to look for"
    assert release.leaks(bundle) == []


def test_the_leak_rule_finds_a_copied_solution_line_and_only_computing_lines(tmp_path):
    lines = (ROOT / "solutions" / "phase0_foundations.py").read_text().splitlines()
    copied = next(ln for ln in lines if "np.exp(-np.abs(x))" in ln)
    (tmp_path / "notes.py").write_text(f"def f(x):\n    {copied.strip()}  # (N,)\n    return x\n")
    (found,) = release.leaks(tmp_path)
    assert found.startswith("notes.py:2 = phase0_foundations.py:")
    assert release.normalise("    e = np.exp(-np.abs(x))  # why") == "e = np.exp(-np.abs(x))"


def test_the_bundle_ships_no_solutions_mutant_text_hidden_checks_or_instructor_code(bundle):
    assert not (bundle / "solutions").exists()
    for name in INSTRUCTOR_FILES:
        assert not (bundle / "grader" / name).exists(), name
    assert not (bundle / "grader" / "mutation").exists()
    assert not list((bundle / "grader" / "tests").rglob("hidden*.py"))
    for number in PHASES:
        shipped = bundle / "grader" / "mutants" / f"phase{number}" / "mutants.toml"
        kept = tomllib.loads(shipped.read_text())["mutant"]
        assert all(set(m) == {"id", "exercise", "why"} for m in kept)
        assert [m["id"] for m in kept] == [m.id for m in mutants.load(registry.phase(number))]
    counts = tomllib.loads((bundle / "grader/tests/phase0/hidden.toml").read_text())["hidden"]
    assert sum(counts.values()) == 3
    assert sorted(p.name for p in (bundle / "exercises").glob("phase*.py")) == sorted(
        registry.phase(n).filename for n in PHASES
    )


def test_a_release_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        release.build(tmp_path, phases=[0])
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_a_fresh_clone_grades_like_the_course(clone, phase0, tmp_path):
    where = subprocess.run(
        [sys.executable, "-c", "import grader; print(grader.__file__)"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(clone)), "the clone must grade with its own grader"

    stub = _make(clone, "grade", "PHASE=0")
    assert stub.returncode == 0, stub.stderr
    assert "Total: 0 / 100 points" in stub.stdout, stub.stdout
    assert "hidden checks: 3" in stub.stdout

    # a student's partly right work: the solution with one known mistake
    mutant = next(m for m in mutants.load(phase0) if m.id == "softmax_no_max_shift")
    work = mutant.apply(SOLUTION0.read_text())
    (clone / "exercises" / "phase0_foundations.py").write_text(work)
    graded = _make(clone, "grade", "PHASE=0", "JSON=results.json")
    assert graded.returncode == 0, graded.stderr
    there = json.loads((clone / "results.json").read_text())["extra_data"]["exercises"]

    (tmp_path / "phase0_foundations.py").write_text(work)
    here = grade(phase0, tmp_path / "phase0_foundations.py")
    assert here.withheld == 3
    assert {id: (e["score"], e["mistake"]) for id, e in there.items()} == {
        e.exercise.id: (e.score, e.mistake) for e in here.exercises
    }
    assert there["softmax"]["mistake"] == mutant.why and there["softmax"]["score"] < 8


@pytest.mark.slow
def test_the_clone_runs_its_own_tests_and_refuses_instructor_commands(clone):
    tests = _make(clone, "test")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "passed" in tests.stdout
    for command in (["verify"], ["stubs"], ["fixtures"], ["release", "--out", "x"]):
        refused = subprocess.run(
            [sys.executable, "-m", "grader", *command],
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2
        assert "instructor command" in refused.stdout
