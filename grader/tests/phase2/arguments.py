"""Every documented argument, mode and error of phase 2 that the topic files do not reach: the
documented ValueErrors, MultiHeadAttention's need_weights / is_causal / kdim-only cases and
combined masks, CrossAttention's need_weights, the positional tables' bounds and
initialisation, and outputs that stay on their inputs' device (seen through torch's "meta"
device, which every machine has). (Found by `make mutate`: each check states a contract, not a
mutant.)"""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import CheckFailed, check
from grader.checks.contracts import raises
from grader.checks.oracle import as_array, assert_close
from grader.session import fetch, run_probe
from grader.tests.phase2._helpers import copy_weights, numpy, randn, random_mask

B, T, E, H = 2, 5, 8, 2
ERROR_HINT = "Check the argument against the documented choices and raise ValueError otherwise."
DEVICE_HINT = (
    "Create new tensors on the inputs' device: torch.arange(n, device=x.device), "
    "torch.zeros(shape, device=mask.device), or the `device` argument when there is one."
)


def _on_meta(m, fn, inputs: list, kwargs: dict, to_meta: tuple, what: str) -> None:
    """fn's tensor outputs are on the meta device when its inputs (or `device`) are."""
    found = run_probe(m, "phase2.devices", fn, inputs, kwargs, to_meta=to_meta)
    if not found or any(device != "meta" for device in found):
        raise CheckFailed(
            f"{what}: with inputs on another device the output is on {found or 'no device'} "
            "(the grader uses torch's 'meta' device, which has no data).",
            DEVICE_HINT,
        )


# ------------------------------------------------------------------ 2.2 scoring


@check("attn_scoring", "invariant")
def multiplicative_attention_rejects_unknown_methods_and_mismatched_dot(m):
    """MultiplicativeAttention("dot") scores q·k; it raises ValueError for an unknown method and
    for "dot" with key_dim ≠ query_dim."""
    q, k = randn(505, 2, 3, 4), randn(506, 2, 5, 4)
    assert_close(
        m.MultiplicativeAttention(4, method="dot").score(q, k),
        numpy(q @ k.transpose(-2, -1)),
        'MultiplicativeAttention(4, method="dot").score(q, k)',
        hint="'dot' scores are q·k, with no parameter and no scaling.",
    )
    raises(
        lambda: m.MultiplicativeAttention(4, method="concat"),
        "ValueError",
        'MultiplicativeAttention(4, method="concat")',
        ERROR_HINT,
    )
    raises(
        lambda: m.MultiplicativeAttention(4, 3, method="dot"),
        "ValueError",
        'MultiplicativeAttention(4, 3, method="dot")',
        "q·k needs keys as long as the queries: refuse key_dim ≠ query_dim for 'dot'.",
    )


# ------------------------------------------------------------------ 2.3 / 2.7 masks on a device


@check("attn_masks", "invariant")
def masks_are_made_on_the_requested_device(m):
    """causal_mask(device=…), padding_mask(lengths) and additive_mask(mask) return tensors on
    the requested device or on their input's."""
    _on_meta(m, m.causal_mask, [3, 4], {"device": "meta"}, (), "causal_mask(3, 4, device=…)")
    _on_meta(m, m.padding_mask, [torch.tensor([2, 3]), 4], {}, (0,), "padding_mask(lengths, 4)")
    _on_meta(m, m.additive_mask, [random_mask(500, 3, 4)], {}, (0,), "additive_mask(mask)")


@check("attn_sparse_masks", "invariant")
def sparse_masks_are_made_on_the_requested_device(m):
    """sliding_window_mask(device=…) (causal or not) and strided_mask(device=…) return tensors
    on that device."""
    for causal in (True, False):
        _on_meta(
            m,
            m.sliding_window_mask,
            [6, 2],
            {"causal": causal, "device": "meta"},
            (),
            f"sliding_window_mask(6, 2, causal={causal}, device=…)",
        )
    _on_meta(m, m.strided_mask, [6, 2], {"device": "meta"}, (), "strided_mask(6, 2, device=…)")


