"""Perf (informational unless the course scores it, grader/perf.py): softmax against torch's."""

from __future__ import annotations

import numpy as np
import torch

from grader import perf
from grader.checks import check

ROWS, COLUMNS = 256, 1024


@check("softmax", "perf", weight=perf.WEIGHT)
def softmax_time_and_memory_against_torch(m):
    """softmax's time on a (256, 1024) batch, against torch.softmax's on the same input."""
    x = np.random.default_rng(0).standard_normal((ROWS, COLUMNS))
    tensor = torch.from_numpy(x)
    perf.compare(
        m, "softmax", m.softmax, [x], lambda: torch.softmax(tensor, dim=-1), allowed=8.0,
        slow_hint="a Python loop over rows or elements? One np.exp and two reductions with "
        "keepdims=True do the whole batch.", output_bytes=x.nbytes,
    )  # fmt: skip
