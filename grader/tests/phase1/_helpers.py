"""What every phase-1 check needs: float64 tensors, torch reference modules with seeded weights,
copying those weights into the student's module, and gradients on both sides.

The references are torch's own modules and functions, run here in the judge; only their
weights and the inputs travel to the worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from grader.checks import CheckFailed
from grader.checks.oracle import as_array, assert_close
from grader.session import run_probe

DT = torch.float64
NAMES_HINT = ("Name and shape the parameters as PyTorch does (weight_ih, weight_hh, bias_ih, "
              "bias_hh; weight_ih_l0, …_reverse for stacked layers), registered as nn.Parameter.")


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: the references are tiny, and on a busy 2-core machine
    a second thread makes a 1000-step LSTM several times slower, not faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def randn(seed: int, *shape: int, scale: float = 1.0) -> torch.Tensor:
    """A float64 tensor of N(0, scale²) values, the same for a given seed on every machine."""
    return torch.from_numpy(np.random.default_rng(seed).normal(0.0, scale, shape))


def reference(cls, *args, seed: int, **kwargs) -> torch.nn.Module:
    """A torch module in float64 with weights drawn from torch's own initialiser under `seed`."""
    torch.manual_seed(seed)
    return cls(*args, **kwargs).double()


def state_of(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + name: p.detach().clone() for name, p in module.named_parameters()}


def load(m, student, state: dict[str, torch.Tensor], what: str) -> None:
    """Copy `state` into the student's module (cast to float64), or explain what did not fit."""
    problems = run_probe(m, "phase1.load_weights", student, state)
    if problems:
        shown = "; ".join(problems[:6]) + ("; …" if len(problems) > 6 else "")
        raise CheckFailed(f"the weights of torch's reference could not be copied into your {what}: "
                          f"{shown}.", NAMES_HINT)


def flatten(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in flatten(item)]
    return []


def with_grad(value):
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(True)
    return tuple(with_grad(item) for item in value)


def reference_vjp(module, inputs: list, cotangents: list) -> dict:
    """The same computation as the worker's phase1.vjp probe, on a torch reference module."""
    module.zero_grad(set_to_none=True)
    args = [with_grad(x) for x in inputs]
    with single_thread():
        outputs = flatten(module(*args))
        total = sum((o * v).sum() for o, v in zip(outputs, cotangents, strict=True))
        total.backward()
    leaves = [leaf for a in args if a is not None for leaf in flatten(a)]
    return {"outputs": [o.detach() for o in outputs], "inputs": [leaf.grad for leaf in leaves],
            "parameters": {name: p.grad for name, p in module.named_parameters()}}


def structure(value, what: str, count: int) -> list:
    """The student's outputs flattened, failing with a clear message on the wrong arity."""
    leaves = flatten(value)
    if len(leaves) != count:
        raise CheckFailed(f"{what} returned {len(leaves)} tensor(s), expected {count}.",
                          "An LSTM returns (h, c); a stacked LSTM returns (output, (h_n, c_n)).")
    return leaves


def compare(got: list, expected: list, names: list[str], what: str, hint: str | None = None,
            **tolerance) -> None:
    for value, want, name in zip(got, expected, names, strict=True):
        assert_close(value, want.detach().numpy(), f"{what}: {name}", hint=hint, **tolerance)


def compare_vjp(m, student, module, inputs: list, input_names: list[str], output_names: list[str],
                what: str, hint: str | None = None, seed: int = 99, train: bool = False,
                **tolerance) -> dict:
    """Outputs, input gradients and parameter gradients of the student's module equal torch's."""
    with torch.no_grad(), single_thread():
        shapes = [o.shape for o in flatten(module(*inputs))]
    cotangents = [randn(seed + i, *shape) for i, shape in enumerate(shapes)]
    expected = reference_vjp(module, inputs, cotangents)
    got = run_probe(m, "phase1.vjp", student, inputs, cotangents, train)
    if len(got["outputs"]) != len(expected["outputs"]):
        raise CheckFailed(f"{what} returned {len(got['outputs'])} tensor(s), expected "
                          f"{len(expected['outputs'])} ({', '.join(output_names)}).")
    compare(got["outputs"], expected["outputs"], output_names, what, hint, **tolerance)
    for grad, want, name in zip(got["inputs"], expected["inputs"], input_names, strict=True):
        if grad is None:
            raise CheckFailed(f"{what}: no gradient reached the input {name}.",
                              "Do not .detach() or rebuild tensors from .data / .numpy().")
        assert_close(grad, want.numpy(), f"{what}: gradient with respect to {name}", hint=hint,
                     **tolerance)
    for name, want in expected["parameters"].items():
        grad = got["parameters"].get(name)
        if grad is None:
            raise CheckFailed(f"{what}: no gradient reached the parameter {name}.",
                              "Use the parameter itself in forward (not a copy or .data).")
        assert_close(grad, want.numpy(), f"{what}: gradient with respect to {name}", hint=hint,
                     **tolerance)
    return got


def init_report(m, class_name: str, args: tuple, seed: int = 0) -> dict:
    """Build the student's module under a seed and summarise every parameter's values."""
    run_probe(m, "phase1.seed", seed)
    model = getattr(m, class_name)(*args)
    return {name: as_array(value, name) for name, value in
            run_probe(m, "phase1.parameters", model).items()}


def check_uniform_init(m, class_name: str, args: tuple, hidden_size: int,
                       expected: dict[str, tuple]) -> None:
    """Every parameter has the expected shape and looks like U(−1/√H, 1/√H)."""
    params = init_report(m, class_name, args)
    missing = [n for n in expected if n not in params]
    if missing:
        raise CheckFailed(f"{class_name}{args} has no parameter(s) {missing}; it registers "
                          f"{sorted(params)}.", NAMES_HINT)
    bound = 1 / np.sqrt(hidden_size)
    for name, shape in expected.items():
        value = params[name]
        if value.shape != shape:
            raise CheckFailed(f"{class_name}{args}: {name} has shape {value.shape}, expected "
                              f"{shape}.", NAMES_HINT)
        top = float(np.abs(value).max())
        if top > bound * (1 + 1e-6) or top < 0.8 * bound:
            raise CheckFailed(f"{class_name}{args}: |{name}| reaches {top:.4g}; PyTorch draws it "
                              f"from U(−1/√H, 1/√H) = U(−{bound:.4g}, {bound:.4g}) with H = "
                              f"{hidden_size}.",
                              "The bound is 1/√hidden_size for every weight and bias, "
                              "weight_ih included.")
        std = float(value.std())
        if value.size >= 200 and abs(std - bound / np.sqrt(3)) > 0.12 * bound / np.sqrt(3):
            raise CheckFailed(f"{class_name}{args}: {name} has standard deviation {std:.4g}, but "
                              f"U(−b, b) has b/√3 = {bound / np.sqrt(3):.4g}.",
                              "Use nn.init.uniform_(p, -b, b), not a normal distribution.")


def assert_dtype(value, dtype: torch.dtype, what: str) -> None:
    if not isinstance(value, torch.Tensor) or value.dtype != dtype:
        got = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
        raise CheckFailed(f"{what} is {got}, expected {dtype}: keep the input's precision.",
                          "Create new tensors with x.new_zeros(...) or dtype=x.dtype.")
