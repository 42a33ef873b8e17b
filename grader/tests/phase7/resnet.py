"""7.8 The small ResNet: against the same network assembled from torch layers with copied
weights, float32 throughout, and a short training run that must learn (labels stay here)."""

from __future__ import annotations

import numpy as np
from torch import nn

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises, seeded
from grader.checks.oracle import as_array
from grader.session import StudentError, run_probe
from grader.tests.phase7._helpers import MISSING, attempt, load_params, normal
from grader.tests.phase7.blocks import (
    _params,
    compare_with_torch,
    conv,
    random_params,
    torch_basic_block,
)

RESNET_HINT = (
    "stem conv3×3 → BN → ReLU (→ MaxPool2d(2) with stem_pool), then the stages (the first "
    "block of every stage after the first has stride 2), then the mean over H, W and the Linear."
)
POOL_HINT = "The mean over h·w positions sends dpooled/(h·w) to every one of them."


class TorchResNet(nn.Module):
    def __init__(self, c_in, classes, widths, depths, stem_pool):
        super().__init__()
        stem = [conv(c_in, widths[0], 3, 1, 1), nn.BatchNorm2d(widths[0]), nn.ReLU()]
        self.stem = nn.Sequential(*stem, *([nn.MaxPool2d(2)] if stem_pool else []))
        blocks, channels = [], widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for index in range(depth):
                blocks.append(torch_basic_block(channels, width, 2 if stage and not index else 1))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


CONFIGS = [  # (in_channels, classes, widths, depths, stem_pool, input H×W)
    (2, 3, (4, 6), (1, 2), False, (8, 7)),
    (1, 4, (3, 4, 5), (1, 1, 1), True, (12, 12)),
]


@check("cnn_resnet", "oracle")
def resnet_matches_torch(m):
    """ResNet forward, backward and eval equal the same network built from torch layers."""
    for index, (c_in, classes, widths, depths, pool, size) in enumerate(CONFIGS):
        reference = TorchResNet(c_in, classes, widths, depths, pool).double()
        arrays = random_params(reference, 40 + index)
        net = m.ResNet(c_in, classes, widths, depths, stem_pool=pool, rng=0)
        compare_with_torch(
            m,
            net,
            reference,
            arrays,
            normal(index, (3, c_in, *size)),
            f"ResNet({c_in}, {classes}, {widths}, {depths}, stem_pool={pool})",
            hint=RESNET_HINT + " " + POOL_HINT,
        )


@check("cnn_resnet", "invariant")
def resnet_float32_stays_float32(m):
    """dtype='float32' gives float32 parameters (the phase-0 head too), logits and dx."""
    net = m.ResNet(1, 3, (4, 8), (1, 1), rng=0, dtype="float32")
    params = run_probe(m, "phase7.call_with_inputs", net, "params", [])[0]
    wrong = [i for i, p in enumerate(params) if np.asarray(p).dtype != np.float32]
    if wrong:
        raise CheckFailed(
            f"params() {wrong} of ResNet(dtype='float32') are not float32.",
            "Your phase-0 Linear makes float64 arrays: convert the head's weight, "
            "bias and gradients with .astype(dtype).",
        )
    logits = as_array(net.forward(normal(1, (2, 1, 8, 8), np.float32)), "logits")
    if logits.dtype != np.float32 or logits.shape != (2, 3):
        raise CheckFailed(
            f"logits should be float32 of shape (2, 3), got {logits.dtype} {logits.shape}."
        )
    dx = as_array(net.backward(np.ones((2, 3), np.float32)), "dx")
    if dx.dtype != np.float32 or dx.shape != (2, 1, 8, 8):
        raise CheckFailed(f"dx should be float32 of shape (2, 1, 8, 8), got {dx.dtype} {dx.shape}.")


