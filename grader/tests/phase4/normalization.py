"""4.3 LayerNorm (an autograd Function with a hand-written backward) and 4.4 RMSNorm, against
torch.nn.functional.layer_norm / rms_norm and nn.LayerNorm / nn.RMSNorm in the judge."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close
from grader.checks.properties import arrays, property_holds
from grader.checks.stability import assert_finite
from grader.session import fetch, run_probe
from grader.tests.phase4._helpers import (
    copy_weights,
    gradients,
    input_gradient,
    randn,
    reference_grads,
    run,
    safely,
)

VARIANCE_HINT = ("σ² is the biased variance, mean((x − μ)²) — not torch.var's default unbiased "
                 "one — and ε goes inside the square root: (x − μ)/√(σ² + ε).")
DIMS_HINT = ("Normalise over the last len(normalized_shape) dimensions together: for (4, 5) "
             "that is dims (−2, −1), one μ and σ² per position.")
BACKWARD_HINT = ("With dx̂ = g·weight: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))/√(σ² + ε), means "
                 "over the normalised dimensions; dweight = Σ g·x̂ and dbias = Σ g over the "
                 "leading dimensions.")
STABLE_HINT = ("Compute σ² in two passes, mean((x − μ)²): the one-pass E[x²] − μ² cancels "
               "catastrophically when |μ| ≫ σ (float32 at an offset of 1e4 keeps ~3 digits).")
RMS_HINT = ("RMSNorm does not centre: y = x/√(mean(x²) + ε)·weight, mean over the normalised "
            "dimensions, ε inside the root; eps=None means torch.finfo(x.dtype).eps.")

# (shape of x, normalized_shape, affine?) cases shared by the LayerNorm checks
CASES = [((3, 4, 5), (5,), True), ((2, 4, 5), (4, 5), True), ((6, 7), (7,), False)]


def _affine(seed: int, shape: tuple, affine: bool) -> tuple:
    if not affine:
        return None, None
    return randn(seed, *shape, scale=0.5, shift=1.0), randn(seed + 1, *shape, scale=0.5)


# ------------------------------------------------------------------ 4.3 LayerNorm


@check("blocks_layernorm", "oracle", weight=2)
def layer_norm_matches_torch(m):
    """layer_norm(x, normalized_shape, weight, bias, eps) equals F.layer_norm: a last-dimension
    norm, a (4, 5) normalized_shape, no affine parameters, eps = 0.1, and in float32."""
    for k, (shape, normalized, affine) in enumerate(CASES):
        x = randn(10 + k, *shape, scale=2.0, shift=1.0)
        weight, bias = _affine(20 + 2 * k, normalized, affine)
        for eps in (1e-5, 0.1):
            expected = F.layer_norm(x, normalized, weight, bias, eps)
            what = (f"layer_norm of x {shape} over {normalized}"
                    f"{' with weight and bias' if affine else ''}, eps={eps}")
            assert_close(m.layer_norm(x, normalized, weight, bias, eps), expected.numpy(), what,
                         hint=DIMS_HINT if len(normalized) > 1 else VARIANCE_HINT)
    x = randn(30, 3, 6, dtype=torch.float32, scale=3.0)
    weight, bias = _affine(31, (6,), True)
    weight, bias = weight.float(), bias.float()
    assert_close(m.layer_norm(x, 6, weight, bias), F.layer_norm(x, (6,), weight, bias).numpy(),
                 "layer_norm in float32 (normalized_shape given as the int 6)", rtol=1e-5,
                 atol=1e-5, hint="Keep the input's dtype; an int normalized_shape means (6,).")


def _student_grads(m, x, normalized, weight, bias, upstream, eps=1e-5) -> dict:
    return gradients(m, m.layer_norm, [x, normalized, weight, bias, eps], upstream, "layer_norm")


@check("blocks_layernorm", "oracle", weight=2)
def layer_norm_backward_matches_torch_autograd(m):
    """Your backward's ∂L/∂x, ∂L/∂weight and ∂L/∂bias equal torch autograd's through
    F.layer_norm (last dimension, a (4, 5) normalized_shape, no affine parameters)."""
    for k, (shape, normalized, affine) in enumerate(CASES):
        x = randn(40 + k, *shape, scale=2.0, shift=-1.0)
        weight, bias = _affine(50 + 2 * k, normalized, affine)
        upstream = randn(60 + k, *shape)
        inputs = [x] + ([weight, bias] if affine else [])
        _, expected, _ = reference_grads(
            lambda x, *wb, n=normalized: F.layer_norm(x, n, *(wb or (None, None))), inputs,
            upstream)
        got = _student_grads(m, x, normalized, weight, bias, upstream)
        where = f"for x {shape} over {normalized}"
        assert_close(input_gradient(got, 0, "x"), expected[0].numpy(), f"∂L/∂x {where}",
                     hint=BACKWARD_HINT)
        if affine:
            assert_close(input_gradient(got, 2, "weight"), expected[1].numpy(),
                         f"∂L/∂weight {where}", hint=BACKWARD_HINT)
            assert_close(input_gradient(got, 3, "bias"), expected[2].numpy(),
                         f"∂L/∂bias {where}", hint=BACKWARD_HINT)


@check("blocks_layernorm", "gradient")
def layer_norm_backward_agrees_with_finite_differences(m):
    """Your backward agrees with central differences of your own forward in float64 (random
    directions, x, weight and bias together, normalized_shape (4, 5))."""
    shape, normalized = (2, 4, 5), (4, 5)
    weight, bias = _affine(70, normalized, True)
    inputs = {"x": randn(72, *shape, scale=2.0).numpy(), "weight": weight.numpy(),
              "bias": bias.numpy()}

    def forward(values):
        x, weight, bias = _tensors(values)
        return run(m, m.layer_norm, x, normalized, weight, bias)

    def vjp(values, v):
        x, weight, bias = _tensors(values)
        got = _student_grads(m, x, normalized, weight, bias, torch.from_numpy(np.asarray(v)))
        return {"x": input_gradient(got, 0, "x"), "weight": input_gradient(got, 2, "weight"),
                "bias": input_gradient(got, 3, "bias")}

    check_gradients(forward, vjp, inputs,
                    what="LayerNormFunction.backward", hint=BACKWARD_HINT)


def _tensors(values: dict) -> tuple:
    return tuple(torch.from_numpy(np.asarray(values[k])) for k in ("x", "weight", "bias"))


@check("blocks_layernorm", "invariant")
def layer_norm_backward_is_written_by_hand(m):
    """layer_norm's output comes from your LayerNormFunction, and its backward runs no autograd
    itself."""
    x, (weight, bias) = randn(80, 3, 5), _affine(81, (5,), True)
    got = _student_grads(m, x, (5,), weight, bias, randn(82, 3, 5))
    if got["grad_fn"] != "LayerNormFunctionBackward":
        raise CheckFailed(f"the output of layer_norm has grad_fn {got['grad_fn']}, not your "
                          f"Function's LayerNormFunctionBackward: autograd differentiated your "
                          f"forward for you.",
                          "layer_norm should return LayerNormFunction.apply(x, normalized_shape, "
                          "weight, bias, eps).")
    if got["autograd_calls"] != 1:
        raise CheckFailed(f"your backward entered autograd {got['autograd_calls'] - 1} more "
                          f"time(s) (torch.autograd.grad or .backward() inside backward).",
                          "The point of §4.3: every gradient from explicit tensor formulas.")


@check("blocks_layernorm", "invariant")
def layer_norm_is_centred_scaled_and_shift_scale_invariant(m):
    """Without affine parameters each position has mean 0 and variance σ²/(σ² + ε), and
    layer_norm(a·x + c) = layer_norm(x) for a > 0 (eps = 0), on inputs drawn by hypothesis."""
    rows = arrays((4, 6), low=-50.0, high=50.0).filter(lambda a: np.all(a.std(-1) > 0.1))
    affine = st.tuples(st.floats(0.01, 100.0), st.floats(-1e3, 1e3))

    def body(values, scale_shift):
        x = torch.from_numpy(values)
        y = as_array(m.layer_norm(x, 6), "layer_norm(x, 6)")
        var = values.var(-1)
        assert_close(y.mean(-1), np.zeros(4), "the mean of each normalised row", atol=1e-12,
                     hint="Subtract the mean over the normalised dimensions.")
        assert_close(y.var(-1), var / (var + 1e-5), "the (biased) variance of each normalised row",
                     rtol=1e-8, hint=VARIANCE_HINT)
        a, c = scale_shift
        base = as_array(m.layer_norm(x, 6, None, None, 0.0), "layer_norm(x, eps=0)")
        moved = as_array(m.layer_norm(a * x + c, 6, None, None, 0.0),
                         "layer_norm(a·x + c, eps=0)")
        assert_close(moved, base, f"layer_norm(a·x + c) against layer_norm(x), a = {a:.4g}, "
                     f"c = {c:.4g}", rtol=1e-6, atol=1e-7, hint=STABLE_HINT)

    property_holds(body, rows, affine, examples=15)


@check("blocks_layernorm", "oracle", weight=2)
def layer_norm_module_matches_torch(m):
    """LayerNorm has torch's attributes and parameters (weight 1, bias 0 when fresh; none
    without elementwise_affine; no bias with bias=False) and, with random weights, equals
    nn.LayerNorm for normalized_shape 6 and (4, 6) and eps = 1e-3."""
    module = m.LayerNorm(6)
    shape = fetch(module.normalized_shape)
    if tuple(shape) != (6,) or not isinstance(shape, (tuple, list)):
        raise CheckFailed(f"LayerNorm(6).normalized_shape is {shape!r}, expected the tuple (6,).",
                          "Turn an int into a 1-tuple, as torch does.")
    params = run_probe(m, "phase4.parameters", module)
    for name, value in (("weight", np.ones(6)), ("bias", np.zeros(6))):
        if name not in params:
            raise CheckFailed(f"a fresh LayerNorm(6) has no parameter {name}; it has "
                              f"{sorted(params)}.", "nn.Parameter(torch.ones(...)) / zeros.")
        assert_close(params[name], value.astype(np.float32), f"a fresh LayerNorm(6).{name}")
    for kwargs, expected_names in (({"elementwise_affine": False}, []),
                                   ({"bias": False}, ["weight"])):
        names = sorted(run_probe(m, "phase4.parameters", m.LayerNorm(6, **kwargs)))
        if names != expected_names:
            raise CheckFailed(f"LayerNorm(6, {kwargs}) has parameters {names}, expected "
                              f"{expected_names}.", "register_parameter(name, None) for the "
                              "ones that do not exist (torch's weight/bias are then None).")
    for k, (normalized, x_shape) in enumerate((((6,), (2, 3, 6)), ((4, 6), (3, 4, 6)))):
        reference = torch.nn.LayerNorm(normalized, eps=1e-3).double()
        with torch.no_grad():
            reference.weight.copy_(randn(90 + k, *normalized, shift=1.0))
            reference.bias.copy_(randn(95 + k, *normalized))
        student = m.LayerNorm(normalized, eps=1e-3)
        copy_weights(student, reference.state_dict(), f"LayerNorm({normalized})")
        x = randn(100 + k, *x_shape, scale=0.3)
        with torch.no_grad():
            expected = reference(x)
        assert_close(run(m, student, x), expected.numpy(),
                     f"LayerNorm({normalized}, eps=1e-3) on x {x_shape}",
                     hint="forward calls layer_norm(x, self.normalized_shape, self.weight, "
                          "self.bias, self.eps).")


@check("blocks_layernorm", "stability")
def layer_norm_is_stable_for_constant_and_huge_inputs(m):
    """Constant rows give exactly the bias and finite gradients equal to torch's; rows of
    magnitude 1e4 (a 1e4 offset with spread 1, and spread 1e4) match torch in float32."""
    weight, bias = _affine(110, (5,), True)
    x = torch.full((2, 5), 3.0, dtype=torch.float64)
    x[1] = -7.25
    got = assert_finite(m.layer_norm(x, 5, weight, bias), "layer_norm of constant rows",
                        "With σ² = 0, ε keeps √(σ² + ε) > 0: add ε before the square root.")
    assert_close(got, np.broadcast_to(bias.numpy(), (2, 5)), "layer_norm of constant rows")
    upstream = randn(111, 2, 5)
    _, expected, _ = reference_grads(lambda x: F.layer_norm(x, (5,), weight, bias), [x], upstream)
    grads = _student_grads(m, x, (5,), weight, bias, upstream)
    assert_close(assert_finite(input_gradient(grads, 0, "x"), "∂L/∂x for constant rows",
                               "x − μ is 0 and the variance 0 there: ε inside the square root "
                               "keeps 1/√(σ² + ε) finite in the backward too."),
                 expected[0].numpy(), "∂L/∂x for constant rows", hint=BACKWARD_HINT)
    for what, x in (("a 1e4 offset, spread 1", randn(112, 4, 64, dtype=torch.float32,
                                                      shift=1e4)),
                    ("spread 1e4", randn(113, 4, 64, dtype=torch.float32, scale=1e4))):
        expected = F.layer_norm(x.double(), (64,)).numpy()
        got = assert_finite(m.layer_norm(x, 64), f"layer_norm in float32 with {what}",
                            STABLE_HINT)
        assert_close(got, expected.astype(np.float32), f"layer_norm in float32 with {what}",
                     rtol=1e-3, atol=2e-3, hint=STABLE_HINT)


@fingerprint("blocks_layernorm")
def layer_norm_outputs(m):
    x = randn(120, 2, 3, 4, scale=2.0, shift=0.5)
    weight, bias = _affine(121, (4,), True)
    upstream = randn(122, 2, 3, 4)
    outputs = {"forward": safely(lambda: m.layer_norm(x, 4, weight, bias)),
               "forward_2d": safely(lambda: m.layer_norm(x, (3, 4), None, None, 0.1))}

    def grad(index):
        got = _student_grads(m, x, (4,), weight, bias, upstream)
        return input_gradient(got, index, "an input")

    for index, name in ((0, "dx"), (2, "dweight"), (3, "dbias")):
        outputs[name] = safely(lambda index=index: grad(index))
    big = randn(123, 2, 32, dtype=torch.float32, shift=1e4)
    outputs["offset_1e4"] = np.nan_to_num(safely(lambda: m.layer_norm(big, 32)), nan=-9.0)
    outputs["module_eps"] = safely(lambda: run(m, m.LayerNorm(4, eps=0.5), x.float()))
    return outputs


# ------------------------------------------------------------------ 4.4 RMSNorm


def _torch_rms(x, normalized, weight, eps):
    return F.rms_norm(x, normalized, weight, eps)


@check("blocks_rmsnorm", "oracle", weight=2)
def rms_norm_matches_torch(m):
    """rms_norm(x, normalized_shape, weight, eps) equals F.rms_norm: last dimension, (4, 5),
    no weight, eps=None (machine epsilon of the dtype) in float64 and float32, eps = 0.1."""
    cases = [((3, 4, 5), (5,), True, None), ((2, 4, 5), (4, 5), True, None),
             ((6, 7), (7,), False, None), ((3, 5), (5,), True, 0.1)]
    for k, (shape, normalized, has_weight, eps) in enumerate(cases):
        x = randn(130 + k, *shape, scale=0.8, shift=0.3)
        weight = randn(140 + k, *normalized, shift=1.0) if has_weight else None
        expected = _torch_rms(x, normalized, weight, eps)
        assert_close(m.rms_norm(x, normalized, weight, eps), expected.numpy(),
                     f"rms_norm of x {shape} over {normalized}, weight "
                     f"{'given' if has_weight else 'None'}, eps={eps}",
                     hint=DIMS_HINT if len(normalized) > 1 else RMS_HINT)
    x = randn(150, 3, 6, dtype=torch.float32, scale=1e-3)
    assert_close(m.rms_norm(x, 6), F.rms_norm(x, (6,)).numpy(),
                 "rms_norm in float32 of inputs of size 1e-3 (eps=None)", rtol=1e-5, atol=1e-6,
                 hint=RMS_HINT)


@check("blocks_rmsnorm", "oracle")
def rms_norm_module_matches_torch(m):
    """RMSNorm has torch's attributes and parameter (weight 1 when fresh, none without
    elementwise_affine) and, with a random weight, equals nn.RMSNorm on (4, 6) and eps = 1e-4."""
    params = run_probe(m, "phase4.parameters", m.RMSNorm(6))
    if sorted(params) != ["weight"]:
        raise CheckFailed(f"a fresh RMSNorm(6) has parameters {sorted(params)}, expected "
                          f"['weight'] (no bias: RMSNorm has none).")
    assert_close(params["weight"], np.ones(6, dtype=np.float32), "a fresh RMSNorm(6).weight")
    names = sorted(run_probe(m, "phase4.parameters", m.RMSNorm(6, elementwise_affine=False)))
    if names:
        raise CheckFailed(f"RMSNorm(6, elementwise_affine=False) has parameters {names}.",
                          "register_parameter('weight', None).")
    reference = torch.nn.RMSNorm((4, 6), eps=1e-4).double()
    with torch.no_grad():
        reference.weight.copy_(randn(160, 4, 6, shift=1.0))
    student = m.RMSNorm((4, 6), eps=1e-4)
    copy_weights(student, reference.state_dict(), "RMSNorm((4, 6))")
    x = randn(161, 3, 4, 6, scale=0.2)
    with torch.no_grad():
        expected = reference(x)
    assert_close(run(m, student, x), expected.numpy(), "RMSNorm((4, 6), eps=1e-4) on x (3, 4, 6)",
                 hint=RMS_HINT)


@check("blocks_rmsnorm", "gradient")
def rms_norm_gradients_match_torch(m):
    """Autograd through your RMSNorm gives torch's gradients for x and weight."""
    for k, (shape, normalized) in enumerate((((3, 4, 5), (5,)), ((2, 4, 5), (4, 5)))):
        x, weight = randn(170 + k, *shape, shift=0.5), randn(175 + k, *normalized, shift=1.0)
        upstream = randn(180 + k, *shape)
        _, expected, _ = reference_grads(lambda x, w, n=normalized: F.rms_norm(x, n, w),
                                         [x, weight], upstream)
        got = gradients(m, m.rms_norm, [x, normalized, weight], upstream, "rms_norm")
        assert_close(input_gradient(got, 0, "x"), expected[0].numpy(),
                     f"∂L/∂x of rms_norm over {normalized}", hint=RMS_HINT)
        assert_close(input_gradient(got, 2, "weight"), expected[1].numpy(),
                     f"∂L/∂weight of rms_norm over {normalized}", hint=RMS_HINT)


