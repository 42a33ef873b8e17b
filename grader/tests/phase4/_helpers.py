"""Shared pieces of the phase-4 checks: seeded tensors, weight copying, student gradients.

Masks follow the course convention (True = may attend). torch's Transformer layers use the
opposite one (True = masked out), so every comparison with them passes torch `~mask`; padding
masks reach torch as a (B·H, Tq, Tk) attn_mask (the same semantics, without the seconds it
costs torch to import sympy on its first key_padding_mask).
"""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed
from grader.checks.oracle import as_array
from grader.session import StudentError
from grader.tests.phase2._helpers import (  # noqa: F401 - the torch helpers of phases 2 and 4
    F64,
    gradients,
    input_gradient,
    numpy,
    randn,
    run,
)
from grader.tests.phase2._helpers import copy_weights as _copy_weights

NAMES_HINT = ("Name the submodules and parameters exactly as torch does (self_attn, "
              "multihead_attn, linear1, linear2, norm1, norm2, norm3; weight, bias), registered "
              "as nn.Module attributes and nn.Parameter.")


def randomise(module: torch.nn.Module, seed: int, scale: float = 0.5) -> torch.nn.Module:
    """A torch reference in float64 with every parameter random: norm weights 1 ± scale and
    norm biases ± scale too, so that a forgotten affine step cannot hide behind 1 and 0."""
    module = module.double()
    with torch.no_grad():
        for index, (name, parameter) in enumerate(module.named_parameters()):
            parameter.copy_(randn(seed + index, *parameter.shape, scale=scale))
            if "norm" in name and name.endswith("weight"):
                parameter.add_(1.0)
    return module


def copy_weights(student, state: dict, what: str) -> None:
    """Load a torch state_dict into the student's module by name, casting the module to the
    state's dtype, or explain what did not fit."""
    _copy_weights(student, state, what, hint=NAMES_HINT, cast=True)


def param_gradient(result: dict, name: str, what: str) -> np.ndarray:
    grad = result["params"].get(name)
    if grad is None:
        raise CheckFailed(f"no gradient reaches the parameter {name} of your {what}.",
                          "Use the parameter itself in forward (not a copy or .data).")
    return as_array(grad, f"the gradient with respect to {name}")


def reference_grads(fn, inputs: list, upstream: torch.Tensor, **kwargs) -> tuple:
    """(output, input gradients, {parameter name: gradient}) by torch autograd in the judge."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    if isinstance(fn, torch.nn.Module):
        fn.zero_grad(set_to_none=True)
    out = fn(*leaves, **kwargs)
    (out * upstream).sum().backward()
    params = dict(fn.named_parameters()) if isinstance(fn, torch.nn.Module) else {}
    return out.detach(), [x.grad for x in leaves], {n: p.grad for n, p in params.items()}


def padding_as_attn_mask(keep: torch.Tensor, tq: int, heads: int) -> torch.Tensor:
    """Our key padding mask `keep` (B, Tk), True = real token, as torch's (B·H, Tq, Tk)
    attn_mask with True = masked out."""
    b, tk = keep.shape
    return (~keep)[:, None, None, :].expand(b, heads, tq, tk).reshape(-1, tq, tk)


def safely(compute) -> np.ndarray:
    """A fingerprint output that survives a submission raising: NaN stands for "it raised"."""
    try:
        return np.asarray(compute(), dtype=np.float64)
    except (StudentError, CheckFailed):
        return np.array([np.nan])
