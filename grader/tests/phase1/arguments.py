"""Every documented argument, mode and error of phase 1 that the topic files do not reach: the
documented ValueErrors, a zero default state for the peephole LSTM, MultiLayerRNN's
initialisation, and the classifier's dropout between layers. (Found by `make mutate`: each
check states a contract, not a mutant.)"""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check
from grader.checks.contracts import raises
from grader.checks.oracle import assert_close
from grader.session import run_probe
from grader.tests.phase1._helpers import check_uniform_init, load, randn

ERROR_HINT = "Check the argument against the documented choices and raise ValueError otherwise."


@check("rnn_cell", "invariant")
def rnn_step_rejects_an_unknown_nonlinearity(m):
    """rnn_step(..., nonlinearity) raises ValueError for anything but "tanh" and "relu"."""
    x, h = randn(400, 2, 3), randn(401, 2, 4)
    w_ih, w_hh = randn(402, 4, 3), randn(403, 4, 4)
    raises(
        lambda: m.rnn_step(x, h, w_ih, w_hh, nonlinearity="sigmoid"),
        "ValueError",
        'rnn_step(..., nonlinearity="sigmoid")',
        ERROR_HINT,
    )


@check("peephole_lstm", "oracle")
def peephole_lstm_starts_from_zeros_when_state_is_none(m):
    """PeepholeLSTMCell(x) with state=None equals the call with h = c = 0 of shape (B, H), for a
    batch size unlike the input size and H = 7 (so that four gate blocks are not five)."""
    B, I, H = 3, 5, 7
    cell = m.PeepholeLSTMCell(I, H)
    torch.manual_seed(404)
    state = {
        name: torch.empty(*shape, dtype=torch.float64).uniform_(-0.4, 0.4)
        for name, shape in (
            ("weight_ih", (4 * H, I)),
            ("weight_hh", (4 * H, H)),
            ("bias_ih", (4 * H,)),
            ("bias_hh", (4 * H,)),
            ("weight_ci", (H,)),
            ("weight_cf", (H,)),
            ("weight_co", (H,)),
        )
    }
    load(m, cell, state, "PeepholeLSTMCell")
    x, zeros = randn(405, B, I), torch.zeros(B, H, dtype=torch.float64)
    explicit = cell(x, (zeros, zeros))
    default = cell(x)
    for index, name in enumerate(("h'", "c'")):
        assert_close(
            default[index],
            explicit[index].detach().numpy(),
            f"PeepholeLSTMCell({I}, {H})(x) without a state: {name}",
            hint="state=None means h = c = zeros of shape (B, H) and x's dtype.",
        )


@check("multilayer_rnn", "oracle")
def multilayer_rnn_initialises_like_torch_and_rejects_unknown_cells(m):
    """MultiLayerRNN draws every parameter of every layer and direction from U(−1/√H, 1/√H),
    and raises ValueError for an unknown cell_type."""
    I, H = 60, 15
    shapes = {}
    for layer, width in ((0, I), (1, 2 * H)):
        for suffix in ("", "_reverse"):
            shapes |= {
                f"weight_ih_l{layer}{suffix}": (3 * H, width),
                f"weight_hh_l{layer}{suffix}": (3 * H, H),
                f"bias_ih_l{layer}{suffix}": (3 * H,),
                f"bias_hh_l{layer}{suffix}": (3 * H,),
            }
    check_uniform_init(m, "MultiLayerRNN", (I, H, 2, "gru", True, True, 0.0, True), H, shapes)
    raises(
        lambda: m.MultiLayerRNN(3, 4, cell_type="transformer"),
        "ValueError",
        'MultiLayerRNN(3, 4, cell_type="transformer")',
        ERROR_HINT,
    )


@check("sequence_classifier", "invariant")
def sequence_classifier_drops_out_between_layers_in_training_only(m):
    """SequenceClassifier(num_layers=2, dropout=0.5) passes dropout to its MultiLayerRNN: in
    training mode two seeds give different logits; in eval mode they agree."""
    model = m.SequenceClassifier(3, 6, 4, cell_type="gru", num_layers=2, dropout=0.5).double()
    x = randn(406, 5, 7, 3)

    def logits(train: bool, seed: int) -> np.ndarray:
        out = run_probe(m, "phase2.run", model, [x], {}, train=train, seed=seed)
        return np.asarray(out)

    if np.allclose(logits(True, 1), logits(True, 2)):
        raise CheckFailed(
            "in training mode with dropout = 0.5 and two layers, two seeds give the same "
            "logits: no dropout is applied between the layers.",
            "Pass dropout on: rnn = MultiLayerRNN(..., dropout=dropout, ...).",
        )
    assert_close(
        logits(False, 1),
        logits(False, 2),
        "eval-mode logits under two seeds",
        hint="Dropout is for training mode only.",
    )


@check("metrics", "invariant")
def precision_recall_f1_rejects_an_unknown_average(m):
    """precision_recall_f1(..., average) raises ValueError for anything but None, "macro" and
    "micro"."""
    pred, target = torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0])
    raises(
        lambda: m.precision_recall_f1(pred, target, 2, average="weighted"),
        "ValueError",
        'precision_recall_f1(..., average="weighted")',
        ERROR_HINT,
    )
