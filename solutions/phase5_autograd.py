"""Phase 5 — an autograd engine in NumPy.

A `Tensor` wraps a NumPy array. Every operation on tensors is a `Function` with two halves:
`forward` computes the output from raw arrays, and `backward` turns the gradient of the loss
with respect to the output, g = ∂L/∂y, into the gradients with respect to the inputs — a
vector–Jacobian product (VJP). `Tensor.backward` visits the recorded graph in reverse
topological order and applies the VJPs, summing gradients where a tensor is used twice.

The file reads like the chapter: unbroadcast (5.1), the ops (5.2–5.6), the engine (5.7),
losses and a small nn library (5.8), two trainings that use nothing else (5.9).

Conventions
- dtype: float64 stays float64 and float32 stays float32; integer data becomes float64; a
  constant (Python number or array) mixed with a tensor takes the tensor's dtype.
- Every op is constructed with its non-tensor parameters, then used on raw arrays:
  `op = Sum(axis=1); y = op.forward(x); gx, = op.backward(g)`. `backward` returns a tuple with
  one gradient per tensor input, already reduced to that input's shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np

_grad_enabled = True  # switched off inside `with no_grad():`


# 5.1 — Broadcasting, in reverse ------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing NumPy broadcasting.

    If an input of shape (3, 1) was broadcast to (2, 3, 4), each of its elements was used
    2·4 times, so its gradient is the sum over those copies: sum over the leading axis that
    broadcasting added, then over every axis where `shape` has size 1 (keeping it).
    (2, 3, 4) → (3, 1). Returns `grad` itself when the shapes already agree.
    """
    # BEGIN SOLUTION
    # HINT: first sum away the grad.ndim − len(shape) leading axes, then sum with keepdims=True
    # HINT: over the axes where shape[i] == 1 but grad.shape[i] != 1.
    extra = grad.ndim - len(shape)
    # KEEP guided
    if extra > 0:
    # END KEEP
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    # KEEP guided
    if axes:
    # END KEEP
        grad = grad.sum(axis=axes, keepdims=True)
    return grad
    # END SOLUTION


# The op interface. Its `apply`, which connects ops into a graph, is part of the engine (5.7).


class Function:
    """One differentiable op: `forward` on raw arrays, `backward` = its VJP.

    A subclass takes its non-tensor parameters in `__init__` (`Sum(axis=1)`), computes
    `forward(*arrays) -> array` with NumPy, saving on `self` what backward will need, and
    `backward(g) -> tuple of arrays`: one gradient per input, each of that input's shape.
    """

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        """The output, computed from the input arrays."""
        # BEGIN SOLUTION hard
        raise NotImplementedError(f"{type(self).__name__}.forward")
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, ...]:
        """The gradient with respect to each input, given g = ∂L/∂output."""
        # BEGIN SOLUTION hard
        raise NotImplementedError(f"{type(self).__name__}.backward")
        # END SOLUTION

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        """Run the op on tensors, e.g. `Sum.apply(x, axis=1)`, and record the graph edge.

        The output remembers the op and its inputs only when grad mode is on and some input
        requires grad: otherwise no graph is kept (and the op's saved arrays are freed).
        """
        # BEGIN SOLUTION hard
        op = cls(**params)
        out = Tensor(op.forward(*(t.data for t in inputs)))
        if _grad_enabled and any(t.requires_grad for t in inputs):
            out.requires_grad = True
            out._op, out._parents = op, inputs
        return out
        # END SOLUTION


# 5.2 — Arithmetic ----------------------------------------------------------------------------