@check("attn_banded", "invariant")
def banded_attention_stays_on_its_inputs_device(m):
    """banded_attention on inputs of another device returns its output there (causal or not)."""
    q, k, v = randn(501, B, 7, 4), randn(502, B, 7, 4), randn(503, B, 7, 3)
    for causal in (True, False):
        _on_meta(
            m,
            m.banded_attention,
            [q, k, v, 2],
            {"causal": causal},
            (0, 1, 2),
            f"banded_attention(..., window=2, causal={causal})",
        )


# ------------------------------------------------------------------ 2.5 / 2.6 multi-head attention


def _torch_mha(seed: int, **kwargs) -> torch.nn.Module:
    reference = torch.nn.MultiheadAttention(E, H, batch_first=True, **kwargs).double().eval()
    with torch.no_grad():
        for index, parameter in enumerate(reference.parameters()):
            parameter.copy_(randn(seed + index, *parameter.shape, scale=0.5))
    return reference


def _student_mha(m, reference, **kwargs):
    module = m.MultiHeadAttention(E, H, **kwargs).double()
    module.eval()
    copy_weights(module, reference.state_dict(), "MultiHeadAttention")
    return module


@check("attn_mha", "oracle")
def mha_arguments_and_modes_match_torch(m):
    """MultiHeadAttention: need_weights=False returns (output, None) with the same output;
    is_causal=True without a mask equals a causal mask; an attn_mask together with a
    key_padding_mask combines both; kdim = embed_dim ≠ vdim uses separate projections; the
    documented ValueErrors; fresh separate projections are Xavier-uniform."""
    x = randn(510, B, T, E)
    reference = _torch_mha(511)
    module = _student_mha(m, reference)
    with torch.no_grad():
        expected, _ = reference(x, x, x)
    out, weights = module(x, x, x, need_weights=False)
    if weights is not None:
        raise CheckFailed(
            "MultiHeadAttention(..., need_weights=False) returned weights; it should return "
            "(output, None).",
            "Return None for the weights when need_weights is False.",
        )
    assert_close(out, numpy(expected), "the output with need_weights=False")
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    with torch.no_grad():
        expected, _ = reference(x, x, x, attn_mask=~causal)
    out, _ = module(x, x, x, is_causal=True)
    assert_close(
        out,
        numpy(expected),
        "the output with is_causal=True and no attn_mask",
        hint="is_causal forbids attending to later keys even without a mask: pass it on.",
    )
    keep = random_mask(512, B, T)
    combined = (~causal)[None, None] | (~keep)[:, None, None, :]  # torch: True = masked out
    with torch.no_grad():
        expected, _ = reference(x, x, x, attn_mask=combined.expand(B, H, T, T).reshape(-1, T, T))
    out, _ = module(x, x, x, attn_mask=causal, key_padding_mask=keep)
    assert_close(
        out,
        numpy(expected),
        "the output with a causal attn_mask and a key_padding_mask together",
        hint="Both masks apply: add their additive forms (−inf wins).",
    )
    value = randn(513, B, T, 3)
    reference = _torch_mha(514, kdim=E, vdim=3)
    module = _student_mha(m, reference, kdim=E, vdim=3)
    with torch.no_grad():
        expected, _ = reference(x, x, value)
    out, _ = module(x, x, value)
    assert_close(
        out,
        numpy(expected),
        "the output with kdim = embed_dim and vdim = 3",
        hint="in_proj_weight only when kdim and vdim both equal embed_dim.",
    )
    if fetch(m.MultiHeadAttention(E, H, kdim=3, vdim=5).in_proj_weight) is not None:
        raise CheckFailed(
            "MultiHeadAttention(kdim=3, vdim=5).in_proj_weight should be None (the docstring).",
            "register_parameter('in_proj_weight', None) when the dimensions differ.",
        )
    fresh = m.MultiHeadAttention(E, H, kdim=3, vdim=5)
    for name, fan_in in (("q_proj_weight", E), ("k_proj_weight", 3), ("v_proj_weight", 5)):
        weight = as_array(fetch(getattr(fresh, name)), name)
        bound = math.sqrt(6 / (E + fan_in))
        if np.abs(weight).max() > bound or weight.std() < bound / 3:
            raise CheckFailed(
                f"a fresh {name} should be Xavier-uniform U(−{bound:.3f}, {bound:.3f}); its "
                f"values range over ±{np.abs(weight).max():.3f}.",
                "nn.init.xavier_uniform_ on each separate projection, as torch does.",
            )
    raises(lambda: m.MultiHeadAttention(6, 4), "ValueError", "MultiHeadAttention(6, 4)", ERROR_HINT)
    raises(
        lambda: m.MultiHeadAttention(E, H, batch_first=False),
        "ValueError",
        "MultiHeadAttention(..., batch_first=False)",
        "This course is batch-first: refuse batch_first=False with ValueError.",
    )


