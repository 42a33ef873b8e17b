"""Phase 5, written independently of the reference from the stubs' docstrings alone.

It keeps every documented contract but takes other routes: unbroadcast by an explicit loop over
axes, softmax and log-softmax through np.logaddexp.reduce, the sigmoid from e^(−|x|), a Max that
splits ties by a mask count, and the topological order by Kahn's algorithm (counting each
tensor's uses) instead of a depth-first search.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np

_grad_enabled = True  # switched off inside `with no_grad():`


# 5.1 — Broadcasting, in reverse ------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`: over the added leading axes, then over stretched size-1 axes."""
    if grad.shape == tuple(shape):
        return grad
    out = grad
    while out.ndim > len(shape):
        out = out.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and out.shape[axis] != 1:
            out = out.sum(axis=axis, keepdims=True)
    return out


class Function:
    """One differentiable op: `forward` on raw arrays, `backward` = its VJP."""

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, ...]:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        op = cls(**params)
        out = Tensor(op.forward(*(t.data for t in inputs)))
        if _grad_enabled and any(t.requires_grad for t in inputs):
            out.requires_grad = True
            out._op, out._parents = op, inputs
        return out


class _Binary(Function):
    """Keeps both inputs' arrays, which every binary VJP below needs."""

    def _keep(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a, self.b = a, b

    def _down(self, ga: np.ndarray, gb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return unbroadcast(ga, self.a.shape), unbroadcast(gb, self.b.shape)


# 5.2 — Arithmetic ----------------------------------------------------------------------------


class Add(_Binary):
    """y = a + b."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self._keep(a, b)
        return a + b

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._down(g, g)


class Sub(_Binary):
    """y = a − b."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self._keep(a, b)
        return a - b

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._down(g, -g)


class Mul(_Binary):
    """y = a·b."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self._keep(a, b)
        return a * b

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._down(g * self.b, g * self.a)


class Div(_Binary):
    """y = a/b;  ∂a = g/b, ∂b = −(g/b)·y."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self._keep(a, b)
        self.y = a / b
        return self.y

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ga = g / self.b
        return self._down(ga, -ga * self.y)


class Neg(Function):
    """y = −x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.negative(x)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (np.negative(g),)


class Pow(Function):
    """y = x^p for a constant p;  ∂x = g·p·x^(p−1)."""

    def __init__(self, exponent: float):
        self.exponent = exponent

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x**self.exponent

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        p = self.exponent
        return (g * (p * self.x ** (p - 1)),)


class PowTensor(_Binary):
    """y = a^b;  ∂a = g·b·a^(b−1), ∂b = g·y·ln a (0 where a = 0 and b ≥ 0, as torch)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self._keep(a, b)
        self.y = a**b
        return self.y

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.a, self.b
        ga = g * b * a ** (b - 1)
        positive = a > 0
        log_a = np.log(np.where(positive, a, 1))
        gb = np.where(positive, g * self.y * log_a, 0).astype(self.y.dtype, copy=False)
        return self._down(ga, gb)


def _swap_last(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


class MatMul(_Binary):
    """y = a @ b, batched like np.matmul; 1-D operands become a row (a) or a column (b)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self._keep(a, b)
        self.a2 = a if a.ndim > 1 else a.reshape(1, -1)
        self.b2 = b if b.ndim > 1 else b.reshape(-1, 1)
        self.y2_shape = np.matmul(self.a2, self.b2).shape
        return np.matmul(a, b)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g2 = np.reshape(g, self.y2_shape)  # put back the axes a 1-D operand dropped
        ga = unbroadcast(np.matmul(g2, _swap_last(self.b2)), self.a2.shape)
        gb = unbroadcast(np.matmul(_swap_last(self.a2), g2), self.b2.shape)
        return ga.reshape(self.a.shape), gb.reshape(self.b.shape)


# 5.3 — Reductions ----------------------------------------------------------------------------


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return tuple(int(a) % ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    """y = x.sum(axis, keepdims);  ∂x = g spread back over the summed axes."""

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return np.asarray(x.sum(axis=self.axis, keepdims=self.keepdims))

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        kept = _kept_shape(self.x_shape, _axes(self.axis, len(self.x_shape)))
        spread = np.zeros(self.x_shape, dtype=np.result_type(g, self.x_dtype))
        spread += np.reshape(g, kept)
        return (spread,)


class Mean(Sum):
    """y = x.sum(axis)/n;  ∂x = Sum's VJP of g/n."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape, self.x_dtype = x.shape, x.dtype
        out = np.asarray(x.mean(axis=self.axis, keepdims=self.keepdims))
        self.count = x.size // out.size  # elements averaged into each output
        return out

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return super().backward(g / self.count)


class Max(Function):
    """y = x.max(axis, keepdims);  ∂x = g shared evenly among the tied maxima."""

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.axes = _axes(self.axis, x.ndim)
        top = x.max(axis=self.axes, keepdims=True)
        self.winners = x == top
        self.share = self.winners.sum(axis=self.axes, keepdims=True)
        self.x_dtype = x.dtype
        return (
            top
            if self.keepdims
            else np.asarray(
                top.reshape(tuple(s for i, s in enumerate(x.shape) if i not in self.axes))
            )
        )

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        g_kept = np.reshape(g, self.share.shape)
        gx = np.where(self.winners, g_kept / self.share, 0)
        return (gx.astype(np.result_type(g, self.x_dtype), copy=False),)


# 5.4 — Shapes and indexing -------------------------------------------------------------------


class Reshape(Function):
    """y = x.reshape(shape);  ∂x = g.reshape(x.shape)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (np.reshape(g, self.x_shape),)


class Transpose(Function):
    """y = np.transpose(x, axes);  ∂x = g permuted back by the inverse permutation."""

    def __init__(self, axes: tuple[int, ...] | None = None):
        self.axes = axes

    def forward(self, x: np.ndarray) -> np.ndarray:
        ndim = x.ndim
        self.perm = (
            tuple(range(ndim))[::-1]
            if self.axes is None
            else tuple(int(a) % ndim for a in self.axes)
        )
        return np.transpose(x, self.perm)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        inverse = [0] * len(self.perm)
        for out_axis, in_axis in enumerate(self.perm):
            inverse[in_axis] = out_axis
        return (np.transpose(g, inverse),)


class GetItem(Function):
    """y = x[index];  ∂x = g scatter-added back to the picked places (repeats accumulate)."""

    def __init__(self, index):
        self.index = index

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return np.asarray(x[self.index])

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        gx = np.zeros(self.x_shape, dtype=np.result_type(g, self.x_dtype))
        np.add.at(gx, self.index, g)
        return (gx,)


# 5.5 — Elementwise functions -----------------------------------------------------------------


class Exp(Function):
    """y = eˣ;  ∂x = g·y."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.exp(x)
        return self.y

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g * self.y,)


class Log(Function):
    """y = ln x;  ∂x = g/x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.log(x)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g / self.x,)


class Sin(Function):
    """y = sin x;  ∂x = g·cos x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.sin(x)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g * np.cos(self.x),)


class Cos(Function):
    """y = cos x;  ∂x = −g·sin x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.cos(x)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (-(g * np.sin(self.x)),)


class Tanh(Function):
    """y = tanh x;  ∂x = g·(1 − y²)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g * (1 - self.y * self.y),)


