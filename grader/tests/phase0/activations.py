"""0.2 Activations: each forward against torch, each backward against torch autograd and
against finite differences of the student's own forward, and stability at |x| = 1e4."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import check, fingerprint
from grader.checks.gradient import check_gradients, function_pair
from grader.checks.oracle import assert_close
from grader.checks.properties import arrays, property_holds
from grader.checks.reference import value, vjp
from grader.checks.stability import EXTREME, assert_finite, assert_quiet

NO_EXP = "Nothing here needs exp: a nan or warning comes from an arithmetic detour (x/|x|, 0·inf)."
STABLE_SIGMOID = (
    "Evaluate σ through e = exp(−|x|) ≤ 1 (two branches with np.where): exp(−x) overflows "
    "at x = −1e4, and 1/(1 + inf)·inf is nan in the backward."
)
# name → (torch reference, keyword arguments, hint for a wrong derivative, hint at |x| = 1e4)
ACTIVATIONS = {
    "relu": (torch.relu, {}, "ReLU'(x) is 1 for x > 0 and 0 for x ≤ 0 (0 at exactly 0).", NO_EXP),
    "leaky_relu": (
        lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
        {"negative_slope": 0.2},
        "The slope is 1 for x > 0, negative_slope for x ≤ 0.",
        NO_EXP,
    ),
    "sigmoid": (
        torch.sigmoid,
        {},
        "σ'(x) = σ(x)(1 − σ(x)): evaluate σ at x, not at dout.",
        STABLE_SIGMOID,
    ),
    "tanh": (
        torch.tanh,
        {},
        "tanh'(x) = 1 − tanh(x)², with tanh evaluated at x.",
        "np.tanh saturates at ±1; (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ) is inf/inf = nan at |x| = 1e4.",
    ),
    "silu": (
        F.silu,
        {},
        "d/dx[x·σ(x)] = σ(x) + x·σ(x)(1 − σ(x)): product rule, two terms.",
        STABLE_SIGMOID,
    ),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        {},
        "Differentiate 0.5x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³): product rule "
        "and chain rule through u.",
        "u ~ x³ is about 4e10 at x = 1e4: fine for np.tanh (it saturates), but tanh written "
        "with exp overflows, and sech²(u) = 1/cosh²(u) must become 0, not nan.",
    ),
}
# includes exact zeros (the kink of ReLU / LeakyReLU) and values either side of them
FIXED = np.array([-7.5, -2.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.0, 7.5])
EXTREMES = np.array([-EXTREME, -1e3, -80.0, -30.0, 0.0, 30.0, 80.0, 1e3, EXTREME])


def _declare(name: str, reference, kwargs: dict, hint: str, stable_hint: str) -> None:
    backward = f"{name}_backward"
    label = f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})" if kwargs else name

    def forward_matches_torch(m):
        def prop(x):
            assert_close(
                getattr(m, name)(x, **kwargs),
                value(reference, x, **kwargs),
                f"{label}(x)",
                inputs={"x": x},
            )

        prop(FIXED)
        property_holds(prop, arrays(), examples=10)

    def backward_matches_torch(m):
        def prop(x):
            dout = np.cos(3 * x) + 0.5  # any upstream gradient: not all ones
            (expected,) = vjp(reference, [x], dout, **kwargs)
            assert_close(
                getattr(m, backward)(x, dout, **kwargs),
                expected,
                f"{backward}(x, dout)",
                hint=hint,
                inputs={"x": x, "dout": dout},
            )

        prop(FIXED)
        property_holds(prop, arrays(), examples=10)

    def backward_agrees_with_finite_differences(m):
        x = np.random.default_rng(1).uniform(-3, 3, (4, 5))
        x[np.abs(x) < 0.05] = 0.3  # stay away from the kink of (leaky) ReLU
        forward, vjp_ = function_pair(
            lambda x: getattr(m, name)(x, **kwargs),
            lambda x, d: getattr(m, backward)(x, d, **kwargs),
        )
        check_gradients(forward, vjp_, {"x": x}, what=backward, mode="full", hint=hint)

    def is_stable_at_extremes(m):
        y = assert_finite(
            getattr(m, name)(EXTREMES, **kwargs), f"{label} at |x| up to 1e4", stable_hint
        )
        assert_quiet(m, f"{label} at |x| up to 1e4", stable_hint)
        assert_close(
            y,
            value(reference, EXTREMES, **kwargs),
            f"{label} at |x| up to 1e4",
            hint=stable_hint,
            inputs={"x": EXTREMES},
        )
        g = assert_finite(
            getattr(m, backward)(EXTREMES, np.ones_like(EXTREMES), **kwargs),
            f"{backward} at |x| up to 1e4",
            stable_hint,
        )
        assert_quiet(m, f"{backward} at |x| up to 1e4", stable_hint)
        assert_close(
            g,
            vjp(reference, [EXTREMES], np.ones_like(EXTREMES), **kwargs)[0],
            f"{backward} at |x| up to 1e4",
            hint=hint,
            inputs={"x": EXTREMES},
        )

    def keeps_float32(m):
        x = FIXED.astype(np.float32)
        assert_close(
            getattr(m, name)(x, **kwargs),
            value(reference, x, **kwargs).astype(np.float32),
            f"{label} on float32 input",
        )

    tests = {
        f"{name}_matches_torch": (
            forward_matches_torch,
            "oracle",
            f"{label} equals torch's on random and fixed inputs.",
        ),
        f"{backward}_matches_torch_autograd": (
            backward_matches_torch,
            "oracle",
            f"{backward} equals torch autograd's VJP.",
        ),
        f"{backward}_agrees_with_finite_differences": (
            backward_agrees_with_finite_differences,
            "gradient",
            f"{backward} agrees with central differences of your {name}.",
        ),
        f"{name}_is_stable_at_1e4": (
            is_stable_at_extremes,
            "stability",
            f"{label} and its backward are finite, warning-free and correct at |x| up to 1e4.",
        ),
        f"{name}_keeps_float32": (keeps_float32, "oracle", f"{label} keeps float32 as float32."),
    }
    for test_name, (function, category, doc) in tests.items():
        function.__name__, function.__doc__, function.__module__ = test_name, doc, __name__
        globals()[test_name] = check("activations", category)(function)


for _name, _spec in ACTIVATIONS.items():
    _declare(_name, *_spec)


@fingerprint("activations")
def activation_outputs(m):
    x = np.concatenate([FIXED, EXTREMES])
    dout = np.linspace(0.5, 1.5, x.size)
    outputs = {}
    for name, (_, kwargs, _, _) in ACTIVATIONS.items():
        outputs[name] = getattr(m, name)(x, **kwargs)
        outputs[f"{name}_warns"] = np.array(bool(m._session.warnings))
        outputs[f"{name}_backward"] = getattr(m, f"{name}_backward")(x, dout, **kwargs)
    return outputs
