"""0.5 The Linear layer: forward, backward and parameter gradients against torch.nn.Linear."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close
from grader.session import fetch, run_probe

BACKWARD_HINT = "dx = dout·W (N, in); ∂L/∂W = doutᵀ·x (out, in); ∂L/∂b = Σₙ dout (out,)."


def _torch_linear(W, b, x, dout):
    layer = torch.nn.Linear(W.shape[1], W.shape[0]).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W))
        layer.bias.copy_(torch.from_numpy(b))
    xt = torch.tensor(x, requires_grad=True)
    y = layer(xt)
    y.backward(torch.from_numpy(dout))
    return y.detach().numpy(), xt.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()


def _case(seed, n=5, fan_in=4, fan_out=3):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(fan_out, fan_in)),
        rng.normal(size=fan_out),
        rng.normal(size=(n, fan_in)),
        rng.normal(size=(n, fan_out)),
    )


def _layer_with(m, W, b):
    layer = m.Linear(W.shape[1], W.shape[0], rng=0)
    layer.weight, layer.bias = W.copy(), b.copy()
    return layer


@check("linear_layer", "oracle")
def initialisation_matches_torch_layout(m):
    """Linear(in, out) has weight (out, in), bias (out,) in U(−1/√in, 1/√in) and zero grads."""
    layer = m.Linear(400, 300, rng=0)
    W, b = as_array(fetch(layer.weight), "weight"), as_array(fetch(layer.bias), "bias")
    if W.shape != (300, 400) or b.shape != (300,):
        raise CheckFailed(
            f"Linear(400, 300) should have weight (300, 400) and bias (300,), "
            f"got {W.shape} and {b.shape}: torch stores weight as (out, in)."
        )
    bound = 1 / np.sqrt(400)
    if np.abs(W).max() > bound or np.abs(W).max() < 0.99 * bound:
        raise CheckFailed(
            f"weights should fill U(−1/√in, 1/√in) = ±{bound:.4g}; "
            f"max |w| is {np.abs(W).max():.4g}."
        )
    if min(-b.min(), b.max()) < 0.5 * bound or np.abs(b).max() > bound:
        raise CheckFailed(
            f"the bias should fill U(−1/√in, 1/√in) = ±{bound:.4g} like the weight; its "
            f"300 values span [{b.min():.4g}, {b.max():.4g}].",
            "rng.uniform(-bound, bound, out_features): the low end is −bound.",
        )
    if abs(W.std() - bound / np.sqrt(3)) > 0.02 * bound:
        raise CheckFailed(
            f"the weights' std is {W.std():.4g}; U(−a, a) has std a/√3 = {bound / np.sqrt(3):.4g}."
        )
    for name in ("grad_weight", "grad_bias"):
        g = as_array(fetch(getattr(layer, name)), name)
        if not np.all(g == 0) or g.shape != (W.shape if name == "grad_weight" else b.shape):
            raise CheckFailed(f"{name} should start as zeros shaped like its parameter.")


@check("linear_layer", "oracle")
def forward_and_backward_match_torch(m):
    """forward, dx, grad_weight and grad_bias equal torch.nn.Linear's with copied weights."""
    for seed in range(3):
        W, b, x, dout = _case(seed, n=2 + seed)
        y, dx, dW, db = _torch_linear(W, b, x, dout)
        layer = _layer_with(m, W, b)
        assert_close(layer.forward(x), y, "Linear.forward(x)", hint="y = x Wᵀ + b")
        assert_close(layer.backward(dout), dx, "the dx returned by backward", hint=BACKWARD_HINT)
        assert_close(fetch(layer.grad_weight), dW, "grad_weight", hint=BACKWARD_HINT)
        assert_close(fetch(layer.grad_bias), db, "grad_bias", hint=BACKWARD_HINT)


@check("linear_layer", "gradient")
def backward_agrees_with_finite_differences(m):
    """Linear.backward agrees with central differences of Linear.forward in x, W and b."""
    W, b, x, _ = _case(4)
    layer = m.Linear(4, 3, rng=0)

    def forward(inputs):
        layer.weight, layer.bias = inputs["W"], inputs["b"]
        return layer.forward(inputs["x"])

    def vjp(inputs, v):
        forward(inputs)
        dx = layer.backward(v)
        return {"x": dx, "W": fetch(layer.grad_weight), "b": fetch(layer.grad_bias)}

    check_gradients(
        forward,
        vjp,
        {"x": x, "W": W, "b": b},
        what="Linear.backward",
        mode="full",
        hint=BACKWARD_HINT,
    )


@check("linear_layer", "invariant")
def backward_overwrites_gradients(m):
    """Calling backward twice leaves the gradients of the last call (they are set, not summed)."""
    W, b, x, dout = _case(5)
    layer = _layer_with(m, W, b)
    layer.forward(x)
    layer.backward(dout)
    layer.backward(dout)
    _, _, dW, db = _torch_linear(W, b, x, dout)
    assert_close(
        fetch(layer.grad_weight),
        dW,
        "grad_weight after two backward calls",
        hint="This course's layers overwrite their gradients: assign, do not add.",
    )
    assert_close(fetch(layer.grad_bias), db, "grad_bias after two backward calls")


@check("linear_layer", "invariant")
def grads_arrays_hold_the_latest_gradients(m):
    """The arrays grads() returned earlier hold the new gradients after backward (in place)."""
    W, b, x, dout = _case(6)
    layer = _layer_with(m, W, b)
    held = run_probe(m, "phase0.grads_after_backward", m, layer, x, dout)
    _, _, dW, db = _torch_linear(W, b, x, dout)
    if not isinstance(held, list) or len(held) != 2:
        raise CheckFailed("Linear.grads() should return [grad_weight, grad_bias].")
    hint = (
        "An optimiser keeps the arrays from grads(); write into them "
        "(self.grad_weight[...] = …) instead of binding new arrays."
    )
    assert_close(held[0], dW, "grad_weight as seen through an earlier grads() list", hint=hint)
    assert_close(held[1], db, "grad_bias as seen through an earlier grads() list", hint=hint)


@fingerprint("linear_layer")
def linear_outputs(m):
    W, b, x, dout = _case(7)
    layer = _layer_with(m, W, b)
    y = layer.forward(x)
    dx = layer.backward(dout)
    dx_again = layer.backward(dout)
    fresh = m.Linear(50, 40, rng=0)
    W0 = np.asarray(fetch(fresh.weight))
    held = run_probe(m, "phase0.grads_after_backward", m, _layer_with(m, W, b), x, dout)
    return {
        "y": y,
        "dx": dx,
        "dx_again": dx_again,
        "dW": fetch(layer.grad_weight),
        "held_dW": held[0],
        "db": fetch(layer.grad_bias),
        "init_bound": np.round(np.abs(W0).max() * np.sqrt(50), 1),
    }
