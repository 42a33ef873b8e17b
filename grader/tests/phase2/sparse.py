"""2.7 Sliding-window and strided patterns (against their definitions) and 2.8 banded attention
(against torch's dense attention with the same window mask, and at a length where a dense
T × T matrix cannot fit in the worker's memory)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError
from grader.tests.phase2._helpers import (
    backward,
    bool_mask,
    gradients,
    input_gradient,
    numpy,
    randn,
)

WINDOW_HINT = ("Causal: 0 ≤ i − j < window (the `window` most recent keys, the query's own "
               "included); not causal: |i − j| < window.")
STRIDED_HINT = ("Strided: j ≤ i and (i − j) % stride == 0 — the offset, not the key index, is a "
                "multiple of the stride (j % stride is the 'fixed' pattern).")
BANDED_HINT = ("Block b of queries (b·w … b·w + w − 1) needs keys b·w − w … b·w + w − 1 (causal) "
               "or … b·w + 2w − 1 (not causal); in block coordinates i − j = a + w − c. Mask "
               "what falls outside the band and the padded keys (j < 0 or j ≥ T).")


def window_expected(T: int, window: int, causal: bool) -> np.ndarray:
    offset = np.arange(T)[:, None] - np.arange(T)[None, :]
    return (offset >= 0) & (offset < window) if causal else np.abs(offset) < window


def strided_expected(T: int, stride: int) -> np.ndarray:
    """The definition, entry by entry: query i sees key j ≤ i when i − j is a multiple of stride."""
    return np.array([[j <= i and (i - j) % stride == 0 for j in range(T)] for i in range(T)])


@check("attn_sparse_masks", "oracle")
def sliding_window_mask_keeps_the_band(m):
    """sliding_window_mask(T, w, causal) equals its definition for causal and two-sided windows,
    w = 1 and w ≥ T."""
    for T, window, causal in ((7, 3, True), (7, 3, False), (5, 1, True), (4, 6, False),
                              (4, 6, True)):
        bool_mask(m.sliding_window_mask(T, window, causal=causal),
                  window_expected(T, window, causal),
                  f"sliding_window_mask({T}, {window}, causal={causal})", WINDOW_HINT)


@check("attn_sparse_masks", "oracle")
def strided_mask_keeps_every_stride_th_past_key(m):
    """strided_mask(T, stride) is True where j ≤ i and i − j is a multiple of stride."""
    for T, stride in ((9, 3), (6, 1), (7, 4)):
        bool_mask(m.strided_mask(T, stride), strided_expected(T, stride),
                  f"strided_mask({T}, {stride})", STRIDED_HINT)


@check("attn_sparse_masks", "invariant")
def strided_and_local_patterns_reach_every_past_token_in_two_steps(m):
    """With stride = window = 4 (T = 16), strided then local attention connects every query to
    every key j ≤ i and to none after it — the Sparse Transformer's guarantee."""
    strided = as_array(m.strided_mask(16, 4), "strided_mask(16, 4)").astype(np.int64)
    local = as_array(m.sliding_window_mask(16, 4), "sliding_window_mask(16, 4)").astype(np.int64)
    reach = (strided @ local) > 0
    past = np.tril(np.ones((16, 16), dtype=bool))
    if not np.array_equal(reach, past):
        missing = np.argwhere(past & ~reach)
        extra = np.argwhere(reach & ~past)
        what = (f"query {missing[0][0]} cannot reach key {missing[0][1]}" if len(missing)
                else f"query {extra[0][0]} reaches the future key {extra[0][1]}")
        raise CheckFailed(f"composing strided_mask and sliding_window_mask: {what}.",
                          f"{STRIDED_HINT} {WINDOW_HINT}")


@fingerprint("attn_sparse_masks")
def sparse_mask_outputs(m):
    return {"causal": numpy(m.sliding_window_mask(8, 3)),
            "two_sided": numpy(m.sliding_window_mask(8, 3, causal=False)),
            "strided": numpy(m.strided_mask(8, 3))}


# ------------------------------------------------------------------ 2.8 banded attention


def dense_windowed(q, k, v, window: int, causal: bool, scale=None):
    mask = torch.from_numpy(window_expected(q.shape[-2], window, causal))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


