"""0.7 L1 and L2 penalties with their gradients."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close, assert_scalar, unpack
from grader.checks.reference import tensor

PARAMS = [np.array([[0.5, -1.5, 0.0], [2.0, -0.25, 1.0]]), np.array([-3.0, 0.0, 0.75])]


def _torch_penalty(params, lam, kind):
    tensors = [tensor(p, True) for p in params]
    value = sum((t.abs().sum() if kind == "l1" else 0.5 * (t**2).sum()) for t in tensors) * lam
    value.backward()
    return value.item(), [t.grad.numpy() for t in tensors]


def _assert_penalty(m, kind, lam, hint):
    value, grads = unpack(getattr(m, f"{kind}_penalty")(PARAMS, lam), 2, f"{kind}_penalty")
    expected, expected_grads = _torch_penalty(PARAMS, lam, kind)
    assert_close(
        assert_scalar(value, "the penalty"), expected, f"{kind}_penalty value (λ={lam})", hint=hint
    )
    if not isinstance(grads, list | tuple) or len(grads) != len(PARAMS):
        raise CheckFailed(f"{kind}_penalty should return one gradient per parameter array.")
    for i, (g, e) in enumerate(zip(grads, expected_grads, strict=True)):
        assert_close(
            as_array(g, "a gradient"), e, f"{kind}_penalty gradient of params[{i}]", hint=hint
        )


@check("regularization", "oracle")
def l1_penalty_matches_torch_autograd(m):
    """l1_penalty = λ·Σ|w| with gradient λ·sign(w) (0 at 0), as torch autograd computes."""
    for lam in (0.1, 2.0):
        _assert_penalty(m, "l1", lam, "L1: λ·Σ|w|, gradient λ·sign(w) with sign(0) = 0.")


@check("regularization", "oracle")
def l2_penalty_matches_torch_weight_decay(m):
    """l2_penalty = (λ/2)·Σw² with gradient λ·w, the convention of torch's weight_decay."""
    for lam in (0.1, 2.0):
        _assert_penalty(m, "l2", lam, "L2: (λ/2)·Σw², so that the gradient is exactly λ·w.")


@fingerprint("regularization")
def penalty_outputs(m):
    out = {}
    for kind in ("l1", "l2"):
        value, grads = getattr(m, f"{kind}_penalty")(PARAMS, 0.5)
        out[f"{kind}_value"] = value
        for i, g in enumerate(grads):
            out[f"{kind}_grad{i}"] = g
    return out
