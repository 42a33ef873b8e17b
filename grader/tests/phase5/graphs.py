"""Random expression graphs, built twice from one drawn program: in torch in the judge (the
oracle) and on the student's Tensors in the worker (operators and methods on RemoteRefs).

A program is a few leaves whose shapes broadcast together (hypothesis's
mutually_broadcastable_shapes) and a list of steps; each step applies one op to earlier nodes,
so nodes are shared freely (x + x, a diamond, a leaf used by several steps). Domains are kept
safe by construction: a divisor is b² + 0.5, a log or a fractional power takes a² + 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.tests.phase5._helpers import axis_choices, seeds, short, torch_axis, torch_index

LIMIT = 1e4  # steps whose values grow past this are not drawn (exp of exp …)


@dataclass(frozen=True)
class GraphOp:
    """One kind of step. `text` shows it the way the student would write it."""

    arity: int
    torch: Callable[..., Any]  # (operands, params) -> torch.Tensor
    student: Callable[..., Any]  # (operands, params) -> RemoteRef
    text: Callable[..., str]  # (operand names, params) -> str
    params: Callable[[tuple[int, ...]], Any] = lambda shape: st.just({})
    min_ndim: int = 0
    fits: Callable[[tuple[int, ...]], bool] = lambda shape: True


def _same(expression: Callable) -> tuple[Callable, Callable]:
    """The same Python expression serves torch and the student (operators, shared methods)."""
    return expression, expression


def _reduce(name: str) -> GraphOp:
    def on_torch(a, p):
        dim = torch_axis(p["axis"], a[0].ndim)
        reducer = torch.amax if name == "max" else getattr(torch, name)
        return reducer(a[0], dim=dim, keepdim=p["keepdims"])

    return GraphOp(
        1, on_torch, lambda a, p: getattr(a[0], name)(axis=p["axis"], keepdims=p["keepdims"]),
        lambda n, p: f"{n[0]}.{name}(axis={short(p['axis'])}, keepdims={p['keepdims']})",
        lambda shape: st.fixed_dictionaries({"axis": axis_choices(len(shape)),
                                             "keepdims": st.booleans()}),
        min_ndim=1)


def _transpose_student(a, p):
    return a[0].transpose(*p["axes"]) if p["axes"] is not None else a[0].transpose()


def _index_params(shape):
    n0 = shape[0]
    index = st.one_of(
        st.integers(-n0, n0 - 1),
        st.builds(slice, st.none() | st.integers(0, n0 - 1), st.none(), st.sampled_from([None, 2])),
        st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=4).map(np.array),
        st.lists(st.integers(0, n0 - 1), min_size=1, max_size=4),
        st.integers(-shape[-1], shape[-1] - 1).map(lambda i: (Ellipsis, i)),
    )
    return index.map(lambda i: {"index": i})


def _gram_torch(a, p):
    x = a[0]
    return x @ x if x.ndim == 1 else x @ x.transpose(-1, -2)


def _gram_student(a, p):
    x = a[0]
    if p["ndim"] == 1:
        return x @ x
    axes = list(range(p["ndim"]))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return x @ x.transpose(*axes)


CONSTANT = np.random.default_rng(11).normal(size=(64, 2))  # rows cut to fit the left operand

OPS: dict[str, GraphOp] = {
    "add": GraphOp(2, *_same(lambda a, p: a[0] + a[1]), lambda n, p: f"{n[0]} + {n[1]}"),
    "sub": GraphOp(2, *_same(lambda a, p: a[0] - a[1]), lambda n, p: f"{n[0]} - {n[1]}"),
    "mul": GraphOp(2, *_same(lambda a, p: a[0] * a[1]), lambda n, p: f"{n[0]} * {n[1]}"),
    "div": GraphOp(2, *_same(lambda a, p: a[0] / (a[1] * a[1] + 0.5)),
                   lambda n, p: f"{n[0]} / ({n[1]} * {n[1]} + 0.5)"),
    "pow_tensor": GraphOp(2, *_same(lambda a, p: (a[0] * a[0] + 0.5) ** a[1]),
                          lambda n, p: f"({n[0]} * {n[0]} + 0.5) ** {n[1]}"),
    "scale": GraphOp(1, *_same(lambda a, p: a[0] * p["c"]), lambda n, p: f"{n[0]} * {p['c']}",
                     lambda shape: st.sampled_from([-1.5, 0.5, 3.0]).map(lambda c: {"c": c})),
    "rsub": GraphOp(1, *_same(lambda a, p: 1.5 - a[0]), lambda n, p: f"1.5 - {n[0]}"),
    "rdiv": GraphOp(1, *_same(lambda a, p: 2.0 / (a[0] * a[0] + 1.0)),
                    lambda n, p: f"2.0 / ({n[0]} * {n[0]} + 1.0)"),
    "neg": GraphOp(1, *_same(lambda a, p: -a[0]), lambda n, p: f"-{n[0]}"),
    "pow": GraphOp(1, *_same(lambda a, p: (a[0] * a[0] + 0.5) ** p["p"]),
                   lambda n, p: f"({n[0]} * {n[0]} + 0.5) ** {p['p']}",
                   lambda shape: st.sampled_from([2.0, 3.0, 0.5, -1.0]).map(lambda e: {"p": e})),
    "exp": GraphOp(1, *_same(lambda a, p: a[0].exp()), lambda n, p: f"{n[0]}.exp()"),
    "log": GraphOp(1, *_same(lambda a, p: (a[0] * a[0] + 0.5).log()),
                   lambda n, p: f"({n[0]} * {n[0]} + 0.5).log()"),
    "sin": GraphOp(1, *_same(lambda a, p: a[0].sin()), lambda n, p: f"{n[0]}.sin()"),
    "cos": GraphOp(1, *_same(lambda a, p: a[0].cos()), lambda n, p: f"{n[0]}.cos()"),
    "tanh": GraphOp(1, *_same(lambda a, p: a[0].tanh()), lambda n, p: f"{n[0]}.tanh()"),
    "sigmoid": GraphOp(1, *_same(lambda a, p: a[0].sigmoid()), lambda n, p: f"{n[0]}.sigmoid()"),
    "relu": GraphOp(1, *_same(lambda a, p: a[0].relu()), lambda n, p: f"{n[0]}.relu()"),
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "max": _reduce("max"),
    "reshape": GraphOp(1, *_same(lambda a, p: a[0].reshape(p["shape"])),
                       lambda n, p: f"{n[0]}.reshape({p['shape']})",
                       lambda shape: st.sampled_from([(-1,), tuple(shape[::-1]), (1, *shape)]).map(
                           lambda s: {"shape": s})),
    "transpose": GraphOp(
        1, lambda a, p: a[0].permute(tuple(reversed(range(a[0].ndim))) if p["axes"] is None
                                     else p["axes"]),
        _transpose_student,
        lambda n, p: f"{n[0]}.transpose({', '.join(map(str, p['axes'] or ()))})",
        lambda shape: st.one_of(st.none(), st.permutations(list(range(len(shape)))).map(tuple))
        .map(lambda axes: {"axes": axes}), min_ndim=1),
    "getitem": GraphOp(1, lambda a, p: a[0][torch_index(p["index"])],
                       lambda a, p: a[0][p["index"]],
                       lambda n, p: f"{n[0]}[{short(p['index'])}]", _index_params, min_ndim=1),
    "softmax": GraphOp(1, lambda a, p: torch.softmax(a[0], dim=p["axis"]),
                       lambda a, p: a[0].softmax(axis=p["axis"]),
                       lambda n, p: f"{n[0]}.softmax(axis={p['axis']})",
                       lambda shape: st.integers(-len(shape), len(shape) - 1).map(
                           lambda a: {"axis": a}), min_ndim=1),
    "log_softmax": GraphOp(1, lambda a, p: torch.log_softmax(a[0], dim=p["axis"]),
                           lambda a, p: a[0].log_softmax(axis=p["axis"]),
                           lambda n, p: f"{n[0]}.log_softmax(axis={p['axis']})",
                           lambda shape: st.integers(-len(shape), len(shape) - 1).map(
                               lambda a: {"axis": a}), min_ndim=1),
    "matmul_gram": GraphOp(1, _gram_torch, _gram_student,
                           lambda n, p: f"{n[0]} @ {n[0]}ᵀ (last two axes swapped)",
                           lambda shape: st.just({"ndim": len(shape)}), min_ndim=1),
    "matmul_constant": GraphOp(
        1, lambda a, p: a[0] @ torch.from_numpy(CONSTANT[:p["k"]]),
        lambda a, p: a[0] @ CONSTANT[:p["k"]],
        lambda n, p: f"{n[0]} @ C (a constant array of shape ({p['k']}, 2))",
        lambda shape: st.just({"k": shape[-1]}), min_ndim=1,
        fits=lambda shape: shape[-1] <= len(CONSTANT)),
}


@dataclass
class Step:
    op: str
    args: tuple[int, ...]
    params: dict


@dataclass
class Program:
    leaves: list[np.ndarray]
    requires_grad: list[bool]
    steps: list[Step]
    upstream: np.ndarray  # the gradient passed to the last node's backward

    def names(self) -> list[str]:
        return [f"x{i}" for i in range(len(self.leaves))] + \
            [f"t{i}" for i in range(len(self.steps))]

    def listing(self) -> str:
        names = self.names()
        lines = [f"x{i} = Tensor(array of shape {x.shape}, requires_grad={rg})"
                 for i, (x, rg) in enumerate(zip(self.leaves, self.requires_grad, strict=True))]
        for j, step in enumerate(self.steps):
            operands = [names[i] for i in step.args]
            lines.append(f"t{j} = {OPS[step.op].text(operands, step.params)}")
        lines.append(f"t{len(self.steps) - 1}.backward(g of shape {self.upstream.shape})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.listing().replace("\n", "; ")

    def run_torch(self) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The oracle: the output value and each leaf's gradient (None: torch leaves it None)."""
        leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=rg)
                  for x, rg in zip(self.leaves, self.requires_grad, strict=True)]
        nodes = list(leaves)
        for step in self.steps:
            nodes.append(OPS[step.op].torch([nodes[i] for i in step.args], step.params))
        out = nodes[-1]
        out.backward(torch.from_numpy(self.upstream))
        return out.detach().numpy(), [None if t.grad is None else t.grad.numpy() for t in leaves]

    def run_student(self, m) -> tuple[Any, list]:
        """The same program on the student's Tensors; returns (output handle, leaf handles)."""
        leaves = [m.Tensor(x, requires_grad=rg)
                  for x, rg in zip(self.leaves, self.requires_grad, strict=True)]
        nodes = list(leaves)
        for step in self.steps:
            nodes.append(OPS[step.op].student([nodes[i] for i in step.args], step.params))
        nodes[-1].backward(self.upstream)
        return nodes[-1], leaves


