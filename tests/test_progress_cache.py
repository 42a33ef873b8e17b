"""`make progress` grades only the phases whose files changed (issue 13, item 5)."""

from __future__ import annotations

import shutil

import pytest
from rich.console import Console

from grader import progress as progress_module
from grader import registry
from grader.progress import Row, load_cache, progress


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A copy of exercises/, a tiny fake grader tree and a grade that records what it grades."""
    exercises = tmp_path / "exercises"
    shutil.copytree(progress_module.EXERCISES, exercises)
    grader = tmp_path / "grader"
    (grader / "tests" / "phase3").mkdir(parents=True)
    (grader / "runner.py").write_text("core")
    (grader / "tests" / "phase3" / "checks.py").write_text("phase 3 checks")
    graded: list[int] = []

    def fake_grade(phase, target):
        graded.append(phase.number)
        return Row(float(phase.number), 10.0, f"hint {phase.number}", None)

    monkeypatch.setattr(progress_module, "EXERCISES", exercises)
    monkeypatch.setattr(progress_module, "GRADER", grader)
    monkeypatch.setattr(progress_module, "grade_row", fake_grade)
    cache = tmp_path / ".gradschool" / "progress.json"

    def run() -> tuple[list[int], str]:
        graded.clear()
        console = Console(record=True, width=200)
        progress(console, cache=cache)
        return list(graded), console.export_text()

    return run, exercises, grader, cache


ALL = [p.number for p in registry.phases().values()]


def test_unchanged_files_are_not_graded_again(world):
    run, *_ = world
    first, text = run()
    assert first == ALL
    second, cached_text = run()
    assert second == [] and cached_text == text  # the same table, from the cache


def test_an_edited_phase_regrades_it_and_the_phases_that_may_import_it(world):
    run, exercises, _, _ = world
    run()
    module = exercises / registry.phase(6).filename
    module.write_text(module.read_text() + "\n# my edit\n")
    assert run()[0] == [n for n in ALL if n >= 6]


def test_a_changed_grader_regrades(world):
    run, _, grader, _ = world
    run()
    (grader / "tests" / "phase3" / "checks.py").write_text("phase 3 checks, corrected")
    assert run()[0] == [n for n in ALL if n >= 3]  # phase 3's checks: phases 3 and later
    (grader / "runner.py").write_text("a new core")
    assert run()[0] == ALL


@pytest.mark.parametrize(
    "content", ["", "{not json", "[]", '{"phases": {"0": {"key": 3}}}', '{"phases": {"0": 1}}']
)
def test_a_corrupt_cache_is_ignored_and_rewritten(world, content):
    run, _, _, cache = world
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(content)
    assert run()[0] == ALL
    assert set(load_cache(cache)) == {str(n) for n in ALL}
    assert run()[0] == []
