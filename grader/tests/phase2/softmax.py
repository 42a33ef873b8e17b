"""2.1 Stable masked softmax, against torch.softmax with −inf fills."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import F32, as_array, assert_close
from grader.checks.properties import arrays, property_holds, shapes
from grader.checks.stability import EXTREME, assert_finite
from grader.tests.phase2._helpers import (
    backward,
    gradients,
    input_gradient,
    numpy,
    randn,
    random_mask,
    softmax_reference,
)

DIM_HINT = "Take the max and the sum along `dim` with keepdim=True so they broadcast back."
MASK_HINT = ("Fill the forbidden scores with −inf before the max and the exp, so they get "
             "exactly 0 and the allowed ones are renormalised among themselves.")
FULLY_MASKED_HINT = ("A row with nothing allowed has max −inf and sum 0: use max 0 there, divide "
                     "by 1 where the sum is 0. Filling with −1e9 instead of −inf makes such a row "
                     "uniform, not zero.")
EXTREME_SCORES = torch.tensor([[EXTREME, 0.0, -EXTREME, 1.0], [-EXTREME, -EXTREME, -EXTREME, 0.0],
                               [EXTREME, EXTREME, 0.0, -1.0]], dtype=torch.float64)
ROW_MASK = torch.tensor([[True, True, False, True], [False, False, False, False],
                         [True, False, True, True]])


def _with_dim():
    return shapes(min_dims=1, max_dims=3, max_side=5).flatmap(
        lambda shape: st.tuples(arrays(st.just(shape)), st.integers(-len(shape), len(shape) - 1)))


@check("attn_masked_softmax", "oracle")
def masked_softmax_matches_torch_on_every_dim(m):
    """Without a mask, masked_softmax(x, dim=d) equals torch.softmax for random shapes and dims."""
    def prop(drawn):
        x, dim = torch.from_numpy(drawn[0]), drawn[1]
        assert_close(m.masked_softmax(x, dim=dim), numpy(torch.softmax(x, dim=dim)),
                     f"masked_softmax(x of shape {tuple(x.shape)}, dim={dim})", hint=DIM_HINT)

    prop((randn(0, 3, 4).numpy(), 0))
    property_holds(prop, _with_dim(), examples=12)


@check("attn_masked_softmax", "oracle")
def masked_softmax_matches_torch_with_a_broadcast_mask(m):
    """With a bool mask (broadcast over the batch), masked weights are those of torch.softmax
    after filling the forbidden scores with −inf."""
    scores = randn(1, 2, 4, 6, scale=3.0)
    mask = random_mask(2, 4, 6)
    assert_close(m.masked_softmax(scores, mask), numpy(softmax_reference(scores, mask)),
                 "masked_softmax(scores (2, 4, 6), mask (4, 6))", hint=MASK_HINT)
    column_mask = random_mask(3, 2, 4, 1, keep_first=False) | torch.tensor([True, False, False,
                                                                           False])[:, None]
    assert_close(m.masked_softmax(scores, column_mask, dim=1),
                 numpy(softmax_reference(scores, column_mask, dim=1)),
                 "masked_softmax(scores (2, 4, 6), mask (2, 4, 1), dim=1)",
                 hint=DIM_HINT + " " + MASK_HINT)


@check("attn_masked_softmax", "invariant")
def masked_softmax_rows_sum_to_one_and_masked_weights_are_zero(m):
    """Allowed weights are in [0, 1] and sum to 1; masked ones and fully masked rows are exactly
    0; adding a constant to a row changes nothing."""
    def prop(x, seed, shift):
        scores = torch.from_numpy(x)
        mask = random_mask(seed, *scores.shape, p_keep=0.5, keep_first=False)
        w = as_array(m.masked_softmax(scores, mask), "masked_softmax(scores, mask)")
        if w.shape != x.shape:
            raise CheckFailed(f"masked_softmax returned shape {w.shape} for scores {x.shape}.")
        keep = mask.numpy()
        if np.any(w[~keep] != 0):
            raise CheckFailed(f"{int(np.sum(w[~keep] != 0))} masked position(s) got a nonzero "
                              f"weight (e.g. {w[~keep][w[~keep] != 0][0]!r}).", MASK_HINT)
        if np.any(~np.isfinite(w)) or np.any(w < 0) or np.any(w > 1):
            raise CheckFailed("masked_softmax returned weights outside [0, 1] (or nan).",
                              FULLY_MASKED_HINT)
        expected_sums = keep.any(-1).astype(np.float64)
        assert_close(w.sum(-1), expected_sums,
                     "row sums (1 where something is allowed, 0 for a fully masked row)",
                     hint=FULLY_MASKED_HINT)
        assert_close(m.masked_softmax(scores + shift, mask), w, f"masked_softmax(x + {shift})",
                     rtol=1e-9, atol=1e-12, hint="Subtract the row max before exp.")

    property_holds(prop, arrays(shapes(2, 3, 1, 5)), st.integers(0, 1000),
                   st.sampled_from([-40.0, 7.0, 500.0]), examples=12)


@check("attn_masked_softmax", "stability")
def masked_softmax_is_stable_at_1e4_in_float32_and_float64(m):
    """Scores of ±1e4 and fully masked rows give finite, exact weights in float64 and float32."""
    for dtype in (torch.float64, torch.float32):
        scores = EXTREME_SCORES.to(dtype)
        name = str(dtype).replace("torch.", "")
        w = assert_finite(m.masked_softmax(scores), f"masked_softmax of scores ±1e4 ({name})",
                          "exp(1e4) overflows: subtract the row max before exp.")
        tol = F32 if dtype == torch.float32 else {}
        assert_close(w, numpy(torch.softmax(scores, dim=-1)), f"masked_softmax of scores ±1e4 "
                     f"({name})", **tol)
        w = assert_finite(m.masked_softmax(scores, ROW_MASK),
                          f"masked_softmax with a fully masked row ({name})", FULLY_MASKED_HINT)
        assert_close(w, numpy(softmax_reference(scores, ROW_MASK)),
                     f"masked_softmax of scores ±1e4 with a fully masked row 1 ({name})",
                     hint=FULLY_MASKED_HINT, **tol)


@check("attn_masked_softmax", "gradient")
def masked_softmax_gradient_matches_torch_and_is_zero_on_masked_rows(m):
    """The autograd gradient equals torch's softmax gradient, and is 0 (not nan) on masked
    entries and on a fully masked row."""
    scores = randn(4, 3, 4, scale=2.0)
    upstream = randn(5, 3, 4)
    result = gradients(m, m.masked_softmax, [scores, ROW_MASK], upstream, "masked_softmax")
    x = scores.clone().requires_grad_(True)
    backward(softmax_reference(x, ROW_MASK), upstream)
    grad = input_gradient(result, 0, "the scores")
    assert_finite(grad, "the gradient of masked_softmax with a fully masked row",
                  "exp(−inf − (−inf)) is nan, and so is its gradient: make the max finite and "
                  "the denominator nonzero before they meet a fully masked row.")
    assert_close(grad, numpy(x.grad), "∂(v·masked_softmax)/∂scores", hint=FULLY_MASKED_HINT)


@fingerprint("attn_masked_softmax")
def masked_softmax_outputs(m):
    scores = randn(7, 3, 4)
    return {
        "plain": m.masked_softmax(scores), "dim0": m.masked_softmax(scores, dim=0),
        "masked": m.masked_softmax(scores, ROW_MASK),
        "masked_dim0": m.masked_softmax(scores, ROW_MASK, dim=0),
        "extreme": m.masked_softmax(EXTREME_SCORES),
        "extreme_masked": m.masked_softmax(EXTREME_SCORES, ROW_MASK),
    }
