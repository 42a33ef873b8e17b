"""Perf (informational unless the course scores it, grader/perf.py): Conv2d.forward against
torch's conv2d on the same input and weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader import perf
from grader.checks import check
from grader.session import fetch

N, C, O, SIZE = 8, 16, 32, 32


@check("cnn_conv2d", "perf", weight=perf.WEIGHT)
def conv2d_time_and_memory_against_torch(m):
    """Conv2d(16, 32, 3, padding=1).forward on (8, 16, 32, 32), against torch's conv2d."""
    x = np.random.default_rng(0).standard_normal((N, C, SIZE, SIZE))
    layer = m.Conv2d(C, O, 3, padding=1, rng=0)
    weight, bias = (torch.from_numpy(np.asarray(fetch(a))) for a in (layer.weight, layer.bias))
    tensor = torch.from_numpy(x)
    perf.compare(
        m, "Conv2d.forward", layer.forward, [x],
        lambda: F.conv2d(tensor, weight, bias, padding=1), allowed=10.0,
        slow_hint="Python loops over output positions? im2col turns the whole convolution into "
        "one matrix product per group.", output_bytes=N * O * SIZE * SIZE * 8,
    )  # fmt: skip
