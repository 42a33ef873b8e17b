"""5.8 Losses, modules and SGD built on the engine: cross_entropy and mse against
torch.nn.functional, Linear and an MLP against torch.nn with copied weights, parameters(), and
SGD with momentum against torch.optim's SGD update."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.sgd import sgd

from grader.checks import check, fingerprint
from grader.checks.oracle import as_array, assert_close, assert_scalar
from grader.checks.stability import EXTREME
from grader.session import fetch, operator_call
from grader.tests.phase5._helpers import attempt, fail

rng = np.random.default_rng(9)
LOGITS = rng.normal(size=(6, 4)) * 2
TARGETS = np.array([0, 3, 1, 1, 2, 3])
PRED, TARGET = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
INPUT = rng.normal(size=(5, 3))
W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
CENTRE = np.array([[1.0, 2.0, -1.0], [0.0, 0.5, 3.0]])
CURVATURE = np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 0.25]])


def _loss_and_grad(m, fn: str, x: np.ndarray, *args):
    t = m.Tensor(x, requires_grad=True)
    loss = getattr(m, fn)(t, *args)
    loss.backward()
    grad = fetch(t.grad)
    if grad is None:
        fail(f"{fn}(…).backward() left the input's .grad None: build the loss from Tensor ops.")
    return assert_scalar(fetch(loss.data), f"{fn}(…)"), as_array(grad, f"the gradient of {fn}")


def _torch_loss_and_grad(fn, x: np.ndarray, *args):
    t = torch.tensor(x, requires_grad=True)
    loss = fn(t, *args)
    loss.backward()
    return loss.item(), t.grad.numpy()


@check("ag_nn", "oracle")
def cross_entropy_matches_torch(m):
    """cross_entropy and its gradient equal F.cross_entropy's (the batch mean), even at ±1e4;
    the targets as an array, a list or a Tensor."""
    extreme = np.array([[EXTREME, 0.0, -EXTREME], [-EXTREME, EXTREME, 0.0]])
    for logits, targets in ((LOGITS, TARGETS), (LOGITS[:3], [2, 2, 0]), (extreme, [2, 1])):
        loss, grad = _loss_and_grad(m, "cross_entropy", logits, targets)
        want_loss, want_grad = _torch_loss_and_grad(F.cross_entropy, logits,
                                                    torch.tensor(targets))
        what = f"cross_entropy of {logits.shape[0]} rows"
        assert_close(loss, want_loss, what, hint="L = −(1/N) Σₙ log_softmax(zₙ)[tₙ]: pick one "
                     "log-probability per row (logp[np.arange(N), targets]) and average.")
        assert_close(grad, want_grad, f"the gradient of {what}",
                     hint="With the mean, ∂L/∂z = (softmax(z) − onehot(t)) / N.")
    want_loss, _ = _torch_loss_and_grad(F.cross_entropy, LOGITS, torch.tensor(TARGETS))
    loss, _ = _loss_and_grad(m, "cross_entropy", LOGITS, m.Tensor(TARGETS))
    assert_close(loss, want_loss, "cross_entropy(logits, Tensor(targets))",
                 hint="The targets may come as a Tensor (of float64 data): take its .data and "
                      "make it integer, np.asarray(targets, dtype=np.intp), before indexing.")


@check("ag_nn", "oracle")
def mse_matches_torch(m):
    """mse(pred, target) and its gradient equal F.mse_loss's (the mean over every element)."""
    for pred, target in ((PRED, TARGET), (PRED[:, 0], TARGET[:, 0])):
        loss, grad = _loss_and_grad(m, "mse", pred, target)
        want_loss, want_grad = _torch_loss_and_grad(F.mse_loss, pred, torch.tensor(target))
        assert_close(loss, want_loss, f"mse of shape {pred.shape}",
                     hint="mean((pred − target)²) over every element.")
        assert_close(grad, want_grad, f"the gradient of mse of shape {pred.shape}")


def _weights(layer, what: str):
    weight = as_array(fetch(layer.weight.data), f"{what}.weight")
    bias = as_array(fetch(layer.bias.data), f"{what}.bias")
    return weight, bias


