"""Trusted code run in the worker next to the student's phase-3 objects. Returns arrays only.

The optimisation problems (Rosenbrock, a small MLP) are defined once, here: the worker runs
the student's optimizer on them through `optimizer_trajectory`, and the judge imports this
module to run torch.optim on exactly the same problems (`run_problem`) and compares.
Nothing here uses the APIs phase 3 forbids (they are stubbed out in the worker).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

# name → (parameter names, how they split into two param groups)
PROBLEMS = {
    "rosenbrock": (("x", "y"), (("x",), ("y",))),
    "mlp": (("W1", "b1", "W2", "b2"), (("W1", "b1"), ("W2", "b2"))),
}


def _loss(problem: str, params: dict[str, torch.Tensor], data: dict[str, torch.Tensor]):
    if problem == "rosenbrock":  # K independent copies: Σ (1 − x)² + 100·(y − x²)²
        x, y = params["x"], params["y"]
        return ((1 - x) ** 2 + 100 * (y - x**2) ** 2).sum()
    hidden = torch.tanh(data["X"] @ params["W1"].T + params["b1"])  # (N, H)
    out = hidden @ params["W2"].T + params["b2"]  # (N, O)
    return ((out - data["Y"]) ** 2).mean()


def run_problem(make_optimizer: Callable, problem: str, arrays: dict, groups: list[dict] | None,
                steps: int, closure: bool) -> dict[str, np.ndarray]:
    """Run `steps` optimizer steps on `problem` from the float64 `arrays` (parameters and data).

    groups None: the optimizer gets a plain list of parameters; else one dict per group of
    PROBLEMS[problem] with that group's hyperparameter overrides. closure=True calls
    step(closure) (the closure zeroes the gradients with zero_grad()); closure=False does
    zero_grad(set_to_none=False), backward, step(). Returns the parameters after every step
    (steps + 1, P), the losses, what step returned, and the largest change a step made to a
    gradient (it must be 0: an optimizer never writes into p.grad).
    """
    names, split = PROBLEMS[problem]
    params = {n: torch.tensor(np.asarray(arrays[n], dtype=np.float64), requires_grad=True)
              for n in names}
    data = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in arrays.items()
            if k not in names}
    if groups is None:
        spec = [params[n] for n in names]
    else:
        spec = [{"params": [params[n] for n in part], **overrides}
                for part, overrides in zip(split, groups, strict=True)]
    optimizer = make_optimizer(spec)
    ordered = [params[n] for n in names]

    def flat() -> np.ndarray:
        return np.concatenate([p.detach().numpy().ravel().copy() for p in ordered])

    trajectory, losses, returned, change = [flat()], [], [], 0.0
    seen: list[list[torch.Tensor]] = []  # the gradients backward produced, before step()
    for _ in range(steps):
        seen.clear()
        if closure:
            def evaluate():
                optimizer.zero_grad()
                loss = _loss(problem, params, data)
                loss.backward()
                seen.append([p.grad.clone() for p in ordered])
                losses.append(float(loss.detach()))
                return loss

            out = optimizer.step(evaluate)
            returned.append(float(out.detach()) if isinstance(out, torch.Tensor) else np.nan)
        else:
            optimizer.zero_grad(set_to_none=False)
            loss = _loss(problem, params, data)
            loss.backward()
            seen.append([p.grad.clone() for p in ordered])
            losses.append(float(loss.detach()))
            optimizer.step()
        if seen:
            change = max(change, *(float((p.grad - g).abs().max()) if p.grad is not None
                                   else np.inf for p, g in zip(ordered, seen[-1], strict=True)))
        trajectory.append(flat())
    return {"params": np.array(trajectory), "losses": np.array(losses),
            "returned": np.array(returned), "grad_change": np.array(change)}


def optimizer_trajectory(module, name: str, kwargs: dict, problem: str, arrays: dict,
                         groups: list[dict] | None, steps: int, closure: bool):
    """run_problem with the student's optimizer class `name`."""
    cls = getattr(module, name)
    return run_problem(lambda spec: cls(spec, **kwargs), problem, arrays, groups, steps, closure)


def single_step(module, name: str, kwargs: dict, param, grad, steps: int = 1):
    """Set p.grad = grad (fixed), call step() `steps` times, return p after each step."""
    p = torch.tensor(np.asarray(param, dtype=np.float64), requires_grad=True)
    optimizer = getattr(module, name)([p], **kwargs)
    out = []
    for _ in range(steps):
        p.grad = torch.tensor(np.asarray(grad, dtype=np.float64))
        optimizer.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


