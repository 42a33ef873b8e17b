"""7.2 Conv2d: forward and backward against torch's conv2d with copied weights, finite
differences, translation equivariance, and the layer's contract (init, bias=False, groups)."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, fetch, run_probe
from grader.tests.phase7._helpers import (
    MISSING,
    attempt,
    fetched,
    normal,
    tensor,
    tolerance,
    unchanged,
)

FORWARD_HINT = (
    "out_g = W_g @ cols_g per group, W of shape (O, C/G, kh, kw) used as is (torch's conv2d is "
    "a cross-correlation: no kernel flip); out reshaped to (N, O, Ho, Wo) and + b[o]."
)
BACKWARD_HINT = (
    "Per group: ∂L/∂W_g = D_g @ cols_gᵀ, ∂L/∂cols_g = W_gᵀ @ D_g, dx = col2im(∂L/∂cols), "
    "∂L/∂b = Σ over n, p, q of dout (a sum, not a mean)."
)
GROUPS_HINT = (
    "Output channel o of group g = o // (O/G) may only see input channels g·C/G … (g+1)·C/G − 1: "
    "split cols with cols.reshape(G, C/G·kh·kw, −1) (its rows are channel-major)."
)

# (label, N, C, O, H, W, Conv2d kwargs)
CASES = [
    ("3×3, padding 1", 2, 3, 4, 6, 7, {"kernel_size": 3, "padding": 1}),
    ("stride 2, no padding", 2, 2, 3, 7, 8, {"kernel_size": 3, "stride": 2}),
    (
        "2×3 kernel, stride (2, 1), padding (1, 0)",
        1,
        3,
        2,
        7,
        6,
        {"kernel_size": (2, 3), "stride": (2, 1), "padding": (1, 0)},
    ),
    ("dilation 2, padding 2", 2, 2, 3, 8, 7, {"kernel_size": 3, "padding": 2, "dilation": 2}),
    ("groups 2", 2, 4, 6, 6, 6, {"kernel_size": 3, "padding": 1, "groups": 2}),
    ("depthwise (groups = C)", 2, 3, 3, 6, 5, {"kernel_size": 3, "padding": 1, "groups": 3}),
    ("depthwise ×2, stride 2", 1, 2, 4, 7, 7, {"kernel_size": 3, "stride": 2, "groups": 2}),
    ("1×1, no bias", 2, 4, 3, 5, 5, {"kernel_size": 1, "bias": False}),
]
FLOAT32_BACKWARD = (0, 3, 6)  # float32 backward on a few cases: float64 covers every option


def _torch_conv(x, weight, bias, dout, kwargs):
    options = {
        k: kwargs.get(k, d)
        for k, d in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))
    }
    xt, wt = tensor(x, True), tensor(weight, True)
    bt = None if bias is None else tensor(bias, True)
    y = F.conv2d(xt, wt, bt, **options)
    y.backward(tensor(dout))
    return (
        y.detach().numpy(),
        xt.grad.numpy(),
        wt.grad.numpy(),
        None if bt is None else bt.grad.numpy(),
    )


def _weights(seed, C, O, kwargs, dtype=np.float64):
    kh, kw = np.broadcast_to(kwargs["kernel_size"], 2)
    weight = normal(seed, (O, C // kwargs.get("groups", 1), kh, kw), dtype, 0.5)
    bias = normal(seed + 1, (O,), dtype) if kwargs.get("bias", True) else None
    return weight, bias


def _layer(m, C, O, kwargs, weight, bias, dtype=np.float64):
    layer = m.Conv2d(C, O, rng=0, dtype=np.dtype(dtype).name, **kwargs)
    layer.weight = weight
    if bias is not None:
        layer.bias = bias
    return layer


@check("cnn_conv2d", "oracle")
def conv_forward_matches_torch(m):
    """forward equals torch's conv2d for every stride, padding, dilation, groups and bias=False."""
    for index, (label, N, C, O, H, W, kwargs) in enumerate(CASES):
        for dtype in (np.float64, np.float32):
            weight, bias = _weights(20 + index, C, O, kwargs, dtype)
            x = normal(index, (N, C, H, W), dtype)
            expected = F.conv2d(
                tensor(x),
                tensor(weight),
                None if bias is None else tensor(bias),
                **{
                    k: v
                    for k, v in kwargs.items()
                    if k in ("stride", "padding", "dilation", "groups")
                },
            ).numpy()
            layer = _layer(m, C, O, kwargs, weight, bias, dtype)
            hint = GROUPS_HINT if kwargs.get("groups", 1) > 1 else FORWARD_HINT
            assert_close(
                layer.forward(x),
                expected,
                f"Conv2d forward ({label}, {np.dtype(dtype).name})",
                hint=hint,
                **tolerance(dtype),
            )


