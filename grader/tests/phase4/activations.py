"""4.1 erf and 4.2 GELU, against torch.erf and torch.nn.functional.gelu computed in the judge."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.checks.properties import arrays, property_holds, shapes
from grader.checks.stability import assert_finite
from grader.tests.phase4._helpers import F64, gradients, input_gradient, randn, safely

ERF_ERROR = 1.5e-7  # the bound Abramowitz & Stegun give for 7.1.26
ERF_HINT = ("A&S 7.1.26 holds for x ≥ 0: compute it at z = |x|, t = 1/(1 + p·z), "
            "1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^{−z²}, then restore the sign (erf is odd).")
GELU_EXACT_HINT = "GELU(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2)): the argument of erf is x/√2."
GELU_TANH_HINT = "0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): check both constants and the cube."
EXTREMES = [0.0, 1e-12, -1e-12, 1e-3, -1e-3, 0.5, -0.5, 3.0, -3.0, 6.0, -6.0, 30.0, -30.0, 1e4,
            -1e4, 1e30, -1e30]


def _grid(dtype=torch.float64) -> torch.Tensor:
    grid = torch.cat([torch.linspace(-7, 7, 1401, dtype=F64), torch.tensor(EXTREMES, dtype=F64)])
    return grid.to(dtype)


# ------------------------------------------------------------------ 4.1 erf


@check("blocks_erf", "oracle", weight=2)
def erf_is_within_1_5e_7_of_the_true_erf(m):
    """erf(x) is within 1.5e-7 of the true erf on a fine grid over [−7, 7] and at extreme
    values (±1e-12 … ±1e30), in float64."""
    x = _grid()
    assert_close(m.erf(x), torch.erf(x).numpy(), "erf(x) in float64", rtol=0.0, atol=ERF_ERROR,
                 hint=ERF_HINT)
    got = as_array(m.erf(x[:21].reshape(3, 7)), "erf of a (3, 7) tensor")
    if got.shape != (3, 7):
        raise CheckFailed(f"erf of a (3, 7) tensor has shape {got.shape}: it is elementwise.")


@check("blocks_erf", "invariant")
def erf_is_odd_and_bounded(m):
    """erf(−x) = −erf(x) exactly, erf(0) = 0 and |erf(x)| ≤ 1, for arrays drawn by hypothesis."""

    def body(values):
        x = torch.from_numpy(values)
        pos, neg = as_array(m.erf(x), "erf(x)"), as_array(m.erf(-x), "erf(−x)")
        assert_close(neg, -pos, "erf(−x) against −erf(x)", rtol=0.0, atol=1e-15,
                     hint="Odd symmetry: compute erf(|x|) and multiply by sign(x).")
        if np.abs(pos).max(initial=0.0) > 1.0:
            raise CheckFailed(f"|erf(x)| reaches {np.abs(pos).max():.6g} > 1.", ERF_HINT)

    property_holds(body, arrays(shapes(max_dims=2, max_side=6), low=-8.0, high=8.0), examples=12)
    zero = as_array(m.erf(torch.zeros(3, dtype=F64)), "erf(0)")
    if np.any(zero != 0):
        raise CheckFailed(f"erf(0) should be exactly 0, got {zero[0]!r}.",
                          "Multiply by torch.sign(x), which is 0 at 0.")


@check("blocks_erf", "gradient")
def erf_gradient_is_the_gaussian(m):
    """Autograd through your erf gives d erf/dx = (2/√π)·e^{−x²} (within 2e-5: the derivative
    of the approximation) on a grid over [−5, 5] that avoids 0."""
    x = torch.linspace(-5, 5, 400, dtype=F64)  # an even count: 0 is not on the grid
    upstream = torch.ones_like(x)
    result = gradients(m, m.erf, [x], upstream, "erf")
    expected = 2 / math.sqrt(math.pi) * torch.exp(-x * x)
    assert_close(input_gradient(result, 0, "x"), expected.numpy(), "d erf(x)/dx", rtol=0.0,
                 atol=2e-5, hint="Build erf from differentiable torch operations (abs, exp, "
                                 "sign, arithmetic) so autograd can differentiate it.")


@check("blocks_erf", "stability")
def erf_keeps_float32_and_stays_finite(m):
    """In float32, erf keeps the dtype, stays finite up to ±3e38 and is within 3e-7 of the
    true erf."""
    x = torch.cat([_grid(torch.float32), torch.tensor([3e38, -3e38, 1e-38])])
    got = m.erf(x)
    assert_finite(got, "erf(x) in float32", "exp(−z²) underflows harmlessly to 0; what "
                                            "overflowed? Keep t = 1/(1 + p·|x|).")
    assert_close(got, torch.erf(x.double()).numpy().astype(np.float32), "erf(x) in float32",
                 rtol=0.0, atol=3e-7, hint=ERF_HINT)


@fingerprint("blocks_erf")
def erf_outputs(m):
    x = torch.tensor([-4.0, -2.0, -1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0, 2.0, 4.0], dtype=F64)
    return {"erf": safely(lambda: m.erf(x)), "erf_wide": safely(lambda: m.erf(x * 3))}


# ------------------------------------------------------------------ 4.2 GELU


@check("blocks_gelu", "oracle", weight=2)
def gelu_matches_torch(m):
    """gelu(x) equals F.gelu(x) within 1e-6 (your erf's error), gelu(x, "tanh") equals
    F.gelu(x, approximate="tanh") to 1e-9, and GELU(approximate) does the same, in float64."""
    x = randn(0, 4, 50, scale=3.0)
    assert_close(m.gelu(x), F.gelu(x).numpy(), "gelu(x) (exact, through your erf)", rtol=0.0,
                 atol=1e-6, hint=GELU_EXACT_HINT)
    assert_close(m.gelu(x, "tanh"), F.gelu(x, approximate="tanh").numpy(), "gelu(x, 'tanh')",
                 hint=GELU_TANH_HINT)
    for approximate, hint, tol in (("none", GELU_EXACT_HINT, 1e-6), ("tanh", GELU_TANH_HINT,
                                                                       1e-12)):
        module = m.GELU(approximate)
        assert_close(module(x), F.gelu(x, approximate=approximate).numpy(),
                     f"GELU(approximate={approximate!r})(x)", rtol=1e-9, atol=tol,
                     hint=f"The module calls gelu(x, self.approximate). {hint}")


@check("blocks_gelu", "invariant")
def gelu_minus_reflection_is_identity(m):
    """gelu(x) − gelu(−x) = x for both forms (Φ(x) + Φ(−x) = 1), on arrays drawn by hypothesis."""

    def body(values):
        x = torch.from_numpy(values)
        for approximate in ("none", "tanh"):
            diff = as_array(m.gelu(x, approximate), "gelu(x)") - as_array(
                m.gelu(-x, approximate), "gelu(−x)")
            assert_close(diff, values, f"gelu(x) − gelu(−x) with approximate={approximate!r}",
                         rtol=1e-9, atol=1e-12,
                         hint="Φ(x) + Φ(−x) = 1 because erf and tanh are odd: if this fails, "
                              "erf(−x) ≠ −erf(x) or the formula is not x·Φ(x).")

    property_holds(body, arrays(shapes(max_dims=2, max_side=6), low=-10.0, high=10.0),
                   examples=12)


@check("blocks_gelu", "gradient")
def gelu_gradients_match_torch(m):
    """Autograd through your gelu equals torch's GELU derivative: tanh form to 1e-9, exact form
    within 2e-5."""
    x = randn(1, 3, 40, scale=3.0)
    upstream = randn(2, 3, 40)
    for approximate, tol in (("tanh", None), ("none", 2e-5)):
        expected = _torch_gelu_grad(x, upstream, approximate)
        result = gradients(m, m.gelu, [x], upstream, f"gelu(x, {approximate!r})",
                           approximate=approximate)
        kwargs = {} if tol is None else {"rtol": 0.0, "atol": tol}
        assert_close(input_gradient(result, 0, "x"), expected.numpy(),
                     f"∂(v·gelu(x, {approximate!r}))/∂x", **kwargs,
                     hint="Use differentiable torch operations only, and check the constants.")


def _torch_gelu_grad(x, upstream, approximate) -> torch.Tensor:
    leaf = x.clone().requires_grad_(True)
    (F.gelu(leaf, approximate=approximate) * upstream).sum().backward()
    return leaf.grad


@check("blocks_gelu", "stability")
def gelu_is_finite_for_large_inputs(m):
    """For |x| up to 1e4 (float32 and float64) gelu is finite, ≈ x for large x and ≈ 0 for very
    negative x, and so are its gradients."""
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=dtype)
        for approximate in ("none", "tanh"):
            what = f"gelu(x, {approximate!r}) in {str(dtype)[6:]}"
            got = assert_finite(m.gelu(x, approximate), what,
                                "x³ grows large but tanh saturates; 0·inf is nan — look for it.")
            assert_close(got, F.gelu(x, approximate=approximate).numpy(), what, rtol=1e-6,
                         atol=1e-6)
            result = gradients(m, m.gelu, [x], torch.ones_like(x), what, approximate=approximate)
            assert_finite(input_gradient(result, 0, "x"), f"the gradient of {what}",
                          "Far from 0 the derivative is 0 or 1; a nan is 0·inf, e.g. x·exp(x²) "
                          "or the x³ term, unguarded: let tanh/erf saturate instead.")


@fingerprint("blocks_gelu")
def gelu_outputs(m):
    x = torch.linspace(-4, 4, 17, dtype=F64)
    return {"exact": safely(lambda: m.gelu(x)), "tanh": safely(lambda: m.gelu(x, "tanh")),
            "module_tanh": safely(lambda: m.GELU("tanh")(x)),
            "module_exact": safely(lambda: m.GELU()(x)),
            "large": safely(lambda: m.gelu(torch.tensor([-50.0, 50.0], dtype=F64), "tanh"))}

