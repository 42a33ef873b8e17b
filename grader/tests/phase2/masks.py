"""2.3 Causal, padding and additive masks (True = may attend), against their definitions."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.tests.phase2._helpers import CONVENTION, bool_mask, numpy, random_mask

LENGTHS = torch.tensor([3, 0, 5, 1])


def causal_expected(tq: int, tk: int) -> np.ndarray:
    return np.arange(tk)[None, :] <= np.arange(tq)[:, None]


@check("attn_masks", "oracle")
def causal_mask_allows_exactly_the_past_and_present(m):
    """causal_mask(tq, tk) is True exactly where key j ≤ query i, for square and rectangular
    shapes."""
    hint = "Query i may see keys 0 … i: the lower triangle, diagonal included (tril)."
    bool_mask(m.causal_mask(5), causal_expected(5, 5), "causal_mask(5)", hint)
    for tq, tk in ((3, 6), (6, 3), (1, 4)):
        bool_mask(m.causal_mask(tq, tk), causal_expected(tq, tk), f"causal_mask({tq}, {tk})",
                  hint + " Rectangular masks are aligned at the top-left, like torch's.")


@check("attn_masks", "oracle")
def padding_mask_marks_the_real_tokens(m):
    """padding_mask(lengths, max_len) is True at positions t < lengths[b] (empty and full rows
    included), with max_len defaulting to the longest length."""
    hint = "Compare positions arange(max_len)[None, :] with lengths[:, None], strictly (<)."
    expected = np.arange(5)[None, :] < LENGTHS.numpy()[:, None]
    bool_mask(m.padding_mask(LENGTHS), expected, "padding_mask([3, 0, 5, 1])", hint)
    expected = np.arange(7)[None, :] < LENGTHS.numpy()[:, None]
    bool_mask(m.padding_mask(LENGTHS, 7), expected, "padding_mask([3, 0, 5, 1], max_len=7)", hint)


@check("attn_masks", "oracle")
def additive_mask_turns_true_into_zero_and_false_into_minus_inf(m):
    """additive_mask gives 0 where True and −inf where False in the requested dtype, and passes
    float masks through."""
    mask = random_mask(1, 3, 4, keep_first=False)
    expected = np.where(mask.numpy(), 0.0, -np.inf)
    hint = "torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, float('-inf'))."
    for dtype in (torch.float64, torch.float32):
        got = m.additive_mask(mask, dtype)
        assert_close(got, expected.astype(np.float64 if dtype == torch.float64 else np.float32),
                     f"additive_mask(mask, {dtype})", hint=f"{hint} {CONVENTION}")
    floats = torch.tensor([[0.0, -1.5], [float("-inf"), 2.0]], dtype=torch.float64)
    assert_close(m.additive_mask(floats, torch.float64), floats.numpy(),
                 "additive_mask of a float mask", hint="A float mask is already additive: "
                 "return it (cast to dtype).")


@check("attn_masks", "invariant")
def adding_additive_masks_intersects_them(m):
    """additive_mask(a) + additive_mask(b) equals additive_mask(a & b): adding masks combines
    them."""
    a, b = random_mask(2, 4, 5, keep_first=False), random_mask(3, 4, 5, keep_first=False)
    combined = as_array(m.additive_mask(a, torch.float64), "additive_mask(a)") + \
        as_array(m.additive_mask(b, torch.float64), "additive_mask(b)")
    assert_close(combined, as_array(m.additive_mask(a & b, torch.float64), "additive_mask(a & b)"),
                 "additive_mask(a) + additive_mask(b) vs additive_mask(a & b)",
                 hint="Use 0 and −inf (never +inf or a finite penalty), so sums stay 0 or −inf.")


@fingerprint("attn_masks")
def mask_outputs(m):
    mask = random_mask(4, 3, 4, keep_first=False)
    return {"causal": numpy(m.causal_mask(4)), "causal_rect": numpy(m.causal_mask(3, 5)),
            "padding": numpy(m.padding_mask(LENGTHS, 6)),
            "additive": numpy(m.additive_mask(mask, torch.float64))}
