"""6.4 the KV cache and generate: logits computed incrementally through a KVCache equal a
torch-built GPT's full forward within 1e-5 in float32, cached greedy and sampled tokens equal
uncached ones exactly, generate against greedy decoding by a torch-built GPT and its documented
calls of the model, update's contract, and the documented behaviour at the block size."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, run_probe
from grader.tests.phase6._helpers import (
    copy_weights,
    paired_gpts,
    randint,
    randn,
    safely,
    student_gpt,
)
from grader.tests.phase6._reference import random_gpt

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


@check("gpt_kv_cache", "oracle")
def greedy_generate_equals_a_torch_gpt(m):
    """generate(temperature=0, use_cache=False) appends the tokens greedy decoding by the torch
    GPT gives, past the block size too (the context is the last block_size tokens); the prompt
    is untouched and training mode is restored."""
    reference, student = paired_gpts(m, 200)
    prompt = randint(201, 23, 2, 3)
    out = run_probe(m, "phase6.generate", student, prompt,
                    {"max_new_tokens": 20, "temperature": 0.0, "use_cache": False}, train=True)
    assert_close(out["tokens"], reference.greedy(prompt, 20).numpy(),
                 "the greedy tokens of generate (prompt of 3, 20 new tokens, block_size 12)",
                 hint="Each step: logits of the LAST position of the last block_size tokens, "
                      "sample_next, append.")
    if not out["idx_unchanged"] or not out["training_after"]:
        raise CheckFailed("generate changed the prompt or left the model in eval mode.",
                          "Concatenate into a new tensor; remember model.training and restore "
                          "it with model.train(was_training).")


@check("gpt_kv_cache", "invariant")
def generate_is_reproducible_with_a_generator(m):
    """generate(top_k=5, generator) gives the same tokens for the same seed and others for
    another; every new token is a valid id."""
    _, student = paired_gpts(m, 210)
    prompt = randint(211, 23, 4, 2)
    kwargs = {"max_new_tokens": 15, "temperature": 1.0, "top_k": 5, "use_cache": False}
    runs = [as_array(run_probe(m, "phase6.generate", student, prompt, kwargs, seed=s)["tokens"],
                     "the generated tokens") for s in (7, 7, 8)]
    assert_close(runs[1], runs[0], "two generations with generator seed 7",
                 hint="Pass the generator on to sample_next at every step.")
    if np.array_equal(runs[2], runs[0]):
        raise CheckFailed("generator seeds 7 and 8 generated the same 60 tokens.",
                          "Pass the generator on to sample_next at every step.")
    if runs[0].min() < 0 or runs[0].max() >= 23:
        raise CheckFailed("generate produced token ids outside the vocabulary.")


@check("gpt_kv_cache", "invariant")
def generate_runs_the_model_as_documented(m):
    """generate returns int64 tokens; use_cache=True runs the model once on the prompt, then on
    one new token at a time through a cache, with a new prefill of the last block_size tokens
    whenever the cache is full; use_cache=False runs it on the whole cropped context every
    time, without a cache."""
    _, student = paired_gpts(m, 220, dtype=torch.float32)
    prompt = randint(221, 23, 2, 4)
    for use_cache in (True, False):
        out = run_probe(m, "phase6.generate", student, prompt,
                        {"max_new_tokens": 12, "temperature": 0.0, "use_cache": use_cache})
        tokens = as_array(out["tokens"], "the generated tokens")
        if tokens.dtype != np.int64:
            raise CheckFailed(f"generate returned {tokens.dtype} tokens, expected int64.",
                              "Concatenate sample_next's int64 tokens onto idx: never cast.")
        lengths = [min(4 + k, 12) for k in range(12)]  # the context each step sees
        if use_cache:
            expected = [[4, True]] + [[1, True]] * 8 + [[12, True]] * 3
        else:
            expected = [[length, False] for length in lengths]
        calls = [list(call) for call in out["calls"]]
        if calls != expected:
            raise CheckFailed(
                f"generate(use_cache={use_cache}), prompt of 4, 12 new tokens, block_size 12, "
                f"called the model with [tokens, a cache given] = {calls}, expected {expected}.",
                "use_cache=True: a prefill of idx[:, -block_size:] with a new KVCache, then "
                "model(idx[:, -1:], kv_cache=cache) while the cache has room; use_cache=False: "
                "model(idx[:, -block_size:]) every step.")


@check("gpt_kv_cache", "invariant")
def generate_switches_dropout_off(m):
    """From training mode with dropout 0.5, greedy generate (with and without the cache) gives
    the torch GPT's greedy tokens: it decodes in eval mode, and restores training mode."""
    reference = random_gpt(230, dtype=torch.float32)
    student = student_gpt(m, dropout=0.5)
    copy_weights(m, student, reference)
    prompt = randint(231, 23, 2, 3)
    expected = reference.greedy(prompt, 14).numpy()
    for use_cache in (True, False):
        out = run_probe(m, "phase6.generate", student, prompt,
                        {"max_new_tokens": 14, "temperature": 0.0, "use_cache": use_cache},
                        train=True)
        assert_close(out["tokens"], expected, f"greedy tokens from training mode with dropout "
                     f"0.5 (use_cache={use_cache})",
                     hint="generate switches to model.eval() (dropout off) and restores the "
                          "mode it found with model.train(was_training).")
        if not out["training_after"]:
            raise CheckFailed("generate left the model in eval mode.",
                              "Restore it with model.train(was_training).")


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

    def greedy():
        _, student = paired_gpts(m, 301)
        return run_probe(m, "phase6.generate", student, randint(302, 23, 1, 3),
                         {"max_new_tokens": 12, "temperature": 0.0, "use_cache": False})["tokens"]

    return {"logits": safely(logits), "update": safely(update), "greedy": safely(greedy)}
