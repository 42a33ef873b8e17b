"""2.2 Additive (Bahdanau) and multiplicative (Luong) attention, against their closed forms
computed in the judge with the same weights."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.tests.phase2._helpers import (
    backward,
    copy_weights,
    gradients,
    numpy,
    pair,
    randn,
    random_mask,
    softmax_reference,
)

B, TQ, TK, DQ, DK, DV, HIDDEN = 2, 3, 5, 4, 6, 3, 7
AXIS_HINT = "Each query's weights are a distribution over the keys: softmax over the last axis."
ADDITIVE_HINT = ("score(q, k) = vᵀ tanh(W q + U k): project, add with broadcasting "
                 "(..., Tq, 1, H) + (..., 1, Tk, H), tanh, then v.")


def _additive_state(seed: int) -> dict:
    return {"query_proj.weight": randn(seed, HIDDEN, DQ), "key_proj.weight": randn(seed + 1,
                                                                                  HIDDEN, DK),
            "v.weight": randn(seed + 2, 1, HIDDEN)}


def _additive_reference(state, query, keys, values, mask=None):
    q = query @ state["query_proj.weight"].T  # (B, Tq, H)
    k = keys @ state["key_proj.weight"].T  # (B, Tk, H)
    scores = (torch.tanh(q[:, :, None, :] + k[:, None, :, :]) @ state["v.weight"].T)[..., 0]
    weights = softmax_reference(scores, mask)
    return scores, weights @ values, weights


def _inputs(seed: int, dq: int = DQ, dk: int = DK):
    return randn(seed, B, TQ, dq), randn(seed + 1, B, TK, dk), randn(seed + 2, B, TK, DV)


def _additive(m, seed: int = 0):
    module = m.AdditiveAttention(DQ, DK, HIDDEN).double()
    state = _additive_state(seed)
    copy_weights(module, state, "AdditiveAttention")
    return module, state


def _general(m, seed: int = 0, dq: int = DQ, dk: int = DK):
    module = m.MultiplicativeAttention(dq, dk, method="general").double()
    weight = randn(seed, dq, dk, scale=0.5)
    copy_weights(module, {"W.weight": weight}, "MultiplicativeAttention(method='general')")
    return module, weight


@check("attn_scoring", "oracle")
def additive_attention_matches_its_closed_form(m):
    """AdditiveAttention's scores, context and weights equal vᵀ tanh(W q + U k) and its softmax,
    with and without a key mask."""
    module, state = _additive(m, 10)
    query, keys, values = _inputs(20)
    mask = random_mask(3, B, 1, TK)
    scores, context, weights = _additive_reference(state, query, keys, values, mask)
    assert_close(module.score(query, keys), numpy(scores), "AdditiveAttention.score(q, k)",
                 hint=ADDITIVE_HINT)
    got_context, got_weights = pair(module(query, keys, values, mask), "AdditiveAttention(…)")
    assert_close(got_weights, numpy(weights), "AdditiveAttention weights (key mask (B, 1, Tk))",
                 hint=AXIS_HINT)
    assert_close(got_context, numpy(context), "AdditiveAttention context")


@check("attn_scoring", "oracle")
def multiplicative_attention_matches_luong_dot_and_general(m):
    """Luong's dot (qᵀk) and general (qᵀW_a k, with W_a of shape (Dq, Dk)) scores, unscaled, and
    their masked softmax and context."""
    query, keys, values = _inputs(30, dq=DQ, dk=DQ)
    mask = random_mask(4, B, TQ, TK)
    dot = m.MultiplicativeAttention(DQ, method="dot")
    scores = query @ keys.transpose(-2, -1)
    assert_close(dot.score(query, keys), numpy(scores), "MultiplicativeAttention('dot').score",
                 hint="Luong's dot score is the plain qᵀk: no 1/√d scaling.")
    weights = softmax_reference(scores, mask)
    got_context, got_weights = pair(dot(query, keys, values, mask), "MultiplicativeAttention(…)")
    assert_close(got_weights, numpy(weights), "MultiplicativeAttention('dot') weights",
                 hint=AXIS_HINT)
    assert_close(got_context, numpy(weights @ values), "MultiplicativeAttention('dot') context")

    general, weight = _general(m, 5)
    query, keys, values = _inputs(40)
    scores = query @ weight @ keys.transpose(-2, -1)  # (B, Tq, Tk): qᵀ W_a k
    assert_close(general.score(query, keys), numpy(scores),
                 "MultiplicativeAttention('general').score with W_a of shape (4, 6)",
                 hint="score = q · (W_a k): apply self.W to the keys (W.weight is W_a).")
    got_context, _ = pair(general(query, keys, values), "MultiplicativeAttention(…)")
    assert_close(got_context, numpy(softmax_reference(scores) @ values),
                 "MultiplicativeAttention('general') context")


@check("attn_scoring", "invariant")
def scoring_weights_sum_to_one_and_masked_keys_do_not_matter(m):
    """For both kinds, weights rows sum to 1, and changing masked keys and values changes
    nothing."""
    module, _ = _additive(m, 50)
    general, _ = _general(m, 51)
    query, keys, values = _inputs(60)
    mask = random_mask(7, B, 1, TK)
    hidden = ~mask[:, 0, :, None]  # (B, Tk, 1): the masked keys
    keys2 = torch.where(hidden, randn(8, B, TK, DK, scale=5.0), keys)
    values2 = torch.where(hidden, randn(9, B, TK, DV, scale=5.0), values)
    for name, attention in (("AdditiveAttention", module), ("MultiplicativeAttention", general)):
        context, weights = pair(attention(query, keys, values, mask), name)
        assert_close(as_array(weights, f"{name} weights").sum(-1), np.ones((B, TQ)),
                     f"{name}: the sum of each query's weights", hint=AXIS_HINT)
        context2, _ = pair(attention(query, keys2, values2, mask), name)
        assert_close(context2, as_array(context, f"{name} context"),
                     f"{name} context after changing only the masked keys and values",
                     hint="Masked keys must get weight exactly 0: pass the mask to "
                          "masked_softmax.")


@check("attn_scoring", "gradient")
def additive_attention_gradients_reach_every_parameter(m):
    """The gradients of AdditiveAttention's context with respect to W, U and v equal torch
    autograd's on the closed form."""
    module, state = _additive(m, 70)
    query, keys, values = _inputs(80)
    upstream = randn(81, B, TQ, DV)
    result = gradients(m, module, [query, keys, values], upstream, "AdditiveAttention")
    leaves = {name: value.clone().requires_grad_(True) for name, value in state.items()}
    backward(_additive_reference(leaves, query, keys, values)[1], upstream)
    for name, leaf in leaves.items():
        grad = result["params"].get(name)
        if grad is None:
            raise CheckFailed(f"no gradient reaches the parameter {name}.",
                              "Use the nn.Linear layers (not copies of their weights).")
        assert_close(grad, numpy(leaf.grad), f"∂(v·context)/∂{name}", hint=ADDITIVE_HINT)


@fingerprint("attn_scoring")
def scoring_outputs(m):
    module, _ = _additive(m, 90)
    general, _ = _general(m, 91, dq=DQ, dk=DQ)
    dot = m.MultiplicativeAttention(DQ, method="dot")
    query, keys, values = _inputs(92, dq=DQ, dk=DK)
    square_keys = randn(95, B, TK, DQ)
    mask = random_mask(96, B, 1, TK)
    outputs = {}
    for name, attention, k in (("additive", module, keys), ("general", general, square_keys),
                               ("dot", dot, square_keys)):
        context, weights = pair(attention(query, k, values), name)
        outputs[f"{name}_context"], outputs[f"{name}_weights"] = numpy(context), numpy(weights)
        context, _ = pair(attention(query, k, values, mask), name)
        outputs[f"{name}_masked"] = numpy(context)
    return outputs
