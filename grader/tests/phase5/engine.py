"""5.7 The engine on whole graphs: random expression graphs against torch autograd (values and
gradients, float64, rtol 1e-9), topological order, accumulation, no_grad, detach, float32, and a
10⁴-op chain whose backward must not recurse (the worker's recursion limit is 2000)."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Charged
from grader.checks.oracle import as_array, assert_close
from grader.checks.properties import property_holds
from grader.session import StudentError, fetch, run_probe
from grader.tests.phase5._helpers import FAILED, attempt, fail
from grader.tests.phase5.graphs import OPS, Program, Step, programs

ACCUMULATE = ("A tensor used several times gets the sum of the gradients of all its uses: "
              "add into the gradient you keep for it, never overwrite it.")
ORDER = ("Walk reverse topological order, so that a tensor's gradient is complete (summed over "
         "all its uses) before its op's backward passes it on; count each tensor once.")
X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
A, B, C = np.array([0.3, -0.7]), np.array([1.1, 0.4]), np.array([2.0, -1.0])
# topological_positions' graph, node number → parent numbers (probes/phase5.py)
PARENTS = {3: (0, 1), 4: (3, 0), 5: (3,), 6: (4, 5), 7: (6, 2), 8: (7, 3), 9: (8,)}
REQUIRES_GRAD = {0, 1, 3, 4, 5, 6, 7, 8, 9}  # every node but the constant c (2)
CHAIN = {"pairs": 5000, "scale": 0.9999, "shift": 1e-4}  # 10⁴ ops


def _grad(tensor, what: str, allow_none: bool = False):
    grad = fetch(tensor.grad)
    if grad is None:
        if allow_none:
            return None
        fail(f"{what}.grad is None after backward().",
             "Every leaf that requires grad and the output depends on must receive a .grad.")
    return as_array(grad, f"{what}.grad")


def _compare(m, program: Program) -> None:
    expected, expected_grads = program.run_torch()
    out, leaves = program.run_student(m)
    assert_close(fetch(out.data), expected, "the output's value")
    for i, (leaf, want) in enumerate(zip(leaves, expected_grads, strict=True)):
        got = _grad(leaf, f"x{i}", allow_none=want is None)
        if want is None:
            if got is not None and np.any(got != 0):
                fail(f"x{i}.grad is non-zero, but x{i} does not require grad or the output "
                     f"does not depend on it.")
            continue
        assert_close(got, want, f"x{i}.grad", hint=f"{ACCUMULATE} {ORDER}")


def compare_with_torch(m, program: Program) -> None:
    """Run `program` in torch and on the student's Tensors; compare output and leaf grads. A
    failure is localised: each step alone, on the values it saw, also charges its op's
    exercise when it fails there while another step alone passes (the engine works)."""
    try:
        _compare(m, program)
    except (CheckFailed, StudentError) as failure:
        if isinstance(failure, StudentError) and failure.not_implemented:
            raise
        culprits = _culprits(m, program)
        if isinstance(failure, StudentError) and not culprits:
            raise
        what = failure if isinstance(failure, CheckFailed) else \
            f"your code raised {failure.type}: {failure.message} (while {failure.what})"
        hint = getattr(failure, "hint", None)
        message = f"{what}\n    in the program:\n      " + program.listing().replace(
            "\n", "\n      ")
        if culprits:
            ops = ", ".join(sorted({op for op, _ in culprits}))
            raise Charged(f"{message}\n    alone, on the values it saw, {ops} is wrong too.",
                          hint, tuple(sorted({ex for _, ex in culprits}))) from None
        raise CheckFailed(message, hint) from None


# graph step → the exercise of the op(s) it uses
EXERCISE_OF_STEP = {
    **dict.fromkeys(("add", "sub", "mul", "div", "pow_tensor", "scale", "rsub", "rdiv", "neg",
                     "pow", "matmul_gram", "matmul_constant"), "ag_arithmetic"),
    **dict.fromkeys(("exp", "log", "sin", "cos", "tanh", "sigmoid", "relu"), "ag_elementwise"),
    **dict.fromkeys(("sum", "mean", "max"), "ag_reductions"),
    **dict.fromkeys(("reshape", "transpose", "getitem"), "ag_shape_ops"),
    **dict.fromkeys(("softmax", "log_softmax"), "ag_softmax"),
}


def _culprits(m, program: Program) -> list[tuple[str, str]]:
    """(step op, exercise) of the steps that fail as one-step programs on the values they saw
    in `program`, provided some one-step program passes (else the engine is to blame)."""
    values = [torch.tensor(x, dtype=torch.float64) for x in program.leaves]
    with torch.no_grad():
        for step in program.steps:
            values.append(OPS[step.op].torch([values[i] for i in step.args], step.params))
    rng = np.random.default_rng(0)
    failing, passed = [], False
    for step in program.steps:
        operands = [values[i].numpy().copy() for i in step.args]
        output = values[len(program.leaves) + program.steps.index(step)]
        alone = Program(operands, [True] * len(operands),
                        [Step(step.op, tuple(range(len(operands))), step.params)],
                        rng.standard_normal(tuple(output.shape)))
        try:
            _compare(m, alone)
            passed = True
        except (CheckFailed, StudentError):
            failing.append((step.op, EXERCISE_OF_STEP.get(step.op)))
        except Exception:  # noqa: BLE001 - a hang or crash while localising: charge nothing
            return []
    return [(op, ex) for op, ex in failing if ex] if passed else []


# one fixed program: broadcasting, x0 used four times, a diamond through t0, x2 a constant
FIXED = Program(
    leaves=[X, np.array([0.2, -0.4, 0.9]), np.array([[1.0], [-2.0]])],
    requires_grad=[True, True, False],
    steps=[Step("mul", (0, 1), {}), Step("sin", (3,), {}), Step("add", (4, 0), {}),
           Step("mul", (3, 5), {}), Step("div", (6, 2), {}), Step("sum", (7,), {"axis": 1,
                                                                               "keepdims": True}),
           Step("add", (8, 0), {}), Step("mul", (0, 9), {}), Step("max", (10,), {"axis": 0,
                                                                               "keepdims": False})],
    upstream=np.array([1.0, -2.0, 0.5]),
)


@check("ag_engine", "oracle")
def fixed_graph_matches_torch(m):
    """A graph with broadcasting, a diamond and a reused leaf gives torch's output and grads."""
    compare_with_torch(m, FIXED)


