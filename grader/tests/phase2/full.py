"""FULL=1 tier of phase 2: attention over a long sequence with large scores, in float32."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from grader.checks import check
from grader.checks.oracle import assert_close
from grader.checks.stability import assert_finite
from grader.session import reply_limit
from grader.tests.phase2._helpers import numpy, pair, randn

T, DK, DV = 2048, 32, 16
SCALE = 12.0  # q·k/√d_k reaches a few hundred: exp overflows float32 without the max shift
# float32 scores of that size carry absolute errors ~1e-4 (|q·k|·2⁻²⁴): hence rtol 1e-3, not 1e-5


@check("attn_sdpa", "stability", full=True, seconds=120)
def causal_sdpa_over_2048_positions_with_large_scores_keeps_float32_accuracy(m):
    """Causal attention over T = 2048 with scores in the hundreds stays accurate in float32.

    Your float32 output and weights, against torch's float64 scaled_dot_product_attention."""
    q = randn(70, 1, 1, T, DK, scale=SCALE)
    k = randn(71, 1, 1, T, DK, scale=SCALE)
    v = randn(72, 1, 1, T, DV)
    expected = numpy(F.scaled_dot_product_attention(q, k, v, is_causal=True))
    weights_size = np.empty((1, 1, T, T), dtype=np.float32)
    with reply_limit(m, nbytes=2 * weights_size.nbytes):
        result = m.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        out, weights = pair(result, "causal sdpa at T = 2048")
    hint = "Subtract each row's max before exp, in the input's dtype (masked_softmax)."
    assert_finite(out, "causal sdpa at T = 2048 with scores in the hundreds (float32)", hint)
    assert_close(
        out,
        expected.astype(np.float32),
        "causal sdpa at T = 2048 (float32)",
        rtol=1e-3,
        atol=1e-3,
        hint=hint,
    )
    upper = np.triu(np.ones((T, T), dtype=bool), k=1)
    assert_close(
        np.asarray(weights)[0, 0][upper],
        np.zeros(int(upper.sum()), np.float32),
        "the weights above the diagonal (the future)",
        hint="is_causal: keys j > i get 0.",
    )
