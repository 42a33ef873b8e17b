"""Capstone of phase 7: a small ResNet on Fashion-MNIST, in NumPy, built from your own code.

Your phase-7 ResNet (BasicBlocks of your Conv2d, BatchNorm2d and MaxPool2d, with your phase-0
Linear head) is trained by your phase-7 Adam on your phase-0 softmax_cross_entropy, with your
random_crop and random_horizontal_flip as augmentation, all in float32. Anchors: the best
NumPy-only CNN we found reports 89.1% on Fashion-MNIST; small two-conv CNNs in framework
benchmarks reach 91.6–93.4%.

Target: ≥ 91% test accuracy within 10 minutes on a 2-core machine, read as time to accuracy
(as DAWNBench does): the wall time, evaluations included, of the first end-of-epoch evaluation at
or above the target. The whole 8-epoch run takes longer; summary.json gives both times.
Writes runs/resnet-fashion-<time>/{curves.png, confusion.png, summary.json}.

Option: GRADSCHOOL_CIFAR10=<dir> trains on CIFAR-10 instead, read from the binary release
(cifar-10-batches-bin: data_batch_1.bin … data_batch_5.bin, test_batch.bin), which you
download yourself; its target is not calibrated.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from datasets.fashion_mnist import CLASSES, load_fashion_mnist
from grader.capstones import course_module, run_directory
from grader.capstones.plots import chance_accuracy, finish, plot_confusion, plot_curves

NAME = "resnet-fashion"
TARGET_ACCURACY = 0.91
TARGET_SECONDS = 600
CONFIG = {
    "widths": (16, 32, 64),
    "depths": (1, 1, 1),
    "stem_pool": True,
    "epochs": 8,
    "batch_size": 128,
    "lr": 3e-3,
    "crop_padding": 2,
    "flip_p": 0.5,
    "seed": 0,
}
# BLAS threads: every core on an idle machine (the matmuls are large enough to share), one on
# a busy one, where spinning BLAS threads made a training step 4× slower than a single thread.
CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then the red, green and blue 32×32 planes


def describe() -> str:
    return (
        f"Fashion-MNIST with your NumPy ResNet, Adam and augmentation (phase 7); target ≥ "
        f"{TARGET_ACCURACY:.0%} test accuracy in 10 minutes"
    )


def load_cifar10_bin(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, 32, 32) and int64 labels (N,) from CIFAR-10's binary release."""
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    records = []
    for name in names:
        path = directory / name
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: GRADSCHOOL_CIFAR10 must name the "
                "cifar-10-batches-bin directory"
            )
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        if data.size % CIFAR_RECORD:
            raise ValueError(f"{path} is not a CIFAR-10 binary batch (size {data.size})")
        records.append(data.reshape(-1, CIFAR_RECORD))
    table = np.concatenate(records)
    return table[:, 1:].reshape(-1, 3, 32, 32), table[:, 0].astype(np.int64)


def _dataset() -> tuple[str, tuple[str, ...], tuple[np.ndarray, ...]]:
    cifar = os.environ.get("GRADSCHOOL_CIFAR10")
    if cifar:
        train, test = load_cifar10_bin(Path(cifar), "train"), load_cifar10_bin(Path(cifar), "test")
        return "CIFAR-10", CIFAR_CLASSES, (*train, *test)
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    return (
        "Fashion-MNIST",
        CLASSES,
        (train_images[:, None], train_labels, test_images[:, None], test_labels),
    )


