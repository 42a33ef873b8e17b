"""2.4 Scaled dot-product attention, against torch.nn.functional.scaled_dot_product_attention
(whose bool masks, like ours, mean True = may attend)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.checks.properties import property_holds
from grader.checks.stability import assert_finite
from grader.session import run_probe
from grader.tests.phase2._helpers import (
    attention_reference,
    backward,
    gradients,
    input_gradient,
    numpy,
    pair,
    randn,
    random_mask,
)

SCALE_HINT = "Scale the scores by 1/√d_k, d_k = query.shape[-1] (not d_v, not d_k itself)."
AXIS_HINT = "The softmax runs over the keys (the last axis), one distribution per query."
CAUSAL_HINT = ("is_causal forbids keys j > i (top-left aligned, like torch); with an attn_mask "
               "too, both apply.")


def _qkv(seed: int, tq: int = 5, tk: int = 7, dk: int = 4, dv: int = 3, lead=(2, 3),
         dtype=torch.float64, scale: float = 1.0):
    return (randn(seed, *lead, tq, dk, dtype=dtype, scale=scale),
            randn(seed + 1, *lead, tk, dk, dtype=dtype, scale=scale),
            randn(seed + 2, *lead, tk, dv, dtype=dtype))


def _sdpa(m, what: str, *args, **kwargs):
    out, weights = pair(m.scaled_dot_product_attention(*args, **kwargs), what)
    return as_array(out, f"the output of {what}"), as_array(weights, f"the weights of {what}")


@check("attn_sdpa", "oracle")
def sdpa_matches_torch_with_and_without_masks(m):
    """Outputs and weights equal torch's for 4-D inputs with Tq ≠ Tk and d_k ≠ d_v: no mask, a
    bool mask, a float mask, is_causal, is_causal with a mask, and an explicit scale."""
    q, k, v = _qkv(0)
    bool_mask = random_mask(1, 5, 7)
    float_mask = randn(2, 2, 1, 5, 7)
    tril = torch.ones(5, 7, dtype=torch.bool).tril()
    cases = [  # (name, the student's kwargs, the same mask for torch, torch's kwargs)
        ("no mask", {}, None, {}),
        ("a bool mask (5, 7)", {"attn_mask": bool_mask}, bool_mask, {}),
        ("a float mask (2, 1, 5, 7)", {"attn_mask": float_mask}, float_mask, {}),
        ("is_causal=True", {"is_causal": True}, tril, {}),
        ("is_causal=True and a bool mask", {"attn_mask": bool_mask, "is_causal": True},
         bool_mask & tril, {}),
        ("scale=0.3", {"scale": 0.3}, None, {"scale": 0.3}),
    ]
    hints = {"no mask": SCALE_HINT + " " + AXIS_HINT, "scale=0.3": "Use `scale` when given."}
    for name, kwargs, mask, ref_kwargs in cases:
        _, weights = attention_reference(q, k, v, mask, **ref_kwargs)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **ref_kwargs)
        hint = hints.get(name, CAUSAL_HINT if "causal" in name else None)
        out, got_weights = _sdpa(m, f"scaled_dot_product_attention with {name}", q, k, v,
                                 **kwargs)
        assert_close(got_weights, numpy(weights), f"the weights with {name}", hint=hint)
        assert_close(out, numpy(expected), f"the output with {name}", hint=hint)


@check("attn_sdpa", "invariant")
def sdpa_weights_sum_to_one_and_masked_or_empty_rows_are_zero(m):
    """Weights are 0 where masked, rows sum to 1 (0 for a query that may attend to nothing),
    and the output is weights @ V."""
    q, k, v = _qkv(10, lead=(2,))
    mask = random_mask(11, 2, 5, 7, p_keep=0.5, keep_first=False)
    mask[0, 2] = False  # query 2 of batch 0 may attend to nothing
    out, weights = _sdpa(m, "scaled_dot_product_attention(q, k, v, mask)", q, k, v, mask)
    keep = mask.numpy()
    if np.any(weights[~keep] != 0):
        raise CheckFailed("masked keys got nonzero weights.", "Add −inf to masked scores before "
                          "the softmax (additive_mask), not after it.")
    assert_close(weights.sum(-1), keep.any(-1).astype(np.float64), "the row sums of the weights "
                 "(1, or 0 for a query with every key masked)",
                 hint="masked_softmax returns zeros for a fully masked row: reuse it.")
    assert_close(out, weights @ v.numpy(), "output vs weights @ V")


@check("attn_sdpa", "invariant")
def sdpa_causal_outputs_ignore_the_future(m):
    """With is_causal, changing keys and values after position t leaves outputs 0 … t
    unchanged."""
    q, k, v = _qkv(20, tq=6, tk=6, lead=(2,))
    base, _ = _sdpa(m, "causal attention", q, k, v, is_causal=True)
    for t in (0, 3):
        k2, v2 = k.clone(), v.clone()
        k2[:, t + 1:] += randn(21 + t, 2, 5 - t, 4, scale=3.0)
        v2[:, t + 1:] += randn(31 + t, 2, 5 - t, 3, scale=3.0)
        out, _ = _sdpa(m, "causal attention", q, k2, v2, is_causal=True)
        assert_close(out[:, :t + 1], base[:, :t + 1],
                     f"causal outputs 0…{t} after changing keys and values {t + 1}…5",
                     hint=CAUSAL_HINT)


@check("attn_sdpa", "invariant")
def sdpa_scaling_queries_is_a_temperature_and_keys_are_a_set(m):
    """sdpa(c·q, k, v) equals sdpa(q, k, v, scale=c/√d_k); permuting keys and values together
    changes nothing; permuting queries permutes the outputs."""
    q, k, v = _qkv(40, lead=(2,))

    def prop(c, seed):
        out, _ = _sdpa(m, "sdpa(c·q, k, v)", q * c, k, v)
        hot, _ = _sdpa(m, "sdpa(q, k, v, scale=c/√d)", q, k, v, scale=c / 2.0)
        assert_close(out, hot, f"sdpa({c}·q, k, v) vs sdpa(q, k, v, scale={c}/√d_k)",
                     rtol=1e-9, atol=1e-12, hint="Honour `scale`; default it to 1/√d_k.")
        perm = torch.randperm(7, generator=torch.Generator().manual_seed(seed))
        shuffled, _ = _sdpa(m, "sdpa with permuted keys", q * c, k[:, perm], v[:, perm])
        assert_close(shuffled, out, "the output after permuting keys and values together",
                     rtol=1e-9, atol=1e-12, hint="Attention treats the keys as a set.")
        qperm = torch.randperm(5, generator=torch.Generator().manual_seed(seed + 1))
        permuted, _ = _sdpa(m, "sdpa with permuted queries", (q * c)[:, qperm], k, v)
        assert_close(permuted, out[:, qperm.numpy()], "outputs after permuting the queries",
                     rtol=1e-9, atol=1e-12)

    property_holds(prop, st.sampled_from([0.25, 3.0, 10.0]), st.integers(0, 100), examples=4)


@check("attn_sdpa", "stability")
def sdpa_is_stable_for_huge_scores_empty_rows_and_long_sequences_in_float32(m):
    """Scores near ±1e4 and a fully masked query give finite float32 results equal to float64's;
    at T = 1024 float32 agrees with float64 and keeps its dtype."""
    q, k, v = _qkv(50, lead=(2,), scale=70.0)  # q·k/√d ~ 1e4
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[1] = False
    expected, _ = attention_reference(q, k, v, mask)
    args = [x.float() for x in (q, k, v)]
    out, _ = _sdpa(m, "sdpa on float32 scores near ±1e4", *args, mask)
    assert_finite(out, "sdpa on float32 scores near ±1e4 with a fully masked query",
                  "Subtract the max (masked_softmax) and keep a fully masked row at 0.")
    assert_close(out, numpy(expected).astype(np.float32), "sdpa on float32 scores near ±1e4",
                 rtol=1e-4, atol=1e-5)
    q, k, v = _qkv(60, tq=1024, tk=1024, dk=16, dv=8, lead=(1, 2))
    out, _ = _sdpa(m, "sdpa at T = 1024 (float32)", q.float(), k.float(), v.float(),
                   is_causal=True)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(out, numpy(expected).astype(np.float32),
                 "causal sdpa at T = 1024 in float32 vs float64", rtol=1e-4, atol=1e-5,
                 hint="Keep the computation in the input's dtype.")


@check("attn_sdpa", "invariant")
def sdpa_dropout_zeroes_and_rescales_weights(m):
    """With dropout_p = 0.4 the returned weights are 0 or w/(1 − p), about 40 % are 0, and the
    output is weights @ V; dropout_p = 0 changes nothing."""
    q, k, v = _qkv(70, tq=32, tk=32, lead=(4,))
    _, clean = _sdpa(m, "sdpa without dropout", q, k, v)
    out, dropped = _sdpa(m, "sdpa with dropout_p=0.4", q, k, v, dropout_p=0.4)
    scaled = clean / 0.6
    ok = np.isclose(dropped, 0.0, atol=0) | np.isclose(dropped, scaled, rtol=1e-9, atol=1e-12)
    if not ok.all():
        index = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise CheckFailed(f"with dropout the weights should be 0 or w/(1 − p); at {index} got "
                          f"{dropped[index]:.6g}, w = {clean[index]:.6g}.",
                          "Drop out the softmax weights (after the softmax), with inverted "
                          "scaling 1/(1 − p): F.dropout does both.")
    fraction = float(np.mean(dropped == 0))
    if abs(fraction - 0.4) > 0.04:
        raise CheckFailed(f"dropout_p=0.4 zeroed {fraction:.1%} of the weights, expected ≈ 40 %.")
    assert_close(out, dropped @ v.numpy(), "the output with dropout vs returned weights @ V",
                 hint="Return the weights you actually used (after dropout), as torch does.")


@check("attn_sdpa", "gradient")
def sdpa_gradients_match_torch(m):
    """∂/∂q, ∂/∂k and ∂/∂v equal torch autograd's through F.scaled_dot_product_attention (causal
    with a mask), and a query that sees nothing gets a zero, finite gradient."""
    q, k, v = _qkv(80, tq=5, tk=5)
    mask = random_mask(81, 5, 5)
    mask[2] = False  # query 2 sees nothing: torch gives nan there, so it is compared apart
    upstream = randn(82, 2, 3, 5, 3)
    result = gradients(m, m.scaled_dot_product_attention, [q, k, v], upstream,
                       "scaled_dot_product_attention", attn_mask=mask, is_causal=True)
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    safe = mask & torch.ones(5, 5, dtype=torch.bool).tril()
    safe[2, 0] = True
    seen = torch.ones(5, dtype=torch.bool)
    seen[2] = False
    out = F.scaled_dot_product_attention(*leaves, attn_mask=safe)
    backward(out * seen[:, None], upstream)
    for index, name in enumerate("qkv"):
        grad = assert_finite(input_gradient(result, index, name), f"∂/∂{name} with a fully "
                             "masked query", "Make masked_softmax's max finite and its sum "
                             "nonzero on a fully masked row, or its gradient is nan.")
        assert_close(grad, numpy(leaves[index].grad), f"∂(v·output)/∂{name}",
                     hint=SCALE_HINT)


@fingerprint("attn_sdpa")
def sdpa_outputs(m):
    q, k, v = _qkv(90)
    mask = random_mask(91, 5, 7)
    outputs = {}
    for name, kwargs in (("plain", {}), ("masked", {"attn_mask": mask}),
                         ("causal_masked", {"attn_mask": mask, "is_causal": True})):
        out, weights = _sdpa(m, name, q, k, v, **kwargs)
        outputs[f"{name}_out"], outputs[f"{name}_weights"] = out, weights
    out, _ = pair(run_probe(m, "phase2.run", m.scaled_dot_product_attention, [q, k, v],
                            {"dropout_p": 0.5}), "seeded dropout")
    outputs["dropout_out"] = numpy(out)
    return outputs
