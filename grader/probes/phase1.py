"""Trusted code run in the worker next to the student's phase-1 modules. Returns tensors,
numbers, strings and lists of them only; every verdict is reached in the judge."""

from __future__ import annotations

import torch


def seed(value: int) -> None:
    """Seed torch's generator in the worker (initialisation and dropout become repeatable)."""
    torch.manual_seed(value)


def parameters(model) -> dict:
    """{name: detached copy} of model.named_parameters(), in registration order."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def load_weights(model, state: dict, strict: bool = True) -> list[str]:
    """Cast `model` to the dtype of `state` and load it. Returns what did not fit (missing or
    unexpected names, wrong shapes) instead of raising, so the judge can explain. With
    strict=False (fingerprints) a name that is a plain tensor attribute is set too, and
    whatever fits is loaded."""
    dtype = next(iter(state.values())).dtype
    model.to(dtype=dtype)
    own = dict(model.named_parameters())
    if not strict:
        with torch.no_grad():
            for name, value in state.items():
                if name in own and own[name].shape == value.shape:
                    own[name].copy_(value)
                elif isinstance(getattr(model, name, None), torch.Tensor):
                    setattr(model, name, value.clone())
        return []
    problems = [f"missing parameter {name} {tuple(value.shape)}" for name, value in state.items()
                if name not in own]
    problems += [f"unexpected parameter {name} {tuple(p.shape)}" for name, p in own.items()
                 if name not in state]
    problems += [f"{name} has shape {tuple(own[name].shape)}, expected {tuple(value.shape)}"
                 for name, value in state.items()
                 if name in own and own[name].shape != value.shape]
    if problems:
        return problems
    with torch.no_grad():
        for name, value in state.items():
            own[name].copy_(value)
    return []


def _leaves(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    raise TypeError(f"expected tensors or tuples of tensors, got {type(value).__name__}")


def _with_grad(value):
    """A copy of a (nested tuple of) tensor(s) that requires grad; None stays None."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(True)
    return tuple(_with_grad(item) for item in value)


def vjp(model, inputs: list, cotangents: list, train: bool = False) -> dict:
    """Run model(*inputs) and backpropagate Σ ⟨cotangent, output⟩ over the flattened outputs.

    Returns {"outputs": [...], "inputs": [∂/∂ each flattened input tensor or None],
    "parameters": {name: grad or None}}."""
    model.train(train)
    model.zero_grad(set_to_none=True)
    args = [_with_grad(x) for x in inputs]
    outputs = _leaves(model(*args))
    if len(outputs) != len(cotangents):
        raise ValueError(f"the model returned {len(outputs)} tensors, expected {len(cotangents)}")
    total = sum((o * v).sum() for o, v in zip(outputs, cotangents, strict=True))
    total.backward()
    leaves = [leaf for a in args if a is not None for leaf in _leaves(a)]
    return {"outputs": [o.detach() for o in outputs],
            "inputs": [None if leaf.grad is None else leaf.grad for leaf in leaves],
            "parameters": {name: None if p.grad is None else p.grad.detach().clone()
                           for name, p in model.named_parameters()}}


def forward(model, inputs: list, train: bool = False):
    """model(*inputs) without gradients, in training or eval mode."""
    model.train(train)
    with torch.no_grad():
        return model(*inputs)


def bptt(function, inputs: list, cotangent) -> dict:
    """Apply the student's autograd Function and backpropagate `cotangent` through it.

    Counts the calls to torch.autograd.backward made while it runs: 1 is ours; more mean the
    student's backward ran autograd itself. Returns the output, the gradients (None where
    backward returned None), the grad_fn's class name and that count."""
    args = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = function.apply(*args)
    node = type(out.grad_fn).__name__ if out.grad_fn is not None else "None"
    calls = [0]
    original = torch.autograd.backward

    def counting(*a, **k):
        calls[0] += 1
        return original(*a, **k)

    torch.autograd.backward = counting
    try:
        (out * cotangent).sum().backward()
    finally:
        torch.autograd.backward = original
    return {"output": out.detach(), "grads": [a.grad for a in args], "grad_fn": node,
            "backward_calls": calls[0]}


def bptt_forward(function, inputs: list):
    """The Function's output alone (no graph), for finite differences."""
    with torch.no_grad():
        return function.apply(*inputs)


def _adam(parameters: list, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """A plain Adam step function (torch.optim's constructor alone costs seconds of imports)."""
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in parameters]
    beta1, beta2 = betas

    def step(t: int) -> None:
        with torch.no_grad():
            for p, (m, v) in zip(parameters, moments, strict=True):
                if p.grad is None:
                    continue
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denominator = (v / (1 - beta2**t)).sqrt_().add_(eps)
                p.addcdiv_(m, denominator, value=-lr / (1 - beta1**t))

    return step


def train_classifier(module, X, y, X_test, config: dict):
    """Train the student's SequenceClassifier with Adam and cross-entropy (the grader's loop);
    return the held-out logits (eval mode) and the loss of every step."""
    torch.manual_seed(config["seed"])
    model = module.SequenceClassifier(X.shape[2], config["hidden_size"], config["num_classes"],
                                      cell_type=config["cell_type"])
    parameters = list(model.parameters())
    step = _adam(parameters, config["lr"])
    generator = torch.Generator().manual_seed(config["seed"])
    losses = []
    model.train()
    for t in range(1, config["steps"] + 1):
        batch = torch.randint(0, X.shape[0], (config["batch_size"],), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(X[batch]), y[batch])
        for p in parameters:
            p.grad = None
        loss.backward()
        step(t)
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits = model(X_test)
    return logits.detach().double(), torch.tensor(losses, dtype=torch.float64)