@check("cnn_conv2d", "oracle")
def conv_backward_matches_torch_autograd(m):
    """dx, grad_weight and grad_bias equal torch autograd's through conv2d, float64 and 32."""
    for index, (label, N, C, O, H, W, kwargs) in enumerate(CASES):
        for dtype in (np.float64, np.float32) if index in FLOAT32_BACKWARD else (np.float64,):
            weight, bias = _weights(20 + index, C, O, kwargs, dtype)
            x = normal(index, (N, C, H, W), dtype)
            layer = _layer(m, C, O, kwargs, weight, bias, dtype)
            y = as_array(layer.forward(x), f"Conv2d forward ({label})")
            dout = normal(40 + index, y.shape, dtype)
            _, dx, dw, db = _torch_conv(x, weight, bias, dout, kwargs)
            name = f"({label}, {np.dtype(dtype).name})"
            tol = tolerance(dtype)
            assert_close(
                layer.backward(dout), dx, f"Conv2d backward dx {name}", hint=BACKWARD_HINT, **tol
            )
            assert_close(
                fetch(layer.grad_weight), dw, f"grad_weight {name}", hint=BACKWARD_HINT, **tol
            )
            if db is not None:
                assert_close(
                    fetch(layer.grad_bias), db, f"grad_bias {name}", hint=BACKWARD_HINT, **tol
                )


@check("cnn_conv2d", "gradient")
def conv_backward_agrees_with_finite_differences(m):
    """backward agrees with central differences of forward in x, weight and bias (groups 2)."""
    kwargs = {
        "kernel_size": (2, 3),
        "stride": (2, 1),
        "padding": (1, 1),
        "dilation": (1, 2),
        "groups": 2,
    }
    weight, bias = _weights(5, 4, 4, kwargs)
    x = normal(6, (2, 4, 5, 6))
    layer = m.Conv2d(4, 4, rng=0, **kwargs)

    def forward(inputs):
        layer.weight, layer.bias = inputs["weight"], inputs["bias"]
        return layer.forward(inputs["x"])

    def vjp(inputs, v):
        forward(inputs)
        dx = layer.backward(v)
        return {"x": dx, "weight": fetch(layer.grad_weight), "bias": fetch(layer.grad_bias)}

    check_gradients(
        forward,
        vjp,
        {"x": x, "weight": weight, "bias": bias},
        what="Conv2d.backward",
        passes=4,
        hint=BACKWARD_HINT,
    )


@check("cnn_conv2d", "invariant")
def conv_is_translation_equivariant(m):
    """With stride 1, shifting the input image shifts the output by the same amount."""
    for kwargs in ({"kernel_size": 3}, {"kernel_size": (3, 2), "dilation": 2, "groups": 2}):
        layer = m.Conv2d(2, 4, rng=1, **kwargs)
        x = np.zeros((1, 2, 12, 11))
        x[:, :, :9, :8] = normal(8, (1, 2, 9, 8))
        shifted = np.zeros_like(x)
        shifted[:, :, 2:, 3:] = x[:, :, :-2, :-3]
        y = as_array(layer.forward(x), "Conv2d forward")
        y_shifted = as_array(layer.forward(shifted), "Conv2d forward of the shifted image")
        if y.shape != y_shifted.shape or y.ndim != 4:
            raise CheckFailed(
                f"Conv2d gave shapes {y.shape} and {y_shifted.shape} for two "
                "images of the same shape."
            )
        assert_close(
            y_shifted[:, :, 2:, 3:],
            y[:, :, :-2, :-3],
            f"conv(shift(x)) against shift(conv(x)) by (2, 3) with {kwargs}",
            hint="The same weights must apply at every position: index the window "
            "by its output position times the stride, plus the kernel offset.",
        )


