"""1.6 Manual BPTT: the student's autograd Function is driven in the worker (apply, then
backward with a cotangent), and its outputs and gradients are judged here against nn.RNN with
autograd, against central differences of the student's own forward, and over 1000 steps."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.gradient import check_gradients
from grader.checks.oracle import assert_close
from grader.checks.stability import assert_finite
from grader.session import run_probe
from grader.tests.phase1._helpers import randn, single_thread

NAMES = ("x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")
BACKWARD_HINT = ("Walk t from T − 1 down to 0: dh = G_t + carry; da = dh⊙(1 − h_t²); "
                 "dW_hh += daᵀ h_{t−1} (h0 at t = 0); carry = da W_hh; both bias gradients "
                 "are Σ da over time and batch.")


def _inputs(seed: int, B: int, T: int, I: int, H: int, recurrent: float = 0.5) -> list:
    return [randn(seed, B, T, I), randn(seed + 1, B, H), randn(seed + 2, H, I, scale=0.6),
            randn(seed + 3, H, H, scale=recurrent), randn(seed + 4, H, scale=0.3),
            randn(seed + 5, H, scale=0.3)]


def _torch_rnn(inputs: list, cotangent: torch.Tensor) -> tuple[torch.Tensor, list]:
    """hs and the six gradients, by autograd through nn.RNN with the same weights."""
    x, h0, w_ih, w_hh, b_ih, b_hh = inputs
    rnn = nn.RNN(x.shape[2], h0.shape[1], batch_first=True).double()
    with torch.no_grad():
        for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                               (w_ih, w_hh, b_ih, b_hh), strict=True):
            getattr(rnn, name).copy_(value)
    x, h0 = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
    with single_thread():
        hs, _ = rnn(x, h0.unsqueeze(0))
        (hs * cotangent).sum().backward()  # a scalar: no lazy import for a tensor gradient
    return hs.detach(), [x.grad, h0.grad, rnn.weight_ih_l0.grad, rnn.weight_hh_l0.grad,
                         rnn.bias_ih_l0.grad, rnn.bias_hh_l0.grad]


def _student(m, inputs: list, cotangent: torch.Tensor) -> dict:
    result = run_probe(m, "phase1.bptt", m.TanhRNNFunction, inputs, cotangent)
    for name, grad in zip(NAMES, result["grads"], strict=True):
        if grad is None:
            raise CheckFailed(f"TanhRNNFunction.backward returned None for {name}.",
                              "backward returns one gradient per input of forward, in order: "
                              "(dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh).")
    return result


@check("manual_bptt", "oracle")
def bptt_forward_matches_torch_rnn(m):
    """TanhRNNFunction.apply returns nn.RNN's hidden states (tanh, batch first, given h0)."""
    for k, shape in enumerate([(3, 5, 4, 3), (2, 1, 3, 4)]):
        inputs = _inputs(10 * k, *shape)
        hs, _ = _torch_rnn(inputs, torch.zeros(shape[0], shape[1], shape[3], dtype=torch.float64))
        got = run_probe(m, "phase1.bptt_forward", m.TanhRNNFunction, inputs)
        assert_close(got, hs.numpy(), f"the hidden states for (B, T, I, H) = {shape}",
                     hint="h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), h_{−1} = h0, "
                          "stacked on dim 1.")


@check("manual_bptt", "oracle", weight=2)
def bptt_gradients_match_torch_autograd(m):
    """Your backward's six gradients equal autograd's through nn.RNN with the same weights."""
    for k, shape in enumerate([(3, 5, 4, 3), (2, 1, 3, 4)]):
        inputs = _inputs(20 + 10 * k, *shape)
        cotangent = randn(29 + k, shape[0], shape[1], shape[3])
        _, expected = _torch_rnn(inputs, cotangent)
        got = _student(m, inputs, cotangent)
        for name, grad, want in zip(NAMES, got["grads"], expected, strict=True):
            assert_close(grad, want.numpy(), f"∂L/∂{name} for (B, T, I, H) = {shape}",
                         hint=BACKWARD_HINT)


@check("manual_bptt", "gradient")
def bptt_backward_agrees_with_finite_differences(m):
    """Your backward agrees with central differences of your forward (random directions)."""
    inputs = _inputs(40, 2, 4, 3, 3)

    def forward(values):
        return run_probe(m, "phase1.bptt_forward", m.TanhRNNFunction,
                         [torch.from_numpy(values[name]) for name in NAMES])

    def vjp(values, v):
        result = _student(m, [torch.from_numpy(values[name]) for name in NAMES],
                          torch.from_numpy(np.asarray(v, dtype=np.float64)))
        return dict(zip(NAMES, result["grads"], strict=True))

    check_gradients(forward, vjp, {name: value.numpy() for name, value in zip(NAMES, inputs,
                                                                               strict=True)},
                    what="TanhRNNFunction.backward", hint=BACKWARD_HINT)


@check("manual_bptt", "invariant")
def bptt_backward_is_written_by_hand(m):
    """The output's grad_fn is your Function's node, and its backward runs no autograd itself."""
    inputs = _inputs(50, 2, 3, 2, 3)
    got = _student(m, inputs, randn(51, 2, 3, 3))
    if got["grad_fn"] != "TanhRNNFunctionBackward":
        raise CheckFailed(f"the output's grad_fn is {got['grad_fn']}, not your Function's "
                          f"TanhRNNFunctionBackward.",
                          "Return the hidden states computed in forward itself, not a tensor "
                          "rebuilt from them outside the Function.")
    if got["backward_calls"] != 1:
        raise CheckFailed(f"your backward called autograd {got['backward_calls'] - 1} more "
                          f"time(s) (.backward() inside backward).",
                          "The point of §1.6: compute every gradient with explicit matrix "
                          "products, no autograd.")


@check("manual_bptt", "stability")
def bptt_is_stable_over_1000_steps(m):
    """Over 1000 steps the gradients stay finite and still equal autograd's."""
    inputs = _inputs(60, 2, 1000, 3, 4, recurrent=0.9)
    cotangent = randn(61, 2, 1000, 4)
    _, expected = _torch_rnn(inputs, cotangent)
    got = _student(m, inputs, cotangent)
    for name, grad, want in zip(NAMES, got["grads"], expected, strict=True):
        assert_finite(grad, f"∂L/∂{name} over 1000 steps", "With recurrent weights of norm < 1 "
                      "the carried ∂L/∂h shrinks step by step: a nan here comes from a term that "
                      "grows instead (a missing (1 − h²) factor, or a gradient added twice).")
        assert_close(grad, want.numpy(), f"∂L/∂{name} over 1000 steps", rtol=1e-8, atol=1e-10,
                     hint=BACKWARD_HINT)


@fingerprint("manual_bptt")
def bptt_outputs(m):
    inputs = _inputs(70, 2, 4, 3, 3)
    result = run_probe(m, "phase1.bptt", m.TanhRNNFunction, inputs, randn(71, 2, 4, 3))
    outputs = {"hs": result["output"]}
    outputs.update({f"d{name}": grad for name, grad in zip(NAMES, result["grads"], strict=True)
                    if grad is not None})
    return outputs
