"""`make train TASK=resnet-fashion` end to end on tiny stand-ins for Fashion-MNIST and CIFAR-10:
the reference solution trains, the plots and summary.json are written, the CIFAR-10 binary
reader reads what it should, an unfinished stub fails clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grader import cli
from grader.capstones import resnet_fashion


def _bright_row_images(n: int, seed: int, channels: int, size: int):
    """'images' whose class is the index of their brightest row // 3 (learnable in seconds)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, channels, size, size)).astype(np.uint8)
    images[np.arange(n), :, labels * 2 + 4] = 255
    return images, labels.astype(np.int64)


@pytest.fixture
def tiny(monkeypatch):
    def fake_load(split: str, progress: bool = True):
        images, labels = _bright_row_images(
            256 if split == "train" else 100, 0 if split == "train" else 1, 1, 28
        )
        return images[:, 0], labels

    monkeypatch.setattr(resnet_fashion, "load_fashion_mnist", fake_load)
    monkeypatch.setitem(resnet_fashion.CONFIG, "widths", (4, 8))
    monkeypatch.setitem(resnet_fashion.CONFIG, "depths", (1, 1))
    monkeypatch.setitem(resnet_fashion.CONFIG, "batch_size", 32)
    monkeypatch.delenv("GRADSCHOOL_CIFAR10", raising=False)


def test_the_reference_run_writes_plots_and_a_summary(tiny, tmp_path):
    summary = resnet_fashion.run(solution=True, epochs=2, out=tmp_path)
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "confusion.png").stat().st_size > 0
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["test_accuracy"] == summary["test_accuracy"]
    assert written["data"] == "Fashion-MNIST"
    assert written["target_accuracy"] == resnet_fashion.TARGET_ACCURACY
    assert len(written["history"]["test_accuracy"]) == 2
    assert np.array(written["confusion_matrix"]).sum() == 100
    assert written["history"]["train_loss"][1] < written["history"]["train_loss"][0]


def test_cifar10_binary_batches_are_read_and_trained_on(tiny, tmp_path, monkeypatch):
    images, labels = _bright_row_images(64, 2, 3, 32)
    records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(64, -1)], axis=1)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (tmp_path / name).write_bytes(records.tobytes())
    read_images, read_labels = resnet_fashion.load_cifar10_bin(tmp_path, "test")
    assert np.array_equal(read_images, images) and np.array_equal(read_labels, labels)
    assert resnet_fashion.load_cifar10_bin(tmp_path, "train")[0].shape == (320, 3, 32, 32)
    monkeypatch.setenv("GRADSCHOOL_CIFAR10", str(tmp_path))
    summary = resnet_fashion.run(solution=True, epochs=1, out=tmp_path / "run")
    assert summary["data"] == "CIFAR-10" and len(summary["confusion_matrix"]) == 10


def test_a_missing_cifar_batch_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        resnet_fashion.load_cifar10_bin(tmp_path, "train")


def test_the_cli_explains_an_unfinished_exercise(tiny, tmp_path, capsys):
    code = cli.main(["train", "--task", "resnet-fashion", "--epochs", "1", "--out", str(tmp_path)])
    assert code == 1
    assert "not finished" in capsys.readouterr().out