@check("attn_cross", "oracle")
def cross_attention_honours_need_weights(m):
    """CrossAttention(..., need_weights=False) returns (output, None) with the same output."""
    module = m.CrossAttention(E, H, context_dim=3).double()
    module.eval()
    x, context = randn(520, B, 4, E), randn(521, B, 6, 3)
    out, weights = module(x, context)
    quiet, none = module(x, context, need_weights=False)
    if none is not None:
        raise CheckFailed(
            "CrossAttention(..., need_weights=False) returned weights; it should return None.",
            "Pass need_weights on to self.attn.",
        )
    assert_close(quiet, as_array(out, "the output"), "the output with need_weights=False")


# ------------------------------------------------------------------ 2.9 / 2.10 positions


@check("attn_positional", "invariant")
def positional_tables_keep_their_bounds_and_device(m):
    """Both positional encodings accept offset + T = max_len and raise ValueError beyond it;
    sinusoidal_table raises ValueError for an odd dim and honours `device`; the learned table
    starts N(0, 0.02²)."""
    for name, module in (
        ("SinusoidalPositionalEncoding(8, max_len=6)", m.SinusoidalPositionalEncoding(8, 6)),
        ("LearnedPositionalEmbedding(6, 8)", m.LearnedPositionalEmbedding(6, 8)),
    ):
        x = randn(530, 2, 4, 8, dtype=torch.float32)
        as_array(module(x, offset=2), f"{name}(x of length 4, offset=2)")
        raises(
            lambda module=module, x=x: module(x, offset=3),
            "ValueError",
            f"{name}(x of length 4, offset=3)",
            "Positions offset … offset + T − 1 must exist: refuse offset + T > max_len.",
        )
    raises(lambda: m.sinusoidal_table(4, 5), "ValueError", "sinusoidal_table(4, 5)", ERROR_HINT)
    _on_meta(
        m, m.sinusoidal_table, [4, 6], {"device": "meta"}, (), "sinusoidal_table(4, 6, device=…)"
    )
    weight = as_array(fetch(m.LearnedPositionalEmbedding(512, 64).weight), "weight")
    if abs(weight.std() - 0.02) > 0.001 or abs(weight.mean()) > 0.001:
        raise CheckFailed(
            f"a fresh LearnedPositionalEmbedding(512, 64).weight has mean {weight.mean():.4f} "
            f"and standard deviation {weight.std():.4f}; GPT-2's is N(0, 0.02²).",
            "torch.randn(max_len, dim) * 0.02.",
        )


@check("attn_rope", "invariant")
def rotary_embedding_rejects_odd_dims_and_stays_on_its_device(m):
    """RotaryEmbedding(odd dim) raises ValueError; on inputs of another device it returns its
    output there."""
    raises(lambda: m.RotaryEmbedding(5), "ValueError", "RotaryEmbedding(5)", ERROR_HINT)
    _on_meta(m, m.RotaryEmbedding(6), [randn(540, 2, 4, 6)], {}, (0,), "RotaryEmbedding(6)(x)")
