"""`make train TASK=fashion-rnn` end to end on a tiny stand-in for Fashion-MNIST: the reference
solution trains, the plots and summary.json are written, an unfinished stub fails clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grader import cli
from grader.capstones import fashion_rnn


@pytest.fixture
def tiny(monkeypatch):
    """256 training and 100 test 'images' whose class is the brightest row's index // 3."""

    def fake_load(split: str, progress: bool = True):
        n = 256 if split == "train" else 100
        rng = np.random.default_rng(0 if split == "train" else 1)
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        images[np.arange(n), labels * 3] = 255
        return images, labels.astype(np.int64)

    monkeypatch.setattr(fashion_rnn, "load_fashion_mnist", fake_load)
    monkeypatch.setitem(fashion_rnn.CONFIG, "hidden_size", 8)
    monkeypatch.setitem(fashion_rnn.CONFIG, "batch_size", 64)


def test_the_reference_run_writes_plots_and_a_summary(tiny, tmp_path):
    summary = fashion_rnn.run(solution=True, epochs=2, out=tmp_path)
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "confusion.png").stat().st_size > 0
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["test_accuracy"] == summary["test_accuracy"]
    assert written["target_accuracy"] == fashion_rnn.TARGET_ACCURACY
    assert len(written["history"]["test_accuracy"]) == 2
    assert np.array(written["confusion_matrix"]).sum() == 100


def test_the_cli_explains_an_unfinished_exercise(tiny, tmp_path, capsys):
    code = cli.main(["train", "--task", "fashion-rnn", "--epochs", "1", "--out", str(tmp_path)])
    assert code == 1
    assert "not finished" in capsys.readouterr().out


def test_an_unknown_task_lists_the_known_ones(capsys):
    assert cli.main(["train", "--task", "nope"]) == 2
    assert "fashion-rnn" in capsys.readouterr().out
