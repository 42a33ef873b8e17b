"""0.11 The MLP: Sequential forward/backward against torch, SGD in place, and learning the
circle data end to end (held-out labels never leave the judge)."""

from __future__ import annotations

import numpy as np
import torch

from datasets.synthetic import circle
from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.session import fetch, operator_call, run_probe

TARGET_ACCURACY = 0.9


def _layers(model):
    layers = fetch(model.layers)
    if not isinstance(layers, list):
        raise CheckFailed("Sequential should keep its layers in a list attribute `layers`.")
    return layers


def _torch_mlp(weights):
    modules = []
    for W, b in weights:
        layer = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(W))
            layer.bias.copy_(torch.from_numpy(b))
        modules += [layer, torch.nn.ReLU()]
    return torch.nn.Sequential(*modules[:-1])


@check("mlp", "oracle")
def make_mlp_builds_linear_relu_layers(m):
    """make_mlp((2, 4, 4, 2)) is Linear, ReLU, Linear, ReLU, Linear with the right shapes."""
    layers = _layers(m.make_mlp((2, 4, 4, 2), rng=0))
    kinds = [operator_call(layer, "type_name", layer) for layer in layers]
    if kinds != ["Linear", "ReLU", "Linear", "ReLU", "Linear"]:
        raise CheckFailed(
            f"make_mlp((2, 4, 4, 2)) built {kinds}; expected Linear, ReLU, Linear, "
            f"ReLU, Linear (no ReLU after the output layer: it returns logits)."
        )
    shapes = [tuple(np.shape(fetch(layers[i].weight))) for i in (0, 2, 4)]
    if shapes != [(4, 2), (4, 4), (2, 4)]:
        raise CheckFailed(
            f"the Linear weights have shapes {shapes}, expected (4, 2), (4, 4), (2, 4)."
        )


@check("mlp", "invariant")
def make_mlp_draws_every_layer_from_one_generator(m):
    """make_mlp(rng=0) is reproducible, and its equally-shaped layers are not copies."""
    first = [
        np.asarray(fetch(layer.weight)) for layer in _layers(m.make_mlp((4, 4, 4, 4), rng=0))[::2]
    ]
    again = [
        np.asarray(fetch(layer.weight)) for layer in _layers(m.make_mlp((4, 4, 4, 4), rng=0))[::2]
    ]
    for a, b in zip(first, again, strict=True):
        assert_close(
            b,
            a,
            "a layer's weight from make_mlp(rng=0) built twice",
            hint="Normalise the seed with np.random.default_rng(rng) once.",
        )
    if np.array_equal(first[0], first[1]) or np.array_equal(first[1], first[2]):
        raise CheckFailed(
            "two (4, 4) layers of make_mlp((4, 4, 4, 4), rng=0) have identical "
            "weights: every layer was seeded afresh.",
            "Make one Generator with np.random.default_rng(rng) and pass it on.",
        )


@check("mlp", "oracle")
def sequential_forward_and_backward_match_torch(m):
    """Sequential's logits, input gradient and every parameter gradient equal torch's."""
    model = m.make_mlp((3, 5, 4, 2), rng=1)
    layers = _layers(model)
    weights = [
        (as_array(fetch(layers[i].weight), "weight"), as_array(fetch(layers[i].bias), "bias"))
        for i in (0, 2, 4)
    ]
    reference = _torch_mlp(weights)
    x = np.random.default_rng(2).normal(size=(6, 3))
    dout = np.random.default_rng(3).normal(size=(6, 2))
    xt = torch.tensor(x, requires_grad=True)
    yt = reference(xt)
    yt.backward(torch.from_numpy(dout))
    assert_close(model.forward(x), yt.detach().numpy(), "Sequential.forward(x)")
    assert_close(
        model.backward(dout),
        xt.grad.numpy(),
        "the dx returned by Sequential.backward",
        hint="Go through the layers in reverse, feeding each backward's output on.",
    )
    grads = model.grads()
    expected = [p.grad.numpy() for p in reference.parameters()]
    if not isinstance(grads, list) or len(grads) != len(expected):
        raise CheckFailed(
            f"Sequential.grads() should list {len(expected)} arrays (weight, bias "
            f"of each Linear, in order)."
        )
    for i, (g, e) in enumerate(zip(grads, expected, strict=True)):
        assert_close(g, e, f"Sequential.grads()[{i}]")


@check("mlp", "oracle")
def sgd_step_updates_parameters_in_place(m):
    """sgd_step(layer.params(), layer.grads(), lr) changes the layer's own arrays: p ← p − lr·g."""
    layer = m.Linear(3, 2, rng=0)
    W, b = as_array(fetch(layer.weight), "weight"), as_array(fetch(layer.bias), "bias")
    x = np.random.default_rng(5).normal(size=(4, 3))
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    gW, gb = (
        as_array(fetch(layer.grad_weight), "grad_weight"),
        as_array(fetch(layer.grad_bias), "grad_bias"),
    )
    new_W, new_b = run_probe(m, "phase0.sgd_on_linear", m, layer, 0.1)
    assert_close(
        new_W,
        W - 0.1 * gW,
        "the weight after sgd_step",
        hint="Update in place (p -= lr * g); `p = p - lr * g` only rebinds a name.",
    )
    assert_close(new_b, b - 0.1 * gb, "the bias after sgd_step")


