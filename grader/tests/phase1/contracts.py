"""Phase 1's declared contracts (grader/checks/contracts.py): every numeric function and module
called in float32 and float64 — the output keeps the input's dtype (a module is first moved to
it with .to), float32 agrees with float64, and a second call repeats the first."""

from __future__ import annotations

import torch

from grader.checks.contracts import Numeric, contract_checks, seeded_module

I, H, B, T = 3, 4, 2, 5


def _randn(seed: int, *shape: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


def _weights(dt, gates: int) -> list[torch.Tensor]:
    return [
        _randn(1, gates * H, I, dtype=dt),
        _randn(2, gates * H, H, dtype=dt),
        _randn(3, gates * H, dtype=dt),
        _randn(4, gates * H, dtype=dt),
    ]


def _step(name: str, gates: int, state: bool = False, outputs="float") -> Numeric:
    def build(m, dt):
        h = _randn(6, B, H, dtype=dt)
        carried = (h, _randn(7, B, H, dtype=dt)) if state else h
        return getattr(m, name), [_randn(5, B, I, dtype=dt), carried, *_weights(dt, gates)], {}

    return Numeric(name, build, outputs=outputs)


def _cell(name: str, outputs="float", **kwargs) -> Numeric:
    def build(m, dt):
        cell = seeded_module(m, getattr(m, name), I, H, **kwargs).to(dt)
        return cell, [_randn(8, B, I, dtype=dt)], {}

    return Numeric(name, build, outputs=outputs)


def _sequence(name: str, outputs, **kwargs) -> Numeric:
    def build(m, dt):
        model = seeded_module(m, getattr(m, name), I, H, **kwargs)
        return model.to(dt), [_randn(9, B, T, I, dtype=dt)], {}

    return Numeric(
        f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})", build, outputs=outputs
    )


def _bptt(m, dt):
    inputs = [_randn(10, B, T, I, dtype=dt), _randn(11, B, H, dtype=dt), *_weights(dt, 1)]
    return m.TanhRNNFunction.apply, inputs, {}


PRED, TARGET = torch.tensor([0, 2, 1, 2, 0, 1]), torch.tensor([0, 1, 1, 2, 2, 1])

DECLARED = {
    "rnn_cell": [_step("rnn_step", 1), _cell("RNNCell"), _cell("RNNCell", nonlinearity="relu")],
    "lstm_cell": [
        _step("lstm_step", 4, state=True, outputs=("float", "float")),
        _cell("LSTMCell", outputs=("float", "float")),
    ],
    "gru_cell": [_step("gru_step", 3), _cell("GRUCell")],
    "peephole_lstm": [_cell("PeepholeLSTMCell", outputs=("float", "float"))],
    "multilayer_rnn": [
        _sequence("MultiLayerRNN", ("float", "floats"), num_layers=2, cell_type="lstm"),
        _sequence("MultiLayerRNN", ("float", "float"), cell_type="gru", bidirectional=True),
    ],
    "manual_bptt": [Numeric("TanhRNNFunction.apply", _bptt)],
    "sequence_classifier": [
        Numeric(
            "SequenceClassifier",
            lambda m, dt: (
                seeded_module(m, m.SequenceClassifier, I, H, 3).to(dt),
                [_randn(12, B, T, I, dtype=dt)],
                {},
            ),
        ),
    ],
    "metrics": [
        Numeric(
            "accuracy",
            lambda m, dt: (m.accuracy, [PRED, TARGET], {}),
            outputs="scalar",
            dtypes=("float64",),
        ),
        Numeric(
            "confusion_matrix",
            lambda m, dt: (m.confusion_matrix, [PRED, TARGET, 3], {}),
            outputs="int",
            dtypes=("float64",),
        ),
        Numeric(
            "precision_recall_f1",
            lambda m, dt: (m.precision_recall_f1, [PRED, TARGET, 3], {"average": None}),
            outputs=(None, None, None),
            dtypes=("float64",),
        ),
    ],
}

for _exercise, _declared in DECLARED.items():
    globals().update(contract_checks(__name__, _exercise, _declared, torch_phase=True))
