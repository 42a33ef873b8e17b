"""Trusted results computed in the judge with torch (float64): values and VJPs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

# The judge's torch work is many tiny ops (references, trajectories): one intra-op thread is
# fastest, and on a busy machine a thread pool makes it an order of magnitude slower. The worker
# already runs with OMP_NUM_THREADS=1.
torch.set_num_threads(1)


def tensor(x, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=requires_grad)


def value(fn: Callable[..., torch.Tensor], *arrays, **kwargs) -> np.ndarray:
    """fn applied to float64 tensors, back as a NumPy array."""
    with torch.no_grad():
        return fn(*(tensor(a) for a in arrays), **kwargs).numpy()


def vjp(fn: Callable[..., torch.Tensor], arrays: list, v, **kwargs) -> list[np.ndarray]:
    """∂(v·fn(arrays))/∂array for each array, by torch autograd in float64."""
    inputs = [tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs, **kwargs)
    grads = torch.autograd.grad(out, inputs, grad_outputs=tensor(v), allow_unused=True)
    return [
        np.zeros_like(np.asarray(a, dtype=np.float64)) if g is None else g.numpy()
        for a, g in zip(arrays, grads, strict=True)
    ]
