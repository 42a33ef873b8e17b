"""dtypes the declared sweep (contracts.py) does not reach: additive_mask's `dtype` for a float
mask, and MultiHeadAttention in float32 with need_weights=False. (Found by `make mutate`.)"""

from __future__ import annotations

import torch

from grader.checks import CheckFailed, check
from grader.tests.phase2._helpers import randn

DTYPE_HINT = "Nothing casts: float32 in, float32 out (no .double(), no float64 constants)."


def _dtype(value, expected: torch.dtype, what: str) -> None:
    if not isinstance(value, torch.Tensor) or value.dtype != expected:
        got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
        raise CheckFailed(f"{what} is {got}, expected {expected}.", DTYPE_HINT)


@check("attn_masks", "invariant")
def additive_mask_returns_the_requested_dtype_for_float_masks(m):
    """additive_mask(float mask, dtype) returns `dtype`, for a float32 target and a float64
    mask as well as the reverse."""
    mask = randn(600, 3, 4)
    for source, target in ((torch.float64, torch.float32), (torch.float32, torch.float64)):
        _dtype(m.additive_mask(mask.to(source), target), target,
               f"additive_mask(a {source} float mask, dtype={target})")  # fmt: skip


@check("attn_mha", "invariant")
def mha_keeps_float32_without_weights(m):
    """MultiHeadAttention in float32 with need_weights=False returns a float32 output."""
    module = m.MultiHeadAttention(8, 2).float()
    x = randn(601, 2, 5, 8, dtype=torch.float32)
    out, _ = module(x, x, x, need_weights=False)
    _dtype(out, torch.float32, "the float32 output with need_weights=False")
