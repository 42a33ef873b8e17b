"""2.5 MultiHeadAttention and 2.6 CrossAttention, against torch.nn.MultiheadAttention with the
same weights (batch_first=True, eval mode). torch's masks mean True = masked out: they get ~mask.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.checks.stability import assert_finite
from grader.session import StudentError, fetch, operator_call, run_probe
from grader.tests.phase2._helpers import (
    backward,
    copy_weights,
    gradients,
    input_gradient,
    numpy,
    pair,
    randn,
    random_mask,
)

B, T, E, H = 2, 5, 8, 2
HEADS_HINT = ("Split heads with view(B, T, H, d).transpose(1, 2) — the features of one token "
              "are contiguous, so (B, H, T, d) directly would mix tokens — and merge back with "
              "transpose(1, 2).reshape(B, T, E).")
PADDING_HINT = ("key_padding_mask (B, Tk) hides keys: reshape it to (B, 1, 1, Tk), True = may "
                "attend (the opposite of torch's key_padding_mask).")
WEIGHTS_HINT = "Return the weights averaged over the heads: weights.mean(dim=1), (B, Tq, Tk)."


def torch_mha(seed: int, embed_dim: int = E, heads: int = H, **kwargs) -> torch.nn.Module:
    """nn.MultiheadAttention in float64 eval mode, every parameter random (biases too)."""
    reference = torch.nn.MultiheadAttention(embed_dim, heads, batch_first=True, **kwargs)
    reference = reference.double().eval()
    with torch.no_grad():
        for index, parameter in enumerate(reference.parameters()):
            parameter.copy_(randn(seed + index, *parameter.shape, scale=0.5))
    return reference


def torch_padding(keep: torch.Tensor, tq: int, heads: int = H) -> dict:
    """torch's arguments for our key_padding_mask `keep` (True = real token): the same mask as
    a (B·H, Tq, Tk) attn_mask with True = masked out. Identical semantics; passing torch a
    key_padding_mask instead makes it import sympy on first use (seconds of grading time)."""
    b, tk = keep.shape
    return {"attn_mask": (~keep)[:, None, None, :].expand(b, heads, tq, tk).reshape(-1, tq, tk)}


def student_mha(m, reference: torch.nn.Module, **kwargs):
    """The student's module built with the same arguments, in float64 eval mode, same weights."""
    module = m.MultiHeadAttention(reference.embed_dim, reference.num_heads, **kwargs).double()
    module.eval()
    copy_weights(module, reference.state_dict(), "MultiHeadAttention")
    return module


def _call(module, what: str, *args, **kwargs):
    out, weights = pair(module(*args, **kwargs), what)
    return as_array(out, f"the output of {what}"), weights


@check("attn_mha", "oracle")
def mha_self_attention_matches_torch(m):
    """Self-attention output and weights equal nn.MultiheadAttention's (no mask, a key padding
    mask, a causal mask, a (B·H, T, T) float mask, per-head weights, need_weights=False), and a
    fresh module is initialised as torch's."""
    reference = torch_mha(0)
    module = student_mha(m, reference)
    x = randn(10, B, T, E)
    keep = torch.ones(B, T, dtype=torch.bool)
    keep[1, 3:] = False  # batch 1 has 3 real tokens
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    float_mask = randn(11, B * H, T, T)
    cases = [  # (name, the student's kwargs, torch's kwargs)
        ("no mask", {}, {}),
        ("key_padding_mask", {"key_padding_mask": keep}, torch_padding(keep, T)),
        ("a causal attn_mask and is_causal", {"attn_mask": causal, "is_causal": True},
         {"attn_mask": ~causal, "is_causal": True}),
        ("a float attn_mask of shape (B·H, T, T)", {"attn_mask": float_mask},
         {"attn_mask": float_mask}),
        ("average_attn_weights=False", {"average_attn_weights": False, "key_padding_mask": keep},
         {"average_attn_weights": False, **torch_padding(keep, T)}),
    ]
    for name, kwargs, torch_kwargs in cases:
        with torch.no_grad():
            expected, expected_weights = reference(x, x, x, **torch_kwargs)
        out, weights = _call(module, f"MultiHeadAttention with {name}", x, x, x, **kwargs)
        hint = PADDING_HINT if "padding" in name else HEADS_HINT
        assert_close(weights, numpy(expected_weights), f"the attention weights with {name}",
                     hint=WEIGHTS_HINT if name == "no mask" else hint)
        assert_close(out, numpy(expected), f"the output with {name}", hint=HEADS_HINT)
    _, weights = pair(module(x, x, x, need_weights=False), "MultiHeadAttention(need_weights=False)")
    if weights is not None:
        raise CheckFailed("with need_weights=False the second value returned should be None.")
    _check_initialisation(m)


