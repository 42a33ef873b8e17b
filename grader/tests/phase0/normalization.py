"""0.8 BatchNorm1d and 0.9 LayerNorm, against torch.nn.BatchNorm1d / LayerNorm."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close
from grader.checks.stability import assert_finite, assert_quiet
from grader.session import fetch

BN_BACKWARD_HINT = (
    "μ and σ² depend on every sample: dx = (1/(N·√(σ²+ε)))·(N·dx̂ − Σdx̂ − "
    "x̂·Σ(dx̂·x̂)) with dx̂ = dout·γ."
)
LN_BACKWARD_HINT = (
    "Same formula as BatchNorm's, but the sums run over the last axis "
    "(the D features of one row), not over the batch."
)


def _data(seed, shape):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(2.0, 3.0, shape),
        rng.normal(size=shape),
        rng.normal(size=shape[-1]),
        rng.normal(size=shape[-1]),
    )


def _set_affine(layer, gamma, beta):
    layer.weight, layer.bias = gamma.copy(), beta.copy()


# ------------------------------------------------------------------ BatchNorm1d


def _torch_bn(gamma, beta, batches, dout, momentum=0.1):
    bn = torch.nn.BatchNorm1d(len(gamma), momentum=momentum).double()
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    outs = []
    for x in batches[:-1]:
        outs.append(bn(torch.from_numpy(x)).detach().numpy())
    x = torch.tensor(batches[-1], requires_grad=True)
    y = bn(x)
    y.backward(torch.from_numpy(dout))
    outs.append(y.detach().numpy())
    return bn, outs, x.grad.numpy(), bn.weight.grad.numpy(), bn.bias.grad.numpy()


@check("batchnorm", "oracle")
def batchnorm_training_matches_torch(m):
    """In training mode, outputs and running statistics over 3 batches equal torch's."""
    batches = [_data(s, (6, 4))[0] for s in range(3)]
    _, dout, gamma, beta = _data(9, (6, 4))
    bn_t, outs, _, _, _ = _torch_bn(gamma, beta, batches, dout)
    bn = m.BatchNorm1d(4)
    _set_affine(bn, gamma, beta)
    for i, x in enumerate(batches):
        assert_close(
            bn.forward(x),
            outs[i],
            f"forward on training batch {i}",
            hint="Normalise with the batch mean and the biased variance x.var(axis=0).",
        )
    assert_close(
        fetch(bn.running_mean),
        bn_t.running_mean.numpy(),
        "running_mean after 3 batches",
        hint="running ← (1 − momentum)·running + momentum·batch statistic.",
    )
    assert_close(
        fetch(bn.running_var),
        bn_t.running_var.numpy(),
        "running_var after 3 batches",
        hint="torch feeds the running variance the unbiased batch variance ×N/(N−1).",
    )


@check("batchnorm", "oracle")
def batchnorm_eval_uses_running_statistics(m):
    """After eval(), forward uses the running statistics, exactly as torch's eval mode."""
    batches = [_data(s, (8, 3))[0] for s in range(2)]
    _, dout, gamma, beta = _data(3, (8, 3))
    bn_t, _, _, _, _ = _torch_bn(gamma, beta, batches, dout[:8])
    bn = m.BatchNorm1d(3)
    _set_affine(bn, gamma, beta)
    for x in batches:
        bn.forward(x)
    bn.eval()
    bn_t.eval()
    probe = _data(5, (4, 3))[0]
    with torch.no_grad():
        expected = bn_t(torch.from_numpy(probe)).numpy()
    assert_close(
        bn.forward(probe),
        expected,
        "forward in eval mode",
        hint="In eval mode use running_mean/running_var, and do not update them.",
    )
    assert_close(bn.forward(probe[:1]), expected[:1], "eval forward of a single sample")


@check("batchnorm", "oracle")
def batchnorm_backward_matches_torch_autograd(m):
    """dx, grad_weight and grad_bias after a training forward equal torch autograd's."""
    x, dout, gamma, beta = _data(11, (7, 5))
    _, _, dx, dgamma, dbeta = _torch_bn(gamma, beta, [x], dout)
    bn = m.BatchNorm1d(5)
    _set_affine(bn, gamma, beta)
    bn.forward(x)
    assert_close(bn.backward(dout), dx, "BatchNorm1d.backward dx", hint=BN_BACKWARD_HINT)
    assert_close(fetch(bn.grad_weight), dgamma, "grad_weight (∂L/∂γ = Σ dout·x̂)")
    assert_close(fetch(bn.grad_bias), dbeta, "grad_bias (∂L/∂β = Σ dout)")


@check("batchnorm", "gradient")
def batchnorm_backward_agrees_with_finite_differences(m):
    """BatchNorm1d.backward agrees with central differences of its training forward."""
    x, _, gamma, beta = _data(12, (5, 3))
    bn = m.BatchNorm1d(3)

    def forward(inputs):
        _set_affine(bn, inputs["gamma"], inputs["beta"])
        return bn.forward(inputs["x"])

    def vjp(inputs, v):
        forward(inputs)
        return {"x": bn.backward(v), "gamma": fetch(bn.grad_weight), "beta": fetch(bn.grad_bias)}

    check_gradients(
        forward,
        vjp,
        {"x": x, "gamma": gamma, "beta": beta},
        what="BatchNorm1d.backward",
        mode="full",
        hint=BN_BACKWARD_HINT,
    )