@check("ag_engine", "oracle", weight=3)
def random_graphs_match_torch_autograd(m):
    """Random expression graphs give torch autograd's output and leaf gradients (float64).

    Shared subexpressions, broadcasting and every op; relative tolerance 1e-9.
    """
    property_holds(lambda program: compare_with_torch(m, program), programs(), examples=25)


@check("ag_engine", "invariant")
def topological_order_lists_each_tensor_once_parents_first(m):
    """topological_order lists each tensor once, after its parents, and the root last."""
    order = [int(i) for i in as_array(run_probe(m, "phase5.topological_positions", m, A, B, C),
                                      "the positions")]
    listed = [i for i in order if i != 2]  # the constant c may be listed or not
    if -1 in listed:
        fail("topological_order returned a tensor that is not in the graph.")
    repeated = sorted({i for i in listed if listed.count(i) > 1})
    if repeated:
        fail(f"topological_order listed {len(repeated)} tensor(s) more than once (a tensor "
             f"reached along several paths must be listed once).",
             "Keep a set of visited tensors (by id) and skip a tensor already visited.")
    missing = sorted(REQUIRES_GRAD - set(listed))
    if missing:
        fail(f"topological_order left out {len(missing)} of the {len(REQUIRES_GRAD)} tensors "
             f"that require grad in a 10-node graph.")
    position = {node: k for k, node in enumerate(order)}
    for child, parents in PARENTS.items():
        for parent in parents:
            if parent in position and position[parent] > position[child]:
                fail("topological_order put a tensor before one of its parents.",
                     "Emit a tensor only after all its parents (post-order of a depth-first "
                     "search), and return that list; backward walks it in reverse.")
    if order[-1] != 9:
        fail("topological_order did not end with the root itself.")


