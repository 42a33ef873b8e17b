"""Capstone plots (issue 13, item 7): one helper for every plot and summary; the decision boundary
has a legend, the true boundary and the misclassified points marked."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from datasets.synthetic import circle
from grader import capstones
from grader.capstones import plots

# capstones that still write summary.json themselves (their authors were editing them): convert
# them to plots.finish and drop them from here
OLD_PATH = {"char-gpt", "mamba-shakespeare", "mamba-sst2"}


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plots save, kept for inspection."""
    figures: list[Figure] = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def test_the_boundary_plot_names_everything_it_draws(tmp_path, drawn):
    X, y = circle(400, seed=3)

    def predict(points):  # a square instead of the circle: some points are wrong
        return (np.abs(points).max(axis=1) <= 0.6).astype(int)

    path = plots.plot_decision_boundary(
        predict, X, y, tmp_path / "b.png", "t",
        true_boundary=lambda gx, gy: gx**2 + gy**2 - 2 / math.pi, classes=("out", "in"),
    )  # fmt: skip
    assert path.read_bytes()[:4] == b"\x89PNG"
    wrong = int((predict(X) != y).sum())
    assert wrong > 0
    (ax,) = drawn[-1].axes[:1]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"out", "in", "true boundary", "model's boundary", f"misclassified ({wrong})"} <= set(
        labels
    )
    assert {"predicted out", "predicted in"} <= set(labels)
    ringed = [c for c in ax.collections if c.get_label().startswith("misclassified")]
    assert len(ringed) == 1 and len(ringed[0].get_offsets()) == wrong


def test_a_perfect_model_marks_nothing_and_needs_no_true_boundary(tmp_path, drawn):
    X, y = circle(200, seed=1)
    plots.plot_decision_boundary(
        lambda P: ((P**2).sum(1) <= 2 / np.pi).astype(int), X, y, tmp_path / "b.png"
    )
    labels = [t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()]
    assert not any(label.startswith("misclassified") for label in labels)
    assert "true boundary" not in labels and "class 0" in labels


def test_scores_are_reduced_with_argmax(tmp_path, drawn):
    X, y = circle(100, seed=2)
    scores = lambda P: np.column_stack([-(P**2).sum(1), (P**2).sum(1) * 0])  # noqa: E731
    plots.plot_decision_boundary(scores, X, y, tmp_path / "b.png")
    labels = [t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()]
    wrong = int((scores(X).argmax(1) != y).sum())
    assert (f"misclassified ({wrong})" in labels) == (wrong > 0)


def test_finish_writes_the_summary_and_says_the_verdict(tmp_path, capsys):
    summary = {"task": "t", "test_accuracy": 0.5, "reached_target": False}
    assert plots.finish(tmp_path, summary, "accuracy 50%", "≥ 90%") is summary
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    printed = capsys.readouterr().out
    assert "accuracy 50% — target ≥ 90% NOT reached." in printed and str(tmp_path) in printed
    plots.finish(tmp_path, {**summary, "reached_target": True}, "accuracy 95%", "≥ 90%")
    assert "target ≥ 90% reached." in capsys.readouterr().out


def test_chance_accuracy_is_the_majority_class_rate():
    assert plots.chance_accuracy([0, 0, 0, 1]) == 0.75
    assert plots.chance_accuracy(np.arange(10)) == pytest.approx(0.1)


@pytest.mark.parametrize("name", sorted(set(capstones.tasks()) - OLD_PATH))
def test_every_capstone_writes_its_summary_through_finish(name):
    source = capstones.task(name).__file__
    text = open(source).read()
    assert "finish(" in text and 'summary.json").write_text' not in text, source


def test_the_old_import_still_works():
    from datasets.plots import plot_decision_boundary

    assert plot_decision_boundary is plots.plot_decision_boundary
