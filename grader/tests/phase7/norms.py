"""7.4 BatchNorm2d and 7.5 GroupNorm against torch's batch_norm / group_norm: training and eval,
running statistics over repeated calls, backward, dtypes, and a constant channel."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import check, fingerprint
from grader.checks.contracts import Numeric, contract_checks, raises
from grader.checks.gradient import check_gradients
from grader.checks.oracle import assert_close
from grader.checks.stability import assert_finite, assert_quiet
from grader.session import StudentError, fetch, run_probe
from grader.tests.phase7._helpers import MISSING, attempt, normal, tensor, tolerance, unchanged

BN_HINT = (
    "Statistics of channel c over the N·H·W values x[:, c]: mean and *biased* variance "
    "(x.var(axis=(0, 2, 3))); the running variance is fed the unbiased one, ×M/(M − 1)."
)
BN_BACKWARD_HINT = (
    "Phase 0's formula with the sums over axes (0, 2, 3) and M = N·H·W: "
    "dx = (1/(M·√(σ²+ε)))·(M·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)), dx̂ = dout·γ."
)
GN_HINT = (
    "Normalise each (sample, group) of C/G channels × H × W by its own mean and biased "
    "variance (x.reshape(N, G, −1)); γ and β are per channel."
)
GN_BACKWARD_HINT = (
    "Within each (sample, group) of M values: dx = (1/(M·√(σ²+ε)))·(M·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)) "
    "with dx̂ = dout·γ_c; ∂L/∂γ sums dout·x̂ over samples and space."
)


def _bn_batches(seed, count, shape, dtype=np.float64):
    return [(normal(seed + i, shape, dtype) * 2 + 1).astype(dtype) for i in range(count)]


def _torch_bn(C, gamma, beta, momentum, eps):
    bn = torch.nn.BatchNorm2d(C, eps=eps, momentum=momentum).double()
    with torch.no_grad():
        bn.weight.copy_(tensor(gamma))
        bn.bias.copy_(tensor(beta))
    return bn


def _affine(seed, C, dtype=np.float64):
    return normal(seed, (C,), dtype) + 1, normal(seed + 1, (C,), dtype)


@check("cnn_batchnorm2d", "oracle")
def batchnorm2d_training_and_running_stats_match_torch(m):
    """Training outputs and running statistics over 3 batches equal torch's BatchNorm2d."""
    for dtype in (np.float64, np.float32):
        gamma, beta = _affine(1, 3, dtype)
        bn_t = _torch_bn(3, gamma, beta, momentum=0.3, eps=1e-3)
        bn = m.BatchNorm2d(3, eps=1e-3, momentum=0.3, dtype=np.dtype(dtype).name)
        bn.weight, bn.bias = gamma, beta
        name = np.dtype(dtype).name
        for i, x in enumerate(_bn_batches(2, 3, (4, 3, 5, 6), dtype)):
            with torch.no_grad():
                expected = bn_t(tensor(x.astype(np.float64))).numpy().astype(dtype)
            assert_close(
                bn.forward(x),
                expected,
                f"forward on training batch {i} ({name})",
                hint=BN_HINT,
                **tolerance(dtype),
            )
        for stat in ("running_mean", "running_var"):
            assert_close(
                fetch(getattr(bn, stat)),
                getattr(bn_t, stat).numpy().astype(dtype),
                f"{stat} after 3 batches, momentum 0.3 ({name})",
                hint=BN_HINT,
                **tolerance(dtype),
            )


