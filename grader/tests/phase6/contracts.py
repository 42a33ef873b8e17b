"""Phase 6's declared contracts for 6.2 – 6.5 (grader/checks/contracts.py): the GPT, the
filters, the greedy sampler, the cache update and the loss, each called in float32 and float64
— floating outputs keep the input's dtype, float32 agrees with float64, and a deterministic
call repeats itself."""

from __future__ import annotations

import torch

from grader.checks.contracts import Numeric, contract_checks, seeded_module

SIZES = {"vocab_size": 11, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 8}


def _randn(seed: int, *shape: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


def _ids(seed: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, SIZES["vocab_size"], shape,
                         generator=torch.Generator().manual_seed(seed))


def _gpt(m, dt):
    return seeded_module(m, m.GPT, m.GPTConfig(**SIZES)).to(dt)


def _cache_update(m, dt):
    cache = m.KVCache(1)
    cache.update(0, _randn(3, 1, 2, 3, 4, dtype=dt), _randn(4, 1, 2, 3, 4, dtype=dt))
    return cache.update, [0, _randn(5, 1, 2, 1, 4, dtype=dt), _randn(6, 1, 2, 1, 4, dtype=dt)], {}


DECLARED = {
    "gpt_model": [
        Numeric("GPT(idx, targets)", lambda m, dt: (_gpt(m, dt), [_ids(1, 2, 8), _ids(2, 2, 8)],
                                                    {}), outputs=("float", "float")),
        Numeric("GPT(idx)", lambda m, dt: (_gpt(m, dt), [_ids(3, 2, 5)], {}),
                outputs=("float", None)),
    ],
    "gpt_sampling": [
        Numeric("filter_logits(top_k=3, top_p=0.8)",
                lambda m, dt: (m.filter_logits, [_randn(7, 3, 11, dtype=dt)],
                               {"top_k": 3, "top_p": 0.8})),
        Numeric("sample_next(temperature=0)",
                lambda m, dt: (m.sample_next, [_randn(8, 3, 11, dtype=dt)],
                               {"temperature": 0.0}), outputs="int"),
    ],
    "gpt_kv_cache": [
        Numeric("KVCache.update", _cache_update, outputs=("float", "float"), deterministic=False),
    ],
    "trainer": [
        Numeric("language_model_loss",
                lambda m, dt: (m.language_model_loss, [_gpt(m, dt), [_ids(9, 2, 8),
                                                                     _ids(10, 2, 8)]], {}),
                outputs=("float", "scalar")),
    ],
}

for _exercise, _declared in DECLARED.items():
    globals().update(contract_checks(__name__, _exercise, _declared, torch_phase=True))
