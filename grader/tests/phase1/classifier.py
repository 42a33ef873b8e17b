"""1.7 SequenceClassifier: logits and gradients against torch's recurrent layer + nn.Linear with
copied weights, predict() in eval mode, and learning a memory task (labels stay in the judge)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.session import fetch, run_probe
from grader.tests.phase1._helpers import compare_vjp, load, randn, state_of

TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
FEATURES_HINT = ("Classify from h_n of the top layer: h_n[-D:] (D directions), concatenated "
                 "[forward, backward]; for the LSTM take h, not c. output[:, -1] is wrong for the "
                 "backward direction, which has read only the last step there.")
TARGET_ACCURACY = 0.9


class Reference(nn.Module):
    """torch's recurrent layer and a Linear head on the top layer's final hidden states."""

    def __init__(self, cell_type: str, I: int, H: int, C: int, num_layers: int,
                 bidirectional: bool, dropout: float = 0.0):
        super().__init__()
        self.cell_type, self.directions = cell_type, 2 if bidirectional else 1
        self.rnn = TORCH[cell_type](I, H, num_layers, batch_first=True, dropout=dropout,
                                    bidirectional=bidirectional)
        self.head = nn.Linear(H * self.directions, C)

    def forward(self, x):
        _, h_n = self.rnn(x)
        h_n = h_n[0] if self.cell_type == "lstm" else h_n
        return self.head(torch.cat(list(h_n[-self.directions:]), dim=1))


CONFIGS = [("gru", 1, False), ("lstm", 2, True), ("rnn", 2, False), ("gru", 1, True)]


def _pair(m, cell_type: str, num_layers: int, bidirectional: bool, seed: int, I=3, H=4, C=5,
          dropout: float = 0.0, spread: bool = False):
    torch.manual_seed(seed)
    ref = Reference(cell_type, I, H, C, num_layers, bidirectional, dropout).double()
    if spread:  # a zero bias and a steep head: the predicted class then depends on the input
        with torch.no_grad():
            ref.head.bias.zero_()
            ref.head.weight.mul_(10)
    model = m.SequenceClassifier(I, H, C, cell_type=cell_type, num_layers=num_layers,
                                 bidirectional=bidirectional, dropout=dropout)
    load(m, model, state_of(ref), f"SequenceClassifier({cell_type!r}, num_layers={num_layers}, "
                                  f"bidirectional={bidirectional})")
    return ref, model


@check("sequence_classifier", "oracle")
def sequence_classifier_matches_torch(m):
    """Logits equal torch's RNN/LSTM/GRU + nn.Linear on the last states (stacked, bidirectional)."""
    for k, (cell_type, layers, bidirectional) in enumerate(CONFIGS):
        ref, model = _pair(m, cell_type, layers, bidirectional, seed=200 + k)
        x = randn(210 + k, 3, 6, 3)
        with torch.no_grad():
            want = ref(x)
        assert_close(model(x), want.numpy(), f"logits of the {layers}-layer "
                     f"{'bidirectional ' if bidirectional else ''}{cell_type.upper()} classifier",
                     hint=FEATURES_HINT)


@check("sequence_classifier", "gradient")
def sequence_classifier_gradients_match_torch(m):
    """Gradients for the input and every parameter (rnn.* and head.*) equal torch's."""
    ref, model = _pair(m, "lstm", 2, True, seed=220)
    compare_vjp(m, model, ref, [randn(221, 2, 5, 3)], ["x"], ["logits"],
                "2-layer bidirectional LSTM classifier", FEATURES_HINT)


@check("sequence_classifier", "oracle")
def sequence_classifier_predicts_in_eval_mode(m):
    """predict(x) is the int64 argmax of the eval-mode logits and restores the training mode."""
    ref, model = _pair(m, "gru", 2, False, seed=230, dropout=1.0, spread=True)
    x = randn(231, 16, 5, 3, scale=2.0)
    ref.eval()
    with torch.no_grad():
        want = ref(x).argmax(dim=1)
    model.train()
    labels = model.predict(x)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        raise CheckFailed(f"predict should return an int64 tensor of class indices, got "
                          f"{getattr(labels, 'dtype', type(labels).__name__)}.")
    assert_close(labels, want.numpy(), "predict(x) with dropout=1.0 between the layers",
                 hint="Switch to eval mode inside predict (dropout off), then argmax over dim 1.")
    if fetch(model.training) is not True:
        raise CheckFailed("after predict() the model is left in eval mode although it was "
                          "training: restore the previous mode (self.train(was_training)).")


def _memory_task(n: int, seed: int, T: int = 8, classes: int = 3):
    """Sequences whose class is the argmax of their *first* step: the RNN must remember it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, classes)).astype(np.float32)
    return torch.from_numpy(X), torch.from_numpy(X[:, 0].argmax(axis=1))


@check("sequence_classifier", "e2e", weight=2)
def sequence_classifier_learns_to_remember_the_first_step(m):
    """Trained by the grader's Adam loop, a GRU classifier labels held-out sequences ≥ 90%."""
    X, y = _memory_task(2000, seed=0)
    X_test, y_test = _memory_task(500, seed=1)
    config = {"seed": 0, "hidden_size": 16, "num_classes": 3, "cell_type": "gru", "lr": 0.02,
              "steps": 150, "batch_size": 64}
    logits, losses = run_probe(m, "phase1.train_classifier", m, X, y, X_test, config)
    logits, losses = as_array(logits, "the test logits"), as_array(losses, "the losses")
    if logits.shape != (len(y_test), 3):
        raise CheckFailed(f"the test logits have shape {logits.shape}, expected "
                          f"({len(y_test)}, 3).")
    accuracy = float((logits.argmax(1) == y_test.numpy()).mean())
    if accuracy < TARGET_ACCURACY:
        raise CheckFailed(f"held-out accuracy {accuracy:.1%} < {TARGET_ACCURACY:.0%} after "
                          f"{config['steps']} Adam steps (loss {losses[0]:.3f} → "
                          f"{losses[-1]:.3f}).",
                          "The label is decided by the first step: if the loss stalls near "
                          "log 3 ≈ 1.10, check that gradients reach the early steps.")


@fingerprint("sequence_classifier")
def sequence_classifier_outputs(m):
    outputs = {}
    for k, (cell_type, layers, bidirectional) in enumerate([("lstm", 2, True), ("gru", 2, True)]):
        torch.manual_seed(240 + k)
        ref = Reference(cell_type, 3, 4, 5, layers, bidirectional).double()
        model = m.SequenceClassifier(3, 4, 5, cell_type=cell_type, num_layers=layers,
                                     bidirectional=bidirectional)
        run_probe(m, "phase1.load_weights", model, state_of(ref), False)
        outputs[f"{cell_type}_logits"] = model(randn(250 + k, 3, 6, 3))
    torch.manual_seed(260)
    ref = Reference("gru", 3, 4, 5, 2, False, dropout=1.0).double()
    with torch.no_grad():
        ref.head.bias.zero_()
        ref.head.weight.mul_(10)
    model = m.SequenceClassifier(3, 4, 5, cell_type="gru", num_layers=2, dropout=1.0)
    run_probe(m, "phase1.load_weights", model, state_of(ref), False)
    model.train()
    outputs["predict"] = model.predict(randn(261, 16, 5, 3, scale=2.0))
    return outputs