@check("cnn_batchnorm2d", "oracle")
def batchnorm2d_train_eval_train_keeps_running_stats_right(m):
    """train → eval → train: eval uses and keeps the running stats; training then resumes them."""
    gamma, beta = _affine(3, 2)
    bn_t = _torch_bn(2, gamma, beta, momentum=0.1, eps=1e-5)
    bn = m.BatchNorm2d(2)
    bn.weight, bn.bias = gamma, beta
    batches = _bn_batches(4, 4, (3, 2, 4, 4))
    probe = normal(9, (2, 2, 4, 4))
    for x in batches[:2]:
        bn.forward(x)
        with torch.no_grad():
            bn_t(tensor(x))
    bn.eval()
    bn_t.eval()
    with torch.no_grad():
        expected = bn_t(tensor(probe)).numpy()
    hint = "In eval mode use running_mean / running_var and leave them unchanged."
    assert_close(bn.forward(probe), expected, "eval forward", hint=hint)
    assert_close(bn.forward(probe[:1]), expected[:1], "eval forward of a single image", hint=hint)
    assert_close(
        fetch(bn.running_mean),
        bn_t.running_mean.numpy(),
        "running_mean after two eval forwards",
        hint=hint,
    )
    bn.train()
    bn_t.train()
    for i, x in enumerate(batches[2:]):
        with torch.no_grad():
            expected = bn_t(tensor(x)).numpy()
        assert_close(bn.forward(x), expected, f"training forward {i} after eval", hint=BN_HINT)
    assert_close(
        fetch(bn.running_var),
        bn_t.running_var.numpy(),
        "running_var after train → eval → train",
        hint=BN_HINT,
    )


@check("cnn_batchnorm2d", "oracle")
def batchnorm2d_backward_matches_torch_autograd(m):
    """dx, grad_weight and grad_bias equal torch autograd's through batch_norm (training)."""
    for dtype in (np.float64, np.float32):
        gamma, beta = _affine(5, 3, dtype)
        x, dout = normal(6, (4, 3, 3, 5), dtype) * 3, normal(7, (4, 3, 3, 5), dtype)
        xt, gt, bt = tensor(x, True), tensor(gamma, True), tensor(beta, True)
        F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5).backward(tensor(dout))
        bn = m.BatchNorm2d(3, dtype=np.dtype(dtype).name)
        bn.weight, bn.bias = gamma, beta
        bn.forward(x)
        name = np.dtype(dtype).name
        tol = tolerance(dtype)
        assert_close(
            bn.backward(dout),
            xt.grad.numpy(),
            f"BatchNorm2d backward dx ({name})",
            hint=BN_BACKWARD_HINT,
            **tol,
        )
        assert_close(
            fetch(bn.grad_weight),
            gt.grad.numpy(),
            f"grad_weight ({name})",
            **tol,
            hint="∂L/∂γ_c = Σ over n, h, w of dout·x̂.",
        )
        assert_close(fetch(bn.grad_bias), bt.grad.numpy(), f"grad_bias ({name})", **tol)


def _backward_agrees_with_finite_differences(layer, x, gamma, beta, what: str, hint: str):
    """Central differences of `layer`'s forward in x, γ and β against its backward (the
    parameter gradients read from grad_weight / grad_bias)."""

    def forward(inputs):
        layer.weight, layer.bias = inputs["gamma"], inputs["beta"]
        return layer.forward(inputs["x"])

    def vjp(inputs, v):
        forward(inputs)
        return {
            "x": layer.backward(v),
            "gamma": fetch(layer.grad_weight),
            "beta": fetch(layer.grad_bias),
        }

    check_gradients(
        forward,
        vjp,
        {"x": x, "gamma": gamma, "beta": beta},
        what=what,
        mode="full",
        hint=hint,
    )


@check("cnn_batchnorm2d", "gradient")
def batchnorm2d_backward_agrees_with_finite_differences(m):
    """BatchNorm2d.backward agrees with central differences of its training forward."""
    gamma, beta = _affine(8, 2)
    _backward_agrees_with_finite_differences(
        m.BatchNorm2d(2),
        normal(9, (2, 2, 3, 3)),
        gamma,
        beta,
        "BatchNorm2d.backward",
        BN_BACKWARD_HINT,
    )