# ---------------------------------------------------------------- the Optimizer base


def _probe_optimizer(module):
    """A minimal optimizer built on the student's base: p ← p − lr·scale·k·g at its k-th update."""

    class Probe(module.Optimizer):
        def __init__(self, params, lr=0.1, scale=1.0):
            super().__init__(params, {"lr": lr, "scale": scale})

        def update(self, param, grad, state, group):
            state["count"] = state.get("count", 0) + 1
            param.add_(grad, alpha=-group["lr"] * group["scale"] * state["count"])

    return Probe


def _leaves(*values):
    return [torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for v in values]


def base_groups(module, how: str):
    """Build the probe optimizer from a list, a generator or dict groups; describe its groups.

    Returns (per group: [lr, scale, number of params]), and whether every group's "params"
    is a list holding the very tensors given, in order.
    """
    a, b, c = _leaves([1.0, 2.0], [3.0], [[4.0, 5.0]])
    Probe = _probe_optimizer(module)
    if how == "list":
        optimizer, expected = Probe([a, b, c], lr=0.5), [[a, b, c]]
    elif how == "generator":
        optimizer, expected = Probe((p for p in (a, b, c)), lr=0.5), [[a, b, c]]
    else:
        optimizer = Probe([{"params": [a, b], "lr": 0.25}, {"params": c, "scale": 3.0}], lr=0.5)
        expected = [[a, b], [c]]
    groups = optimizer.param_groups
    table = np.array([[float(g["lr"]), float(g["scale"]), len(g["params"])] for g in groups])
    same = len(groups) == len(expected) and all(
        isinstance(g["params"], list) and len(g["params"]) == len(e)
        and all(x is y for x, y in zip(g["params"], e, strict=True))
        for g, e in zip(groups, expected, strict=True))
    return table, same


def base_rejects_duplicates(module) -> bool:
    """Whether a parameter given to two groups raises ValueError."""
    (a,) = _leaves([1.0])
    try:
        _probe_optimizer(module)([{"params": [a]}, {"params": [a], "lr": 0.2}])
    except ValueError:
        return True
    return False


def base_zero_grad_without_grads(module) -> bool:
    """zero_grad(set_to_none=False) on parameters that never had a gradient: they keep None."""
    a, b = _leaves([1.0], [2.0])
    optimizer = _probe_optimizer(module)([a, b])
    (a * 2).sum().backward()
    optimizer.zero_grad(set_to_none=False)
    return b.grad is None and a.grad is not None


def base_zero_grad(module):
    """(zero_grad() leaves None, zero_grad(False) keeps the same tensor, that tensor is 0)."""
    (a,) = _leaves([1.0, -2.0, 3.0])
    optimizer = _probe_optimizer(module)([a])
    (a**2).sum().backward()
    optimizer.zero_grad()
    set_to_none = a.grad is None
    (a**2).sum().backward()
    grad = a.grad
    optimizer.zero_grad(set_to_none=False)
    kept = a.grad is grad
    zeros = bool(a.grad is not None and torch.all(a.grad == 0))
    return set_to_none, kept, zeros


def base_step(module, steps: int):
    """Run `steps` step(closure) calls *inside torch.no_grad()* on loss = Σ w·a + Σ w·b,
    where c takes no part (its grad stays None).

    Returns a, b, c after the steps, the losses step returned, how many times the closure
    ran, and the per-parameter update counts kept in optimizer.state (−1: no entry).
    """
    a, b, c = _leaves([1.0, -1.0], [0.5], [2.0])
    w_a = torch.tensor([2.0, -3.0], dtype=torch.float64)
    w_b = torch.tensor([4.0], dtype=torch.float64)
    Probe = _probe_optimizer(module)
    optimizer = Probe([{"params": [a, c]}, {"params": [b], "lr": 0.01}], lr=0.1, scale=2.0)
    calls = []

    def closure():
        optimizer.zero_grad()
        loss = (w_a * a).sum() + (w_b * b).sum() + (a**2).sum()
        loss.backward()
        calls.append(float(loss.detach()))
        return loss

    returned = []
    with torch.no_grad():  # the closure must still be able to backpropagate
        for _ in range(steps):
            out = optimizer.step(closure)
            returned.append(float(out.detach()) if isinstance(out, torch.Tensor) else np.nan)
    counts = [float(optimizer.state[p].get("count", -1)) if p in optimizer.state else -1.0
              for p in (a, b, c)]
    values = [p.detach().numpy().copy() for p in (a, b, c)]
    plain_step = optimizer.step()  # no closure: returns None
    return (*values, np.array(returned), np.array(calls), np.array(counts), plain_step is None)


