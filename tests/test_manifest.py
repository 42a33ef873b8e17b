"""`make stubs` and `make notebooks` never destroy a student's work (grader/manifest.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grader import manifest
from grader.notebooks import write_notebooks
from grader.stubgen import write_stubs
from tests.conftest import ROOT


def test_a_fresh_folder_is_written_and_recorded(tmp_path):
    (written,) = write_stubs(target=tmp_path, numbers=[0])
    recorded = manifest.recorded(tmp_path)
    assert written.name in recorded and "__init__.py" in recorded
    assert recorded[written.name] == manifest.digest(written.read_bytes())


def test_an_untouched_stub_is_regenerated_even_when_the_solution_changed(tmp_path):
    (stub,) = write_stubs(target=tmp_path, numbers=[0])
    stub.write_text("# the stub of an older solution\n")
    manifest.save(tmp_path, {**manifest.recorded(tmp_path), stub.name: manifest.digest(b"x")})
    with pytest.raises(manifest.WouldOverwrite):  # differs from both: someone's work
        write_stubs(target=tmp_path, numbers=[0])
    old = stub.read_bytes()
    manifest.save(tmp_path, {**manifest.recorded(tmp_path), stub.name: manifest.digest(old)})
    write_stubs(target=tmp_path, numbers=[0])  # equals what was last written: replaced
    assert stub.read_bytes() != old


def test_an_edited_stub_is_refused_by_name_and_nothing_is_written(tmp_path):
    stubs = write_stubs(target=tmp_path, numbers=[0, 1])
    edited = stubs[0]
    work = edited.read_text() + "\ndef relu(x):\n    return x * (x > 0)\n"
    edited.write_text(work)
    (tmp_path / stubs[1].name).write_text("# gone\n")  # also someone's: nothing may be written
    with pytest.raises(manifest.WouldOverwrite) as refused:
        write_stubs(target=tmp_path, numbers=[0, 1])
    assert str(edited) in str(refused.value) and "FORCE=1" in str(refused.value)
    assert sorted(refused.value.paths) == sorted(stubs)
    assert edited.read_text() == work


def test_force_overwrites_and_records(tmp_path):
    (stub,) = write_stubs(target=tmp_path, numbers=[0])
    fresh = stub.read_text()
    stub.write_text("my work\n")
    write_stubs(target=tmp_path, numbers=[0], force=True)
    assert stub.read_text() == fresh
    assert manifest.recorded(tmp_path)[stub.name] == manifest.digest(fresh.encode())


def test_a_file_already_equal_to_the_new_text_needs_no_record(tmp_path):
    (stub,) = write_stubs(target=tmp_path, numbers=[0])
    (tmp_path / manifest.MANIFEST).unlink()
    assert write_stubs(target=tmp_path, numbers=[0]) == [stub]


def test_an_edited_notebook_is_refused(tmp_path):
    source = tmp_path / "exercises"
    write_stubs(target=source, numbers=[0])
    target = tmp_path / "notebooks"
    (notebook,) = write_notebooks(source, target)
    assert write_notebooks(source, target) == [notebook]  # the same bytes again: fine
    data = json.loads(notebook.read_text())
    data["cells"][1]["source"] = "def relu(x):\n    return x * (x > 0)\n"
    notebook.write_text(json.dumps(data))
    with pytest.raises(manifest.WouldOverwrite, match="ipynb"):
        write_notebooks(source, target)
    assert "return x * (x > 0)" in notebook.read_text()
    write_notebooks(source, target, force=True)
    assert "return x * (x > 0)" not in notebook.read_text()


def test_the_cli_refuses_with_exit_2_and_names_the_file(tmp_path):
    (stub,) = write_stubs(target=tmp_path, numbers=[0])
    stub.write_text("my work\n")
    run = subprocess.run(
        [sys.executable, "-m", "grader", "stubs", "--phase", "0", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert stub.name in run.stdout and "FORCE=1" in run.stdout
    assert stub.read_text() == "my work\n"


def test_the_committed_stubs_are_recorded():
    """exercises/.manifest.json lists every committed stub as last written by `make stubs`."""
    recorded = manifest.recorded(ROOT / "exercises")
    for path in (ROOT / "exercises").glob("*.py"):
        assert recorded.get(path.name) == manifest.digest(path.read_bytes()), path.name