def _check_initialisation(m) -> None:
    """A fresh module starts as torch's: Xavier-uniform in_proj_weight, zero biases."""
    module = m.MultiHeadAttention(E, H)
    weight = as_array(fetch(module.in_proj_weight), "in_proj_weight")
    bound = math.sqrt(6 / (E + 3 * E))
    if np.abs(weight).max() > bound or weight.std() < bound / 3:
        raise CheckFailed(f"a fresh in_proj_weight should be Xavier-uniform U(−{bound:.3f}, "
                          f"{bound:.3f}); its values range over ±{np.abs(weight).max():.3f}.",
                          "nn.init.xavier_uniform_(self.in_proj_weight), as torch does.")
    for name, value in (("in_proj_bias", module.in_proj_bias),
                        ("out_proj.bias", module.out_proj.bias)):
        if np.any(as_array(fetch(value), name) != 0):
            raise CheckFailed(f"a fresh {name} should be zero, as torch's is.",
                              "nn.init.zeros_ on both biases.")


PARAMETER_NAMES = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight",
                   "in_proj_bias")


@check("attn_mha", "invariant")
def mha_parameter_names_are_torchs_with_none_where_unused(m):
    """Every parameter name of nn.MultiheadAttention exists, None where torch's is None: with
    kdim = vdim = E the separate q/k/v_proj_weight (in_proj_weight holds them), with other
    kdim/vdim in_proj_weight, with bias=False in_proj_bias; the state_dict has torch's keys."""
    x = randn(3, B, T, E)
    _call(student_mha(m, torch_mha(3)), "MultiHeadAttention(8, 2)(x, x, x)", x, x, x)
    for kwargs in ({}, {"kdim": 6, "vdim": 4}, {"bias": False}):
        reference = torch.nn.MultiheadAttention(E, H, batch_first=True, **kwargs)
        module = m.MultiHeadAttention(E, H, **kwargs)
        built = f"MultiHeadAttention(8, 2{''.join(f', {k}={v}' for k, v in kwargs.items())})"
        hint = ("Register an unused slot as None, as torch does: "
                "self.register_parameter('q_proj_weight', None). Code written for torch's "
                "module (a state_dict loader, a checkpoint converter) reads every name.")
        for name in PARAMETER_NAMES:
            try:
                value = fetch(getattr(module, name))
            except StudentError as error:
                raise CheckFailed(f"{built}.{name} does not exist ({error.type}).", hint) from None
            if (value is None) != (getattr(reference, name) is None):
                state = "None" if value is None else "a tensor"
                raise CheckFailed(f"{built}.{name} is {state}; torch's is "
                                  f"{'a tensor' if value is None else 'None'}.", hint)
        keys = module.state_dict()
        keys = list(keys) if isinstance(keys, dict) else operator_call(module, "list", keys)
        if sorted(keys) != sorted(reference.state_dict()):
            raise CheckFailed(f"the state_dict of {built} has keys {sorted(keys)}, torch's "
                              f"{sorted(reference.state_dict())}.", hint)


@check("attn_mha", "oracle")
def mha_cross_attention_with_kdim_vdim_matches_torch(m):
    """With kdim = 3, vdim = 5, Tq ≠ Tk and a key padding mask (and with bias=False), output and
    weights equal nn.MultiheadAttention's."""
    query, key, value = randn(20, B, 4, E), randn(21, B, 6, 3), randn(22, B, 6, 5)
    keep = random_mask(23, B, 6)
    for kwargs in ({"kdim": 3, "vdim": 5}, {"kdim": 3, "vdim": 5, "bias": False}):
        reference = torch_mha(30, **kwargs)
        module = student_mha(m, reference, **kwargs)
        with torch.no_grad():
            expected, expected_weights = reference(query, key, value, **torch_padding(keep, 4))
        out, weights = _call(module, f"MultiHeadAttention({E}, {H}, {kwargs})", query, key,
                             value, key_padding_mask=keep)
        assert_close(weights, numpy(expected_weights), f"the weights with {kwargs}",
                     hint=PADDING_HINT)
        assert_close(out, numpy(expected), f"the output with {kwargs}",
                     hint="Use q_proj_weight, k_proj_weight and v_proj_weight when kdim or vdim "
                          "differ from embed_dim; the bias is still in_proj_bias split in 3.")