@check("cnn_batchnorm2d", "stability")
def batchnorm2d_is_stable_for_a_constant_channel(m):
    """A channel that is constant over the batch normalises to β, without nan or warnings."""
    x = normal(10, (2, 2, 3, 3))
    x[:, 0] = 4.0
    bn = m.BatchNorm2d(2)
    y = assert_finite(
        bn.forward(x),
        "BatchNorm2d on a constant channel",
        "ε inside the square root keeps a zero variance finite.",
    )
    assert_quiet(
        m,
        "BatchNorm2d on a constant channel",
        "Add ε to the variance before the square root, not after.",
    )
    assert_close(y[:, 0], np.zeros((2, 3, 3)), "the normalised constant channel")
    _, (after,) = run_probe(m, "phase7.call_with_inputs", bn, "forward", [x])
    unchanged(x, after, "BatchNorm2d.forward's x")


@check("cnn_batchnorm2d", "invariant")
def batchnorm2d_needs_two_values_per_channel_in_training(m):
    """Training on one value per channel raises ValueError (as torch); two values are enough."""
    raises(
        lambda: m.BatchNorm2d(3).forward(normal(11, (1, 3, 1, 1))),
        "ValueError",
        "BatchNorm2d.forward on a (1, 3, 1, 1) batch in training",
        "One value per channel has no variance: raise ValueError when N·H·W < 2.",
    )
    x = normal(12, (2, 3, 1, 1))
    expected = F.batch_norm(tensor(x), None, None, training=True).numpy()
    assert_close(
        m.BatchNorm2d(3).forward(x),
        expected,
        "BatchNorm2d on a (2, 3, 1, 1) batch",
        hint="N·H·W = 2 values per channel are enough to normalise.",
    )
    bn = m.BatchNorm2d(3)
    bn.eval()
    assert_close(
        bn.forward(x[:1]),
        x[:1] / np.sqrt(1 + 1e-5),
        "eval forward of one image of 1×1 (running statistics need no batch)",
    )


@fingerprint("cnn_batchnorm2d")
def batchnorm2d_outputs(m):
    x, dout = normal(70, (3, 2, 3, 4)) * 2 + 1, normal(71, (3, 2, 3, 4))
    bn = m.BatchNorm2d(2, momentum=0.2)
    bn.weight, bn.bias = np.array([1.5, 0.5]), np.array([0.1, -0.2])
    y = attempt(bn.forward, x)
    dx = attempt(bn.backward, dout)
    bn.eval()
    y_eval = attempt(bn.forward, x[:1])
    return {
        "y": y,
        "dx": dx,
        "running_mean": attempt(fetch, bn.running_mean),
        "running_var": attempt(fetch, bn.running_var),
        "eval": y_eval,
        "eval_mean": attempt(fetch, bn.running_mean),
    }


# ------------------------------------------------------------------ GroupNorm


def _torch_gn(x, G, gamma, beta, dout, eps):
    xt, gt, bt = tensor(x, True), tensor(gamma, True), tensor(beta, True)
    y = F.group_norm(xt, G, gt, bt, eps)
    y.backward(tensor(dout))
    return y.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


GN_CASES = [  # (label, shape, groups, eps)
    ("6 channels in 3 groups", (2, 6, 4, 5), 3, 1e-5),
    ("one group (LayerNorm over C, H, W)", (2, 4, 3, 3), 1, 1e-5),
    ("one channel per group (InstanceNorm)", (3, 4, 3, 2), 4, 1e-3),
    ("1-D signals (N, C, L), eps 0.1", (2, 6, 7), 2, 0.1),
]


