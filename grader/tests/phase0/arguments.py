"""Phase 0's documented arguments the topic modules leave at one value, and its documented
errors: every parameter a docstring names is exercised by a check that fails when it is
ignored (a default, eps, momentum), and every documented ValueError that the student writes
is demanded (Dropout's check of p is given code in the stub: grading it would grade nothing)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import check
from grader.checks.contracts import raises
from grader.checks.oracle import assert_close
from grader.checks.reference import value, vjp
from grader.session import fetch

X = np.random.default_rng(51).normal(size=(8, 4)) * 2.0
DOUT = np.random.default_rng(52).normal(size=(8, 4))


@check("activations", "oracle")
def leaky_relu_defaults_to_a_slope_of_0_01(m):
    """leaky_relu and leaky_relu_backward without negative_slope use torch's default, 0.01."""
    hint = "negative_slope defaults to 0.01 (torch's): keep the default in the signature."
    assert_close(
        m.leaky_relu(X), value(F.leaky_relu, X), "leaky_relu(x)", hint=hint, inputs={"x": X}
    )
    (expected,) = vjp(F.leaky_relu, [X], DOUT)
    assert_close(
        m.leaky_relu_backward(X, DOUT),
        expected,
        "leaky_relu_backward(x, dout)",
        hint=hint,
        inputs={"x": X},
    )


@check("batchnorm", "oracle")
def batchnorm_uses_its_eps_and_momentum(m):
    """BatchNorm1d(4, eps=0.5, momentum=0.3) matches torch's with the same eps and momentum over
    two batches (outputs and running statistics)."""
    bn = m.BatchNorm1d(4, eps=0.5, momentum=0.3)
    reference = torch.nn.BatchNorm1d(4, eps=0.5, momentum=0.3).double()
    for step, batch in enumerate((X, X[:5] * 3 - 1)):
        with torch.no_grad():
            expected = reference(torch.from_numpy(batch)).numpy()
        assert_close(
            bn.forward(batch),
            expected,
            f"BatchNorm1d(eps=0.5) output, batch {step}",
            hint="Use self.eps inside the square root, not a literal 1e-5.",
        )
    for name in ("running_mean", "running_var"):
        assert_close(
            fetch(getattr(bn, name)),
            getattr(reference, name).numpy(),
            f"{name} with momentum=0.3 after two batches",
            hint="running ← (1 − momentum)·running + momentum·batch: self.momentum, "
            "not a literal 0.1.",
        )


@check("layernorm", "oracle")
def layernorm_uses_its_eps(m):
    """LayerNorm(4, eps=0.5) matches F.layer_norm with eps = 0.5."""
    ln = m.LayerNorm(4, eps=0.5)
    expected = value(lambda x: F.layer_norm(x, (4,), eps=0.5), X)
    assert_close(
        ln.forward(X),
        expected,
        "LayerNorm(4, eps=0.5).forward(x)",
        hint="Use self.eps inside the square root, not a literal 1e-5.",
    )


@check("init", "invariant")
def compute_fans_rejects_fewer_than_two_dimensions(m):
    """compute_fans raises ValueError for a shape of fewer than 2 dimensions, as documented."""
    for shape in ((5,), ()):
        raises(
            lambda shape=shape: m.compute_fans(shape),
            "ValueError",
            f"compute_fans({shape})",
            "Fans are defined for weights of ≥ 2 dimensions: `raise ValueError(...)` below.",
        )