class Sigmoid(Function):
    """y = σ(x) from e = e^(−|x|), which never overflows: 1/(1 + e) for x ≥ 0, e/(1 + e) else."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(-np.abs(x))
        self.y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g * self.y * (1 - self.y),)


class ReLU(Function):
    """y = max(x, 0);  ∂x = g where x > 0 (0 at x = 0)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.on = x > 0
        return np.where(self.on, x, np.zeros((), dtype=x.dtype))

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g * self.on,)


# 5.6 — Softmax and log-softmax ---------------------------------------------------------------


def _log_normaliser(x: np.ndarray, axis: int) -> np.ndarray:
    """ln Σⱼ e^(xⱼ) along `axis` (kept), pairwise-stable through np.logaddexp."""
    return np.logaddexp.reduce(x, axis=axis, keepdims=True)


class Softmax(Function):
    """yᵢ = exp(xᵢ − ln Σⱼ e^(xⱼ));  ∂x = y ⊙ (g − Σⱼ gⱼ yⱼ)."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.exp(x - _log_normaliser(x, self.axis))
        return self.y

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        y = self.y
        return (y * (g - (g * y).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """y = x − ln Σⱼ e^(xⱼ);  ∂x = g − eʸ·Σⱼ gⱼ."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = x - _log_normaliser(x, self.axis)
        return self.y

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        return (g - np.exp(self.y) * g.sum(axis=self.axis, keepdims=True),)


