"""6.2 the GPT: logits and gradients against a GPT assembled from torch built-ins with the same
weights (float64), causality, weight tying, GPT-2 initialisation, the loss at init, and the
documented contract (block size, dtypes, dropout, targets=None)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, run_probe
from grader.tests.phase6._helpers import paired_gpts, randint, randn, safely, student_gpt

TIGHT = {"rtol": 1e-7, "atol": 1e-9}  # float64, the same formulas in another order
GRAD = {"rtol": 1e-6, "atol": 1e-8}
ARCH_HINT = ("x = wte(idx) + wpe(0 … T−1); each block: x = x + attn(ln_1(x)); "
             "x = x + mlp(ln_2(x)) (pre-norm); then ln_f and lm_head. Attention is causal, "
             "scaled by 1/√head_dim, over n_head heads of c_attn's q, k, v; mlp is linear1 → "
             "GELU (tanh approximation) → linear2.")
CACHE_PATH_HINT = ("With a kv_cache, the T new tokens sit at positions kv_cache.length … "
                   "kv_cache.length + T − 1; each attention layer appends their keys and values "
                   "with kv_cache.update(layer, k, v) and attends over all of them, query i "
                   "seeing keys 0 … start + i (tril(diagonal=start) of a bool mask, True = may "
                   "attend).")
CONFIGS = [  # (description, config overrides)
    ("2 layers, 2 heads, biases", {}),
    ("3 layers, 4 heads, bias=False", {"n_layer": 3, "n_head": 4, "bias": False}),
]


def _forward(m, model, idx, targets=None, **kwargs) -> dict:
    return run_probe(m, "phase6.forward", model, idx, targets, **kwargs)


@check("gpt_model", "oracle", weight=3)
def gpt_logits_and_loss_match_a_torch_gpt(m):
    """GPT's logits equal those of a GPT built from nn.Embedding, nn.LayerNorm, nn.Linear and
    F.scaled_dot_product_attention with the same weights (float64, eval mode), and its loss is
    F.cross_entropy of them (targets −100 ignored)."""
    for k, (description, config) in enumerate(CONFIGS):
        reference, student = paired_gpts(m, 10 + k, **config)
        for T in (12, 5):
            idx = randint(20 + k + T, 23, 2, T)
            targets = randint(30 + k + T, 23, 2, T)
            targets[0, -2:] = -100
            out = _forward(m, student, idx, targets)
            with torch.no_grad():
                logits = reference(idx)
            assert_close(out["logits"], logits.numpy(),
                         f"the logits of your GPT ({description}, T = {T})", hint=ARCH_HINT,
                         **TIGHT)
            expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
            assert_close(out["loss"], expected.numpy(), f"the loss ({description}, T = {T})",
                         hint="loss = your cross_entropy(logits.flatten(0, 1), "
                              "targets.flatten()): the mean over the counted targets.", **TIGHT)


@check("gpt_model", "gradient")
def gpt_gradients_match_torch(m):
    """The gradient of Σ u·logits + loss with respect to every parameter equals torch
    autograd's through the built-in GPT (the tied weight gets both its gradients)."""
    reference, student = paired_gpts(m, 40)
    idx, targets = randint(41, 23, 2, 7), randint(42, 23, 2, 7)
    upstream = randn(43, 2, 7, 23)
    got = run_probe(m, "phase6.logits_gradients", student, idx, targets, upstream)
    logits = reference(idx)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    ((logits * upstream).sum() + loss).backward()
    for name, p in reference.named_parameters():
        if got.get(name) is None:
            raise CheckFailed(f"no gradient reaches the parameter {name} of your GPT.",
                              "Use every parameter in forward (not a copy or .data).")
        assert_close(got[name], p.grad.numpy(), f"∂/∂{name}", hint=ARCH_HINT, **GRAD)


@check("gpt_model", "invariant")
def gpt_future_tokens_never_change_earlier_logits(m):
    """Changing the tokens from position t on leaves the logits of positions 0 … t−1 unchanged
    (and changes those from t on): the model is causal."""
    student = student_gpt(m).double()
    idx = randint(50, 23, 2, 12)
    base = as_array(_forward(m, student, idx)["logits"], "the logits")
    for t in (1, 5, 11):
        changed = idx.clone()
        changed[:, t:] = (changed[:, t:] + 1 + randint(51 + t, 22, 2, 12 - t)) % 23
        logits = as_array(_forward(m, student, changed)["logits"], "the logits")
        assert_close(logits[:, :t], base[:, :t],
                     f"the logits of positions 0 … {t - 1} after changing the tokens from "
                     f"position {t} on", hint="Attention must be causal: token t may attend to "
                     "tokens 0 … t only (is_causal=True).", **TIGHT)
        if np.allclose(logits[:, t:], base[:, t:]):
            raise CheckFailed(f"changing the tokens from position {t} on did not change the "
                              "logits there: the output ignores its input.", ARCH_HINT)


