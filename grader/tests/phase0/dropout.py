"""0.10 Inverted dropout: statistics in training, identity in eval, backward through the mask."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.checks.stability import assert_finite, assert_quiet

N = 200_000  # enough samples that the kept fraction is within ±0.5% of 1 − p


def _train_forward(m, p, x, seed=0):
    layer = m.Dropout(p, rng=seed)
    return layer, as_array(layer.forward(x), f"Dropout({p}).forward(x)")


@check("dropout", "invariant")
def dropout_keeps_the_expected_fraction_and_rescales(m):
    """In training, each output is 0 or x/(1 − p), a fraction ≈ 1 − p survives, the mean is kept."""
    x = np.random.default_rng(12345).uniform(1.0, 2.0, N)  # a stream unrelated to the mask's
    for p in (0.2, 0.5, 0.8):
        _, y = _train_forward(m, p, x)
        kept = y != 0
        if y.shape != x.shape:
            raise CheckFailed(f"Dropout output has shape {y.shape}, expected {x.shape}.")
        assert_close(
            y[kept],
            x[kept] / (1 - p),
            f"surviving outputs for p={p}",
            hint="Inverted dropout scales survivors by 1/(1 − p) during training.",
        )
        fraction = kept.mean()
        if abs(fraction - (1 - p)) > 0.005:
            raise CheckFailed(
                f"with p={p}, {fraction:.3f} of the units survived; expected {1 - p:.3f}.",
                "p is the probability of DROPPING a unit.",
            )
        if abs(y.mean() - x.mean()) > 0.02 * x.mean():
            raise CheckFailed(
                f"with p={p}, the output mean is {y.mean():.4f} but the input "
                f"mean is {x.mean():.4f}: inverted dropout preserves E[x]."
            )


@check("dropout", "invariant")
def dropout_is_the_identity_in_eval(m):
    """After eval(), forward and backward return their input unchanged."""
    x = np.random.default_rng(1).normal(size=(50, 7))
    layer = m.Dropout(0.5, rng=0)
    layer.eval()
    assert_close(
        layer.forward(x),
        x,
        "Dropout.forward in eval mode",
        hint="In eval mode dropout does nothing: no mask, no scaling.",
    )
    assert_close(layer.backward(x), x, "Dropout.backward in eval mode")


@check("dropout", "oracle")
def dropout_backward_uses_the_forward_mask(m):
    """backward(dout) = dout·mask/(1 − p) with the mask and scale of the last forward."""
    x = np.ones((300, 40))
    layer, y = _train_forward(m, 0.3, x, seed=4)
    dout = np.random.default_rng(2).normal(size=x.shape)
    assert_close(
        layer.backward(dout),
        dout * y,
        "Dropout.backward(dout)",
        hint="With x = 1 the forward output is exactly mask/(1 − p): reuse it.",
    )


@check("dropout", "stability")
def dropout_edge_probabilities(m):
    """p = 0 is the identity and p = 1 gives zeros, with no nan and no warning."""
    x = np.random.default_rng(3).normal(size=(20, 5))
    _, y0 = _train_forward(m, 0.0, x)
    assert_close(y0, x, "Dropout(0).forward(x)")
    _, y1 = _train_forward(m, 1.0, x)
    assert_finite(
        y1,
        "Dropout(1).forward(x)",
        "p = 1 keeps nothing: return zeros, do not divide by 1 − p = 0.",
    )
    assert_quiet(m, "Dropout(1).forward(x)", "p = 1 keeps nothing: 1/(1 − p) is a division by 0.")
    assert_close(y1, np.zeros_like(x), "Dropout(1).forward(x)")


@fingerprint("dropout")
def dropout_statistics(m):
    x = np.full(20_000, 1.0)
    layer = m.Dropout(0.25, rng=0)
    y = np.asarray(layer.forward(x))
    back = np.asarray(layer.backward(np.full_like(x, 2.0)))
    evaluation = m.Dropout(0.25, rng=0)
    evaluation.eval()
    return {
        "kept_fraction": np.round((y != 0).mean(), 1),
        "survivor_value": np.round(y.max(), 3),
        "backward_survivor": np.round(back.max(), 3),
        "backward_matches_mask": np.array(bool(np.all((back != 0) == (y != 0)))),
        "eval_value": np.round(np.asarray(evaluation.forward(x)).max(), 3),
        # a second forward draws a new mask (from the layer's one Generator)
        "new_mask": np.array(bool(np.any((np.asarray(layer.forward(x)) != 0) != (y != 0)))),
    }
