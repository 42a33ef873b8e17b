"""Phase 0 hidden checks: graded by batch and Gradescope runs, never shipped to students.

They hold the visible contracts on inputs the student never saw (fresh seeds, shapes and
sizes), and add one the visible checks leave open: softmax keeps float32 at large logits.
A student who fitted the visible examples instead of the formula loses points here.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import CheckFailed, check
from grader.checks.oracle import F32, as_array, assert_close, assert_scalar, unpack
from grader.checks.reference import tensor, value, vjp

SEED = 90210  # differs from every seed of the visible checks


@check("softmax", "stability", hidden=True)
def softmax_family_keeps_float32_at_large_logits(m):
    """softmax and log_softmax of float32 logits up to ±100 stay float32 and equal torch's."""
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-100, 100, (6, 9)).astype(np.float32)
    expected = {
        "softmax": torch.softmax(torch.from_numpy(x), dim=0).numpy(),
        "log_softmax": torch.log_softmax(torch.from_numpy(x), dim=0).numpy(),
    }
    for name, reference in expected.items():
        got = as_array(getattr(m, name)(x, axis=0), f"{name}(x, axis=0)")
        if got.dtype != np.float32:
            raise CheckFailed(
                f"{name} of float32 logits returned {got.dtype}, not float32.",
                hint="Keep the input's dtype: no np.float64 constants or astype in between.",
            )
        assert_close(
            got,
            reference,
            f"{name}(x, axis=0) for float32 x in [−100, 100]",
            hint="exp(100) overflows float32: subtract the max along `axis` first.",
            **F32,
        )


@check("losses", "oracle", hidden=True)
def losses_match_torch_on_fresh_batches(m):
    """Both losses and their gradients equal torch's on batches of 1 and 9 rows never shown."""
    rng = np.random.default_rng(SEED + 1)
    for n in (1, 9):
        logits, labels = rng.normal(0, 5, (n, 7)), rng.integers(0, 7, n)
        loss, grad = unpack(m.softmax_cross_entropy(logits, labels), 2, "softmax_cross_entropy")

        def cross_entropy(z, labels=labels):
            return F.cross_entropy(z, tensor(labels).long())

        assert_close(
            assert_scalar(loss, "the loss"),
            float(value(cross_entropy, logits)),
            f"the cross-entropy of {n} rows",
        )
        assert_close(grad, vjp(cross_entropy, [logits], 1.0)[0], f"∂L/∂logits for {n} rows")

        z, t = rng.normal(0, 4, (n, 2, 3)), rng.uniform(0, 1, (n, 2, 3))
        loss, grad = unpack(m.bce_with_logits(z, t), 2, "bce_with_logits")
        bce = F.binary_cross_entropy_with_logits
        assert_close(assert_scalar(loss, "the loss"), float(value(bce, z, t)), "the BCE loss")
        assert_close(grad, vjp(bce, [z, t], 1.0)[0], f"BCE ∂L/∂logits for shape {z.shape}")


@check("regularization", "oracle", hidden=True)
def penalties_match_torch_on_fresh_parameters(m):
    """L1 and L2 penalties and gradients equal torch's for three fresh arrays and λ = 0.37."""
    rng = np.random.default_rng(SEED + 2)
    params = [rng.normal(0, 2, (3, 5)), rng.normal(0, 2, (5,)), rng.normal(0, 2, (2, 2, 2))]
    params[0][1, 2] = 0.0  # sign(0) = 0 must hold here as well
    lam = 0.37
    for kind in ("l1", "l2"):
        tensors = [tensor(p, True) for p in params]
        terms = [t.abs().sum() if kind == "l1" else 0.5 * (t**2).sum() for t in tensors]
        expected = lam * sum(terms)
        expected.backward()
        penalty, grads = unpack(getattr(m, f"{kind}_penalty")(params, lam), 2, f"{kind}_penalty")
        assert_close(assert_scalar(penalty, "the penalty"), expected.item(), f"{kind}_penalty")
        if not isinstance(grads, list | tuple) or len(grads) != len(params):
            raise CheckFailed(f"{kind}_penalty should return one gradient per parameter array.")
        for i, (g, t) in enumerate(zip(grads, tensors, strict=True)):
            assert_close(
                as_array(g, "a gradient"), t.grad.numpy(), f"{kind}_penalty gradient of params[{i}]"
            )