@check("gpt_model", "invariant")
def gpt_head_is_tied_to_the_token_embedding(m):
    """lm_head.weight is wte.weight itself (one tensor, one storage, one parameter)."""
    info = run_probe(m, "phase6.tying", student_gpt(m))
    if not info["same_object"]:
        raise CheckFailed(
            "lm_head.weight is not the same tensor as wte.weight"
            + (" (they share storage, but are two Parameters)" if info["same_storage"] else "")
            + ": the head is not tied to the token embedding.",
            "Tie them by assigning the Parameter itself: self.lm_head.weight = self.wte.weight "
            "(copying the values, or .data, makes two parameters that drift apart).")
    if "lm_head.weight" in info["parameters"]:
        raise CheckFailed("lm_head.weight is listed as a parameter of its own.",
                          "Assign wte.weight to lm_head.weight: named_parameters() then lists "
                          "the shared tensor once.")


def _init_statistics(m, n_layer: int = 4):
    model = student_gpt(m, vocab_size=97, block_size=32, n_layer=n_layer, n_head=4, n_embd=64)
    return run_probe(m, "phase6.parameter_statistics", model)


@check("gpt_model", "invariant")
def gpt_initialisation_follows_gpt2(m):
    """At init: embeddings and Linear weights have mean 0 and std 0.02, the residual projections
    (attn.c_proj, mlp.linear2) std 0.02/√(2·n_layer), biases 0, LayerNorms weight 1 and bias 0
    (n_layer = 4; stds within 10%, about 9 standard errors)."""
    stats = _init_statistics(m)
    residual = 0.02 / math.sqrt(8)
    for name, (mean, std, count) in stats.items():
        leaf = name.rsplit(".", 1)[-1]
        if ".ln_" in f".{name}" or name.startswith("ln_f"):
            target = (1.0, 0.0) if leaf == "weight" else (0.0, 0.0)
            if abs(mean - target[0]) > 1e-12 or std > 1e-12:
                raise CheckFailed(f"{name} starts with mean {mean:.4g} and std {std:.3g}, "
                                  f"expected all {target[0]:g}.",
                                  "LayerNorm starts as the identity: weight 1, bias 0.")
        elif leaf == "bias":
            if abs(mean) > 1e-12 or std > 1e-12:
                raise CheckFailed(f"{name} starts with mean {mean:.4g} and std {std:.3g}, "
                                  "expected zeros.", "GPT-2 initialises every bias to 0.")
        else:
            expected = residual if name.endswith(("c_proj.weight", "linear2.weight")) else 0.02
            if abs(std - expected) > 0.1 * expected or abs(mean) > 0.15 * expected:
                raise CheckFailed(
                    f"{name} ({count} values) starts with mean {mean:.3g} and std {std:.4g}, "
                    f"expected mean 0 and std {expected:.4g}.",
                    "GPT-2 init: N(0, 0.02²) for every Linear and Embedding weight, then "
                    "N(0, (0.02/√(2·n_layer))²) for the residual projections attn.c_proj and "
                    "mlp.linear2 — they are added to the residual stream 2·n_layer times.")


@check("gpt_model", "e2e")
def gpt_loss_at_init_is_about_log_vocab(m):
    """At init the loss on random targets is ln(vocab) within 0.1 (V = 257: a model that
    knows nothing predicts the uniform distribution)."""
    model = student_gpt(m, vocab_size=257, block_size=32, n_layer=2, n_head=4, n_embd=64)
    idx, targets = randint(60, 257, 4, 32), randint(61, 257, 4, 32)
    loss = float(as_array(_forward(m, model, idx, targets)["loss"], "the loss"))
    if not abs(loss - math.log(257)) <= 0.1:
        raise CheckFailed(f"the loss at init is {loss:.4f}, expected ln 257 = "
                          f"{math.log(257):.4f} ± 0.1.",
                          "Large initial logits make confident wrong guesses: initialise the "
                          "embeddings and Linear weights with std 0.02, biases 0.")


@check("gpt_model", "stability")
def gpt_keeps_its_contract(m):
    """T = block_size works and T > block_size raises ValueError; targets=None gives loss None;
    float32 stays float32; idx is not changed; dropout acts in training mode only."""
    model = student_gpt(m)
    out = _forward(m, model, randint(70, 23, 2, 12))
    if not out["loss_is_none"]:
        raise CheckFailed("forward(idx) without targets returned a loss that is not None.",
                          "Return (logits, None) when targets is None.")
    if not out["idx_unchanged"]:
        raise CheckFailed("forward changed idx in place.", "Never write into the input.")
    if as_array(out["logits"], "the logits").dtype != np.float32:
        raise CheckFailed("a float32 GPT returned logits that are not float32.",
                          "Do not cast: the logits keep the parameters' dtype.")
    try:
        _forward(m, model, randint(71, 23, 1, 13))
    except StudentError as error:
        if error.type != "ValueError":
            raise CheckFailed(f"a sequence longer than block_size raised {error.type}, "
                              "expected ValueError.", "Check T against config.block_size "
                              "first and raise ValueError with a clear message.") from None
    else:
        raise CheckFailed("a sequence of 13 tokens with block_size 12 did not raise.",
                          "Raise ValueError: there are no position embeddings beyond "
                          "block_size.")
    noisy = student_gpt(m, dropout=0.5)
    idx = randint(72, 23, 1, 8)
    evals = [as_array(_forward(m, noisy, idx, seed=s)["logits"], "the logits") for s in (1, 2)]
    trains = [as_array(_forward(m, noisy, idx, train=True, seed=s)["logits"], "the logits")
              for s in (1, 2)]
    assert_close(evals[1], evals[0], "two eval-mode calls with dropout = 0.5",
                 hint="Dropout is the identity in eval mode (nn.Dropout, and dropout_p = 0 in "
                      "attention when not self.training).")
    if np.allclose(trains[0], trains[1]) or np.allclose(trains[0], evals[0]):
        raise CheckFailed("with dropout = 0.5 the training-mode output is not random.",
                          "Apply config.dropout after the embeddings, on the attention weights "
                          "and on each residual branch in training mode.")