class Add(Function):
    """y = a + b, broadcasting.   ∂a = unbroadcast(g, a.shape), ∂b = unbroadcast(g, b.shape)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.a_shape, self.b_shape = a.shape, b.shape
        # END KEEP
        return a + b
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # BEGIN SOLUTION
        # HINT: ∂y/∂a is the identity, but g has the broadcast shape: unbroadcast it for each input
        return unbroadcast(g, self.a_shape), unbroadcast(g, self.b_shape)
        # END SOLUTION


class Sub(Function):
    """y = a − b, broadcasting.   ∂a = unbroadcast(g), ∂b = unbroadcast(−g)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.a_shape, self.b_shape = a.shape, b.shape
        # END KEEP
        return a - b
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # BEGIN SOLUTION
        return unbroadcast(g, self.a_shape), unbroadcast(-g, self.b_shape)
        # END SOLUTION


class Mul(Function):
    """y = a · b elementwise, broadcasting.   ∂a = unbroadcast(g·b), ∂b = unbroadcast(g·a)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.a, self.b = a, b
        # END KEEP
        return a * b
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # BEGIN SOLUTION
        # HINT: each input's gradient is g times the *other* input
        return unbroadcast(g * self.b, self.a.shape), unbroadcast(g * self.a, self.b.shape)
        # END SOLUTION


class Div(Function):
    """y = a / b elementwise, broadcasting.   ∂a = unbroadcast(g / b), ∂b = unbroadcast(−g·a/b²)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.a, self.b = a, b
        # END KEEP
        return a / b
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # BEGIN SOLUTION
        # HINT: d(a/b)/db = −a / b²
        a, b = self.a, self.b
        return unbroadcast(g / b, a.shape), unbroadcast(-g * a / (b * b), b.shape)
        # END SOLUTION


class Neg(Function):
    """y = −x.   ∂x = −g."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        return -x
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (-g,)
        # END SOLUTION


class Pow(Function):
    """Pow(exponent): y = x^p for a constant scalar p.   ∂x = g · p · x^(p−1)."""

    def __init__(self, exponent: float):
        # BEGIN SOLUTION hard
        self.exponent = exponent
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.x = x
        # END KEEP
        return x**self.exponent
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        p = self.exponent
        return (g * p * self.x ** (p - 1),)
        # END SOLUTION


class PowTensor(Function):
    """PowTensor(): y = a^b where the exponent b is a tensor too, broadcasting.

    ∂a = unbroadcast(g · b · a^(b−1)),  ∂b = unbroadcast(g · y · ln a)   (defined for a > 0).
    """

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.a, self.b = a, b
        # END KEEP
        self.y = a**b
        return self.y
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # BEGIN SOLUTION
        # HINT: d(a^b)/db = a^b · ln a — the output you already computed, times ln a
        a, b = self.a, self.b
        ga = g * b * a ** (b - 1)
        gb = g * self.y * np.log(a)
        return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)
        # END SOLUTION


class MatMul(Function):
    """y = a @ b, batched and broadcast over leading dims like np.matmul.

    a (..., n, k), b (..., k, m) → y (..., n, m).   ∂a = g @ bᵀ, ∂b = aᵀ @ g (ᵀ swaps the last
    two axes), each unbroadcast over the batch dims. A 1-D operand is treated as np.matmul
    treats it: a vector a (k,) as a row (1, k), a vector b (k,) as a column (k, 1).
    """

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.a, self.b = a, b
        # END KEEP
        return a @ b
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # BEGIN SOLUTION
        # HINT: check the shapes: (n, k) = (n, m) @ (m, k) and (k, m) = (k, n) @ (n, m)
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a  # (..., n, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (..., k, m)
        # KEEP guided
        if b.ndim == 1:
        # END KEEP
            g = np.expand_dims(g, -1)  # restore the m = 1 axis that matmul dropped
        # KEEP guided
        if a.ndim == 1:
        # END KEEP
            g = np.expand_dims(g, -2)  # restore the n = 1 axis
        ga = g @ np.swapaxes(b2, -1, -2)  # (..., n, k)
        gb = np.swapaxes(a2, -1, -2) @ g  # (..., k, m)
        ga = unbroadcast(ga, a2.shape).reshape(a.shape)  # drop the axes added for 1-D operands
        gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb
        # END SOLUTION


# 5.3 — Reductions ----------------------------------------------------------------------------


class Sum(Function):
    """Sum(axis=None, keepdims=False): y = x.sum(axis, keepdims).

    x (...) → y without the summed axes (size 1 if keepdims). Each x element enters its sum
    with weight 1, so ∂x = g copied back over the summed axes (broadcast to x.shape).
    """

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        # BEGIN SOLUTION hard
        self.axis, self.keepdims = axis, keepdims
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.x_shape = x.shape
        # END KEEP
        return x.sum(axis=self.axis, keepdims=self.keepdims)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        # HINT: without keepdims the summed axes are missing from g: np.expand_dims puts them back
        # KEEP guided
        if self.axis is not None and not self.keepdims:
        # END KEEP
            g = np.expand_dims(g, self.axis)
        return (np.broadcast_to(g, self.x_shape),)
        # END SOLUTION


class Mean(Sum):
    """Mean(axis=None, keepdims=False): y = x.sum(axis) / n, n = number of elements averaged.

    ∂x = g / n copied back over the reduced axes: Sum's backward applied to g / n.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        y = super().forward(x)
        self.n = x.size // np.size(y)
        return y / self.n
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return super().backward(g / self.n)
        # END SOLUTION


