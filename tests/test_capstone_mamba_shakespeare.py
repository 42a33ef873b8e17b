"""`make train TASK=mamba-shakespeare` end to end on a tiny text with a budget of a second per
model: both models train, both val losses and samples reach summary.json; an unfinished stub
fails clearly."""

from __future__ import annotations

import json

import pytest

from grader import cli
from grader.capstones import char_gpt, mamba_shakespeare

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 60


@pytest.fixture
def tiny(monkeypatch):
    def fake_load(split: str = "all", progress: bool = True) -> str:
        boundary = int(0.9 * len(TEXT))
        return {"all": TEXT, "train": TEXT[:boundary], "val": TEXT[boundary:]}[split]

    monkeypatch.setattr(char_gpt, "load_tiny_shakespeare", fake_load)
    for key, value in {"n_layer": 1, "n_head": 2, "n_embd": 16}.items():
        monkeypatch.setitem(char_gpt.RECIPE, key, value)
    for key, value in {"seconds": 1, "d_model": 16, "n_layer": 1, "d_state": 4,
                       "block_size": 16, "batch_size": 4, "warmup": 2, "timing_steps": 2,
                       "sample_length": 20}.items():
        monkeypatch.setitem(mamba_shakespeare.RECIPE, key, value)


def test_both_models_train_for_the_budget_and_report(tiny, tmp_path):
    summary = mamba_shakespeare.run(solution=True, out=tmp_path)
    written = json.loads((tmp_path / "summary.json").read_text())
    for name in ("gpt", "mamba"):
        assert written[name]["val_loss"] == summary[name]["val_loss"] > 0
        assert written[name]["steps"] >= 1
        assert len(written["samples"][name]) == 21  # the "\n" prompt and 20 characters
        assert set(written["samples"][name]) <= set(TEXT)
    assert "==== mamba" in (tmp_path / "samples.txt").read_text()


def test_the_cli_explains_an_unfinished_exercise(tiny, tmp_path, capsys):
    code = cli.main(["train", "--task", "mamba-shakespeare", "--epochs", "1",
                     "--out", str(tmp_path)])
    assert code == 1
    assert "not finished" in capsys.readouterr().out