@check("gpt_model", "oracle")
def gpt_forward_through_a_cache_equals_the_full_forward(m):
    """GPT.forward fed 12 tokens in chunks of 3, 1, 1, 4, 1, 2 through a cache (the grader's own,
    with KVCache's interface: length and update) gives the torch GPT's full-forward logits
    (float64) and advances the cache length by each chunk."""
    reference, student = paired_gpts(m, 90)
    idx = randint(91, 23, 2, 12)
    chunks = [3, 1, 1, 4, 1, 2]
    out = run_probe(m, "phase6.cached_logits", m, student, idx, chunks, True)
    if list(out["lengths"]) != np.cumsum(chunks).tolist():
        raise CheckFailed(f"after chunks of {chunks} tokens the cache lengths were "
                          f"{list(out['lengths'])}, expected {np.cumsum(chunks).tolist()}.",
                          "GPT.forward advances kv_cache.length by T after the last block.")
    with torch.no_grad():
        expected = reference(idx)
    assert_close(out["logits"], expected.numpy(), "the logits computed through a cache",
                 hint=CACHE_PATH_HINT, **TIGHT)


@check("gpt_model", "invariant")
def attention_dropout_drops_the_weights_and_the_output(m):
    """In training mode CausalSelfAttention drops its attention weights (dropout_p) and its
    output (resid_dropout), with or without a cache: with the values and c_proj the identity,
    token 0 (which attends to itself alone) comes out as x₀·(1/(1 − p))² where kept (p = 0.5)."""
    for cached in (False, True):
        out = run_probe(m, "phase6.attention_dropout", m, 0.5, 93, cached)
        x, y = as_array(out["x"], "the input"), as_array(out["y"], "the output")
        ratios = np.round(y[np.abs(x) > 1e-3] / x[np.abs(x) > 1e-3], 6)
        seen = sorted(set(ratios.tolist()))
        where = "through a cache" if cached else "without a cache"
        if seen != [0.0, 4.0]:
            raise CheckFailed(
                f"in training mode with dropout 0.5 ({where}), token 0's output divided by its "
                f"input takes the values {seen[:6]}, expected 0 (dropped) and 4 = 1/(1 − p)² "
                "(kept by both dropouts).",
                "Pass dropout_p = config.dropout (0 in eval mode) to the attention, with a cache "
                "too, and apply resid_dropout to c_proj's output: two dropouts, each scaling "
                "what it keeps by 1/(1 − p).")


@check("gpt_model", "stability")
def blocks_keep_their_contract(m):
    """A Block called on its own equals the torch block with the same weights and leaves its
    input alone; n_embd not divisible by n_head raises ValueError."""
    reference, student = paired_gpts(m, 95)
    x = randn(96, 2, 7, 16)
    with torch.no_grad():
        expected = reference.h[1](x)
    assert_close(student.h[1](x), expected.numpy(), "Block.forward(x) of block 1",
                 hint="x = x + attn(ln_1(x)); return x + mlp(ln_2(x)): new tensors, the input "
                      "is the caller's.", **TIGHT)
    raises(lambda: m.CausalSelfAttention(m.GPTConfig(n_embd=10, n_head=4)), "ValueError",
           "CausalSelfAttention with n_embd 10 and n_head 4",
           "Each head gets n_embd // n_head features: refuse a remainder with ValueError.")


@fingerprint("gpt_model")
def gpt_outputs(m):
    idx = randint(80, 23, 1, 6)

    def logits():
        _, student = paired_gpts(m, 81)
        return _forward(m, student, idx)["logits"]

    def init():
        stats = _init_statistics(m, n_layer=2)
        return [round(stats[name][1] / 0.02, 1) for name in
                ("wte.weight", "h.0.attn.c_proj.weight", "h.0.mlp.linear2.weight")]

    def tied():
        return [float(run_probe(m, "phase6.tying", student_gpt(m))["same_object"])]

    return {"logits": safely(logits), "init": safely(init), "tied": safely(tied)}
