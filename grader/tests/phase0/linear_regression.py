"""0.1 Linear regression by gradient descent with hand-derived gradients."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close, assert_scalar, unpack
from grader.checks.reference import tensor

GRAD_HINT = "∂L/∂w = (2/N)·Xᵀ(Xw + b − y) and ∂L/∂b = (2/N)·Σ(Xw + b − y)."


def _problem(seed: int = 0, n: int = 64, d: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w_true, b_true = rng.normal(size=d), float(rng.normal())
    return X, X @ w_true + b_true, w_true, b_true


def _torch_mse(X, y, w, b):
    w_t, b_t = tensor(w, True), tensor(b, True)
    loss = ((tensor(X) @ w_t + b_t - tensor(y)) ** 2).mean()
    loss.backward()
    return loss.item(), w_t.grad.numpy(), b_t.grad.item()


@check("linear_regression", "oracle")
def mse_loss_and_gradients_match_torch_autograd(m):
    """mse_loss returns the mean squared error and its gradients, as torch autograd computes."""
    for seed in range(3):
        X, y, _, _ = _problem(seed, n=10 + seed)
        w, b = np.random.default_rng(seed + 9).normal(size=X.shape[1]), 0.3
        loss, dw, db = unpack(m.mse_loss(X, y, w, b), 3, "mse_loss")
        expected = _torch_mse(X, y, w, b)
        assert_close(
            assert_scalar(loss, "the loss"),
            expected[0],
            "the MSE loss",
            hint="Average the squared residuals over N.",
        )
        assert_close(dw, expected[1], "∂L/∂w", hint=GRAD_HINT)
        assert_close(assert_scalar(db, "∂L/∂b"), expected[2], "∂L/∂b", hint=GRAD_HINT)


@check("linear_regression", "gradient")
def mse_gradients_agree_with_finite_differences(m):
    """mse_loss's gradients agree with central differences of its loss."""
    X, y, _, _ = _problem(3, n=12)

    def forward(inputs):
        return np.asarray(
            unpack(m.mse_loss(X, y, inputs["w"], float(inputs["b"])), 3, "mse_loss")[0]
        )

    def vjp(inputs, v):
        _, dw, db = unpack(m.mse_loss(X, y, inputs["w"], float(inputs["b"])), 3, "mse_loss")
        return {
            "w": float(v) * as_array(dw, "∂L/∂w"),
            "b": np.asarray(float(v) * assert_scalar(db, "∂L/∂b")),
        }

    check_gradients(
        forward,
        vjp,
        {"w": np.array([0.5, -1.0, 2.0]), "b": np.array(0.25)},
        what="mse_loss",
        mode="full",
        hint=GRAD_HINT,
    )


@check("linear_regression", "e2e")
def gradient_descent_recovers_the_coefficients(m):
    """fit_linear_regression recovers noise-free coefficients (np.linalg.lstsq as reference)."""
    X, y, _, _ = _problem(5, n=200)
    w, b, losses = unpack(
        m.fit_linear_regression(X, y, lr=0.1, steps=500), 3, "fit_linear_regression"
    )
    design = np.hstack([X, np.ones((len(X), 1))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    assert_close(
        as_array(w, "w"),
        solution[:-1],
        "the fitted w",
        rtol=1e-6,
        atol=1e-6,
        hint="500 steps of lr 0.1 on standardised data converge: check the update's sign.",
    )
    assert_close(assert_scalar(b, "b"), solution[-1], "the fitted b", rtol=1e-6, atol=1e-6)
    losses = as_array(losses, "losses")
    if losses.shape != (500,):
        raise CheckFailed(f"losses should have shape (500,) — one per step — not {losses.shape}.")


@check("linear_regression", "invariant")
def losses_start_at_the_zero_model_and_decrease(m):
    """losses[0] is the loss of w = 0, b = 0 (recorded before the update) and never increases."""
    X, y, _, _ = _problem(6, n=50)
    _, _, losses = unpack(
        m.fit_linear_regression(X, y, lr=0.05, steps=40), 3, "fit_linear_regression"
    )
    losses = as_array(losses, "losses")
    assert_close(
        losses[:1],
        np.array([np.mean(y**2)]),
        "losses[0]",
        hint="Record the loss of the current parameters before updating them.",
    )
    if np.any(np.diff(losses) > 1e-12):
        step = int(np.argmax(np.diff(losses) > 1e-12))
        raise CheckFailed(
            f"the loss increased at step {step + 1} ({losses[step]:.6g} → "
            f"{losses[step + 1]:.6g}); gradient descent with a small step must "
            f"not increase a convex loss.",
            GRAD_HINT,
        )


@fingerprint("linear_regression")
def linear_regression_outputs(m):
    X, y, _, _ = _problem(1, n=8)
    loss, dw, db = m.mse_loss(X, y, np.array([0.1, -0.2, 0.3]), 0.5)
    w, b, losses = m.fit_linear_regression(X, y, lr=0.05, steps=5)
    return {"loss": loss, "dw": dw, "db": db, "w": w, "b": b, "losses": losses}