@check("blocks_rmsnorm", "invariant")
def rms_norm_has_unit_rms_and_ignores_scale(m):
    """Without a weight every position has root-mean-square 1 (up to ε), and
    rms_norm(a·x) = rms_norm(x) for a > 0, on inputs drawn by hypothesis."""
    rows = arrays((3, 5), low=-20.0, high=20.0).filter(lambda a: np.all(np.abs(a).max(-1) > 0.1))

    def body(values, a):
        x = torch.from_numpy(values)
        y = as_array(m.rms_norm(x, 5, None, 0.0), "rms_norm(x, eps=0)")
        assert_close(np.sqrt((y**2).mean(-1)), np.ones(3), "the RMS of each normalised row",
                     rtol=1e-9, hint=RMS_HINT)
        scaled = as_array(m.rms_norm(a * x, 5, None, 0.0), "rms_norm(a·x, eps=0)")
        assert_close(scaled, y, f"rms_norm(a·x) against rms_norm(x), a = {a:.4g}", rtol=1e-9,
                     atol=1e-12, hint=RMS_HINT)

    property_holds(body, rows, st.floats(0.01, 100.0), examples=15)


@check("blocks_rmsnorm", "stability")
def rms_norm_is_stable_for_zero_and_huge_inputs(m):
    """An all-zero position gives zeros with finite gradients; inputs of magnitude 1e4 in
    float32 match torch."""
    x = torch.zeros(2, 5, dtype=torch.float64)
    weight = randn(190, 5, shift=1.0)
    assert_close(assert_finite(m.rms_norm(x, 5, weight), "rms_norm of zeros",
                               "ε inside the square root keeps the denominator positive."),
                 np.zeros((2, 5)), "rms_norm of zeros")
    got = gradients(m, m.rms_norm, [x, 5, weight], randn(191, 2, 5), "rms_norm")
    assert_finite(input_gradient(got, 0, "x"), "∂L/∂x of rms_norm at zero",
                  "At x = 0 the RMS is √ε: keep ε inside the square root, not added after it.")
    x = randn(192, 4, 64, dtype=torch.float32, scale=1e4)
    expected = F.rms_norm(x.double(), (64,)).numpy().astype(np.float32)
    assert_close(assert_finite(m.rms_norm(x, 64), "rms_norm in float32 of magnitude 1e4",
                               "mean(x²) of 1e4-sized values is 1e8: fine in float32, while "
                               "sum(x²) first and then a power can overflow."),
                 expected, "rms_norm in float32 of magnitude 1e4", rtol=1e-4, atol=1e-5,
                 hint=RMS_HINT)


@fingerprint("blocks_rmsnorm")
def rms_norm_outputs(m):
    x = randn(200, 2, 3, 4, scale=0.7, shift=0.4)
    weight = randn(201, 4, shift=1.0)
    return {"forward": safely(lambda: m.rms_norm(x, 4, weight)),
            "forward_2d": safely(lambda: m.rms_norm(x, (3, 4), None, 0.1)),
            "module": safely(lambda: run(m, m.RMSNorm(4), x)),
            "dx": safely(lambda: input_gradient(
                gradients(m, m.rms_norm, [x, 4, weight], randn(202, 2, 3, 4), "rms_norm"),
                0, "x"))}

