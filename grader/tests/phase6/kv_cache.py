"""6.4 the KV cache: logits computed incrementally through a KVCache equal a torch-built GPT's
full forward within 1e-5 in float32, cached greedy and sampled tokens equal uncached ones
exactly, update's contract, and the documented behaviour at the block size."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, run_probe
from grader.tests.phase6._helpers import paired_gpts, randint, randn, safely

F32_CACHE = {"rtol": 1e-5, "atol": 1e-5}
CACHE_HINT = ("With a cache, the T new tokens sit at positions kv_cache.length … "
              "kv_cache.length + T − 1 (position embeddings too), their queries attend to every "
              "cached key plus the new ones up to themselves (tril(diagonal=start)), and "
              "GPT.forward advances kv_cache.length by T after the last block.")


@check("gpt_kv_cache", "oracle", weight=2)
def cached_logits_equal_the_full_forward(m):
    """Feeding 12 tokens through one KVCache in chunks of 3, 1, 1, 4, 1, 2 gives the logits of
    the torch GPT's full forward within 1e-5 (float32), and the cache length grows by each
    chunk."""
    reference, student = paired_gpts(m, 300, dtype=torch.float32)
    idx = randint(301, 23, 2, 12)
    chunks = [3, 1, 1, 4, 1, 2]
    out = run_probe(m, "phase6.cached_logits", m, student, idx, chunks)
    if list(out["lengths"]) != list(np.cumsum(chunks)):
        raise CheckFailed(f"after chunks of {chunks} tokens the cache lengths were "
                          f"{list(out['lengths'])}, expected {np.cumsum(chunks).tolist()}.",
                          CACHE_HINT)
    with torch.no_grad():
        expected = reference(idx)
    assert_close(out["logits"], expected.numpy(), "the logits computed through the cache",
                 hint=CACHE_HINT, **F32_CACHE)


@check("gpt_kv_cache", "invariant", weight=2)
def cached_generation_equals_uncached(m):
    """generate(use_cache=True) returns exactly (torch.equal) the tokens of use_cache=False:
    greedy from prompts of 1 and 5 tokens past the block size (30 new tokens, block_size 12),
    and sampled with top-k 5 and the same generator seed."""
    _, student = paired_gpts(m, 310, dtype=torch.float32)
    cases = [(randint(311, 23, 3, 1), {"temperature": 0.0}, None),
             (randint(312, 23, 2, 5), {"temperature": 0.0}, None),
             (randint(313, 23, 3, 2), {"temperature": 1.0, "top_k": 5}, 9)]
    for prompt, kwargs, seed in cases:
        runs = {cache: as_array(run_probe(m, "phase6.generate", student, prompt,
                                          {"max_new_tokens": 30, "use_cache": cache, **kwargs},
                                          seed=seed)["tokens"], "the generated tokens")
                for cache in (False, True)}
        what = f"prompt of {prompt.shape[1]}, {kwargs}"
        if runs[True].shape != runs[False].shape or not np.array_equal(runs[True], runs[False]):
            first = int(np.argmax((runs[True] != runs[False]).any(axis=0))) \
                if runs[True].shape == runs[False].shape else 0
            raise CheckFailed(f"generate with the cache ({what}) differs from generate without "
                              f"it, first at position {first}.",
                              CACHE_HINT + " Past block_size, rebuild the cache from the last "
                              "block_size tokens at every step.")


@check("gpt_kv_cache", "oracle")
def kv_cache_update_appends_oldest_first(m):
    """KVCache.update(layer, k, v) returns the layer's keys and values so far, oldest first,
    concatenated along the time axis; other layers are unaffected."""
    k1, v1 = randn(320, 2, 2, 3, 4), randn(321, 2, 2, 3, 4)
    k2, v2 = randn(322, 2, 2, 1, 4), randn(323, 2, 2, 1, 4)
    returned = run_probe(m, "phase6.cache_update", m, 2, 1, [[k1, v1], [k2, v2]])
    hint = "torch.cat((cached, new), dim=2): time is the third axis of (B, nh, T, hs)."
    assert_close(returned[0][0], k1.numpy(), "the keys after the first update", hint=hint)
    assert_close(returned[1][0], torch.cat((k1, k2), 2).numpy(),
                 "the keys after the second update", hint=hint)
    assert_close(returned[1][1], torch.cat((v1, v2), 2).numpy(),
                 "the values after the second update", hint=hint)


@check("gpt_kv_cache", "stability")
def a_full_cache_refuses_more_tokens(m):
    """Feeding a 13th token through a cache of a block_size-12 model raises ValueError (there is
    no position 12), as the docstring says."""
    _, student = paired_gpts(m, 330, dtype=torch.float32)
    try:
        error = run_probe(m, "phase6.cache_overflow", m, student, randint(331, 23, 1, 13))
    except StudentError as failure:
        raise CheckFailed(f"feeding tokens one by one through a cache raised {failure.type}: "
                          f"{failure.message}", CACHE_HINT) from None
    if error != "ValueError":
        raise CheckFailed("a 13th token through the cache of a block_size-12 model "
                          + (f"raised {error}" if error else "did not raise")
                          + ", expected ValueError.",
                          "Check kv_cache.length + T against block_size in GPT.forward.")


@fingerprint("gpt_kv_cache")
def kv_cache_outputs(m):
    idx = randint(340, 23, 1, 8)

    def logits():
        _, student = paired_gpts(m, 341, dtype=torch.float32)
        out = run_probe(m, "phase6.cached_logits", m, student, idx, [3, 1, 4])
        return np.round(as_array(out["logits"], "logits").astype(np.float64), 3)

    def update():
        k1, k2 = randn(342, 1, 1, 2, 2), randn(343, 1, 1, 1, 2)
        return run_probe(m, "phase6.cache_update", m, 1, 0, [[k1, k1], [k2, k2]])[1][0]

    return {"logits": safely(logits), "update": safely(update)}