class Max(Function):
    """Max(axis=None, keepdims=False): y = x.max(axis, keepdims).

    ∂x = g routed to the elements that attained the maximum. Ties share it evenly — torch.amax's
    rule: if k elements tie, each receives g / k (so the gradient still sums to g).
    """

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False):
        # BEGIN SOLUTION hard
        self.axis, self.keepdims = axis, keepdims
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # HINT: keep the dims while computing, so y broadcasts against x to find the maxima
        y = x.max(axis=self.axis, keepdims=True)
        is_max = (x == y).astype(x.dtype)
        self.share = is_max / is_max.sum(axis=self.axis, keepdims=True)  # 1/k at k ties, else 0
        return y if self.keepdims else np.squeeze(y, axis=self.axis)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        # KEEP guided
        if self.axis is not None and not self.keepdims:
        # END KEEP
            g = np.expand_dims(g, self.axis)
        return (g * self.share,)
        # END SOLUTION


# 5.4 — Shapes and indexing -------------------------------------------------------------------


class Reshape(Function):
    """Reshape(shape): y = x.reshape(shape), the same elements in the same order.

    ∂x = g.reshape(x.shape).
    """

    def __init__(self, shape: tuple[int, ...]):
        # BEGIN SOLUTION hard
        self.shape = shape
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.x_shape = x.shape
        # END KEEP
        return x.reshape(self.shape)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g.reshape(self.x_shape),)
        # END SOLUTION


class Transpose(Function):
    """Transpose(axes=None): y = np.transpose(x, axes), a permutation of the axes (None: reverse).

    ∂x = g transposed by the inverse permutation, np.argsort(axes) — output axis i came from
    input axis axes[i], so its gradient goes back there.
    """

    def __init__(self, axes: tuple[int, ...] | None = None):
        # BEGIN SOLUTION hard
        self.axes = axes
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        return np.transpose(x, self.axes)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        # HINT: reversing the axes is its own inverse; np.mod maps negative axes before argsort
        inverse = None if self.axes is None else np.argsort(np.mod(self.axes, g.ndim))
        return (np.transpose(g, inverse),)
        # END SOLUTION


class GetItem(Function):
    """GetItem(index): y = x[index] — ints, slices, integer arrays, boolean masks.

    ∂x = zeros of x's shape with g scattered back to the picked places. An integer array may
    pick one element several times (x[[0, 0]]): its gradient is the sum over its picks, so
    scatter with np.add.at, which accumulates; `gx[index] += g` would keep only one pick.
    """

    def __init__(self, index):
        # BEGIN SOLUTION hard
        self.index = index
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.x_shape = x.shape
        # END KEEP
        return x[self.index]
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        # HINT: repeated indices must add up: np.add.at(gx, index, g)
        # KEEP guided
        gx = np.zeros(self.x_shape, dtype=g.dtype)
        # END KEEP
        np.add.at(gx, self.index, g)
        return (gx,)
        # END SOLUTION


