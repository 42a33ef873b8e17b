"""Phase 4's declared contracts (grader/checks/contracts.py): every numeric function and module
called in float32 and float64 — outputs keep the input's dtype (a module is first moved to it
with .to), float32 agrees with float64, and a second call repeats the first."""

from __future__ import annotations

import torch

from grader.checks.contracts import Numeric, contract_checks, seeded_module

B, T, D, H, F = 2, 5, 8, 2, 16


def _randn(seed: int, *shape: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


def _module(name: str, args: tuple, inputs, **kwargs) -> Numeric:
    def build(m, dt):
        return seeded_module(m, getattr(m, name), *args, **kwargs).to(dt), inputs(dt), {}

    label = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return Numeric(label, build)


def _x(dt):
    return [_randn(1, B, T, D, dtype=dt)]


DECLARED = {
    "blocks_erf": [Numeric("erf", lambda m, dt: (m.erf, [_randn(2, 3, 4, dtype=dt) * 2], {}))],
    "blocks_gelu": [
        Numeric(
            f"gelu(approximate={a!r})",
            lambda m, dt, a=a: (m.gelu, [_randn(3, 3, 4, dtype=dt) * 2], {"approximate": a}),
        )
        for a in ("none", "tanh")
    ]
    + [_module("GELU", (), _x, approximate="tanh")],
    "blocks_layernorm": [
        Numeric(
            "layer_norm",
            lambda m, dt: (
                m.layer_norm,
                [*_x(dt), (D,), _randn(4, D, dtype=dt), _randn(5, D, dtype=dt)],
                {},
            ),
        ),
        _module("LayerNorm", (D,), _x),
    ],
    "blocks_rmsnorm": [
        Numeric(
            "rms_norm", lambda m, dt: (m.rms_norm, [*_x(dt), (D,), _randn(6, D, dtype=dt)], {})
        ),
        _module("RMSNorm", (D,), _x),
    ],
    "blocks_ffn": [_module("PositionwiseFeedForward", (D, F), _x)],
    "blocks_encoder_layer": [
        _module("TransformerEncoderLayer", (D, H, F), _x, dropout=0.0, norm_first=norm_first)
        for norm_first in (False, True)
    ],
    "blocks_decoder_layer": [
        _module(
            "TransformerDecoderLayer",
            (D, H, F),
            lambda dt: [*_x(dt), _randn(7, B, T + 1, D, dtype=dt)],
            dropout=0.0,
        )
    ],
}

for _exercise, _declared in DECLARED.items():
    globals().update(contract_checks(__name__, _exercise, _declared, torch_phase=True))