def _standardise(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) → float32, per-channel mean 0 and std 1 (training-set statistics)."""
    return ((images.astype(np.float32) / 255 - mean) / std).astype(np.float32)


def blas_threads() -> int:
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] > cores else cores


def run(solution: bool = False, epochs: int | None = None, out: Path | None = None) -> dict:
    config = {**CONFIG, "epochs": epochs or CONFIG["epochs"], "threads": blas_threads()}
    with threadpool_limits(config["threads"], user_api="blas"):
        return _train(config, solution, out)


def _train(config: dict, solution: bool, out: Path | None) -> dict:
    course = course_module("phase7_cnn", solution)
    foundations = course_module("phase0_foundations", solution)
    data_name, classes, (train_x, train_y, test_x, test_y) = _dataset()
    scaled = train_x.astype(np.float32) / 255
    mean = scaled.mean(axis=(0, 2, 3), keepdims=True)[0]
    std = scaled.std(axis=(0, 2, 3), keepdims=True)[0]
    del scaled
    x_train, x_test = _standardise(train_x, mean, std), _standardise(test_x, mean, std)
    rng = np.random.default_rng(config["seed"])
    model = course.ResNet(
        x_train.shape[1],
        len(classes),
        config["widths"],
        config["depths"],
        stem_pool=config["stem_pool"],
        rng=rng,
        dtype=np.float32,
    )
    optimizer = course.Adam(model.params(), lr=config["lr"])
    steps_per_epoch = len(x_train) // config["batch_size"]
    total_steps = config["epochs"] * steps_per_epoch
    directory = run_directory(NAME, out)
    who = "the reference solution" if solution else "your exercises/phase7_cnn.py"
    print(f"{describe()}\ndata: {data_name}; model: {who}; {config}\nwriting to {directory}")

    history: dict[str, list[float]] = {
        "train_loss": [],
        "test_loss": [],
        "train_accuracy": [],
        "test_accuracy": [],
    }
    started = time.monotonic()
    step_count, seconds_to_target = 0, None
    for epoch in range(1, config["epochs"] + 1):
        model.train()
        order = rng.permutation(len(x_train))
        losses, correct = [], 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{config['epochs']}", unit="batch")
        for step in bar:
            batch = order[step * config["batch_size"] : (step + 1) * config["batch_size"]]
            images = course.random_crop(x_train[batch], config["crop_padding"], rng)
            images = course.random_horizontal_flip(images, config["flip_p"], rng)
            # cosine decay of the learning rate to 0 over the whole run
            optimizer.lr = config["lr"] * 0.5 * (1 + np.cos(np.pi * step_count / total_steps))
            logits = model.forward(images)
            loss, dlogits = foundations.softmax_cross_entropy(logits, train_y[batch])
            model.backward(dlogits.astype(np.float32))
            optimizer.step(model.grads())
            step_count += 1
            losses.append(loss)
            correct += int((logits.argmax(axis=1) == train_y[batch]).sum())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        predictions, test_loss = _evaluate(model, foundations, x_test, test_y)
        history["train_loss"].append(float(np.mean(losses)))
        history["train_accuracy"].append(correct / (steps_per_epoch * config["batch_size"]))
        history["test_loss"].append(test_loss)
        history["test_accuracy"].append(float(np.mean(predictions == test_y)))
        if seconds_to_target is None and history["test_accuracy"][-1] >= TARGET_ACCURACY:
            seconds_to_target = round(time.monotonic() - started, 1)
        print(
            f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f}, train accuracy "
            f"{history['train_accuracy'][-1]:.2%}, test accuracy "
            f"{history['test_accuracy'][-1]:.2%} ({time.monotonic() - started:.0f} s)"
        )
    seconds = time.monotonic() - started

    accuracy = history["test_accuracy"][-1]
    matrix = np.bincount(test_y * len(classes) + predictions, minlength=len(classes) ** 2).reshape(
        len(classes), len(classes)
    )
    plot_curves(history, directory / "curves.png", f"{data_name}: NumPy ResNet {config['widths']}")
    plot_confusion(
        matrix,
        classes,
        directory / "confusion.png",
        f"test accuracy {accuracy:.2%} in {seconds / 60:.1f} min",
    )
    reached = ("never reached the target" if seconds_to_target is None
               else f"≥ {TARGET_ACCURACY:.0%} first at {seconds_to_target / 60:.1f} min")
    summary = {
        "task": NAME,
        "data": data_name,
        "solution": solution,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "seconds": round(seconds, 1),
        "seconds_to_target": seconds_to_target,
        "test_accuracy": accuracy,
        "chance_accuracy": chance_accuracy(test_y),
        "target_accuracy": TARGET_ACCURACY,
        "reached_target": seconds_to_target is not None and seconds_to_target <= TARGET_SECONDS,
        "history": history,
        "confusion_matrix": matrix.tolist(),
    }
    return finish(
        directory,
        summary,
        f"test accuracy {accuracy:.2%} in {seconds / 60:.1f} min ({reached})",
        f"≥ {TARGET_ACCURACY:.0%} within {TARGET_SECONDS // 60} min",
    )


def _evaluate(
    model, foundations, x: np.ndarray, y: np.ndarray, batch_size: int = 1000
) -> tuple[np.ndarray, float]:
    """Eval-mode predictions (N,) and the mean test cross-entropy."""
    model.eval()
    predictions, total = [], 0.0
    for start in range(0, len(x), batch_size):
        logits = model.forward(x[start : start + batch_size])
        loss, _ = foundations.softmax_cross_entropy(logits, y[start : start + batch_size])
        total += loss * len(logits)
        predictions.append(logits.argmax(axis=1))
    return np.concatenate(predictions), total / len(x)
