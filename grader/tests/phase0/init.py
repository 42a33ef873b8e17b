"""0.6 Xavier/Glorot and He/Kaiming initialisation, against torch.nn.init's formulas."""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, unpack

SHAPE = (300, 500)  # (fan_out, fan_in): large enough that sample statistics are within 2%
CONV = (64, 32, 3, 3)


def _fans(shape) -> tuple[int, int]:
    """torch's own (fan_in, fan_out) for a weight of this shape."""
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def _expected(kind: str, shape, mode="fan_in", gain=1.0):
    """(std, uniform bound) from torch.nn.init's documented formulas."""
    fan_in, fan_out = _fans(shape)
    if kind.startswith("xavier"):
        std = math.sqrt(2.0 * gain**2 / (fan_in + fan_out))  # Var = 2·gain²/(fan_in + fan_out)
    else:
        std = math.sqrt(2.0) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    return std, std * math.sqrt(3.0)


def _sample(m, kind, shape, **kwargs):
    w = as_array(getattr(m, kind)(shape, rng=0, **kwargs), f"{kind}{shape}")
    if w.shape != tuple(shape):
        raise CheckFailed(f"{kind}({shape}) returned shape {w.shape}.")
    return w


def _assert_statistics(w, kind, label, std, bound=None):
    if abs(w.std() - std) > 0.02 * std or abs(w.mean()) > 0.05 * std:
        raise CheckFailed(
            f"{label}: sample std {w.std():.5g} (mean {w.mean():.3g}), expected "
            f"std {std:.5g} and mean 0.",
            "Xavier: std = gain·√(2/(fan_in + fan_out)); He: std = √2/√fan. "
            "A uniform U(−a, a) has std a/√3.",
        )
    if bound is not None and (np.abs(w).max() > bound or np.abs(w).max() < 0.98 * bound):
        raise CheckFailed(
            f"{label}: uniform samples should fill (−{bound:.5g}, {bound:.5g}); "
            f"max |w| is {np.abs(w).max():.5g}."
        )


@check("init", "oracle")
def compute_fans_matches_torch(m):
    """compute_fans gives torch's (fan_in, fan_out) for Linear and conv weight shapes."""
    for shape in [(3, 5), SHAPE, CONV]:
        got = tuple(int(v) for v in unpack(m.compute_fans(shape), 2, "compute_fans"))
        expected = _fans(shape)
        if got != expected:
            raise CheckFailed(
                f"compute_fans({shape}) = {got}, expected (fan_in, fan_out) = {expected}.",
                "A weight is (out, in, *kernel): fan_in uses shape[1].",
            )


@check("init", "invariant")
def xavier_samples_have_the_right_spread(m):
    """xavier_uniform/normal samples have std gain·√(2/(fan_in+fan_out)) (uniform: bounded)."""
    for gain in (1.0, 2.0):
        std, bound = _expected("xavier", SHAPE, gain=gain)
        _assert_statistics(
            _sample(m, "xavier_uniform", SHAPE, gain=gain),
            "xavier_uniform",
            f"xavier_uniform({SHAPE}, gain={gain})",
            std,
            bound,
        )
        _assert_statistics(
            _sample(m, "xavier_normal", SHAPE, gain=gain),
            "xavier_normal",
            f"xavier_normal({SHAPE}, gain={gain})",
            std,
        )


@check("init", "invariant")
def he_samples_have_the_right_spread(m):
    """he_uniform/normal samples have std √2/√fan for mode fan_in and fan_out, conv shapes too."""
    for shape in (SHAPE, CONV):
        for mode in ("fan_in", "fan_out"):
            std, bound = _expected("he", shape, mode)
            _assert_statistics(
                _sample(m, "he_uniform", shape, mode=mode),
                "he_uniform",
                f"he_uniform({shape}, mode={mode!r})",
                std,
                bound,
            )
            _assert_statistics(
                _sample(m, "he_normal", shape, mode=mode),
                "he_normal",
                f"he_normal({shape}, mode={mode!r})",
                std,
            )


@fingerprint("init")
def init_ratios(m):
    """Sample statistics over expected values, rounded so any correct rng use matches."""
    out = {"fans": np.array(m.compute_fans(CONV)), "fans_linear": np.array(m.compute_fans((3, 5)))}
    for kind in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        for mode in ("fan_in", "fan_out") if kind.startswith("he") else ("-",):
            kwargs = {"mode": mode} if mode != "-" else {}
            w = np.asarray(getattr(m, kind)(SHAPE, rng=0, **kwargs))
            std, _ = _expected(kind, SHAPE, mode if mode != "-" else "fan_in")
            out[f"{kind}_{mode}_std_ratio"] = np.round(w.std() / std, 1)
            out[f"{kind}_{mode}_max_ratio"] = np.round(np.abs(w).max() / std, 0)
    return out