@check("batchnorm", "stability")
def batchnorm_is_stable_for_a_constant_feature(m):
    """A feature that is constant in the batch (variance 0) normalises to β, not nan."""
    x = np.column_stack([np.full(6, 3.0), np.arange(6.0)])
    bn = m.BatchNorm1d(2)
    y = assert_finite(
        bn.forward(x),
        "BatchNorm1d on a constant feature",
        "ε is added to the variance inside the square root for exactly this case.",
    )
    assert_quiet(
        m,
        "BatchNorm1d on a constant feature",
        "ε is added to the variance inside the square root for exactly this case.",
    )
    assert_close(y[:, 0], np.zeros(6), "the normalised constant feature")


@fingerprint("batchnorm")
def batchnorm_outputs(m):
    x, dout, gamma, beta = _data(21, (6, 3))
    bn = m.BatchNorm1d(3)
    _set_affine(bn, gamma, beta)
    y = bn.forward(x)
    dx = bn.backward(dout)
    y2 = bn.forward(x * 2 + 1)
    bn.eval()
    running = {"running_mean": fetch(bn.running_mean), "running_var": fetch(bn.running_var)}
    evaluated = bn.forward(x[:2])
    return {
        "y": y,
        "dx": dx,
        "y2": y2,
        **running,
        "eval": evaluated,
        "eval_again": bn.forward(x[:2]),  # eval must not update the running statistics
    }


# ------------------------------------------------------------------ LayerNorm


def _torch_ln(gamma, beta, x, dout, eps=1e-5):
    xt = torch.tensor(x, requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    y = torch.nn.functional.layer_norm(xt, (x.shape[-1],), gt, bt, eps)
    y.backward(torch.from_numpy(dout))
    return y.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


@check("layernorm", "oracle")
def layernorm_forward_and_backward_match_torch(m):
    """Forward, dx and parameter gradients equal torch's layer_norm for 2-D and 3-D inputs."""
    for seed, shape in ((1, (4, 6)), (2, (2, 3, 5))):
        x, dout, gamma, beta = _data(seed, shape)
        y, dx, dgamma, dbeta = _torch_ln(gamma, beta, x, dout)
        ln = m.LayerNorm(shape[-1])
        _set_affine(ln, gamma, beta)
        assert_close(
            ln.forward(x),
            y,
            f"LayerNorm forward on {shape}",
            hint="Statistics over the last axis, biased variance (ddof=0), ε inside √.",
        )
        assert_close(
            ln.backward(dout), dx, f"LayerNorm backward dx on {shape}", hint=LN_BACKWARD_HINT
        )
        assert_close(
            fetch(ln.grad_weight),
            dgamma,
            f"grad_weight on {shape}",
            hint="Sum dout·x̂ over every axis but the last.",
        )
        assert_close(fetch(ln.grad_bias), dbeta, f"grad_bias on {shape}")


@check("layernorm", "gradient")
def layernorm_backward_agrees_with_finite_differences(m):
    """LayerNorm.backward agrees with central differences of its forward."""
    x, _, gamma, beta = _data(4, (3, 4))
    ln = m.LayerNorm(4)

    def forward(inputs):
        _set_affine(ln, inputs["gamma"], inputs["beta"])
        return ln.forward(inputs["x"])

    def vjp(inputs, v):
        forward(inputs)
        return {"x": ln.backward(v), "gamma": fetch(ln.grad_weight), "beta": fetch(ln.grad_bias)}

    check_gradients(
        forward,
        vjp,
        {"x": x, "gamma": gamma, "beta": beta},
        what="LayerNorm.backward",
        mode="full",
        hint=LN_BACKWARD_HINT,
    )


@check("layernorm", "invariant")
def layernorm_output_has_mean_zero_variance_one_and_ignores_affine_input_changes(m):
    """With γ = 1, β = 0 each row has mean 0 and variance ≈ 1, unchanged by x → a·x + c."""
    x = _data(6, (5, 8))[0]
    ln = m.LayerNorm(8)
    y = as_array(ln.forward(x), "LayerNorm output")
    if y.shape != x.shape:
        raise CheckFailed(f"LayerNorm output has shape {y.shape}, expected {x.shape}.")
    assert_close(y.mean(-1), np.zeros(5), "row means of the output", atol=1e-10)
    var = x.var(-1)
    assert_close(
        y.var(-1),
        var / (var + 1e-5),
        "row variances of the output (σ²/(σ²+ε))",
        hint="Use the biased variance over the last axis.",
    )
    assert_close(
        ln.forward(3.0 * x + 7.0), y, "LayerNorm(3x + 7) vs LayerNorm(x)", rtol=1e-5, atol=1e-6
    )


@check("layernorm", "stability")
def layernorm_is_stable_for_constant_and_huge_rows(m):
    """Constant rows give β (no nan) and rows of magnitude 1e4 normalise exactly."""
    x = np.array([[5.0, 5.0, 5.0, 5.0], [1e4, -1e4, 2e4, 0.0]])
    ln = m.LayerNorm(4)
    hint = (
        "Take the variance as the mean of (x − μ)² (x.var does) with ε inside the square "
        "root: a constant row then gives β, and E[x²] − μ² does not cancel badly at 1e4."
    )
    y = assert_finite(ln.forward(x), "LayerNorm on a constant row and a row of size 1e4", hint)
    assert_quiet(m, "LayerNorm on a constant row", hint)
    expected, _, _, _ = _torch_ln(np.ones(4), np.zeros(4), x, np.ones_like(x))
    assert_close(y, expected, "LayerNorm on a constant row and a row of size 1e4", hint=hint)


@fingerprint("layernorm")
def layernorm_outputs(m):
    x, dout, gamma, beta = _data(31, (3, 5))
    ln = m.LayerNorm(5)
    _set_affine(ln, gamma, beta)
    y = ln.forward(x)
    return {
        "y": y,
        "dx": ln.backward(dout),
        "dgamma": fetch(ln.grad_weight),
        "dbeta": fetch(ln.grad_bias),
    }
