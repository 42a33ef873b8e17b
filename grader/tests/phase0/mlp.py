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
        raise CheckFailed(f"make_mlp((2, 4, 4, 2)) built {kinds}; expected Linear, ReLU, Linear, "
                          f"ReLU, Linear (no ReLU after the output layer: it returns logits).")
    shapes = [tuple(np.shape(fetch(layers[i].weight))) for i in (0, 2, 4)]
    if shapes != [(4, 2), (4, 4), (2, 4)]:
        raise CheckFailed(f"the Linear weights have shapes {shapes}, expected (4, 2), (4, 4), (2, 4).")


@check("mlp", "oracle")
def sequential_forward_and_backward_match_torch(m):
    """Sequential's logits, input gradient and every parameter gradient equal torch's."""
    model = m.make_mlp((3, 5, 4, 2), rng=1)
    layers = _layers(model)
    weights = [(as_array(fetch(layers[i].weight), "weight"), as_array(fetch(layers[i].bias), "bias"))
               for i in (0, 2, 4)]
    reference = _torch_mlp(weights)
    x = np.random.default_rng(2).normal(size=(6, 3))
    dout = np.random.default_rng(3).normal(size=(6, 2))
    xt = torch.tensor(x, requires_grad=True)
    yt = reference(xt)
    yt.backward(torch.from_numpy(dout))
    assert_close(model.forward(x), yt.detach().numpy(), "Sequential.forward(x)")
    assert_close(model.backward(dout), xt.grad.numpy(), "the dx returned by Sequential.backward",
                 hint="Go through the layers in reverse, feeding each backward's output on.")
    grads = model.grads()
    expected = [p.grad.numpy() for p in reference.parameters()]
    if not isinstance(grads, list) or len(grads) != len(expected):
        raise CheckFailed(f"Sequential.grads() should list {len(expected)} arrays (weight, bias "
                          f"of each Linear, in order).")
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
    gW, gb = as_array(fetch(layer.grad_weight), "grad_weight"), as_array(fetch(layer.grad_bias), "grad_bias")
    new_W, new_b = run_probe(m, "phase0.sgd_on_linear", m, layer, 0.1)
    assert_close(new_W, W - 0.1 * gW, "the weight after sgd_step",
                 hint="Update in place (p -= lr * g); `p = p - lr * g` only rebinds a name.")
    assert_close(new_b, b - 0.1 * gb, "the bias after sgd_step")


def _circle_task():
    X, y = circle(1000, seed=0)
    X_test, y_test = circle(1000, seed=1)
    return X, y, X_test, y_test


def _accuracy(logits, y_test, who: str) -> float:
    logits = as_array(logits, "the test logits")
    if logits.shape != (len(y_test), 2):
        raise CheckFailed(f"{who}: the model's test logits have shape {logits.shape}, expected "
                          f"({len(y_test)}, 2).")
    return float((logits.argmax(1) == y_test).mean())


@check("mlp", "e2e", weight=2)
def mlp_learns_the_circle_with_the_grader_loop(m):
    """A 2-4-4-2 MLP from your layers, trained by the grader's SGD loop, classifies ≥ 90%."""
    X, y, X_test, y_test = _circle_task()
    logits, losses = run_probe(m, "phase0.train_with_grader_loop", m, X, y, X_test,
                               steps=3000, lr=0.5, seed=0)
    accuracy = _accuracy(logits, y_test, "grader loop")
    if accuracy < TARGET_ACCURACY:
        raise CheckFailed(f"held-out accuracy {accuracy:.1%} < {TARGET_ACCURACY:.0%} after 3000 "
                          f"full-batch steps (loss {losses[0]:.3f} → {losses[-1]:.3f}).",
                          "If the loss does not fall, check Sequential.backward and sgd_step.")


@check("mlp", "e2e", weight=2)
def train_classifier_learns_the_circle(m):
    """Your train_classifier with its defaults trains a 2-4-4-2 MLP to ≥ 90% held-out accuracy."""
    X, y, X_test, y_test = _circle_task()
    logits, losses = run_probe(m, "phase0.train_with_student_loop", m, X, y, X_test, seed=0)
    accuracy = _accuracy(logits, y_test, "train_classifier")
    if accuracy < TARGET_ACCURACY:
        raise CheckFailed(f"held-out accuracy {accuracy:.1%} < {TARGET_ACCURACY:.0%} with your "
                          f"train_classifier (loss {losses[0]:.3f} → {losses[-1]:.3f}).",
                          "Each step: forward, softmax_cross_entropy, backward(dlogits), sgd_step.")


@fingerprint("mlp")
def mlp_outputs(m):
    model = m.make_mlp((2, 4, 4, 2), rng=3)
    x = np.random.default_rng(4).normal(size=(5, 2))
    logits = model.forward(x)
    dx = model.backward(np.ones((5, 2)))
    X, y, X_test, _ = _circle_task()
    trained, losses = run_probe(m, "phase0.train_with_grader_loop", m, X[:200], y[:200],
                                X_test[:20], steps=50, lr=0.5, seed=0)
    return {"logits": logits, "dx": dx, "layers": np.array(len(fetch(model.layers))),
            "loop_losses": losses, "loop_logits": trained}
