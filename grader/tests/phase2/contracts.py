"""Phase 2's declared contracts (grader/checks/contracts.py): every numeric function and module
called in float32 and float64 — outputs keep the input's dtype (a module is first moved to it
with .to), float32 agrees with float64, and a second call repeats the first. The masks are
bool by contract and graded in masks.py; additive_mask and sinusoidal_table take the dtype as
an argument."""

from __future__ import annotations

import torch

from grader.checks.contracts import Numeric, contract_checks, seeded_module

B, T, E, H = 2, 5, 8, 2


def _randn(seed: int, *shape: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


KEEP = torch.rand(T, T, generator=torch.Generator().manual_seed(3)) < 0.6
KEEP[:, 0] = True


def _module(name: str, args: tuple, inputs, outputs="float", label: str = "", **kwargs):
    def build(m, dt):
        module = seeded_module(m, getattr(m, name), *args, **kwargs).to(dt)
        return module, inputs(dt), {}

    return Numeric(label or name, build, outputs=outputs)


def _qkv(dt):
    return [_randn(seed, B, T, E, dtype=dt) for seed in (4, 5, 6)]


DECLARED = {
    "attn_masked_softmax": [
        Numeric(
            "masked_softmax",
            lambda m, dt: (m.masked_softmax, [_randn(1, B, T, T, dtype=dt), KEEP], {}),
        ),
    ],
    "attn_scoring": [
        Numeric(
            "attend",
            lambda m, dt: (
                m.attend,
                [_randn(2, B, T, T, dtype=dt), _randn(3, B, T, E, dtype=dt), KEEP],
                {},
            ),
            outputs=("float", "float"),
        ),
        _module("AdditiveAttention", (E, E, 6), lambda dt: _qkv(dt), ("float", "float")),
        _module("MultiplicativeAttention", (E,), lambda dt: _qkv(dt), ("float", "float")),
    ],
    "attn_masks": [
        Numeric("additive_mask", lambda m, dt: (m.additive_mask, [KEEP], {"dtype": dt})),
    ],
    "attn_sdpa": [
        Numeric(
            "scaled_dot_product_attention",
            lambda m, dt: (
                m.scaled_dot_product_attention,
                _qkv(dt),
                {"attn_mask": KEEP, "is_causal": True},
            ),
            outputs=("float", "float"),
        ),
    ],
    "attn_mha": [
        _module("MultiHeadAttention", (E, H), lambda dt: _qkv(dt), ("float", "float")),
    ],
    "attn_cross": [
        _module("CrossAttention", (E, H), lambda dt: _qkv(dt)[:2], ("float", None)),
    ],
    "attn_banded": [
        Numeric(
            "banded_attention",
            lambda m, dt: (m.banded_attention, _qkv(dt), {"window": 2, "causal": False}),
        ),
    ],
    "attn_positional": [
        Numeric("sinusoidal_table", lambda m, dt: (m.sinusoidal_table, [T, E], {"dtype": dt})),
        _module("SinusoidalPositionalEncoding", (E,), lambda dt: [_randn(7, B, T, E, dtype=dt)]),
        _module("LearnedPositionalEmbedding", (16, E), lambda dt: [_randn(8, B, T, E, dtype=dt)]),
    ],
    "attn_rope": [
        _module("RotaryEmbedding", (E,), lambda dt: [_randn(9, B, H, T, E, dtype=dt)]),
    ],
}

for _exercise, _declared in DECLARED.items():
    globals().update(contract_checks(__name__, _exercise, _declared, torch_phase=True))