# 5.5 — Elementwise functions -----------------------------------------------------------------


class Exp(Function):
    """y = eˣ.   ∂x = g · y (reuse the output)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        self.y = np.exp(x)
        return self.y
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g * self.y,)
        # END SOLUTION


class Log(Function):
    """y = ln x (x > 0).   ∂x = g / x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.x = x
        # END KEEP
        return np.log(x)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g / self.x,)
        # END SOLUTION


class Sin(Function):
    """y = sin x.   ∂x = g · cos x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.x = x
        # END KEEP
        return np.sin(x)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g * np.cos(self.x),)
        # END SOLUTION


class Cos(Function):
    """y = cos x.   ∂x = −g · sin x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # KEEP guided
        self.x = x
        # END KEEP
        return np.cos(x)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (-g * np.sin(self.x),)
        # END SOLUTION


class Tanh(Function):
    """y = tanh x.   ∂x = g · (1 − y²)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        self.y = np.tanh(x)
        return self.y
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g * (1 - self.y * self.y),)
        # END SOLUTION


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ), computed without overflow.   ∂x = g · y · (1 − y).

    Stable form: σ(x) = exp(−ln(1 + e⁻ˣ)) and np.logaddexp(0, −x) = ln(e⁰ + e⁻ˣ) never overflows,
    whereas e⁻ˣ itself overflows for x < −710 in float64 (x < −88 in float32).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # HINT: 1 / (1 + np.exp(-x)) overflows for very negative x; np.logaddexp(0, -x) does not
        self.y = np.exp(-np.logaddexp(0, -x))
        return self.y
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g * self.y * (1 - self.y),)
        # END SOLUTION


class ReLU(Function):
    """y = max(x, 0).   ∂x = g where x > 0, else 0 (at x = 0 too, as torch does)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        self.positive = x > 0
        return np.maximum(x, 0)
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g * self.positive,)
        # END SOLUTION


# 5.6 — Softmax and log-softmax ---------------------------------------------------------------


class Softmax(Function):
    """Softmax(axis=-1): yᵢ = e^(xᵢ − m) / Σⱼ e^(xⱼ − m), m = max x along `axis` (for stability).

    The Jacobian is diag(y) − y yᵀ, so the VJP needs no matrix: ∂x = y ⊙ (g − Σⱼ gⱼ yⱼ).
    """

    def __init__(self, axis: int = -1):
        # BEGIN SOLUTION hard
        self.axis = axis
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # HINT: subtract the max along the axis first: softmax is unchanged and exp cannot overflow
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        y = self.y
        return (y * (g - (g * y).sum(axis=self.axis, keepdims=True)),)
        # END SOLUTION


class LogSoftmax(Function):
    """LogSoftmax(axis=-1): y = (x − m) − ln Σⱼ e^(xⱼ − m), m = max x along `axis`.

    ∂x = g − softmax(x) · Σⱼ gⱼ, with softmax(x) = eʸ.
    """

    def __init__(self, axis: int = -1):
        # BEGIN SOLUTION hard
        self.axis = axis
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        # BEGIN SOLUTION
        # HINT: never take the log of a softmax: it is 0 → −inf where exp underflowed
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y
        # END SOLUTION

    def backward(self, g: np.ndarray) -> tuple[np.ndarray]:
        # BEGIN SOLUTION
        return (g - np.exp(self.y) * g.sum(axis=self.axis, keepdims=True),)
        # END SOLUTION


# 5.7 — The engine: Tensor, topological order, backward, no_grad ------------------------------


def is_grad_enabled() -> bool:
    """False inside `with no_grad():`, True otherwise."""
    # BEGIN SOLUTION hard
    return _grad_enabled
    # END SOLUTION


