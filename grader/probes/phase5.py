"""Trusted code run in the worker next to the student's phase-5 engine. Returns plain values.

These build graphs that would cost thousands of round trips from the judge (a 10⁴-op chain),
need a `with` block (no_grad), or need object identity (which tensors topological_order
returned). They use nothing but the student's module.
"""

from __future__ import annotations

import numpy as np


def deep_chain(module, x, pairs: int, scale: float, shift: float):
    """y = x, then `pairs` times y = y * scale + shift (2·pairs ops in one chain); backward of
    y.sum(). Returns (y, ∂Σy/∂x)."""
    leaf = module.Tensor(x, requires_grad=True)
    y = leaf
    for _ in range(pairs):
        y = y * scale + shift
    y.sum().backward()
    return np.array(y.data, dtype=np.float64), _grad(leaf)


def topological_positions(module, a, b, c):
    """The graph below; returns, for each tensor topological_order(root) lists, its number in
    `nodes` (−1 for a tensor not in it), and each node's parents by number.

        a, b require grad, c does not:   d = a * b,  e = d + a,  f = d.exp(),  g = e * f,
        h = g + c,  k = h + d,  root = k.sum()
    """
    a = module.Tensor(a, requires_grad=True)
    b = module.Tensor(b, requires_grad=True)
    c = module.Tensor(c)
    d = a * b
    e = d + a
    f = d.exp()
    g = e * f
    h = g + c
    k = h + d
    root = k.sum()
    nodes = [a, b, c, d, e, f, g, h, k, root]
    number = {id(node): i for i, node in enumerate(nodes)}
    order = module.topological_order(root)
    return np.array([number.get(id(t), -1) for t in order], dtype=np.int64)


class _Marker(Exception):
    pass


def no_grad_behaviour(module, x):
    """What happens inside and after `with no_grad():` blocks, as plain values."""
    t = module.Tensor(x, requires_grad=True)
    with module.no_grad():
        inside = module.is_grad_enabled()
        y = t * 2.0
        with module.no_grad():
            pass
        after_nested = t * 3.0  # still inside the outer block
    after = module.is_grad_enabled()
    try:
        with module.no_grad():
            raise _Marker
    except _Marker:
        pass
    after_exception = module.is_grad_enabled()
    w = t * 4.0
    (y + t).sum().backward()  # y was made under no_grad: only the direct path reaches t
    return {
        "inside": bool(inside), "after": bool(after), "after_exception": bool(after_exception),
        "y_requires_grad": bool(y.requires_grad),
        "y_parents": len(getattr(y, "_parents", None) or ()),
        "nested_requires_grad": bool(after_nested.requires_grad),
        "w_requires_grad": bool(w.requires_grad),
        "grad": _grad(t),
    }


def _grad(tensor):
    grad = tensor.grad
    return None if grad is None else np.array(grad, dtype=np.float64)


def train_circle(module, X, y, X_test, rng: int):
    """train_circle_mlp(X, y, rng=rng) with its defaults; returns the test logits and the number
    of parameters of the model (a 2-4-4-2 MLP has 42)."""
    model = module.train_circle_mlp(X, y, rng=rng)
    logits = model(module.Tensor(X_test))
    count = sum(int(np.size(p.data)) for p in model.parameters())
    return np.array(logits.data, dtype=np.float64), count


def circle_logits(module, X, y, X_test, steps: int, rng: int):
    """A short train_circle_mlp run for the fingerprint: the test logits."""
    model = module.train_circle_mlp(X, y, steps=steps, rng=rng)
    return np.array(model(module.Tensor(X_test)).data, dtype=np.float64)


def gradient_memory(module, a, b, upstream):
    """y = a + b (one shape: Add may pass g on to both) and a.backward(upstream) on a leaf:
    which of the arrays the engine stored share memory with each other or with the caller's.

    Where a `.grad` aliases another array, a later `+=` (a second backward, an optimizer)
    writes into both; identity can only be seen here, next to the objects."""
    x, z = module.Tensor(a, requires_grad=True), module.Tensor(b, requires_grad=True)
    (x + z).backward(upstream)
    leaf = module.Tensor(a, requires_grad=True)
    leaf.backward(upstream)
    p = module.Parameter(a)

    def shares(first, second):
        return bool(isinstance(first, np.ndarray) and isinstance(second, np.ndarray)
                    and np.shares_memory(first, second))

    return {
        "grads_shared": shares(x.grad, z.grad),
        "grad_is_upstream": shares(x.grad, upstream) or shares(z.grad, upstream),
        "leaf_grad_is_upstream": shares(leaf.grad, upstream),
        "grad_is_data": shares(x.grad, x.data),
        "parameter_shares_input": shares(p.data, a),
    }