@check("ag_engine", "invariant")
def shared_subexpressions_accumulate(m):
    """A tensor used by several ops receives the sum of their gradients."""
    x = m.Tensor(X, requires_grad=True)
    (x * x + x * 3.0 + x).sum().backward()
    assert_close(_grad(x, "x"), 2 * X + 4, "∂/∂x of Σ(x·x + 3x + x)", hint=ACCUMULATE)
    x = m.Tensor(X, requires_grad=True)
    h = x.sin()
    (h * h + h).sum().backward()
    assert_close(_grad(x, "x"), (2 * np.sin(X) + 1) * np.cos(X),
                 "∂/∂x of Σ(h·h + h), h = sin x", hint=f"{ACCUMULATE} {ORDER}")


@check("ag_engine", "invariant")
def backward_twice_without_zero_grad_doubles_grads(m):
    """Calling backward twice without zero_grad adds the gradients twice; zero_grad clears them."""
    x = m.Tensor(X, requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    loss.backward()
    assert_close(_grad(x, "x"), 4 * X, "x.grad after two backward() of Σx² (2·2x)",
                 hint="Leaves accumulate: .grad += the new gradient (None the first time), "
                      "so that gradients of several losses add up.")
    x.zero_grad()
    grad = fetch(x.grad)
    if grad is not None and np.any(as_array(grad, "x.grad") != 0):
        fail("x.grad is not cleared by x.zero_grad().")
    loss.backward()
    assert_close(_grad(x, "x"), 2 * X, "x.grad after zero_grad() and one more backward()")


@check("ag_engine", "invariant")
def backward_uses_the_given_upstream_gradient(m):
    """t.backward(g) propagates g itself, and leaves without requires_grad get no gradient."""
    x, c = m.Tensor(X, requires_grad=True), m.Tensor(X + 1.0)
    g = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]])
    (x * c).backward(g)
    assert_close(_grad(x, "x"), g * (X + 1.0), "x.grad after (x * c).backward(g)",
                 hint="Start the walk from the gradient you were given, of the output's shape.")
    grad = fetch(c.grad)
    if grad is not None and np.any(as_array(grad, "c.grad") != 0):
        fail("c.grad was filled in although c was created with requires_grad=False.")


@check("ag_engine", "invariant")
def no_grad_records_no_graph_and_restores_the_mode(m):
    """no_grad() records no graph, and the previous mode comes back after the block.

    Nested blocks and an exception leaving a block restore the mode too.
    """
    seen = run_probe(m, "phase5.no_grad_behaviour", m, X)
    if not isinstance(seen, dict):
        fail("the no_grad probe returned something unexpected.")
    if seen["inside"] or not seen["after"]:
        fail(f"is_grad_enabled() was {seen['inside']} inside `with no_grad():` and "
             f"{seen['after']} after it (expected False, then True).")
    if seen["y_requires_grad"] or seen["y_parents"]:
        fail("`y = t * 2` inside no_grad() requires grad or remembers its parents: no graph may "
             "be recorded in grad-off mode.",
             "Function.apply records the op and inputs only when is_grad_enabled() and some "
             "input requires grad.")
    if seen["nested_requires_grad"]:
        fail("after an inner `with no_grad():` block ended, grad mode was back on inside the "
             "outer block.", "On exit restore the *previous* mode, not True.")
    if not seen["after_exception"]:
        fail("grad mode stayed off after an exception left a `with no_grad():` block.",
             "Restore the mode in a `finally:` clause.")
    if not seen["w_requires_grad"]:
        fail("after the no_grad blocks, `t * 4` does not require grad.")
    assert_close(seen["grad"], np.ones_like(X), "t.grad after (y + t).sum().backward() with y "
                 "made under no_grad", hint="No graph through y: only the direct path to t counts.")


@check("ag_engine", "invariant")
def detach_cuts_the_graph(m):
    """y.detach() is a leaf that does not require grad: no gradient flows through it."""
    x = m.Tensor(X, requires_grad=True)
    y = x * x
    d = y.detach()
    if fetch(d.requires_grad):
        fail("y.detach().requires_grad is True.", "detach returns a new Tensor on the same "
             "data, with requires_grad False and no op.")
    (d * x).sum().backward()
    assert_close(_grad(x, "x"), X * X, "x.grad of Σ(detach(x²)·x): only the direct factor x "
                 "counts", hint="detach must not return the tensor itself.")


