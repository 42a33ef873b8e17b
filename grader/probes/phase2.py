"""Trusted code run in the worker next to the student's phase-2 (torch) objects.

General tools for any torch phase: copy weights into a student module by name, list its
parameters, run a function or module under autograd and return the gradients, call something
under a fixed torch seed. They return tensors, lists and dicts only; the judge does the judging.
"""

from __future__ import annotations

import torch


def parameter_shapes(module) -> dict:
    """{name: shape} of the module's parameters, in registration order."""
    return {name: list(p.shape) for name, p in module.named_parameters()}


def load_state(module, state: dict) -> dict:
    """Copy `state` ({parameter name: tensor}) into the module's parameters, in place.

    Returns what did not fit, for the judge to explain: names the module lacks, names of a
    different shape (with the module's shape), and parameters the state does not cover.
    """
    own = dict(module.named_parameters())
    missing, wrong_shape = [], {}
    with torch.no_grad():
        for name, value in state.items():
            if name not in own:
                missing.append(name)
            elif tuple(own[name].shape) != tuple(value.shape):
                wrong_shape[name] = list(own[name].shape)
            else:
                own[name].copy_(value)
    return {"missing": missing, "wrong_shape": wrong_shape,
            "extra": [name for name in own if name not in state]}


def vjp(fn, inputs: list, upstream, output: int = 0, **kwargs) -> dict:
    """Run fn(*inputs, **kwargs) with gradients on, take output number `output` when it returns
    a tuple, and backpropagate `upstream` through it.

    Returns {"output", "inputs": [∂/∂input or None], "params": {name: ∂/∂param or None}} (params
    when fn is a Module); "inputs" is None when the output carries no gradient at all.
    """
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*leaves, **kwargs)
    if isinstance(out, (tuple, list)):
        out = out[output]
    named = list(fn.named_parameters()) if isinstance(fn, torch.nn.Module) else []
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return {"output": out.detach() if isinstance(out, torch.Tensor) else out,
                "inputs": None, "params": {}}
    wrt = [x for x in leaves if x.requires_grad] + [p for _, p in named if p.requires_grad]
    # the VJP as the gradient of the scalar Σ upstream·out: autograd.grad(out, …, upstream)
    # would make torch import sympy on its first call (seconds of grading time)
    loss = (out * upstream.to(out.dtype)).sum()
    grads = iter(torch.autograd.grad(loss, wrt, allow_unused=True))
    input_grads = [next(grads) if x.requires_grad else None for x in leaves]
    param_grads = {name: next(grads) if p.requires_grad else None for name, p in named}
    return {"output": out.detach(), "inputs": input_grads, "params": param_grads}


def seeded(fn, *args, probe_seed: int = 0, **kwargs):
    """fn(*args, **kwargs) right after torch.manual_seed(probe_seed): reproducible dropout."""
    torch.manual_seed(probe_seed)
    return fn(*args, **kwargs)