@check("ag_nn", "oracle")
def linear_matches_torch_with_copied_weights(m):
    """Linear's layout, output and gradients equal torch.nn.Linear's with copied weights."""
    layer = m.Linear(3, 2, rng=0)
    weight, bias = _weights(layer, "Linear(3, 2)")
    if weight.shape != (2, 3) or bias.shape != (2,):
        fail(f"Linear(3, 2) has weight {weight.shape} and bias {bias.shape}, expected (2, 3) "
             f"and (2,) — torch's layout (out_features, in_features).")
    reference = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(weight))
        reference.bias.copy_(torch.from_numpy(bias))
    g = rng.normal(size=(5, 2))
    x = torch.tensor(INPUT, requires_grad=True)
    out = reference(x)
    out.backward(torch.from_numpy(g))
    xs = m.Tensor(INPUT, requires_grad=True)
    ys = layer(xs)
    ys.backward(g)
    assert_close(fetch(ys.data), out.detach().numpy(), "Linear(3, 2)(x)",
                 hint="y = x @ Wᵀ + b with W of shape (out, in).")
    assert_close(fetch(xs.grad), x.grad.numpy(), "x.grad through Linear")
    assert_close(fetch(layer.weight.grad), reference.weight.grad.numpy(), "Linear.weight.grad")
    assert_close(fetch(layer.bias.grad), reference.bias.grad.numpy(), "Linear.bias.grad",
                 hint="The bias is broadcast over the batch: its gradient sums over it.")


@check("ag_nn", "invariant")
def linear_init_is_torch_default_and_seeded(m):
    """Linear draws from U(−1/√in, 1/√in) — both signs, up to the bound —, reproducibly from
    its rng seed, in the given dtype."""
    weight, bias = _weights(m.Linear(400, 50, rng=1), "Linear(400, 50)")
    bound = 1 / np.sqrt(400)
    # the largest of 20 000 (50) uniform draws is within 1% (50%) of the bound, all but surely
    for name, values, near in (("weight", weight, 0.99), ("bias", bias, 0.5)):
        top = float(np.abs(values).max())
        low, high = float(values.min()), float(values.max())  # both ends of (−bound, bound)
        if top > bound or min(-low, high) < near * bound:
            fail(f"Linear(400, 50).{name} spans [{low:.4f}, {high:.4f}]; U(−1/√in, 1/√in) with "
                 f"in = 400 reaches close to ±{bound:.4f} on both sides but never beyond.",
                 "bound = 1 / np.sqrt(in_features), for the weight and the bias alike.")
    again, _ = _weights(m.Linear(400, 50, rng=1), "Linear(400, 50)")
    assert_close(again, weight, "the weight of a second Linear(400, 50, rng=1)",
                 hint="Draw from np.random.default_rng(rng), not the global NumPy state.")
    small = m.Linear(3, 2, rng=0, dtype="float32")
    if as_array(fetch(small.weight.data), "weight").dtype != np.float32:
        fail("Linear(3, 2, dtype=\"float32\") does not have float32 parameters.",
             "Cast the drawn arrays with .astype(dtype).")


@check("ag_nn", "invariant")
def parameters_are_collected_from_nested_modules(m):
    """parameters() finds every Parameter of nested modules once, and zero_grad clears them."""
    first, second = m.Linear(2, 3, rng=0), m.Linear(3, 2, rng=1)
    model = m.Sequential(first, m.ReLULayer(), second)
    params = model.parameters()
    shapes = [tuple(np.shape(fetch(p.data))) for p in params] if isinstance(params, list) else None
    if shapes is None or sorted(shapes) != sorted([(3, 2), (3,), (2, 3), (2,)]):
        fail(f"parameters() of Sequential(Linear(2, 3), ReLULayer(), Linear(3, 2)) gave shapes "
             f"{shapes}, expected (3, 2), (3,), (2, 3) and (2,): the weight and bias of each "
             f"Linear, in a list.",
             "Look inside attributes that are Modules and lists of Modules, recursively.")
    kinds = {operator_call(p, "isinstance_of", p, "Parameter") for p in params}
    if kinds != {True}:
        fail("parameters() returned objects that are not Parameters.")
    shared = m.Sequential(first, m.ReLULayer(), first)
    if len(shared.parameters()) != 2:
        fail("a Linear used twice in one Sequential had its parameters listed twice: an "
             "optimizer would then update them twice per step.")
    model(m.Tensor(rng.normal(size=(4, 2)))).sum().backward()
    model.zero_grad()
    for p in params:
        grad = fetch(p.grad)
        if grad is not None and np.any(as_array(grad, "grad") != 0):
            fail("a parameter still has a gradient after model.zero_grad().")