@check("attn_mha", "oracle")
def mha_split_heads_gives_each_head_its_own_features(m):
    """split_heads(x)[b, h, t] is x[b, t, h·d:(h+1)·d], and merge_heads undoes it."""
    module = m.MultiHeadAttention(E, H)
    x = randn(40, B, T, E)
    d = E // H
    expected = x.view(B, T, H, d).permute(0, 2, 1, 3)
    assert_close(module.split_heads(x), expected.numpy(), "split_heads(x) of shape (B, T, E)",
                 hint=HEADS_HINT)
    assert_close(module.merge_heads(expected.contiguous()), x.numpy(),
                 "merge_heads of (B, H, T, d)", hint=HEADS_HINT)


@check("attn_mha", "invariant")
def mha_self_attention_is_permutation_equivariant_and_ignores_padding(m):
    """Without positions, permuting the tokens permutes the outputs; changing padded tokens does
    not change the outputs of the others."""
    module = student_mha(m, torch_mha(50))
    x = randn(51, B, T, E)
    out, _ = _call(module, "MultiHeadAttention", x, x, x)
    perm = torch.tensor([3, 0, 4, 1, 2])
    shuffled, _ = _call(module, "MultiHeadAttention on permuted tokens", x[:, perm], x[:, perm],
                        x[:, perm])
    assert_close(shuffled, out[:, perm.numpy()], "outputs for permuted tokens vs permuted outputs",
                 hint="Attention has no notion of order: any position-dependent step (a wrong "
                      "reshape mixing tokens) breaks this.")
    keep = torch.ones(B, T, dtype=torch.bool)
    keep[:, 3:] = False
    padded, _ = _call(module, "MultiHeadAttention with padding", x, x, x, key_padding_mask=keep)
    noisy = x.clone()
    noisy[:, 3:] = randn(52, B, 2, E, scale=5.0)
    changed, _ = _call(module, "MultiHeadAttention with padding", noisy, noisy, noisy,
                       key_padding_mask=keep)
    assert_close(changed[:, :3], padded[:, :3], "the real tokens' outputs after changing the "
                 "padded tokens", hint=PADDING_HINT)


@check("attn_mha", "stability")
def mha_dropout_acts_only_in_training_and_empty_rows_stay_finite(m):
    """With dropout = 0.5, eval mode equals torch's eval output and train mode differs; a batch
    element whose keys are all padding gets zero weights and a finite output."""
    reference = torch_mha(60, dropout=0.5)
    module = student_mha(m, reference, dropout=0.5)
    x = randn(61, B, T, E)
    with torch.no_grad():
        expected, _ = reference(x, x, x)
    out, _ = _call(module, "MultiHeadAttention(dropout=0.5) in eval mode", x, x, x)
    assert_close(out, numpy(expected), "the eval-mode output with dropout=0.5",
                 hint="Dropout only in training: pass dropout_p = self.dropout if self.training "
                      "else 0.0.")
    module.train()
    train_out, _ = _call(module, "MultiHeadAttention(dropout=0.5) in training mode", x, x, x)
    if np.allclose(train_out, out):
        raise CheckFailed("in training mode with dropout=0.5 the output equals the eval output: "
                          "the attention weights are never dropped out.",
                          "Pass dropout_p=self.dropout to scaled_dot_product_attention when "
                          "self.training.")
    module.eval()
    keep = torch.ones(B, T, dtype=torch.bool)
    keep[0] = False
    out, weights = _call(module, "MultiHeadAttention with every key of batch 0 padded", x, x, x,
                         key_padding_mask=keep)
    assert_finite(out, "the output when every key is padding",
                  "masked_softmax gives zero weights to a row with nothing allowed: keep it.")
    assert_close(weights[0], np.zeros((T, T)), "the weights when every key is padding")


@check("attn_mha", "gradient")
def mha_gradients_match_torch(m):
    """Gradients with respect to the inputs and every parameter equal torch autograd's through
    nn.MultiheadAttention (cross-attention with a key padding mask)."""
    reference = torch_mha(70, kdim=3, vdim=5)
    module = student_mha(m, reference, kdim=3, vdim=5)
    query, key, value = randn(71, B, 4, E), randn(72, B, 6, 3), randn(73, B, 6, 5)
    keep = random_mask(74, B, 6)
    upstream = randn(75, B, 4, E)
    result = gradients(m, module, [query, key, value], upstream, "MultiHeadAttention",
                       key_padding_mask=keep)
    leaves = [t.clone().requires_grad_(True) for t in (query, key, value)]
    backward(reference(*leaves, **torch_padding(keep, 4))[0], upstream)
    for index, name in enumerate(("query", "key", "value")):
        assert_close(input_gradient(result, index, name), numpy(leaves[index].grad),
                     f"∂(v·output)/∂{name}")
    for name, parameter in reference.named_parameters():
        grad = result["params"].get(name)
        if grad is None:
            raise CheckFailed(f"no gradient reaches {name}.")
        assert_close(grad, numpy(parameter.grad), f"∂(v·output)/∂{name}")


