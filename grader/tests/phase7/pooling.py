"""7.3 MaxPool2d and AvgPool2d against torch's max_pool2d / avg_pool2d: values, gradients, ties
routed as torch routes them, and overlapping windows."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from grader.checks import check, fingerprint
from grader.checks.contracts import Numeric, contract_checks
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close
from grader.session import run_probe
from grader.tests.phase7._helpers import MISSING, attempt, normal, tensor, tolerance, unchanged

MAX_HINT = (
    "Pad with −∞ (never the max), take each window's max; in backward send each dout entry to "
    "the window's *first* maximum (np.argmax) and add up where windows overlap."
)
AVG_HINT = (
    "Zero padding counts in the average: divide by kh·kw everywhere; backward spreads "
    "dout/(kh·kw) over the window and adds up where windows overlap."
)

# (label, input shape, kwargs)
CASES = [
    ("2×2", (2, 3, 6, 8), {"kernel_size": 2}),
    (
        "3×3 stride 2 padding 1 (overlapping)",
        (2, 2, 7, 6),
        {"kernel_size": 3, "stride": 2, "padding": 1},
    ),
    (
        "(3, 2) stride (1, 2) padding (1, 0)",
        (1, 2, 5, 6),
        {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0)},
    ),
    ("3×3 stride 1", (1, 2, 5, 5), {"kernel_size": 3, "stride": 1}),
]


def _torch_pool(function, x, dout, kwargs):
    xt = tensor(x, True)
    y = function(xt, **kwargs)
    if dout is not None:
        y.backward(tensor(dout))
    return y.detach().numpy(), None if dout is None else xt.grad.numpy()


def _compare(m, layer_name, function, x, kwargs, label, hint):
    dtype = x.dtype
    expected, _ = _torch_pool(function, x, None, kwargs)
    dout = normal(int(x.size), expected.shape, dtype)
    _, dx = _torch_pool(function, x, dout, kwargs)
    layer = getattr(m, layer_name)(**kwargs)
    name = f"{layer_name} ({label}, {np.dtype(dtype).name})"
    assert_close(layer.forward(x), expected, f"{name} forward", hint=hint, **tolerance(dtype))
    assert_close(layer.backward(dout), dx, f"{name} backward dx", hint=hint, **tolerance(dtype))


@check("cnn_pooling", "oracle")
def max_pool_matches_torch(m):
    """MaxPool2d forward and backward equal torch's max_pool2d, padding and overlaps included."""
    for index, (label, shape, kwargs) in enumerate(CASES):
        for dtype in (np.float64, np.float32):
            x = normal(index, shape, dtype) - 1.0  # mostly negative: zero padding would win
            _compare(m, "MaxPool2d", F.max_pool2d, x, kwargs, label, MAX_HINT)


@check("cnn_pooling", "oracle")
def max_pool_routes_ties_like_torch(m):
    """On tied maxima each window's gradient goes to its first maximum only, as in torch."""
    rng = np.random.default_rng(3)
    cases = [
        (np.ones((1, 1, 4, 4)), {"kernel_size": 2}),
        (np.ones((1, 1, 5, 5)), {"kernel_size": 3, "stride": 1}),
        (
            rng.integers(0, 2, (2, 2, 6, 6)).astype(np.float64),
            {"kernel_size": 3, "stride": 2, "padding": 1},
        ),
        (rng.integers(0, 3, (1, 2, 6, 5)).astype(np.float32), {"kernel_size": (2, 3), "stride": 1}),
    ]
    for x, kwargs in cases:
        _compare(
            m,
            "MaxPool2d",
            F.max_pool2d,
            x,
            kwargs,
            f"ties, {kwargs}",
            "torch sends a window's gradient to one element, the first maximum in "
            "row-major order (what np.argmax returns), never to every tied element.",
        )


@check("cnn_pooling", "oracle")
def avg_pool_matches_torch(m):
    """AvgPool2d forward and backward equal torch's avg_pool2d (padding counted in the mean)."""
    for index, (label, shape, kwargs) in enumerate(CASES):
        for dtype in (np.float64, np.float32):
            _compare(
                m,
                "AvgPool2d",
                F.avg_pool2d,
                normal(10 + index, shape, dtype),
                kwargs,
                label,
                AVG_HINT,
            )


@check("cnn_pooling", "gradient")
def pooling_backward_agrees_with_finite_differences(m):
    """Both poolings' backward agree with central differences of their forward."""
    x = normal(5, (1, 2, 5, 6))  # distinct values: the max is differentiable
    for name, kwargs, hint in (
        ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, MAX_HINT),
        ("AvgPool2d", {"kernel_size": (2, 3), "stride": 1, "padding": (1, 1)}, AVG_HINT),
    ):
        layer = getattr(m, name)(**kwargs)

        def vjp(inputs, v, layer=layer):
            layer.forward(inputs["x"])
            return {"x": layer.backward(v)}

        check_gradients(
            lambda inputs, layer=layer: layer.forward(inputs["x"]),
            vjp,
            {"x": x},
            what=f"{name}.backward",
            mode="full",
            hint=hint,
        )


@check("cnn_pooling", "invariant")
def pooling_leaves_its_inputs_unchanged(m):
    """forward does not modify x, backward does not modify dout, for both poolings."""
    x = normal(6, (1, 2, 4, 4))
    dout = normal(7, (1, 2, 2, 2))
    for name in ("MaxPool2d", "AvgPool2d"):
        layer = getattr(m, name)(2)
        _, (after,) = run_probe(m, "phase7.call_with_inputs", layer, "forward", [x])
        unchanged(x, after, f"{name}.forward's x")
        _, (after,) = run_probe(m, "phase7.call_with_inputs", layer, "backward", [dout])
        unchanged(dout, after, f"{name}.backward's dout")


@fingerprint("cnn_pooling")
def pooling_outputs(m):
    x = np.round(normal(60, (2, 2, 7, 6)), 0) - 1.0  # rounded: ties included
    outputs = {}
    for name in ("MaxPool2d", "AvgPool2d"):
        for label, kwargs in (
            ("overlap", {"kernel_size": 3, "stride": 2, "padding": 1}),
            ("default", {"kernel_size": 2}),
        ):
            layer = getattr(m, name)(**kwargs)
            y = attempt(layer.forward, x)
            outputs[f"{name}_{label}_y"] = y
            outputs[f"{name}_{label}_dx"] = MISSING
            if np.asarray(y).ndim == 4:
                y = as_array(y, "y")
                outputs[f"{name}_{label}_dx"] = attempt(layer.backward, normal(61, y.shape))
    return outputs


def _contract_backward(name):
    def build(m, dtype):
        layer = getattr(m, name)(3, 2, 1)
        layer.forward(normal(1, (2, 2, 6, 5), dtype))
        return layer.backward, [normal(2, (2, 2, 3, 3), dtype)], {}

    return build


globals().update(
    contract_checks(
        __name__,
        "cnn_pooling",
        [
            Numeric(f"{name}.{method}", build)
            for name in ("MaxPool2d", "AvgPool2d")
            for method, build in (
                (
                    "forward",
                    lambda m, dtype, name=name: (
                        getattr(m, name)(3, 2, 1).forward,
                        [normal(1, (2, 2, 6, 5), dtype)],
                        {},
                    ),
                ),
                ("backward", _contract_backward(name)),
            )
        ],
    )
)