# 5.7 — The engine ------------------------------------------------------------------------------


def is_grad_enabled() -> bool:
    """False inside `with no_grad():`, True otherwise."""
    return _grad_enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """`with no_grad():` — ops inside record no graph."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def _needs_grad_parents(t: Tensor) -> list[Tensor]:
    return [p for p in t._parents if p.requires_grad]


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that requires grad and `root` depends on (root included), parents first.

    Kahn's algorithm from the root down: a tensor is ready once every use of it (every edge
    from a tensor that consumes it) has been emitted; the emitted list, reversed, puts parents
    first. Iterative, so a chain of 10⁴ ops is fine.
    """
    if not root.requires_grad:
        return []
    uses: dict[int, int] = {id(root): 0}
    nodes: dict[int, Tensor] = {id(root): root}
    frontier = [root]
    while frontier:
        t = frontier.pop()
        for p in _needs_grad_parents(t):
            if id(p) not in uses:
                uses[id(p)] = 0
                nodes[id(p)] = p
                frontier.append(p)
            uses[id(p)] += 1
    ready = [root]
    consumers_first: list[Tensor] = []
    while ready:
        t = ready.pop()
        consumers_first.append(t)
        for p in _needs_grad_parents(t):
            uses[id(p)] -= 1
            if uses[id(p)] == 0:
                ready.append(p)
    return consumers_first[::-1]


class Tensor:
    """An n-dimensional array that remembers how it was computed."""

    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False):
        data = np.asarray(data.data if isinstance(data, Tensor) else data)
        self.data = data if data.dtype.kind == "f" else data.astype(np.float64)
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None
        self._op: Function | None = None
        self._parents: tuple[Tensor, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Tensor({self.data}, requires_grad={self.requires_grad})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> Tensor:
        return Tensor(self.data)

    def backward(self, grad=None) -> None:
        """Add ∂self/∂leaf (times `grad`) into `.grad` of every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError("backward() needs `grad` unless the tensor has one element")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"grad has shape {grad.shape}, the tensor has shape {self.shape}")
        pending: dict[int, np.ndarray] = {id(self): grad}
        for t in reversed(topological_order(self)):
            g = pending.pop(id(t), None)
            if g is None:
                continue
            if t._op is None:
                g = np.array(g, dtype=t.dtype)  # a fresh array: never alias a caller's
                t.grad = g if t.grad is None else t.grad + g
                continue
            for parent, g_parent in zip(t._parents, t._op.backward(g), strict=True):
                if not parent.requires_grad:
                    continue
                key = id(parent)
                pending[key] = g_parent if key not in pending else pending[key] + g_parent

    def _lift(self, other) -> Tensor:
        return other if isinstance(other, Tensor) else Tensor(np.asarray(other, dtype=self.dtype))

    def __add__(self, other) -> Tensor:
        return Add.apply(self, self._lift(other))

    def __sub__(self, other) -> Tensor:
        return Sub.apply(self, self._lift(other))

    def __rsub__(self, other) -> Tensor:
        return Sub.apply(self._lift(other), self)

    def __mul__(self, other) -> Tensor:
        return Mul.apply(self, self._lift(other))

    __radd__ = __add__
    __rmul__ = __mul__

    def __truediv__(self, other) -> Tensor:
        return Div.apply(self, self._lift(other))

    def __rtruediv__(self, other) -> Tensor:
        return Div.apply(self._lift(other), self)

    def __neg__(self) -> Tensor:
        return Neg.apply(self)

    def __pow__(self, exponent) -> Tensor:
        if np.isscalar(exponent):
            return Pow.apply(self, exponent=float(exponent))
        return PowTensor.apply(self, self._lift(exponent))

    def __rpow__(self, base) -> Tensor:
        return PowTensor.apply(self._lift(base), self)

    def __matmul__(self, other) -> Tensor:
        return MatMul.apply(self, self._lift(other))

    def __rmatmul__(self, other) -> Tensor:
        return MatMul.apply(self._lift(other), self)

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        return Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        return Max.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return Reshape.apply(self, shape=tuple(shape))

    def transpose(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = axes[0]
        return Transpose.apply(self, axes=tuple(axes) if axes else None)

    @property
    def T(self) -> Tensor:
        return Transpose.apply(self)

    def __getitem__(self, index) -> Tensor:
        return GetItem.apply(self, index=index)

    def exp(self) -> Tensor:
        return Exp.apply(self)

    def log(self) -> Tensor:
        return Log.apply(self)

    def sin(self) -> Tensor:
        return Sin.apply(self)

    def cos(self) -> Tensor:
        return Cos.apply(self)

    def tanh(self) -> Tensor:
        return Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ReLU.apply(self)

    def softmax(self, axis: int = -1) -> Tensor:
        return Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return LogSoftmax.apply(self, axis=axis)


# 5.8 — Losses, modules and SGD ---------------------------------------------------------------


def cross_entropy(logits: Tensor, targets) -> Tensor:
    """L = −(1/N) Σₙ log_softmax(zₙ)[tₙ]."""
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets).astype(np.int64)
    n = logits.shape[0]
    picked = logits.log_softmax(axis=1)[np.arange(n), t]  # (N,)
    return -(picked.sum() / n)


def mse(pred: Tensor, target) -> Tensor:
    """mean((pred − target)²)."""
    diff = pred - target
    return (diff * diff).mean()


class Parameter(Tensor):
    """A Tensor owned by a Module: always requires grad, holds its own copy of the data."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)
        self.data = self.data.copy()


class Module:
    """Base class of layers."""

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def __call__(self, *args):
        return self.forward(*args)

    def parameters(self) -> list[Parameter]:
        found = []
        for value in vars(self).values():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Parameter):
                    found.append(item)
                elif isinstance(item, Module):
                    found.extend(item.parameters())
        return list({id(p): p for p in found}.values())

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()


