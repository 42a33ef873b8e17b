"""0.4 Softmax cross-entropy and BCE-with-logits, with their gradients."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from hypothesis import strategies as st

from grader.checks import check, fingerprint
from grader.checks.gradient import check_gradients, loss_and_grad_pair
from grader.checks.oracle import assert_close, assert_scalar, unpack
from grader.checks.properties import property_holds
from grader.checks.reference import tensor, value, vjp
from grader.checks.stability import EXTREME, assert_finite, assert_quiet

CE_HINT = "∂L/∂z = (softmax(z) − onehot(y))/N: the mean over the batch divides by N."
BCE_HINT = "∂L/∂z = (σ(z) − t)/n, n the number of elements (the loss is a mean)."


def _ce_case():
    return st.tuples(st.integers(1, 6), st.integers(2, 5), st.integers(0, 2**16)).map(_make_ce)


def _make_ce(sizes):
    n, c, seed = sizes
    rng = np.random.default_rng(seed)
    return rng.normal(0, 3, (n, c)), rng.integers(0, c, n)


def _ce_reference(logits, labels):
    return F.cross_entropy(logits, tensor(labels).long())


def _ce_grad(logits, labels):
    return vjp(lambda z: _ce_reference(z, labels), [logits], 1.0)[0]


@check("losses", "oracle")
def softmax_cross_entropy_matches_torch(m):
    """softmax_cross_entropy's loss and gradient equal F.cross_entropy's (mean reduction)."""

    def prop(case):
        logits, labels = case
        loss, grad = unpack(m.softmax_cross_entropy(logits, labels), 2, "softmax_cross_entropy")
        expected = float(value(_ce_reference, logits, labels))
        assert_close(
            assert_scalar(loss, "the loss"),
            expected,
            "the cross-entropy loss",
            hint="Average −log softmax(z)[y] over the batch.",
        )
        assert_close(grad, _ce_grad(logits, labels), "∂L/∂logits", hint=CE_HINT)

    property_holds(prop, _ce_case(), examples=15)


@check("losses", "gradient")
def softmax_cross_entropy_gradient_agrees_with_finite_differences(m):
    """The returned ∂L/∂logits agrees with central differences of the returned loss."""
    logits, labels = _make_ce((4, 3, 7))
    forward, grad = loss_and_grad_pair(m.softmax_cross_entropy, "logits", {"labels": labels})
    check_gradients(
        forward, grad, {"logits": logits}, what="softmax_cross_entropy", mode="full", hint=CE_HINT
    )


@check("losses", "stability")
def softmax_cross_entropy_is_stable_at_1e4(m):
    """Cross-entropy of logits ±1e4 is finite, warning-free and exact (loss 2e4 or 0)."""
    logits = np.array([[EXTREME, 0.0, -EXTREME], [EXTREME, 0.0, -EXTREME]])
    labels = np.array([2, 0])
    loss, grad = unpack(m.softmax_cross_entropy(logits, labels), 2, "softmax_cross_entropy")
    assert_finite(
        np.asarray(loss),
        "the loss at logits ±1e4",
        "Use log_softmax, not log(softmax): a probability of 0 gives log 0 = −inf.",
    )
    assert_quiet(
        m,
        "softmax_cross_entropy at logits ±1e4",
        "Build the loss on log_softmax and the gradient on softmax, both of which subtract "
        "the row maximum before exp.",
    )
    assert_close(
        assert_scalar(loss, "the loss"),
        float(value(_ce_reference, logits, labels)),
        "the loss at logits ±1e4",
    )
    assert_close(grad, _ce_grad(logits, labels), "∂L/∂logits at logits ±1e4")


def _bce_case():
    return st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**16)).map(_make_bce)


def _make_bce(sizes):
    n, c, seed = sizes
    rng = np.random.default_rng(seed)
    return rng.normal(0, 4, (n, c)), rng.uniform(0, 1, (n, c)).round(1)


@check("losses", "oracle")
def bce_with_logits_matches_torch(m):
    """bce_with_logits' loss and gradient equal F.binary_cross_entropy_with_logits (mean)."""

    def prop(case):
        logits, targets = case
        loss, grad = unpack(m.bce_with_logits(logits, targets), 2, "bce_with_logits")
        reference = F.binary_cross_entropy_with_logits
        assert_close(
            assert_scalar(loss, "the loss"),
            float(value(reference, logits, targets)),
            "the BCE loss",
        )
        assert_close(grad, vjp(reference, [logits, targets], 1.0)[0], "∂L/∂logits", hint=BCE_HINT)

    property_holds(prop, _bce_case(), examples=15)


@check("losses", "gradient")
def bce_with_logits_gradient_agrees_with_finite_differences(m):
    """The returned ∂L/∂logits agrees with central differences of the returned loss."""
    logits, targets = _make_bce((3, 4, 11))
    forward, grad = loss_and_grad_pair(m.bce_with_logits, "logits", {"targets": targets})
    check_gradients(
        forward, grad, {"logits": logits}, what="bce_with_logits", mode="full", hint=BCE_HINT
    )


@check("losses", "stability")
def bce_with_logits_is_stable_at_1e4(m):
    """BCE-with-logits at |z| = 1e4 is finite, warning-free and exact."""
    logits = np.array([EXTREME, -EXTREME, EXTREME, -EXTREME, 0.0])
    targets = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    loss, grad = unpack(m.bce_with_logits(logits, targets), 2, "bce_with_logits")
    assert_finite(
        np.asarray(loss),
        "the BCE loss at |z| = 1e4",
        "Use max(z, 0) − z·t + log(1 + e^(−|z|)); log(σ(z)) underflows to −inf.",
    )
    assert_quiet(
        m,
        "bce_with_logits at |z| = 1e4",
        "exp(−|z|) ≤ 1 never overflows; exp(−z) at z = −1e4 does, and log(σ(z)) divides by 0.",
    )
    reference = F.binary_cross_entropy_with_logits
    assert_close(
        assert_scalar(loss, "the loss"),
        float(value(reference, logits, targets)),
        "the BCE loss at |z| = 1e4",
    )
    assert_close(grad, vjp(reference, [logits, targets], 1.0)[0], "∂L/∂logits at |z| = 1e4")


@fingerprint("losses")
def loss_outputs(m):
    logits, labels = _make_ce((5, 4, 3))
    blogits, targets = _make_bce((3, 3, 5))
    ce_loss, ce_grad = m.softmax_cross_entropy(logits, labels)
    ce_big, _ = m.softmax_cross_entropy(np.array([[EXTREME, 0.0, -EXTREME]]), np.array([2]))
    bce_loss, bce_grad = m.bce_with_logits(blogits, targets)
    bce_big, _ = m.bce_with_logits(np.array([EXTREME, -EXTREME]), np.array([0.0, 1.0]))
    return {
        "ce_loss": ce_loss,
        "ce_grad": ce_grad,
        "ce_extreme": ce_big,
        "bce_loss": bce_loss,
        "bce_grad": bce_grad,
        "bce_extreme": bce_big,
    }