@fingerprint("attn_mha")
def mha_outputs(m):
    module = student_mha(m, torch_mha(80))
    x = randn(81, B, T, E)
    keep = torch.ones(B, T, dtype=torch.bool)
    keep[1, 2:] = False
    outputs = {}
    for name, kwargs in (("plain", {}), ("padded", {"key_padding_mask": keep}),
                         ("causal", {"is_causal": True}),
                         ("heads", {"average_attn_weights": False})):
        out, weights = _call(module, name, x, x, x, **kwargs)
        outputs[f"{name}_out"], outputs[f"{name}_weights"] = out, numpy(weights)
    dropout = student_mha(m, torch_mha(82, dropout=0.5), dropout=0.5)
    out, _ = pair(run_probe(m, "phase2.run", dropout, [x, x, x]), "seeded call")
    outputs["eval_with_dropout"] = numpy(out)
    return outputs


# ------------------------------------------------------------------ 2.6 CrossAttention


def _cross(m, seed: int, context_dim: int):
    reference = torch_mha(seed, kdim=context_dim, vdim=context_dim)
    module = m.CrossAttention(E, H, context_dim=context_dim).double()
    module.eval()
    copy_weights(module, {f"attn.{k}": v for k, v in reference.state_dict().items()},
                 "CrossAttention")
    return module, reference


CROSS_HINT = ("Queries come from x, keys and values from the context: "
              "self.attn(x, context, context, key_padding_mask=context_mask) — True = a real "
              "context token.")


@check("attn_cross", "oracle")
def cross_attention_matches_torch(m):
    """CrossAttention(x, context, context_mask) equals nn.MultiheadAttention(kdim = vdim =
    context_dim) applied to (x, context, context) with the same weights."""
    module, reference = _cross(m, 100, context_dim=3)
    x, context = randn(101, B, 4, E), randn(102, B, 6, 3)
    keep = random_mask(103, B, 6)
    with torch.no_grad():
        expected, expected_weights = reference(x, context, context, **torch_padding(keep, 4))
    out, weights = _call(module, "CrossAttention(x, context, context_mask)", x, context, keep)
    assert_close(weights, numpy(expected_weights), "the cross-attention weights", hint=CROSS_HINT)
    assert_close(out, numpy(expected), "the cross-attention output", hint=CROSS_HINT)


@check("attn_cross", "invariant")
def cross_attention_treats_the_context_as_a_set(m):
    """Permuting the context (with its mask) changes nothing, padded context tokens do not
    matter, and each query's output depends on that query only."""
    module, _ = _cross(m, 110, context_dim=3)
    x, context = randn(111, B, 4, E), randn(112, B, 6, 3)
    keep = random_mask(113, B, 6)
    out, _ = _call(module, "CrossAttention", x, context, keep)
    perm = torch.tensor([5, 2, 0, 4, 1, 3])
    shuffled, _ = _call(module, "CrossAttention on a permuted context", x, context[:, perm],
                        keep[:, perm])
    assert_close(shuffled, out, "the output after permuting the context and its mask",
                 hint=CROSS_HINT)
    noisy = torch.where(keep[..., None], context, randn(114, B, 6, 3, scale=5.0))
    changed, _ = _call(module, "CrossAttention with changed padding", x, noisy, keep)
    assert_close(changed, out, "the output after changing padded context tokens",
                 hint=CROSS_HINT)
    x2 = x.clone()
    x2[:, 0] = randn(115, B, E)
    moved, _ = _call(module, "CrossAttention with query 0 changed", x2, context, keep)
    assert_close(moved[:, 1:], out[:, 1:], "the outputs of queries 1… after changing query 0",
                 hint="In cross-attention the queries never attend to each other.")


@fingerprint("attn_cross")
def cross_outputs(m):
    module, _ = _cross(m, 120, context_dim=E)
    x, context = randn(121, B, T, E), randn(122, B, T, E)
    keep = random_mask(123, B, T)
    out, weights = _call(module, "CrossAttention", x, context, keep)
    plain, _ = _call(module, "CrossAttention", x, context)
    return {"out": out, "weights": numpy(weights), "plain": plain}
