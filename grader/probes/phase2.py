"""Trusted code run in the worker next to the student's torch objects (phases 2 and 4).

General tools for any torch phase: copy weights into a student module by name, list its
parameters, run a function or module (seeded, in a chosen mode) and backpropagate through it.
They return tensors, numbers, strings, lists and dicts only; the judge does the judging.
"""

from __future__ import annotations

import torch


def parameter_shapes(module) -> dict:
    """{name: shape} of the module's parameters, in registration order."""
    return {name: list(p.shape) for name, p in module.named_parameters()}


def load_state(module, state: dict, cast: bool = False) -> dict:
    """Copy `state` ({parameter name: tensor}) into the module's parameters, in place; with
    `cast`, first move the module to the state's dtype.

    Returns what did not fit, for the judge to explain: names the module lacks, names of a
    different shape (with the module's shape), and parameters the state does not cover.
    """
    if cast and state:
        module.to(dtype=next(iter(state.values())).dtype)
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


def _set_mode(fn, train: bool | None) -> None:
    if train is not None and isinstance(fn, torch.nn.Module):
        fn.train(train)


def run(fn, inputs: list, kwargs: dict | None = None, train: bool | None = None, seed: int = 0):
    """fn(*inputs, **kwargs) without gradients, right after torch.manual_seed(seed); a module
    is put in training (train=True) or eval mode (False) first, or left as it is (None)."""
    _set_mode(fn, train)
    torch.manual_seed(seed)
    with torch.no_grad():
        return fn(*inputs, **(kwargs or {}))


def vjp(fn, inputs: list, upstream, kwargs: dict | None = None, output: int = 0,
        train: bool | None = None) -> dict:
    """Backpropagate Σ upstream·out with autograd, out = fn(*inputs, **kwargs) (output number
    `output` when it returns a tuple) — the student's own backward where they wrote one. Tensor
    inputs become leaves; other inputs (shapes, None, numbers) pass as they are and get a None
    gradient. `train` sets a module's mode as in `run`.

    Returns {"output", "inputs": [∂/∂input or None], "params": {name: ∂/∂param or None},
    "grad_fn": the output's grad_fn class name, "autograd_calls": how many times autograd was
    entered while the backward pass ran (1 is this probe's own call)}; "inputs" is None when
    the output carries no gradient at all.
    """
    if isinstance(fn, torch.nn.Module):
        _set_mode(fn, train)
        fn.zero_grad(set_to_none=True)
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point())
              if isinstance(x, torch.Tensor) else x for x in inputs]
    out = fn(*leaves, **(kwargs or {}))
    if isinstance(out, (tuple, list)):
        out = out[output]
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


def devices(fn, inputs: list, kwargs: dict | None = None, to_meta: tuple = ()) -> list:
    """The devices of fn(*inputs, **kwargs)'s tensor outputs, as strings, after moving the
    inputs numbered in `to_meta` to the meta device — a device without data that every machine
    has, so a CPU-only grader can see whether outputs follow their inputs' device."""
    inputs = [x.to("meta") if i in to_meta else x for i, x in enumerate(inputs)]
    if isinstance(fn, torch.nn.Module) and to_meta:
        fn.to("meta")
    with torch.no_grad():
        out = fn(*inputs, **(kwargs or {}))
    outputs = out if isinstance(out, (tuple, list)) else [out]
    return [str(o.device) for o in outputs if isinstance(o, torch.Tensor)]
