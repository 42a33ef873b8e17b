"""Phase 3's declared contracts (grader/checks/contracts.py): every loss called in float32 and
float64 — the loss keeps the input's dtype, float32 agrees with float64, and a second call
repeats the first. Optimizers and schedules are graded on trajectories in their own modules."""

from __future__ import annotations

import torch

from grader.checks.contracts import Numeric, contract_checks

N, C, D = 6, 4, 5


def _randn(seed: int, *shape: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


LABELS = torch.tensor([0, 3, 1, 1, 2, 0])
SAME = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])


def _loss(name: str, inputs, **kwargs) -> Numeric:
    label = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return Numeric(label, lambda m, dt: (getattr(m, name), inputs(dt), kwargs))


DECLARED = {
    "cross_entropy_loss": [
        _loss("cross_entropy", lambda dt: [_randn(1, N, C, dtype=dt), LABELS]),
        _loss(
            "cross_entropy",
            lambda dt: [_randn(1, N, C, dtype=dt), LABELS],
            reduction="none",
            label_smoothing=0.1,
        ),
    ],
    "binary_losses": [
        _loss(
            "bce_with_logits", lambda dt: [_randn(2, N, C, dtype=dt), (_randn(3, N, C) > 0).to(dt)]
        ),
        _loss(
            "sigmoid_focal_loss",
            lambda dt: [_randn(2, N, C, dtype=dt), (_randn(3, N, C) > 0).to(dt)],
        ),
    ],
    "metric_losses": [
        _loss(
            "contrastive_loss",
            lambda dt: [_randn(4, N, D, dtype=dt), _randn(5, N, D, dtype=dt), SAME.to(dt)],
        ),
        _loss(
            "triplet_margin_loss",
            lambda dt: [
                _randn(6, N, D, dtype=dt),
                _randn(7, N, D, dtype=dt),
                _randn(8, N, D, dtype=dt),
            ],
        ),
        _loss("info_nce", lambda dt: [_randn(9, N, D, dtype=dt), _randn(10, N, D, dtype=dt)]),
        _loss("nt_xent", lambda dt: [_randn(11, N, D, dtype=dt), _randn(12, N, D, dtype=dt)]),
    ],
}

for _exercise, _declared in DECLARED.items():
    globals().update(contract_checks(__name__, _exercise, _declared, torch_phase=True))
