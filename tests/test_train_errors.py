"""`make train` explains what went wrong (issue 13, item 4): the student's traceback and exit 1,
no empty run folder, a clear offline message and exit 2, advice on diverged or chance runs."""

from __future__ import annotations

import sys

import nbformat
import pytest

from grader import capstones, cli
from grader.capstones import fashion_rnn
from grader.notebooks import cells_of
from grader.registry import ROOT

SOLUTION = (ROOT / "solutions" / "phase0_foundations.py").read_text()
BROKEN_MAKE_MLP = """

def make_mlp(sizes, rng=None):
    widths = list(sizes)
    return widths[0] / (widths[0] - 2)  # my bug
"""
NAN_TRAINING = """

def train_classifier(model, X, y, lr=0.1, steps=1, batch_size=None, rng=None):
    return [float("nan")] * steps
"""
CONSTANT_MODEL = """

class _Constant:
    def forward(self, x):
        import numpy
        return numpy.zeros((len(x), 2))


def make_mlp(sizes, rng=None):
    return _Constant()


def train_classifier(model, X, y, lr=0.1, steps=1, batch_size=None, rng=None):
    return [0.69] * steps
"""


@pytest.fixture(autouse=True)
def _restore_student_folder(monkeypatch):
    """`--file` imports a prepared `submission` package: each test gets a fresh one."""
    monkeypatch.setattr(capstones, "STUDENT", capstones.STUDENT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [m for m in sys.modules if m == "submission" or m.startswith("submission.")]:
        del sys.modules[name]


def _student(tmp_path, extra: str):
    path = tmp_path / "mine" / "phase0_foundations.py"
    path.parent.mkdir()
    path.write_text(SOLUTION + extra)
    return path


def test_broken_code_shows_the_students_line_and_leaves_no_run_folder(tmp_path, capsys):
    path = _student(tmp_path, BROKEN_MAKE_MLP)
    out = tmp_path / "run"
    code = cli.main(["train", "--task", "circle", "--file", str(path), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    line = (
        SOLUTION.count("\n")
        + BROKEN_MAKE_MLP.split("\n").index("    return widths[0] / (widths[0] - 2)  # my bug")
        + 1
    )
    assert f'File "{path}", line {line}, in make_mlp' in printed
    assert "widths[0] / (widths[0] - 2)" in printed and "ZeroDivisionError" in printed
    assert "Traceback" not in printed and "grader/capstones" not in printed
    assert not out.exists()


def test_an_error_in_a_notebook_is_located_by_cell(tmp_path, capsys):
    notebook = nbformat.v4.new_notebook()
    cells = cells_of(SOLUTION + BROKEN_MAKE_MLP)
    notebook.cells = [nbformat.v4.new_markdown_cell("# mine"), *cells]
    path = tmp_path / "phase0_foundations.ipynb"
    nbformat.write(notebook, path)
    out = str(tmp_path / "r")
    code = cli.main(["train", "--task", "circle", "--file", str(path), "--out", out])
    printed = capsys.readouterr().out
    assert code == 1
    last = len(notebook.cells)  # make_mlp is the notebook's last cell
    assert f"cell {last}, line 3, in make_mlp" in printed, printed


def test_a_diverged_run_says_what_that_usually_means(tmp_path, capsys):
    path = _student(tmp_path, NAN_TRAINING)
    code = cli.main(["train", "--task", "circle", "--file", str(path), "--epochs", "1",
                     "--out", str(tmp_path / "run")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "diverged" in printed and "learning rate" in printed


def test_a_run_at_chance_says_it_learned_nothing(tmp_path, capsys):
    path = _student(tmp_path, CONSTANT_MODEL)
    code = cli.main(["train", "--task", "circle", "--file", str(path), "--epochs", "1",
                     "--out", str(tmp_path / "run")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "learned nothing" in printed and "diverged" not in printed


def test_a_healthy_run_gets_no_advice(tmp_path, capsys):
    code = cli.main(["train", "--task", "circle", "--solution", "--epochs", "10",
                     "--out", str(tmp_path / "run")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "note:" not in printed
    assert (tmp_path / "run" / "summary.json").exists()


def test_offline_without_a_mirror_is_one_message_and_exit_2(tmp_path, monkeypatch, capsys):
    def offline(url, out, label, progress):
        raise OSError("network is unreachable")

    monkeypatch.setenv("GRADSCHOOL_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("GRADSCHOOL_MIRROR", raising=False)
    monkeypatch.setattr("datasets.download._download", offline)
    out = tmp_path / "run"
    code = cli.main(["train", "--task", "fashion-rnn", "--solution", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 2
    assert "GRADSCHOOL_MIRROR" in printed.out and "Traceback" not in printed.out + printed.err
    assert not out.exists()
    assert fashion_rnn.NAME == "fashion-rnn"


def test_a_syntax_error_names_its_line(tmp_path, capsys):
    path = _student(tmp_path, "\n\ndef make_mlp(sizes, rng=None):\n    return (\n")
    out = str(tmp_path / "r")
    code = cli.main(["train", "--task", "circle", "--file", str(path), "--out", out])
    printed = capsys.readouterr().out
    assert code == 1 and "SyntaxError" in printed and f'File "{path}", line' in printed