# ---------------------------------------------------------------- schedules


class StandInOptimizer:
    """What a scheduler needs from an optimizer: param_groups, each with an "lr"."""

    def __init__(self, lrs):
        self.param_groups = [{"lr": float(lr), "params": []} for lr in lrs]


def schedule_trajectory(module, name: str, kwargs: dict, base_lrs: list[float], steps: int):
    """The groups' lrs after construction and after each of `steps` step() calls
    (steps + 1, groups), and what get_last_lr() said at the same moments."""
    optimizer = StandInOptimizer(base_lrs)
    scheduler = getattr(module, name)(optimizer, **kwargs)
    lrs = [[g["lr"] for g in optimizer.param_groups]]
    last = [list(scheduler.get_last_lr())]
    for _ in range(steps):
        scheduler.step()
        lrs.append([g["lr"] for g in optimizer.param_groups])
        last.append(list(scheduler.get_last_lr()))
    return np.array(lrs, dtype=np.float64), np.array(last, dtype=np.float64)


def plateau_trajectory(module, kwargs: dict, base_lrs: list[float], metrics):
    """The groups' lrs after each ReduceLROnPlateau.step(metric) (len(metrics), groups)."""
    optimizer = StandInOptimizer(base_lrs)
    scheduler = module.ReduceLROnPlateau(optimizer, **kwargs)
    lrs = []
    for metric in np.asarray(metrics, dtype=np.float64):
        scheduler.step(float(metric))
        lrs.append([g["lr"] for g in optimizer.param_groups])
    return np.array(lrs, dtype=np.float64)


# ---------------------------------------------------------------- clipping


def clip(module, name: str, grads: list, args: tuple, kwargs: dict, form: str = "list"):
    """Parameters whose .grad are `grads` (None: no gradient), passed as a list, a generator or
    (form "tensor") the single first parameter; returns (what `name` returned, the gradients
    afterwards, NaN where None)."""
    params = []
    for g in grads:
        p = torch.zeros(np.shape(g) if g is not None else (1,), dtype=torch.float64,
                        requires_grad=True)
        if g is not None:
            p.grad = torch.tensor(np.asarray(g, dtype=np.float64))
        params.append(p)
    target = {"list": params, "generator": (p for p in params), "tensor": params[0]}[form]
    out = getattr(module, name)(target, *args, **kwargs)
    after = [p.grad.numpy().copy() if p.grad is not None else np.full(p.shape, np.nan)
             for p in params]
    if isinstance(out, torch.Tensor):
        out = out.detach()
    return out, after


def clip_float32(module, grad: list):
    """clip_grad_norm_ of one float32 parameter whose gradient is `grad`; returns the norm."""
    p = torch.zeros(len(grad), dtype=torch.float32, requires_grad=True)
    p.grad = torch.tensor(grad, dtype=torch.float32)
    out = module.clip_grad_norm_([p], 1.0)
    return out.detach() if isinstance(out, torch.Tensor) else out


# ---------------------------------------------------------------- losses


def loss_and_grads(module, name: str, arrays: list, kwargs: dict, wrt: list[int], upstream):
    """The student's loss on tensors built from `arrays` and its autograd VJP with `upstream`
    with respect to the inputs listed in `wrt`; returns (value, [gradients])."""
    tensors = [torch.tensor(np.asarray(a), requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = getattr(module, name)(*tensors, **kwargs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} should return a torch.Tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise RuntimeError(f"{name}'s result does not require grad: autograd cannot reach the "
                           f"inputs (a .detach(), .item(), .numpy() or torch.tensor(...) inside?)")
    inputs = [tensors[i] for i in wrt]
    v = torch.as_tensor(upstream, dtype=out.dtype)
    grads = torch.autograd.grad(out, inputs, grad_outputs=v, allow_unused=True)
    return out.detach(), [torch.zeros_like(t) if g is None else g for t, g in
                          zip(inputs, grads, strict=True)]