def _circle_task():
    X, y = circle(1000, seed=0)
    X_test, y_test = circle(1000, seed=1)
    return X, y, X_test, y_test


def _accuracy(logits, y_test, who: str) -> float:
    logits = as_array(logits, "the test logits")
    if logits.shape != (len(y_test), 2):
        raise CheckFailed(
            f"{who}: the model's test logits have shape {logits.shape}, expected "
            f"({len(y_test)}, 2)."
        )
    return float((logits.argmax(1) == y_test).mean())


@check("mlp", "e2e", weight=2)
def mlp_learns_the_circle_with_the_grader_loop(m):
    """A 2-4-4-2 MLP from your layers, trained by the grader's SGD loop, classifies ≥ 90%."""
    X, y, X_test, y_test = _circle_task()
    logits, losses = run_probe(
        m, "phase0.train_with_grader_loop", m, X, y, X_test, steps=3000, lr=0.5, seed=0
    )
    accuracy = _accuracy(logits, y_test, "grader loop")
    if accuracy < TARGET_ACCURACY:
        raise CheckFailed(
            f"held-out accuracy {accuracy:.1%} < {TARGET_ACCURACY:.0%} after 3000 "
            f"full-batch steps (loss {losses[0]:.3f} → {losses[-1]:.3f}).",
            "If the loss does not fall, check Sequential.backward and sgd_step.",
        )


@check("mlp", "e2e", weight=2)
def train_classifier_learns_the_circle(m):
    """Your train_classifier with its defaults trains a 2-4-4-2 MLP to ≥ 90% held-out accuracy."""
    X, y, X_test, y_test = _circle_task()
    logits, losses = run_probe(m, "phase0.train_with_student_loop", m, X, y, X_test, seed=0)
    accuracy = _accuracy(logits, y_test, "train_classifier")
    if accuracy < TARGET_ACCURACY:
        raise CheckFailed(
            f"held-out accuracy {accuracy:.1%} < {TARGET_ACCURACY:.0%} with your "
            f"train_classifier (loss {losses[0]:.3f} → {losses[-1]:.3f}).",
            "Each step: forward, softmax_cross_entropy, backward(dlogits), sgd_step.",
        )


@check("mlp", "invariant")
def train_classifier_follows_forward_loss_backward_step(m):
    """With the full batch, train_classifier's losses equal the grader's own loop's, stepwise."""
    X, y, _, _ = _circle_task()
    X, y = X[:100], y[:100]
    _, expected = run_probe(
        m, "phase0.train_with_grader_loop", m, X, y, X[:2], steps=20, lr=0.5, seed=2
    )
    got = run_probe(m, "phase0.student_loop_losses", m, X, y, steps=20, lr=0.5, seed=2)
    assert_close(
        got,
        expected,
        "the losses of train_classifier (full batch, lr 0.5, 20 steps)",
        hint="Each step: forward, loss (recorded before the update), backward, then "
        "sgd_step — in that order.",
    )


@check("mlp", "invariant")
def train_classifier_draws_a_fresh_minibatch_every_step(m):
    """With batch_size=8, every step's batch has 8 distinct rows and the batches vary."""
    X, y, _, _ = _circle_task()
    batches = as_array(
        run_probe(m, "phase0.batches_seen", m, X[:64], y[:64], batch_size=8, steps=12, seed=0),
        "the batches seen",
    )
    if batches.shape != (12, 8):
        raise CheckFailed(
            f"expected 12 forward calls on batches of 8 rows, saw shape "
            f"{batches.shape} (steps × batch size)."
        )
    if any(len(set(row)) != 8 for row in batches.tolist()):
        raise CheckFailed("a minibatch repeated a row: draw distinct rows (replace=False).")
    if len({tuple(sorted(row)) for row in batches.tolist()}) < 6:
        raise CheckFailed(
            "the minibatches hardly change from step to step: draw a new random "
            "batch inside the loop."
        )


@fingerprint("mlp")
def mlp_outputs(m):
    model = m.make_mlp((2, 4, 4, 2), rng=3)
    x = np.random.default_rng(4).normal(size=(5, 2))
    logits = model.forward(x)
    dx = model.backward(np.ones((5, 2)))
    X, y, X_test, _ = _circle_task()
    trained, losses = run_probe(
        m,
        "phase0.train_with_grader_loop",
        m,
        X[:200],
        y[:200],
        X_test[:20],
        steps=50,
        lr=0.5,
        seed=0,
    )
    student = run_probe(
        m, "phase0.student_loop_losses", m, X[:100], y[:100], steps=5, lr=0.5, seed=2
    )
    batches = np.asarray(
        run_probe(m, "phase0.batches_seen", m, X[:64], y[:64], batch_size=8, steps=6, seed=0)
    )
    distinct = len({tuple(sorted(row)) for row in batches.tolist()}) if batches.ndim == 2 else 0
    layers = [
        np.asarray(fetch(layer.weight)) for layer in _layers(m.make_mlp((4, 4, 4, 4), rng=0))[::2]
    ]
    return {
        "logits": logits,
        "dx": dx,
        "layers": np.array(len(fetch(model.layers))),
        "loop_losses": losses,
        "loop_logits": trained,
        "student_losses": student,
        "distinct_batches": np.array(distinct),
        "reseeded": np.array(bool(np.array_equal(layers[0], layers[1]))),
    }
