"""dtypes the declared sweep (contracts.py) does not reach: cross_entropy with every reduction
in float32. (Found by `make mutate`.)"""

from __future__ import annotations

import torch

from grader.checks import CheckFailed, check


@check("cross_entropy_loss", "invariant")
def cross_entropy_keeps_float32_for_every_reduction(m):
    """cross_entropy on float32 logits returns float32 with reduction 'none', 'sum' and 'mean'."""
    generator = torch.Generator().manual_seed(700)
    logits = torch.randn(4, 3, generator=generator)
    target = torch.tensor([0, 2, 1, 2])
    for reduction in ("none", "sum", "mean"):
        value = m.cross_entropy(logits, target, reduction=reduction)
        if not isinstance(value, torch.Tensor) or value.dtype != torch.float32:
            got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckFailed(
                f"cross_entropy(float32 logits, reduction={reduction!r}) is {got}, expected "
                "torch.float32.",
                "Nothing casts: float32 in, float32 out.",
            )