@contextmanager
def no_grad() -> Iterator[None]:
    """`with no_grad():` — ops inside record no graph (evaluation, parameter updates)."""
    # BEGIN SOLUTION hard
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous
    # END SOLUTION


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that requires grad and `root` depends on (root included), parents first.

    Iterative depth-first search with an explicit stack — recursion would hit Python's
    recursion limit (~1000 frames) on a chain of 10⁴ ops. Each tensor is pushed twice: first to
    expand its parents, then, marked done, to be emitted after all of them. `visited` holds
    ids, so a tensor reached along several paths is emitted once.
    """
    # BEGIN SOLUTION guided-keep
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node._parents if parent.requires_grad)
    return order
    # END SOLUTION


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    `data` is the NumPy array and `grad` (same shape, or None) receives ∂L/∂self when
    `L.backward()` runs, if `requires_grad`. A tensor made by an op while grad mode is on and
    some input requires grad records the op and its inputs (`_op`, `_parents`): the graph.
    Tensors without `_op` are leaves; only leaves keep a `.grad`.
    """

    __array_ufunc__ = None  # `ndarray + Tensor` then calls Tensor.__radd__ instead of NumPy looping

    def __init__(self, data, requires_grad: bool = False):
        # BEGIN SOLUTION hard
        data = np.asarray(data.data if isinstance(data, Tensor) else data)
        self.data = data if data.dtype.kind == "f" else data.astype(np.float64)
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None
        self._op: Function | None = None  # the op that produced this tensor; None for a leaf
        self._parents: tuple[Tensor, ...] = ()  # that op's inputs
        # END SOLUTION

    @property
    def shape(self) -> tuple[int, ...]:
        # BEGIN SOLUTION hard
        return self.data.shape
        # END SOLUTION

    @property
    def ndim(self) -> int:
        # BEGIN SOLUTION hard
        return self.data.ndim
        # END SOLUTION

    @property
    def dtype(self) -> np.dtype:
        # BEGIN SOLUTION hard
        return self.data.dtype
        # END SOLUTION

    def __repr__(self) -> str:
        # BEGIN SOLUTION hard
        return f"Tensor({self.data}, requires_grad={self.requires_grad})"
        # END SOLUTION

    def numpy(self) -> np.ndarray:
        """The data array (not a copy)."""
        # BEGIN SOLUTION hard
        return self.data
        # END SOLUTION

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        # BEGIN SOLUTION hard
        return self.data.item()
        # END SOLUTION

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (`grad` becomes None)."""
        # BEGIN SOLUTION hard
        self.grad = None
        # END SOLUTION

    def detach(self) -> Tensor:
        """A leaf sharing this tensor's data, cut from the graph (requires_grad False)."""
        # BEGIN SOLUTION hard
        return Tensor(self.data)
        # END SOLUTION

    def backward(self, grad=None) -> None:
        """Add ∂self/∂leaf (times `grad`) into `.grad` of every leaf that requires grad.

        `grad` = ∂L/∂self, array-like of self's shape; it may be omitted only for a one-element
        tensor (a scalar loss), where it is 1. As torch, RuntimeError when self does not require
        grad or `grad` is omitted for several elements; ValueError when `grad` has another
        shape (even one that broadcasts). The graph is walked in reverse topological order, so a
        tensor's gradient is complete — summed over all its uses — before its op's VJP passes it
        on. Intermediate gradients are dropped once used. Gradients accumulate: calling backward
        twice without zero_grad adds twice.
        """
        # BEGIN SOLUTION hard
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError("backward() needs `grad` unless the tensor has one element")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"grad has shape {grad.shape}, the tensor has shape {self.shape}")
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: keep a dict id(tensor) → gradient so far; add, never overwrite, on a second use
        grads = {id(self): grad}
        # KEEP guided
        for node in reversed(topological_order(self)):
        # END KEEP
            g = grads.pop(id(node))  # complete: every tensor computed from node came before it
            # KEEP guided
            if node._op is None:  # a leaf: accumulate into .grad
                if node.grad is None:
                    node.grad = np.zeros_like(node.data)
            # END KEEP
                node.grad += g
                continue
            # KEEP guided
            for parent, g_parent in zip(node._parents, node._op.backward(g), strict=True):
                if parent.requires_grad:
            # END KEEP
                    key = id(parent)
                    grads[key] = grads[key] + g_parent if key in grads else g_parent
        # END SOLUTION

    def _lift(self, other) -> Tensor:
        """`other` as a Tensor; a constant takes this tensor's dtype (float32 stays float32)."""
        # BEGIN SOLUTION hard
        return other if isinstance(other, Tensor) else Tensor(np.asarray(other, dtype=self.dtype))
        # END SOLUTION

    def __add__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return Add.apply(self, self._lift(other))
        # END SOLUTION

    def __sub__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return Sub.apply(self, self._lift(other))
        # END SOLUTION

    def __rsub__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return Sub.apply(self._lift(other), self)
        # END SOLUTION

    def __mul__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return Mul.apply(self, self._lift(other))
        # END SOLUTION

    __radd__ = __add__  # a + b = b + a, for values and for gradients
    __rmul__ = __mul__

    def __truediv__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return Div.apply(self, self._lift(other))
        # END SOLUTION

    def __rtruediv__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return Div.apply(self._lift(other), self)
        # END SOLUTION

    def __neg__(self) -> Tensor:
        # BEGIN SOLUTION hard
        return Neg.apply(self)
        # END SOLUTION

    def __pow__(self, exponent) -> Tensor:
        """x ** 2 uses Pow(2); x ** tensor (or an array) uses PowTensor."""
        # BEGIN SOLUTION hard
        if np.isscalar(exponent):
            return Pow.apply(self, exponent=float(exponent))  # a Python float keeps float32 float32
        return PowTensor.apply(self, self._lift(exponent))
        # END SOLUTION

    def __rpow__(self, base) -> Tensor:
        # BEGIN SOLUTION hard
        return PowTensor.apply(self._lift(base), self)
        # END SOLUTION

    def __matmul__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return MatMul.apply(self, self._lift(other))
        # END SOLUTION

    def __rmatmul__(self, other) -> Tensor:
        # BEGIN SOLUTION hard
        return MatMul.apply(self._lift(other), self)
        # END SOLUTION

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        # BEGIN SOLUTION hard
        return Sum.apply(self, axis=axis, keepdims=keepdims)
        # END SOLUTION

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        # BEGIN SOLUTION hard
        return Mean.apply(self, axis=axis, keepdims=keepdims)
        # END SOLUTION

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        """Maximum over `axis`; tied maxima share the gradient evenly (torch.amax's rule)."""
        # BEGIN SOLUTION hard
        return Max.apply(self, axis=axis, keepdims=keepdims)
        # END SOLUTION

    def reshape(self, *shape) -> Tensor:
        """x.reshape(2, 3) or x.reshape((2, 3)), as in NumPy."""
        # BEGIN SOLUTION hard
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return Reshape.apply(self, shape=tuple(shape))
        # END SOLUTION

    def transpose(self, *axes) -> Tensor:
        """NumPy semantics: a permutation of all axes (x.transpose(1, 0, 2)); none reverses them."""
        # BEGIN SOLUTION hard
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = axes[0]
        return Transpose.apply(self, axes=tuple(axes) if axes else None)
        # END SOLUTION

    @property
    def T(self) -> Tensor:
        """All axes reversed; for a matrix, its transpose."""
        # BEGIN SOLUTION hard
        return Transpose.apply(self)
        # END SOLUTION

    def __getitem__(self, index) -> Tensor:
        # BEGIN SOLUTION hard
        return GetItem.apply(self, index=index)
        # END SOLUTION

    def exp(self) -> Tensor:
        # BEGIN SOLUTION hard
        return Exp.apply(self)
        # END SOLUTION

    def log(self) -> Tensor:
        # BEGIN SOLUTION hard
        return Log.apply(self)
        # END SOLUTION

    def sin(self) -> Tensor:
        # BEGIN SOLUTION hard
        return Sin.apply(self)
        # END SOLUTION

    def cos(self) -> Tensor:
        # BEGIN SOLUTION hard
        return Cos.apply(self)
        # END SOLUTION

    def tanh(self) -> Tensor:
        # BEGIN SOLUTION hard
        return Tanh.apply(self)
        # END SOLUTION

    def sigmoid(self) -> Tensor:
        # BEGIN SOLUTION hard
        return Sigmoid.apply(self)
        # END SOLUTION

    def relu(self) -> Tensor:
        # BEGIN SOLUTION hard
        return ReLU.apply(self)
        # END SOLUTION

    def softmax(self, axis: int = -1) -> Tensor:
        # BEGIN SOLUTION hard
        return Softmax.apply(self, axis=axis)
        # END SOLUTION

    def log_softmax(self, axis: int = -1) -> Tensor:
        # BEGIN SOLUTION hard
        return LogSoftmax.apply(self, axis=axis)
        # END SOLUTION


