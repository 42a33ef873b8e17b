"""Bad targets rejected clearly (issue 9 §5): what is not Python exits 2 with a message, a file
of another phase says so, and an empty file gives one line for everything it lacks."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.registry import phase as phase_by_number
from grader.submission import SubmissionError, defined_names, nothing_defined, prepare

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


def _grade(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--phase", "0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("name", ["notes.txt", "answers.md", "phase0_foundations", "a.py.bak"])
def test_a_file_that_is_not_python_exits_2_with_a_message(name, tmp_path):
    target = tmp_path / name
    target.write_text("def relu(x):\n    return x\n")
    done = _grade("--file", str(target))
    assert done.returncode == 2
    message = " ".join(done.stdout.split())
    assert "cannot grade" in message and ".py" in message and ".zip" in message


def test_a_folder_without_the_phase_module_exits_2(tmp_path):
    done = _grade("--file", str(tmp_path))
    assert done.returncode == 2 and "phase0_foundations.py" in done.stdout


def test_a_file_of_another_phase_says_which(tmp_path):
    target = tmp_path / "my_work.py"
    target.write_text((SOLUTIONS / "phase1_rnn.py").read_text())
    done = _grade("--file", str(target))
    assert done.returncode == 2
    message = " ".join(done.stdout.split())
    assert "exercises of phase 1" in message and "PHASE=1" in message


def test_a_file_of_this_phase_is_not_refused():
    for number, module in ((0, "phase0_foundations"), (2, "phase2_attention")):
        prepare(phase_by_number(number), SOLUTIONS / f"{module}.py")


def test_an_empty_file_gives_one_line_listing_what_is_missing(tmp_path):
    target = tmp_path / "phase0_foundations.py"
    target.write_text("")
    out = tmp_path / "results.json"
    done = _grade("--file", str(target), "--json", str(out))
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert text.count("defines none of phase 0's exercises") == 1
    assert "relu" in text and "softmax" in text
    assert "has no attribute" not in text  # not one line per check
    assert json.loads(out.read_text())["score"] == 0


def test_names_defined_in_blocks_count_and_star_imports_are_unknowable():
    source = "try:\n    import numpy as np\nexcept ImportError:\n    pass\n"
    source += "if True:\n    def relu(x): ...\n"
    assert {"np", "relu"} <= defined_names(source)
    assert defined_names("from .helpers import *\n") is None
    phase = phase_by_number(0)
    assert nothing_defined("from .helpers import *\n", phase) is None
    assert nothing_defined("def relu(x):\n    return x\n", phase) is None
    assert "missing" in nothing_defined("x = 1\n", phase)
    assert nothing_defined("def (:\n", phase) is None  # a syntax error is reported as one


def test_a_zip_holding_the_module_is_graded(tmp_path):
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(SOLUTIONS / "phase0_foundations.py", "work/phase0_foundations.py")
    directory, source = prepare(phase_by_number(0), archive)
    assert (directory / "submission" / "phase0_foundations.py").read_text() == source
    assert "def relu" in source


def test_an_unsafe_zip_is_refused_with_a_message(tmp_path):
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escape/phase0_foundations.py", "def relu(x):\n    return x\n")
    with pytest.raises(SubmissionError):
        prepare(phase_by_number(0), archive)
