"""Perf (informational unless the course scores it, grader/perf.py): attention against torch's
own composition of built-ins (it returns the weights too, so both do the same work)."""

from __future__ import annotations

import torch

from grader import perf
from grader.checks import check
from grader.tests.phase2._helpers import randn

BATCH, HEADS, T, D = 4, 8, 256, 32


@check("attn_sdpa", "perf", weight=perf.WEIGHT)
def sdpa_time_against_torch(m):
    """scaled_dot_product_attention's time on (4, 8, 256, 32) float32, against torch's."""
    q, k, v = (randn(90 + i, BATCH, HEADS, T, D, dtype=torch.float32) for i in range(3))

    def reference():
        weights = torch.softmax(q @ k.transpose(-2, -1) / D**0.5, dim=-1)  # (B, H, T, T)
        return weights @ v, weights

    perf.compare(
        m, "attention", m.scaled_dot_product_attention, [q, k, v], reference, allowed=6.0,
        slow_hint="a Python loop over heads or queries? One matmul over the last two axes "
        "handles every batch and head at once.",
    )  # fmt: skip