# 5.8 — Losses, modules and SGD ---------------------------------------------------------------


def cross_entropy(logits: Tensor, targets) -> Tensor:
    """Mean negative log-likelihood of integer class targets: a scalar Tensor.

    logits (N, C), targets (N,) ints in [0, C) — an array, a list or a Tensor of them.
    L = −(1/N) Σₙ log_softmax(zₙ)[tₙ].
    Built from ops, so its gradient comes out as (softmax(z) − onehot(t)) / N by itself.
    """
    # BEGIN SOLUTION
    # HINT: pick each row's target log-probability with logp[np.arange(N), targets]
    # KEEP guided
    if isinstance(targets, Tensor):
    # END KEEP
        targets = targets.data
    targets = np.asarray(targets, dtype=np.intp)  # (N,)
    logp = logits.log_softmax(axis=-1)  # (N, C)
    return -logp[np.arange(len(targets)), targets].mean()
    # END SOLUTION


def mse(pred: Tensor, target) -> Tensor:
    """Mean squared error mean((pred − target)²): a scalar Tensor. `target` may be an array."""
    # BEGIN SOLUTION
    return ((pred - target) ** 2).mean()
    # END SOLUTION


class Parameter(Tensor):
    """A Tensor owned by a Module and updated by an optimizer: always requires grad.

    It holds its own copy of the data, so an optimizer's in-place update never writes
    into an array the caller passed in.
    """

    def __init__(self, data):
        # BEGIN SOLUTION hard
        super().__init__(data, requires_grad=True)
        self.data = self.data.copy()
        # END SOLUTION


