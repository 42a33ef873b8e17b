"""Phase 5's declared contracts and its stateful APIs called more than once.

Every op is declared once (how to build it, its inputs): the contract check of its exercise
runs forward then backward on one op object in float32 and in float64 — both outputs keep the
input dtype ("float32 stays float32"), the float32 result agrees with the float64 one, and a
second forward + backward on the same object repeats the first. Then: which arrays the engine
stores may share memory (identity can only be seen in the worker), and the same training seed
twice and two seeds. (Tensor.backward's documented errors are given code in the stub.)
"""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check
from grader.checks.contracts import Numeric, contract_checks, seeded
from grader.checks.oracle import as_array
from grader.session import run_probe


def _randn(seed: int, *shape: int, dtype=np.float64, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) + shift).astype(dtype)


def _op(name: str, params: dict, shapes: list[tuple], out_shape: tuple, positive=()) -> Numeric:
    """Declare Op(**params): forward on inputs of `shapes` (positive ones shifted above 0.5),
    then backward of a random g of `out_shape`; both halves keep the input dtype."""

    def build(m, dtype):
        op = getattr(m, name)(**params)
        arrays = [
            (
                np.abs(_randn(10 + i, *shape)) + 0.5 if i in positive else _randn(10 + i, *shape)
            ).astype(dtype)
            for i, shape in enumerate(shapes)
        ]
        g = _randn(30, *out_shape, dtype=dtype)

        def forward_then_backward(*inputs):
            return op.forward(*inputs), op.backward(g)

        return forward_then_backward, arrays, {}

    label = f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
    return Numeric(f"{label}.forward / .backward", build, outputs=("float", "floats"))


BROADCAST = [(2, 3), (3,)]
DECLARED = {
    "ag_unbroadcast": [
        Numeric(
            "unbroadcast", lambda m, dt: (m.unbroadcast, [_randn(1, 2, 3, 4, dtype=dt), (3, 1)], {})
        ),
    ],
    "ag_arithmetic": [
        _op("Add", {}, BROADCAST, (2, 3)),
        _op("Sub", {}, BROADCAST, (2, 3)),
        _op("Mul", {}, BROADCAST, (2, 3)),
        _op("Div", {}, BROADCAST, (2, 3), positive=(1,)),
        _op("Neg", {}, [(2, 3)], (2, 3)),
        _op("Pow", {"exponent": 3.0}, [(2, 3)], (2, 3)),
        _op("PowTensor", {}, BROADCAST, (2, 3), positive=(0,)),
        _op("MatMul", {}, [(2, 3), (3, 4)], (2, 4)),
    ],
    "ag_reductions": [
        _op("Sum", {"axis": 1}, [(2, 3, 4)], (2, 4)),
        _op("Mean", {"axis": (0, -1), "keepdims": True}, [(2, 3, 4)], (1, 3, 1)),
        _op("Max", {"axis": -1}, [(2, 3, 4)], (2, 3)),
    ],
    "ag_shape_ops": [
        _op("Reshape", {"shape": (3, 2)}, [(2, 3)], (3, 2)),
        _op("Transpose", {"axes": (1, 0, 2)}, [(2, 3, 4)], (3, 2, 4)),
        _op("GetItem", {"index": (slice(None), [0, 2, 0])}, [(2, 3)], (2, 3)),
    ],
    "ag_elementwise": [
        _op(name, {}, [(2, 3)], (2, 3), positive=(0,) if name == "Log" else ())
        for name in ("Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "ReLU")
    ],
    "ag_softmax": [
        _op("Softmax", {"axis": 0}, [(3, 4)], (3, 4)),
        _op("LogSoftmax", {}, [(3, 4)], (3, 4)),
    ],
}

for _exercise, _declared in DECLARED.items():
    globals().update(contract_checks(__name__, _exercise, _declared))


@check("ag_engine", "invariant")
def gradients_are_stored_in_arrays_of_their_own(m):
    """After backward, each leaf's .grad is an array of its own: not another leaf's (Add passes
    g on twice), not the caller's upstream gradient, not the data."""
    a, b, upstream = _randn(40, 2, 3), _randn(41, 2, 3), _randn(42, 2, 3)
    found = run_probe(m, "phase5.gradient_memory", m, a, b, upstream)
    hint = (
        "The first gradient a leaf receives may be an array that is also someone else's: "
        "store a new one (np.zeros_like(data) then +=, or g.copy()), never g itself."
    )
    problems = {
        "grads_shared": "after y = a + b; y.backward(g), a.grad and b.grad are the same array",
        "grad_is_upstream": "after y = a + b; y.backward(g), a leaf's .grad is the array g "
        "the caller passed",
        "leaf_grad_is_upstream": "after x.backward(g) on a leaf x, x.grad is the array g itself",
        "grad_is_data": "a leaf's .grad shares memory with its .data",
    }
    for key, text in problems.items():
        if found.get(key):
            raise CheckFailed(
                f"{text}: a later += (a second backward, an optimizer step) would change both.",
                hint,
            )


@check("ag_nn", "invariant")
def parameter_holds_its_own_copy_of_the_data(m):
    """Parameter(array) copies the array, so an optimizer step never writes into the caller's."""
    found = run_probe(
        m, "phase5.gradient_memory", m, _randn(43, 2, 3), _randn(44, 2, 3), _randn(45, 2, 3)
    )
    if found.get("parameter_shares_input"):
        raise CheckFailed(
            "Parameter(a).data shares memory with a: SGD's in-place step would change the "
            "caller's array.",
            "The docstring says it holds its own copy: self.data = self.data.copy().",
        )


@check("ag_end_to_end", "invariant")
def train_circle_mlp_is_reproducible_from_its_seed(m):
    """train_circle_mlp with one rng twice gives the same model; another rng another one."""
    rng = np.random.default_rng(47)
    X = rng.uniform(-1.5, 1.5, (64, 2))
    y = (np.linalg.norm(X, axis=1) < 1.0).astype(np.int64)

    def logits(seed):
        return as_array(
            run_probe(m, "phase5.circle_logits", m, X, y, X[:8], steps=10, rng=seed), "the logits"
        )

    seeded(
        logits,
        "train_circle_mlp(…, steps=10, rng=seed)",
        "Make one Generator from rng (np.random.default_rng(rng)) and pass it to every "
        "Linear, in layer order.",
    )