@check("ag_engine", "invariant")
def float32_tensors_stay_float32(m):
    """A float32 tensor mixed with Python numbers stays float32, and so does its gradient."""
    x = m.Tensor(X.astype(np.float32), requires_grad=True)
    y = ((x * 2.0 + 1.0) / 3.0).exp().sum()
    y.backward()
    value, grad = as_array(fetch(y.data), "y"), _grad(x, "x")
    if value.dtype != np.float32 or grad.dtype != np.float32:
        fail(f"the output is {value.dtype} and x.grad is {grad.dtype}, expected float32 for both.",
             "A constant takes the tensor's dtype (np.asarray(c, dtype=self.dtype)); start "
             "backward with np.ones_like(data).")
    expected = np.exp((2 * X + 1) / 3) * 2 / 3
    assert_close(grad, expected.astype(np.float32), "x.grad in float32")


def _chain_expected(x: np.ndarray, pairs: int, scale: float, shift: float):
    factor = scale**pairs
    return x * factor + shift * (1 - factor) / (1 - scale), np.full_like(x, factor)


@check("ag_engine", "stability", seconds=20)
def backward_through_a_10_000_op_chain_does_not_recurse(m):
    """backward() through a chain of 10⁴ ops works without RecursionError (limit: 2000 frames)."""
    x = np.array([0.5, -1.5, 3.0])
    y, grad = run_probe(m, "phase5.deep_chain", m, x, **CHAIN)
    expected_y, expected_grad = _chain_expected(x, **CHAIN)
    assert_close(y, expected_y, "y after 5000 × (y · 0.9999 + 0.0001)", rtol=1e-9)
    if grad is None:
        fail("x.grad is None after backward() through the chain.")
    assert_close(grad, expected_grad, "∂Σy/∂x through the 10⁴-op chain (0.9999⁵⁰⁰⁰)",
                 rtol=1e-9, hint="Use an iterative topological sort (an explicit stack).")


@fingerprint("ag_engine")
def engine_outputs(m):
    def program(p: Program):
        out, leaves = p.run_student(m)
        grads = [fetch(leaf.grad) for leaf in leaves]
        return [np.asarray(fetch(out.data), float)] + [
            np.full(1, -7.0) if g is None else np.asarray(g, float) for g in grads]

    def twice():
        x = m.Tensor(X, requires_grad=True)
        loss = (x * x).sum()
        loss.backward()
        loss.backward()
        return np.asarray(fetch(x.grad), float)

    def no_grad():
        seen = run_probe(m, "phase5.no_grad_behaviour", m, X)
        flags = [seen[k] for k in ("inside", "after", "after_exception", "y_requires_grad",
                                   "nested_requires_grad", "w_requires_grad")]
        return np.concatenate([np.array(flags, float), [seen["y_parents"]],
                               np.ravel(seen["grad"])])

    def detach():
        x = m.Tensor(X, requires_grad=True)
        (((x * x).detach()) * x).sum().backward()
        return np.asarray(fetch(x.grad), float)

    outputs = {}
    fixed = attempt(lambda: program(FIXED))
    for i in range(len(FIXED.leaves) + 1):  # the output, then each leaf's gradient
        outputs[f"fixed_{i}"] = fixed[i] if isinstance(fixed, list) else FAILED
    outputs["topological"] = attempt(lambda: _topological_summary(m))
    outputs["twice"] = attempt(twice)
    outputs["no_grad"] = attempt(no_grad)
    outputs["detach"] = attempt(detach)
    outputs["upstream"] = attempt(lambda: _upstream_grad(m))
    outputs["chain"] = attempt(lambda: np.concatenate(run_probe(
        m, "phase5.deep_chain", m, np.array([1.0]), pairs=1500, scale=0.999, shift=0.0)))
    return outputs


def _upstream_grad(m):
    x = m.Tensor(X, requires_grad=True)
    (x * 2.0).backward(X + 0.5)
    return np.asarray(fetch(x.grad), float)


def _topological_summary(m):
    """How often each node is listed, and whether parents come first: the same for every
    valid order, so only mistakes change it."""
    order = [int(i) for i in run_probe(m, "phase5.topological_positions", m, A, B, C)]
    position = {node: k for k, node in enumerate(order)}
    parents_first = all(position.get(p, -1) < position.get(c, 1 << 30)
                        for c, parents in PARENTS.items() for p in parents)
    counts = np.bincount([i + 1 for i in order], minlength=len(PARENTS) + 4)
    return np.concatenate([counts, [parents_first]])