class Module:
    """Base class of layers. Calling a module runs `forward`; `parameters()` collects every
    Parameter in its attributes, in nested Modules and in lists of them."""

    def forward(self, *args):
        # BEGIN SOLUTION hard
        raise NotImplementedError(f"{type(self).__name__}.forward")
        # END SOLUTION

    def __call__(self, *args):
        # BEGIN SOLUTION hard
        return self.forward(*args)
        # END SOLUTION

    def parameters(self) -> list[Parameter]:
        """All Parameters, each once (a shared one is not counted twice)."""
        # BEGIN SOLUTION hard
        found = []
        for value in vars(self).values():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Parameter):
                    found.append(item)
                elif isinstance(item, Module):
                    found.extend(item.parameters())
        return list({id(p): p for p in found}.values())
        # END SOLUTION

    def zero_grad(self) -> None:
        # BEGIN SOLUTION hard
        for p in self.parameters():
            p.zero_grad()
        # END SOLUTION


class Linear(Module):
    """y = x @ Wᵀ + b. x (N, in) → y (N, out); weight (out, in), bias (out,) as in torch.

    Both initialised U(−1/√in, 1/√in), torch's default. `rng`: a seed, a np.random.Generator
    or None. `dtype`: of the parameters (np.float32 for speed, float64 for gradient checks).
    """

    def __init__(self, in_features: int, out_features: int, rng=None, dtype=np.float64):
        # BEGIN SOLUTION
        rng = np.random.default_rng(rng)
        bound = 1 / np.sqrt(in_features)
        weight = rng.uniform(-bound, bound, (out_features, in_features))
        self.weight = Parameter(weight.astype(dtype))  # (out, in)
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype))  # (out,)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return x @ self.weight.T + self.bias  # (N, out)
        # END SOLUTION