@check("attn_banded", "oracle")
def banded_attention_equals_dense_windowed_attention(m):
    """banded_attention equals dense attention with the sliding-window mask: T a multiple of w
    or not, causal or not, w = 1, w ≥ T, 4-D inputs with d_k ≠ d_v, and an explicit scale."""
    cases = [((2, 13, 6, 6), 4, True, None), ((2, 13, 6, 6), 4, False, None),
             ((1, 16, 4, 4), 4, True, None), ((2, 3, 11, 5, 3), 3, False, None),
             ((1, 6, 4, 4), 1, True, None), ((1, 5, 4, 4), 8, False, None),
             ((1, 5, 4, 4), 8, True, None), ((1, 10, 4, 2), 3, True, 0.7)]
    for index, (shape, window, causal, scale) in enumerate(cases):
        *lead, T, dk, dv = shape
        q, k = randn(index, *lead, T, dk), randn(index + 20, *lead, T, dk)
        v = randn(index + 40, *lead, T, dv)
        got = m.banded_attention(q, k, v, window, causal=causal, scale=scale)
        assert_close(got, numpy(dense_windowed(q, k, v, window, causal, scale)),
                     f"banded_attention(T={T}, window={window}, causal={causal}"
                     + (f", scale={scale})" if scale else ")") + f" on inputs {tuple(q.shape)}",
                     hint=BANDED_HINT)


@check("attn_banded", "stability")
def banded_attention_scales_to_32768_tokens_and_float32(m):
    """At T = 32768 (float64) — where a T × T score matrix needs 8.6 GB — banded_attention runs
    and is exact; in float32 it agrees with float64."""
    T, window = 32768, 8
    q, k, v = randn(60, 1, T, 4), randn(61, 1, T, 4), randn(62, 1, T, 4)
    try:
        out = as_array(m.banded_attention(q, k, v, window), "banded_attention at T = 32768")
    except StudentError as error:
        if error.type == "MemoryError" or "allocate" in error.message:
            raise CheckFailed(f"banded_attention ran out of memory at T = {T}: "
                              f"{error.message[:200]}",
                              "Never build a T × T matrix (not even a mask): score each block "
                              "of w queries against its 2w keys, (…, T/w, w, 2w).") from None
        raise
    if out.shape != (1, T, 4):
        raise CheckFailed(f"banded_attention at T = {T} returned shape {out.shape}, expected "
                          f"(1, {T}, 4).", "Cut the padding of the last block off the output.")
    rows = [0, 5, 8, 20_000, T - 1]
    for i in rows:  # the exact answer for a few queries, each from its own window
        lo = max(0, i - window + 1)
        expected = numpy(F.scaled_dot_product_attention(q[:, i:i + 1], k[:, lo:i + 1],
                                                        v[:, lo:i + 1]))
        assert_close(out[:, i:i + 1], expected, f"banded_attention at T = {T}, query {i}",
                     hint=BANDED_HINT)
    q, k, v = randn(63, 2, 300, 8), randn(64, 2, 300, 8), randn(65, 2, 300, 8)
    expected = numpy(dense_windowed(q, k, v, 16, True)).astype(np.float32)
    assert_close(m.banded_attention(q.float(), k.float(), v.float(), 16), expected,
                 "banded_attention in float32 (T = 300, w = 16) vs float64", rtol=1e-4, atol=1e-5,
                 hint="Keep the input's dtype throughout.")


@check("attn_banded", "gradient")
def banded_attention_gradients_match_dense_attention(m):
    """∂/∂q, ∂/∂k and ∂/∂v of banded_attention equal torch autograd's through dense windowed
    attention (T = 11, w = 3, causal and two-sided)."""
    for causal in (True, False):
        q, k, v = randn(70, 2, 11, 4), randn(71, 2, 11, 4), randn(72, 2, 11, 3)
        upstream = randn(73, 2, 11, 3)
        result = gradients(m, m.banded_attention, [q, k, v], upstream, "banded_attention",
                           window=3, causal=causal)
        leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
        backward(dense_windowed(*leaves, 3, causal), upstream)
        for index, name in enumerate("qkv"):
            assert_close(input_gradient(result, index, name), numpy(leaves[index].grad),
                         f"∂(u·output)/∂{name} (causal={causal})", hint=BANDED_HINT)


@fingerprint("attn_banded")
def banded_outputs(m):
    q, k, v = randn(80, 2, 13, 4), randn(81, 2, 13, 4), randn(82, 2, 13, 3)
    return {"causal": numpy(m.banded_attention(q, k, v, 4)),
            "two_sided": numpy(m.banded_attention(q, k, v, 4, causal=False)),
            "aligned": numpy(m.banded_attention(q[:, :12], k[:, :12], v[:, :12], 4))}
