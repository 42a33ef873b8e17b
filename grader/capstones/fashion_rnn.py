"""Capstone of phase 1: Fashion-MNIST read row by row by your own recurrent network.

Each 28×28 image is a sequence of 28 rows of 28 pixels: your SequenceClassifier (a GRU with
128 hidden units, built from your MultiLayerRNN and GRU step) reads the rows top to bottom and
classifies the garment from its final hidden state. Training uses torch.optim.Adam and
cross-entropy (your own optimizer comes in phase 3); evaluation uses your phase-1 metrics.

Target: ≥ 87% test accuracy (the reference solution reaches it in the default epochs).
Writes runs/fashion-rnn-<time>/{curves.png, confusion.png, summary.json}.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from datasets.fashion_mnist import CLASSES, load_fashion_mnist
from grader.capstones import course_module, run_directory
from grader.capstones.plots import chance_accuracy, finish, plot_confusion, plot_curves

NAME = "fashion-rnn"
TARGET_ACCURACY = 0.87
CONFIG = {"cell_type": "gru", "hidden_size": 128, "epochs": 8, "batch_size": 128,
          "lr": 2e-3, "clip": 1.0, "seed": 0,
          # One intra-op thread: the matmuls are small, a second thread gains little, and on a
          # busy machine OpenMP's spinning threads made a training step 50× slower.
          "threads": 1}
MEAN, STD = 0.2860, 0.3530  # pixel statistics of the training set, after scaling to [0, 1]


def describe() -> str:
    return (f"Fashion-MNIST row by row with your GRU SequenceClassifier (phase 1); target ≥ "
            f"{TARGET_ACCURACY:.0%} test accuracy")


def _sequences(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) → standardised float32 (N, T=28 rows, 28 features)."""
    return (torch.from_numpy(images).float() / 255 - MEAN) / STD


def run(solution: bool = False, epochs: int | None = None, out: Path | None = None) -> dict:
    course = course_module("phase1_rnn", solution)
    config = {**CONFIG, "epochs": epochs or CONFIG["epochs"]}
    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["threads"])
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    x_train, y_train = _sequences(train_images), torch.from_numpy(train_labels)
    x_test, y_test = _sequences(test_images), torch.from_numpy(test_labels)

    model = course.SequenceClassifier(28, config["hidden_size"], len(CLASSES),
                                      cell_type=config["cell_type"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    steps_per_epoch = len(x_train) // config["batch_size"]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config["epochs"] * steps_per_epoch)
    directory = run_directory(NAME, out)
    who = "the reference solution" if solution else "your exercises/phase1_rnn.py"
    print(f"{describe()}\nmodel: {who}; {config}\nwriting to {directory}")

    history: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "train_accuracy": [],
                                       "test_accuracy": []}
    started = time.monotonic()
    for epoch in range(1, config["epochs"] + 1):
        model.train()
        order = torch.randperm(len(x_train))
        losses, correct = [], 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{config['epochs']}",
                   unit="batch")
        for step in bar:
            batch = order[step * config["batch_size"]:(step + 1) * config["batch_size"]]
            logits = model(x_train[batch])
            loss = torch.nn.functional.cross_entropy(logits, y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config["clip"])
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            correct += int((logits.argmax(dim=1) == y_train[batch]).sum())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        predictions, test_loss = _evaluate(model, x_test, y_test)
        history["train_loss"].append(float(np.mean(losses)))
        history["train_accuracy"].append(correct / (steps_per_epoch * config["batch_size"]))
        history["test_loss"].append(test_loss)
        history["test_accuracy"].append(float(course.accuracy(predictions, y_test)))
        print(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, train accuracy "
              f"{history['train_accuracy'][-1]:.2%}, test accuracy "
              f"{history['test_accuracy'][-1]:.2%}")
    seconds = time.monotonic() - started

    predictions, _ = _evaluate(model, x_test, y_test)
    matrix = np.asarray(course.confusion_matrix(predictions, y_test, len(CLASSES)))
    _, _, macro_f1 = course.precision_recall_f1(predictions, y_test, len(CLASSES), "macro")
    _, _, class_f1 = course.precision_recall_f1(predictions, y_test, len(CLASSES), None)
    accuracy = float(course.accuracy(predictions, y_test))
    plot_curves(history, directory / "curves.png", f"Fashion-MNIST row by row: "
                f"{config['cell_type'].upper()}-{config['hidden_size']}")
    plot_confusion(matrix, CLASSES, directory / "confusion.png",
                   f"test accuracy {accuracy:.2%}, macro F1 {float(macro_f1):.3f}")
    summary = {
        "task": NAME, "solution": solution, "config": config, "seconds": round(seconds, 1),
        "test_accuracy": accuracy, "macro_f1": float(macro_f1),
        "per_class_f1": dict(zip(CLASSES, map(float, class_f1), strict=True)),
        "chance_accuracy": chance_accuracy(y_test),
        "target_accuracy": TARGET_ACCURACY, "reached_target": accuracy >= TARGET_ACCURACY,
        "history": history, "confusion_matrix": matrix.tolist(),
    }
    return finish(directory, summary, f"test accuracy {accuracy:.2%}, macro F1 "
                  f"{float(macro_f1):.4f} in {seconds / 60:.1f} min", f"≥ {TARGET_ACCURACY:.0%}")


@torch.no_grad()
def _evaluate(model, x: torch.Tensor, y: torch.Tensor,
              batch_size: int = 1000) -> tuple[torch.Tensor, float]:
    """Eval-mode predictions (N,) and the mean test cross-entropy."""
    model.eval()
    predictions, total = [], 0.0
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])
        total += float(torch.nn.functional.cross_entropy(logits, y[start:start + batch_size],
                                                         reduction="sum"))
        predictions.append(logits.argmax(dim=1))
    return torch.cat(predictions), total / len(x)