@check("cnn_groupnorm", "oracle")
def groupnorm_matches_torch(m):
    """forward, dx, grad_weight and grad_bias equal torch's group_norm for every grouping."""
    for index, (label, shape, G, eps) in enumerate(GN_CASES):
        for dtype in (np.float64, np.float32):
            gamma, beta = _affine(80 + index, shape[1], dtype)
            x, dout = normal(index, shape, dtype) * 2 + 0.5, normal(10 + index, shape, dtype)
            y, dx, dgamma, dbeta = _torch_gn(x, G, gamma, beta, dout, eps)
            gn = m.GroupNorm(G, shape[1], eps=eps, dtype=np.dtype(dtype).name)
            gn.weight, gn.bias = gamma, beta
            name = f"GroupNorm ({label}, {np.dtype(dtype).name})"
            tol = tolerance(dtype)
            assert_close(gn.forward(x), y, f"{name} forward", hint=GN_HINT, **tol)
            assert_close(gn.backward(dout), dx, f"{name} backward dx", hint=GN_BACKWARD_HINT, **tol)
            assert_close(
                fetch(gn.grad_weight), dgamma, f"{name} grad_weight", hint=GN_BACKWARD_HINT, **tol
            )
            assert_close(fetch(gn.grad_bias), dbeta, f"{name} grad_bias", **tol)


@check("cnn_groupnorm", "gradient")
def groupnorm_backward_agrees_with_finite_differences(m):
    """GroupNorm.backward agrees with central differences of its forward."""
    gamma, beta = _affine(90, 4)
    _backward_agrees_with_finite_differences(
        m.GroupNorm(2, 4),
        normal(91, (2, 4, 2, 3)),
        gamma,
        beta,
        "GroupNorm.backward",
        GN_BACKWARD_HINT,
    )


@check("cnn_groupnorm", "invariant")
def groupnorm_rejects_groups_that_do_not_divide_and_keeps_inputs(m):
    """GroupNorm(4, 6) raises ValueError; forward does not modify its input."""
    raises(
        lambda: m.GroupNorm(4, 6),
        "ValueError",
        "GroupNorm(4, 6)",
        "4 groups cannot split 6 channels: check that num_groups divides num_channels.",
    )
    x = normal(92, (2, 4, 3, 3))
    _, (after,) = run_probe(m, "phase7.call_with_inputs", m.GroupNorm(2, 4), "forward", [x])
    unchanged(x, after, "GroupNorm.forward's x")


@fingerprint("cnn_groupnorm")
def groupnorm_outputs(m):
    x, dout = normal(93, (2, 6, 3, 2)) * 2 + 1, normal(94, (2, 6, 3, 2))
    try:
        gn = m.GroupNorm(3, 6, eps=0.05)
        gn.weight, gn.bias = np.linspace(0.5, 2, 6), np.linspace(-1, 1, 6)
    except StudentError:
        return dict.fromkeys(("y", "dx", "dgamma", "dbeta"), MISSING)
    return {
        "y": attempt(gn.forward, x),
        "dx": attempt(gn.backward, dout),
        "dgamma": attempt(fetch, gn.grad_weight),
        "dbeta": attempt(fetch, gn.grad_bias),
    }


def _contract_backward(make):
    def build(m, dtype):
        layer = make(m, dtype)
        layer.forward(normal(1, (2, 4, 3, 3), dtype))
        return layer.backward, [normal(2, (2, 4, 3, 3), dtype)], {}

    return build


def _bn(m, dtype):
    return m.BatchNorm2d(4, dtype=dtype.name)


def _gn(m, dtype):
    return m.GroupNorm(2, 4, dtype=dtype.name)


def _bn_eval(m, dtype):
    bn = _bn(m, dtype)
    bn.forward(normal(3, (2, 4, 3, 3), dtype))
    bn.eval()
    return bn


def _forward(make):
    return lambda m, dtype: (make(m, dtype).forward, [normal(1, (2, 4, 3, 3), dtype)], {})


globals().update(
    contract_checks(
        __name__,
        "cnn_batchnorm2d",
        [
            Numeric("BatchNorm2d.forward", _forward(_bn)),
            Numeric("BatchNorm2d.backward", _contract_backward(_bn)),
            Numeric("BatchNorm2d.forward in eval mode", _forward(_bn_eval)),
        ],
    )
)
globals().update(
    contract_checks(
        __name__,
        "cnn_groupnorm",
        [
            Numeric("GroupNorm.forward", _forward(_gn)),
            Numeric("GroupNorm.backward", _contract_backward(_gn)),
        ],
    )
)