def _usable(value: torch.Tensor) -> bool:
    return value.numel() > 0 and bool(torch.isfinite(value).all()) and \
        float(value.abs().max()) <= LIMIT


@st.composite
def programs(draw, min_steps: int = 4, max_steps: int = 10) -> Program:
    """A random program; steps whose result would be empty or too large are not kept."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                    max_side=3)).input_shapes
    rng = np.random.default_rng(draw(seeds()))
    leaves = [rng.uniform(-2.0, 2.0, s) for s in shapes]
    requires_grad = [True, True, draw(st.booleans())]
    values = [torch.tensor(x) for x in leaves]
    depends = list(requires_grad)  # does node i depend on a leaf that requires grad?
    steps: list[Step] = []
    names = sorted(OPS)
    for _ in range(draw(st.integers(min_steps, max_steps))):
        name = draw(st.sampled_from(names))
        op = OPS[name]
        # the first operand depends on a leaf that requires grad, so the output does too;
        # mostly the newest such node (a long chain), sometimes an older one (sharing)
        candidates = [i for i, d in enumerate(depends) if d]
        first = candidates[-1] if draw(st.integers(0, 2)) < 2 else \
            draw(st.sampled_from(candidates))
        if values[first].ndim < op.min_ndim or not op.fits(tuple(values[first].shape)):
            continue
        args = [first]
        if op.arity == 2:
            partners = [i for i, v in enumerate(values)
                        if _broadcasts(values[first].shape, v.shape)]
            args.append(draw(st.sampled_from(partners)))
        params = draw(op.params(tuple(values[first].shape)))
        with torch.no_grad():
            result = op.torch([values[i] for i in args], params)
        if _usable(result):
            steps.append(Step(name, tuple(args), params))
            values.append(result)
            depends.append(True)
    if not steps:  # nothing was usable: the simplest program
        steps.append(Step("mul", (0, 1), {}))
        values.append(values[0] * values[1])
    upstream = rng.standard_normal(tuple(values[-1].shape))
    return Program(leaves, requires_grad, steps, np.asarray(upstream))


def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(tuple(a), tuple(b))
        return True
    except ValueError:
        return False
