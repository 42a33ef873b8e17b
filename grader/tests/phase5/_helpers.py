"""What the phase-5 checks share: grading one op alone, drawing its inputs, safe fingerprints.

An op is graded through its Function class, never through the engine:

    op = m.Sum(axis=1)              # a RemoteRef to the student's op object
    y = op.forward(x)               # runs in the worker, y comes back as an array
    gx, = op.backward(g)            # the VJP, one gradient per input

`OpSpec` declares one op (its inputs, the torch function that is the oracle, how to draw its
inputs) and `declare_op_checks` turns it into two graded checks: forward and VJP against torch
autograd in float64, and the VJP against finite differences of the student's own forward.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.checks import CheckFailed, check
from grader.checks.gradient import check_gradients
from grader.checks.oracle import assert_close, summarize, unpack
from grader.checks.properties import property_holds
from grader.checks.reference import value, vjp
from grader.session import StudentError

# ---------------------------------------------------------------- drawn inputs


class Case:
    """One drawn input of an op: its parameters and arrays, printed readably when it fails."""

    def __init__(self, op: str, params: dict, arrays: list[np.ndarray], names: tuple[str, ...]):
        self.op, self.params, self.arrays, self.names = op, params, arrays, names

    def __repr__(self) -> str:
        parts = [f"{n} of shape {np.shape(a)}: {summarize(a, 4)}"
                 for n, a in zip(self.names, self.arrays, strict=True)]
        return f"{call_text(self.op, self.params)} on " + "; ".join(parts)


def call_text(name: str, params: dict) -> str:
    """`Sum(axis=1, keepdims=True)` — how the student would write the op."""
    return f"{name}({', '.join(f'{k}={short(v)}' for k, v in params.items())})"


def short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"np.array({v.tolist()})"
    if isinstance(v, tuple):
        return "(" + ", ".join(short(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, slice):
        parts = ["" if p is None else str(p) for p in (v.start, v.stop, v.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if v.step is not None else "")
    if v is Ellipsis:
        return "..."
    return repr(v)


def seeds():
    return st.integers(0, 2**32 - 1)


def uniform(rng: np.random.Generator, shape, low: float, high: float,
            away_from_zero: float = 0.0) -> np.ndarray:
    """Uniform values in [low, high]; with away_from_zero, magnitudes in [away, high], any sign."""
    if away_from_zero:
        return rng.uniform(away_from_zero, high, shape) * rng.choice([-1.0, 1.0], shape)
    return rng.uniform(low, high, shape)


def broadcast_arrays(count: int, low: float = -3.0, high: float = 3.0, *,
                     away_from_zero: tuple[float, ...] = (), min_dims: int = 0,
                     max_dims: int = 3, max_side: int = 4):
    """`count` arrays whose shapes broadcast together (hypothesis's mutually_broadcastable_shapes).

    away_from_zero[i], when given and non-zero, keeps |array i| ≥ that value (divisors).
    """
    away = tuple(away_from_zero) + (0.0,) * (count - len(away_from_zero))

    def build(drawn):
        shapes, seed = drawn
        rng = np.random.default_rng(seed)
        return [uniform(rng, s, low, high, a) for s, a in zip(shapes.input_shapes, away,
                                                                strict=True)]

    shapes = hnp.mutually_broadcastable_shapes(num_shapes=count, min_dims=min_dims,
                                               max_dims=max_dims, max_side=max_side)
    return st.tuples(shapes, seeds()).map(build)


def one_array(low: float = -3.0, high: float = 3.0, *, min_dims: int = 1, max_dims: int = 3,
              max_side: int = 4):
    def build(drawn):
        shape, seed = drawn
        return uniform(np.random.default_rng(seed), shape, low, high)

    return st.tuples(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1,
                                      max_side=max_side), seeds()).map(build)


def axis_choices(ndim: int):
    """None, one axis (either sign) or a tuple of distinct axes of an ndim-array."""
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
        lambda axes: tuple(a - ndim if i % 2 else a for i, a in enumerate(axes)))
    return st.one_of(st.none(), single, several)


def torch_axis(axis, ndim: int):
    """numpy's `axis` as torch's `dim` (None: every axis)."""
    return tuple(range(ndim)) if axis is None else axis


def torch_index(index):
    """A NumPy index as torch reads it: arrays become tensors, the rest is the same."""
    if isinstance(index, tuple):
        return tuple(torch_index(i) for i in index)
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


# ---------------------------------------------------------------- one op, graded alone


@dataclass(frozen=True)
class OpSpec:
    """An op of the phase: the Function class `name`, its array inputs, and its oracle.

    torch(*tensors, **params) computes the same thing with torch (float64; autograd gives the
    VJP). `cases` draws (params, arrays) pairs; `fixed` lists (params, arrays) examples that
    always run: the first `smooth` of them also in the finite-difference check, all of them in
    the fingerprint.
    """

    name: str
    inputs: tuple[str, ...]
    torch: Callable[..., torch.Tensor]
    cases: Any  # a hypothesis strategy of (params, arrays)
    fixed: list[tuple[dict, list[np.ndarray]]]
    hint: str
    examples: int = 10
    forward_hint: str | None = None
    smooth: int = 2  # how many fixed examples are smooth enough for finite differences

    def snake(self) -> str:
        """The name the op's checks carry: MatMul → matmul, PowTensor → pow_tensor."""
        special = {"MatMul": "matmul", "GetItem": "getitem", "ReLU": "relu"}
        return special.get(self.name) or re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


def run_op(m, name: str, params: dict, arrays: list, g=None, count: int = 1,
           warnings: list | None = None):
    """(output, gradients) of a fresh `name(**params)` op; gradients None when g is None.

    `warnings`, if given, collects the NumPy warnings raised by forward and backward.
    """
    op = getattr(m, name)(**params)
    y = op.forward(*(np.asarray(a) for a in arrays))  # 0-d arrays, not floats, cross
    if warnings is not None:
        warnings += m._session.warnings
    if g is None:
        return y, None
    label = f"{call_text(name, params)}.backward(g)"
    grads = unpack(op.backward(np.asarray(g)), count, label)
    if warnings is not None:
        warnings += m._session.warnings
    return y, grads


def upstream(shape, seed: int = 0) -> np.ndarray:
    """A random upstream gradient g = ∂L/∂y of y's shape (never all ones)."""
    return np.random.default_rng(seed).standard_normal(shape) + 0.5


def assert_op_matches_torch(m, spec: OpSpec, params: dict, arrays: list, seed: int = 0) -> None:
    label = call_text(spec.name, params)
    reference = lambda *tensors: spec.torch(*tensors, **params)  # noqa: E731
    expected = value(reference, *arrays)
    g = upstream(expected.shape, seed)
    expected_grads = vjp(reference, list(arrays), g)
    y, grads = run_op(m, spec.name, params, list(arrays), g, len(arrays))
    shown = dict(zip(spec.inputs, arrays, strict=True))  # the input behind the worst element
    assert_close(y, expected, f"{label}.forward(...)", hint=spec.forward_hint, inputs=shown)
    for name, got, want in zip(spec.inputs, grads, expected_grads, strict=True):
        where = f"{label}.backward(g): the gradient for {name}"
        assert_close(got, want, where, hint=spec.hint, inputs={**shown, "g": g})


def assert_op_gradients(m, spec: OpSpec, params: dict, arrays: list) -> None:
    names = spec.inputs

    def forward(inputs):
        return run_op(m, spec.name, params, [inputs[n] for n in names])[0]

    def vjp_(inputs, v):
        _, grads = run_op(m, spec.name, params, [inputs[n] for n in names], v, len(names))
        return dict(zip(names, grads, strict=True))

    check_gradients(forward, vjp_, dict(zip(names, arrays, strict=True)),
                    what=f"{call_text(spec.name, params)}.backward", hint=spec.hint)


def declare_op_checks(namespace: dict, exercise: str, spec: OpSpec) -> None:
    """Add `<op>_matches_torch` (oracle) and `<op>_backward_agrees_with_finite_differences`
    (gradient) to the calling check module's namespace."""

    def matches_torch(m):
        for params, arrays in spec.fixed:
            assert_op_matches_torch(m, spec, params, arrays)
        property_holds(lambda case: assert_op_matches_torch(m, spec, case.params, case.arrays),
                       spec.cases.map(lambda drawn: Case(spec.name, *drawn, spec.inputs)),
                       examples=spec.examples)

    def agrees_with_finite_differences(m):
        for params, arrays in spec.fixed[:spec.smooth]:
            assert_op_gradients(m, spec, params, arrays)

    snake = spec.snake()
    tests = {
        f"{snake}_matches_torch": (
            matches_torch, "oracle",
            f"{spec.name}.forward and {spec.name}.backward equal torch's value and autograd VJP."),
        f"{snake}_backward_agrees_with_finite_differences": (
            agrees_with_finite_differences, "gradient",
            f"{spec.name}.backward agrees with central differences of your {spec.name}.forward."),
    }
    for test_name, (function, category, doc) in tests.items():
        function.__name__, function.__doc__ = test_name, doc
        function.__module__ = namespace["__name__"]
        namespace[test_name] = check(exercise, category)(function)


# ---------------------------------------------------------------- fingerprints

FAILED = np.array([np.nan, -np.inf, np.inf])  # recorded where the student's code raised


def attempt(compute: Callable[[], Any]) -> Any:
    """compute() or, if the student's code raised, FAILED: one broken op must not hide the
    outputs of the others from mistake recognition."""
    try:
        return compute()
    except (StudentError, CheckFailed):
        return FAILED


def op_outputs(m, spec: OpSpec, examples: list[tuple[dict, list]] | None = None) -> dict:
    """Forward outputs and gradients of an op on its fixed examples, for a fingerprint."""
    outputs = {}
    for i, (params, arrays) in enumerate(examples or spec.fixed):
        reference = functools.partial(spec.torch, **params)
        g = upstream(np.shape(value(reference, *arrays)), 1)
        result = attempt(functools.partial(run_op, m, spec.name, params, list(arrays), g,
                                           len(arrays)))
        y, grads = (FAILED, [FAILED] * len(arrays)) if result is FAILED else result
        outputs[f"{spec.name}_{i}_y"] = np.asarray(y, dtype=np.float64) \
            if _numeric(y) else FAILED
        for name, grad in zip(spec.inputs, grads, strict=True):
            outputs[f"{spec.name}_{i}_d{name}"] = np.asarray(grad, dtype=np.float64) \
                if _numeric(grad) else FAILED
    return outputs


def _numeric(v: Any) -> bool:
    numeric = isinstance(v, (int, float, np.ndarray, np.generic))
    return numeric and np.asarray(v).dtype.kind in "biuf"


def fail(message: str, hint: str | None = None) -> None:
    raise CheckFailed(message, hint)