@check("ag_nn", "oracle")
def mlp_matches_torch_with_copied_weights(m):
    """A 2-4-4-2 Sequential MLP with cross_entropy gives torch's loss and parameter gradients."""
    layers = [m.Linear(2, 4, rng=2), m.Linear(4, 4, rng=3), m.Linear(4, 2, rng=4)]
    model = m.Sequential(layers[0], m.ReLULayer(), layers[1], m.SigmoidLayer(), layers[2])
    reference = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4),
                                    torch.nn.Sigmoid(), torch.nn.Linear(4, 2)).double()
    torch_layers = [reference[0], reference[2], reference[4]]
    for layer, twin in zip(layers, torch_layers, strict=True):
        weight, bias = _weights(layer, "Linear")
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(weight))
            twin.bias.copy_(torch.from_numpy(bias))
    X, y = rng.normal(size=(8, 2)), np.array([0, 1, 1, 0, 1, 0, 0, 1])
    loss = F.cross_entropy(reference(torch.from_numpy(X)), torch.from_numpy(y))
    loss.backward()
    mine = m.cross_entropy(model(m.Tensor(X)), y)
    mine.backward()
    assert_close(assert_scalar(fetch(mine.data), "the loss"), loss.item(), "the MLP's loss")
    for i, (layer, twin) in enumerate(zip(layers, torch_layers, strict=True)):
        assert_close(fetch(layer.weight.grad), twin.weight.grad.numpy(),
                     f"the gradient of layer {i}'s weight")
        assert_close(fetch(layer.bias.grad), twin.bias.grad.numpy(),
                     f"the gradient of layer {i}'s bias")


def _sgd_trajectory(m, lr: float, momentum: float, steps: int = 5):
    p, unused = m.Parameter(W0), m.Parameter(CENTRE)
    optimizer = m.SGD([p, unused], lr=lr, momentum=momentum)
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        (((p - CENTRE) ** 2) * CURVATURE).sum().backward()
        optimizer.step()
        trajectory.append(as_array(fetch(p.data), "p after a step"))
    return np.array(trajectory), as_array(fetch(unused.data), "an unused parameter")


def _torch_trajectory(lr: float, momentum: float, steps: int = 5):
    """torch.optim's functional SGD update (what torch.optim.SGD.step applies; the class itself
    costs a second and a half of lazy imports on first use)."""
    p = torch.tensor(W0, requires_grad=True)
    buffers: list = [None]
    trajectory = []
    for _ in range(steps):
        p.grad = None
        (((p - torch.from_numpy(CENTRE)) ** 2) * torch.from_numpy(CURVATURE)).sum().backward()
        with torch.no_grad():
            sgd([p], [p.grad], buffers, weight_decay=0.0, momentum=momentum, lr=lr,
                dampening=0.0, nesterov=False, maximize=False)
        trajectory.append(p.detach().numpy().copy())
    return np.array(trajectory)


@check("ag_nn", "oracle")
def sgd_matches_torch_optim_trajectory(m):
    """SGD with and without momentum follows torch's SGD update for 5 steps."""
    for momentum in (0.0, 0.9):
        got, unused = _sgd_trajectory(m, 0.05, momentum)
        assert_close(got, _torch_trajectory(0.05, momentum),
                     f"the parameter after each of 5 SGD(lr=0.05, momentum={momentum}) steps",
                     hint="torch's rule: v ← μ·v + g, then p ← p − lr·v (v starts at 0).")
        assert_close(unused, CENTRE, "a parameter that got no gradient, after 5 steps",
                     hint="Skip parameters whose grad is None.")


@fingerprint("ag_nn")
def nn_outputs(m):
    def loss(fn, x, *args):
        value, grad = _loss_and_grad(m, fn, x, *args)
        return np.concatenate([[value], grad.ravel()])

    def linear():
        layer = m.Linear(3, 2, rng=0)
        out = layer(m.Tensor(INPUT))
        return np.asarray(fetch(out.data), float)

    def init_range():
        weight, bias = _weights(m.Linear(400, 50, rng=1), "Linear")
        return np.round(np.array([np.abs(weight).max(), np.abs(bias).max()]), 3)

    def parameter_count():
        layer = m.Linear(2, 2, rng=0)
        model = m.Sequential(m.Linear(2, 3, rng=0), m.ReLULayer(), m.Linear(3, 2, rng=1))
        shared = m.Sequential(layer, m.ReLULayer(), layer)
        return np.array([len(model.parameters()), len(shared.parameters())])

    return {
        "cross_entropy": attempt(lambda: loss("cross_entropy", LOGITS, TARGETS)),
        "mse": attempt(lambda: loss("mse", PRED, TARGET)),
        "linear": attempt(linear),
        "init_range": attempt(init_range),
        "parameters": attempt(parameter_count),
        "sgd": attempt(lambda: _sgd_trajectory(m, 0.05, 0.9)[0]),
        "sgd_plain": attempt(lambda: _sgd_trajectory(m, 0.05, 0.0)[0]),
    }