@check("cnn_conv2d", "oracle")
def conv_layer_initialises_like_torch(m):
    """weight (O, C/groups, kh, kw), bias (O,) fill U(±1/√fan_in); bias=False means no bias."""
    layer = m.Conv2d(64, 256, (3, 2), groups=4, rng=0)
    weight, bias = fetched(layer.weight, "weight"), fetched(layer.bias, "bias")
    if weight.shape != (256, 16, 3, 2) or bias.shape != (256,):
        raise CheckFailed(
            f"Conv2d(64, 256, (3, 2), groups=4) should have weight (256, 16, 3, 2) "
            f"and bias (256,), got {weight.shape} and {bias.shape}."
        )
    bound = 1 / np.sqrt(16 * 3 * 2)
    hint = "fan_in = C/groups·kh·kw, what one output sees (the weight's shape[1:])."
    if np.abs(weight).max() > bound or np.abs(bias).max() > bound:
        raise CheckFailed(f"weights and bias should lie in U(±1/√fan_in) = ±{bound:.4g}.", hint)
    if np.abs(weight).max() < 0.99 * bound or abs(weight.std() - bound / np.sqrt(3)) > 0.03 * bound:
        raise CheckFailed(
            f"the weights should fill U(±1/√fan_in) = ±{bound:.4g}: max |w| is "
            f"{np.abs(weight).max():.4g}, std {weight.std():.4g} (expected "
            f"{bound / np.sqrt(3):.4g}).",
            hint,
        )
    if bias.max() < 0.8 * bound or bias.min() > -0.8 * bound:
        raise CheckFailed(
            f"the biases should fill U(±1/√fan_in) = ±{bound:.4g} too: they range over "
            f"[{bias.min():.4g}, {bias.max():.4g}].",
            hint,
        )
    plain = m.Conv2d(3, 5, 3, bias=False, rng=0, dtype="float32")
    if fetch(plain.bias) is not None:
        raise CheckFailed("Conv2d(..., bias=False) should have bias None.")
    params = run_probe(m, "phase7.call_with_inputs", plain, "params", [])[0]
    if len(params) != 1 or np.asarray(params[0]).dtype != np.float32:
        raise CheckFailed(
            "Conv2d(..., bias=False, dtype=float32).params() should be [weight], a float32 array."
        )
    try:
        m.Conv2d(6, 4, 3, groups=4)
    except StudentError as error:
        if error.type != "ValueError":
            raise CheckFailed(
                f"Conv2d(6, 4, 3, groups=4) raised {error.type}, expected "
                "ValueError (4 groups cannot split 6 channels)."
            ) from None
    else:
        raise CheckFailed(
            "Conv2d(6, 4, 3, groups=4) should raise ValueError: 4 groups "
            "cannot split 6 input channels."
        )