class Linear(Module):
    """y = x @ Wᵀ + b; weight (out, in), bias (out,), both U(−1/√in, 1/√in)."""

    def __init__(self, in_features: int, out_features: int, rng=None, dtype=np.float64):
        gen = np.random.default_rng(rng)
        bound = in_features**-0.5
        self.weight = Parameter(
            gen.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        )
        self.bias = Parameter(gen.uniform(-bound, bound, out_features).astype(dtype))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight.transpose(1, 0) + self.bias


class Sequential(Module):
    """Applies the modules in order."""

    def __init__(self, *modules: Module):
        self.modules = list(modules)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for module in self.modules:
            out = module(out)
        return out


class ReLULayer(Module):
    """The ReLU op as a layer."""

    def forward(self, x: Tensor) -> Tensor:
        return ReLU.apply(x)


class SigmoidLayer(Module):
    """The Sigmoid op as a layer."""

    def forward(self, x: Tensor) -> Tensor:
        return Sigmoid.apply(x)


class SGD:
    """v ← μ·v + g, p ← p − lr·v; parameters without a grad are skipped."""

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        for p, v in zip(self.params, self.velocity, strict=True):
            if p.grad is None:
                continue
            v *= self.momentum
            v += p.grad
            p.data -= self.lr * v

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()


# 5.9 — End to end ----------------------------------------------------------------------------


def fit_linear_regression(X, y, lr: float = 0.1, steps: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on the MSE of each output, from zeros; returns (w, b)."""
    inputs = Tensor(X)
    targets = Tensor(y)
    out_shape = targets.shape[1:]
    w = Parameter(np.zeros((inputs.shape[1], *out_shape), dtype=inputs.dtype))
    b = Parameter(np.zeros(out_shape, dtype=inputs.dtype))
    opt = SGD([w, b], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        residual = inputs @ w + b - targets
        # The mean over examples of each output's squared error: every column converges as
        # a single-output fit would.
        loss = (residual * residual).sum() / inputs.shape[0]
        loss.backward()
        opt.step()
    return w.data, b.data


def train_circle_mlp(X, y, steps: int = 1500, lr: float = 0.1, rng=0) -> Sequential:
    """A 2-4-4-2 ReLU MLP trained by full-batch SGD (momentum 0.9) on cross_entropy."""
    gen = np.random.default_rng(rng)
    model = Sequential(
        Linear(2, 4, gen), ReLULayer(), Linear(4, 4, gen), ReLULayer(), Linear(4, 2, gen)
    )
    inputs, labels = Tensor(X), np.asarray(y).astype(np.int64)
    opt = SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        cross_entropy(model(inputs), labels).backward()
        opt.step()
    return model