class Sequential(Module):
    """Sequential(*modules): applies the modules in order, each to the previous one's output."""

    def __init__(self, *modules: Module):
        # BEGIN SOLUTION hard
        self.modules = list(modules)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        # KEEP guided
        for module in self.modules:
        # END KEEP
            x = module(x)
        return x
        # END SOLUTION


class ReLULayer(Module):
    """The ReLU op as a layer, for Sequential."""

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return x.relu()
        # END SOLUTION


class SigmoidLayer(Module):
    """The Sigmoid op as a layer, for Sequential."""

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return x.sigmoid()
        # END SOLUTION


class SGD:
    """Stochastic gradient descent with momentum, torch.optim.SGD's update:

        v ← μ·v + g,   p ← p − lr·v      (μ = 0: plain p ← p − lr·g)

    Parameters whose grad is None are skipped. Updates write into `p.data` in place.
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0):
        # BEGIN SOLUTION hard
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.velocity = [np.zeros_like(p.data) for p in self.params]
        # END SOLUTION

    def step(self) -> None:
        # BEGIN SOLUTION
        for p, v in zip(self.params, self.velocity, strict=True):
            if p.grad is None:
                continue
            v *= self.momentum
            v += p.grad
            p.data -= self.lr * v
        # END SOLUTION

    def zero_grad(self) -> None:
        # BEGIN SOLUTION hard
        for p in self.params:
            p.zero_grad()
        # END SOLUTION


# 5.9 — End to end ----------------------------------------------------------------------------


def fit_linear_regression(X, y, lr: float = 0.1, steps: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Fit y ≈ X @ w + b by full-batch gradient descent on the MSE, using only the engine.

    X (N, D), y (N,) → w (D,), b () ; y (N, K) → w (D, K), b (K,). Starts from zeros, in X's
    dtype (float32 X gives float32 w and b).
    Assumes roughly standardised features (lr = 0.1 then converges quickly).
    """
    # BEGIN SOLUTION
    X, y = Tensor(X), Tensor(y)
    w = Parameter(np.zeros(X.shape[1:] + y.shape[1:], dtype=X.dtype))  # (D,) or (D, K)
    b = Parameter(np.zeros(y.shape[1:], dtype=X.dtype))  # () or (K,)
    optimizer = SGD([w, b], lr=lr)
    # KEEP guided
    for _ in range(steps):
    # END KEEP
        optimizer.zero_grad()
        mse(X @ w + b, y).backward()
        optimizer.step()
    return w.numpy(), b.numpy()
    # END SOLUTION


def train_circle_mlp(X, y, steps: int = 1500, lr: float = 0.1, rng=0) -> Sequential:
    """Train a 2-4-4-2 ReLU MLP on points labelled 1 inside a circle, 0 outside.

    X (N, 2), y (N,) in {0, 1}. Full-batch SGD with momentum 0.9 on cross_entropy, using only
    the engine. The three Linears draw from one Generator made from `rng`, in layer order.
    Returns the model; predict with `model(X).numpy().argmax(axis=1)`.
    """
    # BEGIN SOLUTION
    rng = np.random.default_rng(rng)
    model = Sequential(
        Linear(2, 4, rng), ReLULayer(), Linear(4, 4, rng), ReLULayer(), Linear(4, 2, rng)
    )
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9)
    X = Tensor(X)  # (N, 2)
    # KEEP guided
    for _ in range(steps):
    # END KEEP
        optimizer.zero_grad()
        cross_entropy(model(X), y).backward()
        optimizer.step()
    return model
    # END SOLUTION