@check("cnn_resnet", "invariant")
def resnet_is_seeded_and_checks_its_stages(m):
    """rng=seed reproduces the network; widths and depths of different lengths raise ValueError."""
    hint = "Normalise rng once and pass the same Generator to every layer, in order."
    params = seeded(
        lambda seed: _params(m, m.ResNet(1, 3, (2, 4), (1, 1), rng=seed)),
        "ResNet(1, 3, (2, 4), (1, 1)) params",
        hint,
    )
    # every conv weight is U(±1/√fan_in)·(a fresh stretch of the generator): scaled back to
    # U(±1), no two may start with the same draws (they do when each layer re-seeds)
    draws = [np.ravel(p * np.sqrt(np.prod(p.shape[1:]))) for p in params if p.ndim == 4]
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            k = min(draws[i].size, draws[j].size)
            if np.allclose(draws[i][:k], draws[j][:k]):
                raise CheckFailed(
                    f"conv weights {i} and {j} of the network repeat the same "
                    "random draws: every layer restarted from the seed.",
                    hint,
                )
    raises(
        lambda: m.ResNet(1, 3, (2, 4, 8), (1, 1)),
        "ValueError",
        "ResNet with 3 widths and 2 depths",
        "zip(widths, depths, strict=True) raises ValueError when their lengths differ.",
    )


def _bars(n, seed):
    """8×8 images of one horizontal bar (class 0), vertical bar (1) or diagonal (2), in noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.normal(0, 0.5, (n, 1, 8, 8))
    where = rng.integers(1, 7, n)
    for i, (label, k) in enumerate(zip(labels, where, strict=True)):
        if label == 0:
            images[i, 0, k, :] += 2
        elif label == 1:
            images[i, 0, :, k] += 2
        else:
            images[i, 0][np.eye(8, k=k - 3, dtype=bool)] += 2
    return images.astype(np.float32), labels


@check("cnn_resnet", "e2e", seconds=40)
def resnet_learns_bars_with_adam(m):
    """A ResNet((8, 16)) trained by your Adam tells bar orientations apart (≥ 90% held out)."""
    X, y = _bars(384, 0)
    X_test, y_test = _bars(200, 1)
    logits, losses = run_probe(m, "phase7.train_resnet", m, X, y, X_test, 40, 16, 0.01, 0)
    logits = as_array(logits, "test logits")
    if logits.shape != (200, 3):
        raise CheckFailed(f"the test logits have shape {logits.shape}, expected (200, 3).")
    accuracy = float(np.mean(logits.argmax(axis=1) == y_test))
    if not np.isfinite(losses).all() or accuracy < 0.9:
        raise CheckFailed(
            f"after 40 Adam steps the held-out accuracy is {accuracy:.1%} (losses "
            f"{losses[0]:.3g} → {losses[-1]:.3g}); the reference reaches ≥ 90%.",
            "If every layer matches torch, look at how the gradients flow between them: "
            "grads() must list the arrays backward writes into, in the order of params().",
        )


@fingerprint("cnn_resnet")
def resnet_outputs(m):
    outputs = {}
    for index, (c_in, classes, widths, depths, pool, size) in enumerate(CONFIGS):
        x = normal(60 + index, (2, c_in, *size))
        outputs.update(dict.fromkeys((f"{index}_logits", f"{index}_dx"), MISSING))
        try:
            net = m.ResNet(c_in, classes, widths, depths, stem_pool=pool, rng=0)
            arrays = random_params(TorchResNet(c_in, classes, widths, depths, pool), 70)
            load_params(net, arrays)
            logits = as_array(net.forward(x), "logits")
            outputs[f"{index}_logits"] = logits
            outputs[f"{index}_dx"] = attempt(net.backward, normal(5, logits.shape))
        except (StudentError, CheckFailed):
            pass
    small = attempt(m.ResNet, 1, 2, (2, 2), (1, 1), rng=0, dtype="float32")
    logits = (
        MISSING if small is MISSING else attempt(small.forward, normal(1, (1, 1, 6, 6), np.float32))
    )
    outputs["float32_logits"] = np.array([np.asarray(logits).dtype == np.float32])
    return outputs
