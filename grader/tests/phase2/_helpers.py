"""Shared pieces of the phase-2 checks: seeded tensors, torch references, weight copying.

Masks follow the course convention (True = may attend). torch.nn.MultiheadAttention uses the
opposite one (True = masked out), so every comparison with it passes `~mask` to torch.
"""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed
from grader.checks.oracle import as_array, assert_close, unpack
from grader.session import run_probe

F64 = torch.float64
NEG_INF = float("-inf")
CONVENTION = ("In this course True means MAY ATTEND (torch's nn.MultiheadAttention uses the "
              "opposite).")


def randn(seed: int, *shape: int, dtype: torch.dtype = F64, scale: float = 1.0,
          shift: float = 0.0) -> torch.Tensor:
    """N(shift, scale²) values, the same for a given seed on every machine."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator, dtype=F64) * scale + shift).to(dtype)


def random_mask(seed: int, *shape: int, p_keep: float = 0.6, keep_first: bool = True):
    """A random bool mask (True = may attend); with keep_first every row allows key 0."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(*shape, generator=generator) < p_keep
    if keep_first:
        mask[..., 0] = True
    return mask


def numpy(value) -> np.ndarray:
    """A trusted torch value (possibly requiring grad) as a NumPy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return np.asarray(value)


def softmax_reference(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1):
    """torch's softmax over the allowed entries; rows with nothing allowed become 0, not nan."""
    if mask is not None:
        scores = scores.masked_fill(~mask, NEG_INF)
    return torch.nan_to_num(torch.softmax(scores, dim=dim), nan=0.0)


def attention_reference(q, k, v, mask=None, scale=None):
    """(output, weights) of softmax(q kᵀ·scale + mask) v computed by torch (bool mask or float)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        scores = scores + (mask if mask.dtype != torch.bool
                           else torch.zeros(mask.shape, dtype=scores.dtype).masked_fill(~mask,
                                                                                       NEG_INF))
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
    return weights @ v, weights


def backward(output: torch.Tensor, upstream: torch.Tensor) -> None:
    """Accumulate ∂(upstream·output)/∂leaf into the leaves' .grad (a VJP of the reference).

    Written as the backward of a scalar: output.backward(upstream) makes torch import sympy on
    its first call, which costs seconds of grading time."""
    (output * upstream).sum().backward()


def pair(value, what: str) -> tuple:
    """The (output, weights) tuple an attention call returns."""
    return unpack(value, 2, what)


NAMES_HINT = ("Name and shape the parameters exactly as the docstring says (they follow "
              "PyTorch), and register them as nn.Parameter.")


def copy_weights(student, state: dict, what: str, hint: str = NAMES_HINT,
                 cast: bool = False) -> None:
    """Copy a torch module's parameters (its state_dict) into the student's module by name, or
    explain what did not fit; with `cast`, the module first moves to the state's dtype."""
    report = run_probe(student, "phase2.load_state", student,
                       {name: value.detach().clone() for name, value in state.items()}, cast)
    problems = []
    if report["missing"]:
        problems.append(f"it has no parameter named {', '.join(report['missing'][:6])}")
    for name, shape in report["wrong_shape"].items():
        problems.append(f"its {name} has shape {tuple(shape)}, expected "
                        f"{tuple(state[name].shape)}")
    if report["extra"]:
        problems.append(f"it has parameters torch's does not: {', '.join(report['extra'][:6])}")
    if problems:
        raise CheckFailed(f"cannot copy the weights of torch's {what} into yours: "
                          + "; ".join(problems) + ".", hint)


def run(m, fn, *inputs, train: bool = False, seed: int = 0, **kwargs) -> np.ndarray:
    """The student's fn(*inputs, **kwargs) without gradients, right after
    torch.manual_seed(seed), a module in training or eval mode, as an array."""
    out = run_probe(m, "phase2.run", fn, list(inputs), kwargs, train=train, seed=seed)
    return as_array(out, "the output")


def gradients(m, fn, inputs: list, upstream, what: str, output: int = 0, train: bool = False,
              **kwargs) -> dict:
    """Autograd gradients of the student's fn(*inputs, **kwargs) (run in the worker, a module
    in training or eval mode) for `upstream`, through output number `output` of a tuple."""
    result = run_probe(m, "phase2.vjp", fn, inputs, upstream, kwargs, output=output, train=train)
    if result["inputs"] is None:
        raise CheckFailed(f"{what} returned a tensor that carries no gradient.",
                          "Build the result from the inputs with torch operations only: no "
                          ".detach(), .item(), .numpy(), .data or torch.no_grad() on the way.")
    return result


def input_gradient(result: dict, index: int, what: str) -> np.ndarray:
    grad = result["inputs"][index]
    if grad is None:
        raise CheckFailed(f"no gradient reaches {what}: it does not influence your output, or "
                          f"the graph is cut (.detach(), torch.no_grad()).")
    return as_array(grad, f"the gradient with respect to {what}")


def bool_mask(value, expected: np.ndarray, what: str, hint: str) -> None:
    """A mask must be a bool tensor equal to `expected`."""
    if not isinstance(value, torch.Tensor) or value.dtype != torch.bool:
        kind = f"dtype {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise CheckFailed(f"{what} should be a torch.bool tensor, got {kind}.",
                          "Comparisons (<, <=, ==) give bool tensors; so does "
                          "torch.ones(..., dtype=torch.bool).tril().")
    assert_close(value, expected, what, hint=f"{hint} {CONVENTION}")