@check("cnn_conv2d", "invariant")
def conv_backward_overwrites_and_leaves_inputs_alone(m):
    """backward twice gives the same gradients (overwritten, as grads() lists); inputs unchanged."""
    kwargs = {"kernel_size": 3, "padding": 1, "groups": 2}
    weight, bias = _weights(30, 4, 4, kwargs)
    x = normal(31, (2, 4, 5, 5))
    dout = normal(32, (2, 4, 5, 5))
    _, dx, dw, db = _torch_conv(x, weight, bias, dout, kwargs)
    layer = _layer(m, 4, 4, kwargs, weight, bias)
    _, (x_after,) = run_probe(m, "phase7.call_with_inputs", layer, "forward", [x])
    unchanged(x, x_after, "forward's x")
    layer.backward(dout)
    dx_again, (dout_after,) = run_probe(m, "phase7.call_with_inputs", layer, "backward", [dout])
    unchanged(dout, dout_after, "backward's dout")
    hint = "This course's layers overwrite their gradients: assign with [...] =, do not add."
    assert_close(fetch(layer.grad_weight), dw, "grad_weight after two backward calls", hint=hint)
    assert_close(fetch(layer.grad_bias), db, "grad_bias after two backward calls", hint=hint)
    assert_close(dx_again, dx, "dx of the second backward call")
    listed = run_probe(m, "phase7.call_with_inputs", layer, "grads", [])[0]
    if not isinstance(listed, list) or len(listed) != 2:
        raise CheckFailed("Conv2d.grads() should be the list [grad_weight, grad_bias].")
    assert_close(listed[0], dw, "grads()[0], the weight's gradient", hint=hint)
    assert_close(listed[1], db, "grads()[1], the bias's gradient", hint=hint)
    plain = m.Conv2d(4, 4, bias=False, rng=0, **kwargs)
    plain.weight = weight
    plain.forward(x)
    plain.backward(dout)
    listed = run_probe(m, "phase7.call_with_inputs", plain, "grads", [])[0]
    if not isinstance(listed, list) or len(listed) != 1:
        raise CheckFailed("Conv2d(..., bias=False).grads() should be the list [grad_weight].")
    assert_close(listed[0], dw, "grads()[0] of a layer without bias", hint=hint)


@fingerprint("cnn_conv2d")
def conv_outputs(m):
    outputs = {}
    for label, kwargs, C, O in (
        (
            "grouped",
            {
                "kernel_size": (3, 2),
                "stride": (2, 1),
                "padding": (1, 2),
                "dilation": (1, 2),
                "groups": 2,
            },
            4,
            6,
        ),
        ("plain", {"kernel_size": 3, "padding": 1}, 2, 3),
    ):
        keys = [f"{label}_{name}" for name in ("y", "dx", "dw_twice", "db_twice")]
        outputs.update(dict.fromkeys(keys, MISSING))
        weight, bias = _weights(50, C, O, kwargs)
        x = normal(51, (2, C, 6, 7))
        try:
            layer = _layer(m, C, O, kwargs, weight, bias)
            y = as_array(layer.forward(x), "y")
            dout = normal(52, y.shape)
            outputs[f"{label}_y"] = y
            outputs[f"{label}_dx"] = attempt(layer.backward, dout)
            attempt(layer.backward, dout)
            outputs[f"{label}_dw_twice"] = attempt(fetch, layer.grad_weight)
            outputs[f"{label}_db_twice"] = attempt(fetch, layer.grad_bias)
        except (StudentError, CheckFailed):
            pass
    wide = attempt(m.Conv2d, 64, 64, 3, groups=4, rng=0)
    weight = MISSING if wide is MISSING else attempt(fetch, wide.weight)
    outputs["init_bound"] = np.round(np.abs(np.asarray(weight)).max() * np.sqrt(16 * 9), 1)
    return outputs


def _contract_layer(m, dtype):
    return m.Conv2d(4, 6, 3, padding=1, groups=2, rng=0, dtype=dtype.name)


def _contract_backward(m, dtype):
    layer = _contract_layer(m, dtype)
    layer.forward(normal(1, (2, 4, 5, 5), dtype))
    return layer.backward, [normal(2, (2, 6, 5, 5), dtype)], {}


globals().update(
    contract_checks(
        __name__,
        "cnn_conv2d",
        [
            Numeric(
                "Conv2d.forward",
                lambda m, dtype: (
                    _contract_layer(m, dtype).forward,
                    [normal(1, (2, 4, 5, 5), dtype)],
                    {},
                ),
            ),
            Numeric("Conv2d.backward", _contract_backward),
        ],
    )
)
