"""`make train TASK=char-gpt` end to end on a tiny text and a tiny model: the reference solution
trains, writes its log, checkpoint, plot, sample and summary.json; an unfinished stub fails
clearly."""

from __future__ import annotations

import json

import pytest

from grader import cli
from grader.capstones import char_gpt

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 60


@pytest.fixture
def tiny(monkeypatch):
    def fake_load(split: str = "all", progress: bool = True) -> str:
        boundary = int(0.9 * len(TEXT))
        return {"all": TEXT, "train": TEXT[:boundary], "val": TEXT[boundary:]}[split]

    monkeypatch.setattr(char_gpt, "load_tiny_shakespeare", fake_load)
    for key, value in {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16,
                       "batch_size": 4, "steps": 8, "warmup": 2, "eval_every": 4,
                       "eval_batches": 2}.items():
        monkeypatch.setitem(char_gpt.RECIPE, key, value)


def test_the_reference_run_writes_its_outputs(tiny, tmp_path):
    summary = char_gpt.run(solution=True, out=tmp_path)
    for name in ("loss.png", "log.jsonl", "checkpoint.pt", "sample.txt"):
        assert (tmp_path / name).stat().st_size > 0, name
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["val_loss"] == summary["val_loss"]
    assert written["target_val_loss"] == char_gpt.TARGET_VAL_LOSS
    assert [row["step"] for row in written["history"] if "val_loss" in row] == [4, 8]
    assert len(written["sample"]) == 501  # the "\n" prompt and 500 generated characters
    assert set(written["sample"]) <= set(TEXT)


def test_the_cli_explains_an_unfinished_exercise(tiny, tmp_path, capsys):
    code = cli.main(["train", "--task", "char-gpt", "--epochs", "2", "--out", str(tmp_path)])
    assert code == 1
    assert "not finished" in capsys.readouterr().out
