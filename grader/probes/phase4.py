"""Trusted code run in the worker next to the student's phase-4 blocks. Returns tensors,
numbers, strings and dicts of them only; every verdict is reached in the judge."""

from __future__ import annotations

import torch

from .phase2 import load_state as _copy_state


def load_state(module, state: dict) -> dict:
    """Cast the module to the state's dtype, then copy `state` into it (phase 2's load_state:
    it returns what did not fit)."""
    if state:
        module.to(dtype=next(iter(state.values())).dtype)
    return _copy_state(module, state)


def parameters(module) -> dict:
    """{name: detached copy} of module.named_parameters() (None-valued ones are absent)."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def run(fn, inputs: list, kwargs: dict | None = None, train: bool = False, seed: int = 0):
    """fn(*inputs, **kwargs) without gradients, right after torch.manual_seed(seed); a module
    is put in training or eval mode first."""
    if isinstance(fn, torch.nn.Module):
        fn.train(train)
    torch.manual_seed(seed)
    with torch.no_grad():
        return fn(*inputs, **(kwargs or {}))


def vjp(fn, inputs: list, upstream, kwargs: dict | None = None, train: bool = False) -> dict:
    """Backpropagate Σ upstream·fn(*inputs, **kwargs) with autograd (the student's own backward
    where they wrote one). Tensor inputs become leaves; other inputs (shapes, None, numbers)
    are passed as they are and get a None gradient.

    Returns {"output", "inputs": [∂/∂input or None], "params": {name: ∂/∂param or None},
    "grad_fn": the output's grad_fn class name, "autograd_calls": how many times autograd was
    entered while the backward pass ran (1 is this probe's own call)}."""
    if isinstance(fn, torch.nn.Module):
        fn.train(train)
        fn.zero_grad(set_to_none=True)
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point())
              if isinstance(x, torch.Tensor) else x for x in inputs]
    out = fn(*leaves, **(kwargs or {}))
    named = list(fn.named_parameters()) if isinstance(fn, torch.nn.Module) else []
    if not isinstance(out, torch.Tensor) or out.grad_fn is None:
        return {"output": out.detach() if isinstance(out, torch.Tensor) else out,
                "inputs": None, "params": {}, "grad_fn": "None", "autograd_calls": 0}
    node = type(out.grad_fn).__name__
    calls = [0]
    originals = (torch.autograd.backward, torch.autograd.grad)

    def counting(original):
        def wrapper(*args, **kw):
            calls[0] += 1
            return original(*args, **kw)
        return wrapper

    torch.autograd.backward, torch.autograd.grad = map(counting, originals)
    try:
        # the gradient of a scalar: out.backward(upstream) makes torch import sympy (seconds)
        (out * upstream.to(out.dtype)).sum().backward()
    finally:
        torch.autograd.backward, torch.autograd.grad = originals
    return {"output": out.detach(),
            "inputs": [x.grad if isinstance(x, torch.Tensor) and x.requires_grad else None
                       for x in leaves],
            "params": {name: None if p.grad is None else p.grad.detach().clone()
                       for name, p in named},
            "grad_fn": node, "autograd_calls": calls[0]}
