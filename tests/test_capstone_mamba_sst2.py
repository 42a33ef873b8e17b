"""`make train TASK=mamba-sst2` end to end on a tiny SST-2 and a tiny model: the reference
trains, scores the dev set with the phase-1 metrics and writes its plots and summary.json;
an unfinished stub fails clearly."""

from __future__ import annotations

import json

import pytest

from grader import cli
from grader.capstones import mamba_sst2

GOOD = ["a charming and often affecting journey .", "the best film of the year", "lovely ."]
BAD = ["unflinchingly bleak and desperate", "the worst movie , dull and flat", "boring ."]


@pytest.fixture
def tiny(monkeypatch):
    def fake_load(split: str = "train", progress: bool = True):
        sentences = (GOOD + BAD) * (8 if split == "train" else 1)
        return sentences, ([1] * 3 + [0] * 3) * (8 if split == "train" else 1)

    monkeypatch.setattr(mamba_sst2, "load_sst2", fake_load)
    for key, value in {"vocab_size": 256 + 40, "d_model": 8, "n_layer": 1, "d_state": 4,
                       "batch_size": 8, "epochs": 2, "warmup": 2}.items():
        monkeypatch.setitem(mamba_sst2.RECIPE, key, value)


def test_the_reference_run_writes_its_outputs(tiny, tmp_path):
    summary = mamba_sst2.run(solution=True, out=tmp_path)
    for name in ("loss.png", "confusion.png", "log.jsonl"):
        assert (tmp_path / name).stat().st_size > 0, name
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["dev_accuracy"] == summary["dev_accuracy"]
    assert written["steps"] == 2 * 6  # 48 sentences in batches of 8, two epochs
    assert sum(map(sum, written["confusion_matrix"])) == 6
    diagonal = written["confusion_matrix"][0][0] + written["confusion_matrix"][1][1]
    assert written["dev_accuracy"] == pytest.approx(diagonal / 6)
    assert [row["step"] for row in written["history"] if "val_loss" in row] == [6, 12]


def test_encoding_by_pieces_is_exactly_encode():
    from solutions import phase6_models as course

    tokenizer = course.BPETokenizer.train(" ".join(GOOD + BAD) * 3, 256 + 30)
    text = GOOD + BAD + ["an unseen , sentence ."]
    assert mamba_sst2.encode_all(tokenizer, course.PRETOKENIZE, text) == \
        [tokenizer.encode(s) for s in text]


def test_the_cli_explains_an_unfinished_exercise(tiny, tmp_path, capsys):
    code = cli.main(["train", "--task", "mamba-sst2", "--epochs", "1", "--out", str(tmp_path)])
    assert code == 1
    assert "not finished" in capsys.readouterr().out


def test_token_dropout_keeps_order_and_never_empties_a_sentence():
    import torch

    torch.manual_seed(0)
    idx = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 10, 0, 0, 0, 0], [1, 2, 3, 4, 11, 12]])
    lengths = torch.tensor([4, 2, 6])
    for p in (0.0, 0.5, 1.0):
        for _ in range(20):
            dropped, kept = mamba_sst2.drop_tokens(idx, lengths, p)
            assert torch.all((kept >= 1) & (kept <= lengths))
            for row in range(3):
                survivors = dropped[row, : kept[row]].tolist()
                real = idx[row, : lengths[row]].tolist()
                positions = [real.index(t) for t in survivors]  # ids are distinct per row
                assert positions == sorted(positions), (p, survivors)
            if p == 0.0:
                assert torch.equal(kept, lengths) and torch.equal(dropped, idx)
            if p == 1.0:
                assert torch.equal(kept, torch.ones(3, dtype=torch.long))
