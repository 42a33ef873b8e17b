"""4.5 the position-wise feed-forward network, 4.6 TransformerEncoderLayer and 4.7
TransformerDecoderLayer, against torch's own layers with the same weights (float64, eval mode,
batch_first=True). torch's bool masks mean True = masked out: they get ~mask, and padding masks
reach torch as (B·H, Tq, Tk) attention masks."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import assert_close
from grader.checks.stability import assert_finite
from grader.tests.phase4._helpers import (
    copy_weights,
    gradients,
    input_gradient,
    padding_as_attn_mask,
    param_gradient,
    randn,
    randomise,
    reference_grads,
    run,
    safely,
)

B, T, S, D, H, FF = 2, 5, 6, 8, 2, 16
GELU_TOL = {"rtol": 1e-6, "atol": 1e-6}  # torch's exact GELU against one through A&S erf
FFN_HINT = ("FFN(x) = linear2(dropout(activation(linear1(x)))): the non-linearity between the "
            "two linear maps; dropout is a no-op in eval mode.")
NORM_HINT = ("Post-norm (norm_first=False): x = norm1(x + SA(x)); x = norm2(x + FF(x)). "
             "Pre-norm (norm_first=True): x = x + SA(norm1(x)); x = x + FF(norm2(x)).")
DECODER_HINT = ("Post-norm: x = norm1(x + SA(x)); x = norm2(x + MHA(x, memory)); "
                "x = norm3(x + FF(x)). Pre-norm: x = x + SA(norm1(x)); "
                "x = x + MHA(norm2(x), memory); x = x + FF(norm3(x)). Cross-attention takes "
                "queries from x and keys/values from the memory.")
MASK_HINT = ("Pass the masks on to your MultiHeadAttention unchanged (True = may attend): "
             "src_mask as attn_mask, src_key_padding_mask as key_padding_mask.")


def _causal(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).tril()


def _keep(b: int, n: int, lengths: tuple) -> torch.Tensor:
    """A key padding mask, True at the real tokens of each batch element."""
    return torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]


# ------------------------------------------------------------------ 4.5 feed-forward network


def _torch_ffn(seed: int, bias: bool = True) -> torch.nn.Module:
    """linear1 → activation → linear2 as torch modules (the activation applied by the caller)."""
    torch.manual_seed(seed)
    layers = torch.nn.ModuleDict({"linear1": torch.nn.Linear(D, FF, bias=bias),
                                  "linear2": torch.nn.Linear(FF, D, bias=bias)})
    return randomise(layers, seed)


def _ffn_reference(layers, x, activation: str) -> torch.Tensor:
    act = {"relu": F.relu, "gelu": F.gelu}[activation]
    return layers["linear2"](act(layers["linear1"](x)))


@check("blocks_ffn", "oracle", weight=2)
def ffn_matches_linear_activation_linear(m):
    """PositionwiseFeedForward equals linear2(activation(linear1(x))) computed by torch with the
    same weights: relu, gelu (exact, within 1e-6), bias=False, dropout=0.5 in eval mode."""
    x = randn(0, B, T, D)
    for k, (activation, bias, dropout) in enumerate((("relu", True, 0.0), ("gelu", True, 0.5),
                                                      ("relu", False, 0.5))):
        layers = _torch_ffn(10 + k, bias)
        student = m.PositionwiseFeedForward(D, FF, dropout=dropout, activation=activation,
                                            bias=bias)
        copy_weights(student, layers.state_dict(), "linear1/linear2 pair")
        with torch.no_grad():
            expected = _ffn_reference(layers, x, activation)
        tol = GELU_TOL if activation == "gelu" else {}
        assert_close(run(m, student, x), expected.numpy(),
                     f"PositionwiseFeedForward(activation={activation!r}, bias={bias}, "
                     f"dropout={dropout}) in eval mode", hint=FFN_HINT, **tol)


@check("blocks_ffn", "gradient")
def ffn_gradients_match_torch(m):
    """Gradients with respect to x and every parameter equal torch autograd's (gelu)."""
    layers = _torch_ffn(20)
    student = m.PositionwiseFeedForward(D, FF, activation="gelu")
    copy_weights(student, layers.state_dict(), "linear1/linear2 pair")
    x, upstream = randn(21, B, T, D), randn(22, B, T, D)
    _, expected, _ = reference_grads(lambda x: _ffn_reference(layers, x, "gelu"), [x], upstream)
    params = {n: p.grad for n, p in layers.named_parameters()}
    got = gradients(m, student, [x], upstream, "PositionwiseFeedForward")
    assert_close(input_gradient(got, 0, "x"), expected[0].numpy(), "∂L/∂x", hint=FFN_HINT,
                 rtol=1e-5, atol=1e-5)
    for name, grad in params.items():
        assert_close(param_gradient(got, name, "feed-forward network"), grad.numpy(),
                     f"∂L/∂{name}", hint=FFN_HINT, rtol=1e-5, atol=1e-5)


@check("blocks_ffn", "invariant")
def ffn_acts_on_each_position_alone_and_drops_out_only_in_training(m):
    """The output at a position depends only on that position (permuting positions permutes
    outputs); with dropout = 0.5 training mode differs from eval mode, eval mode not at all."""
    student = m.PositionwiseFeedForward(D, FF, dropout=0.5).double()
    x = randn(30, B, T, D)
    base = run(m, student, x)
    perm = torch.tensor([4, 2, 0, 3, 1])
    assert_close(run(m, student, x[:, perm]), base[:, perm.numpy()],
                 "the output for permuted positions against the permuted output", hint=FFN_HINT)
    assert_close(run(m, student, x, seed=5), base, "two eval-mode calls",
                 hint="nn.Dropout is the identity in eval mode; F.dropout(training=True) is not.")
    trained = run(m, student, x, train=True)
    if np.allclose(trained, base):
        raise CheckFailed("in training mode with dropout = 0.5 the output equals the eval "
                          "output: dropout is never applied.",
                          "Apply self.dropout right after the activation.")


@fingerprint("blocks_ffn")
def ffn_outputs(m):
    x = randn(40, 1, 3, D)
    outputs = {}
    for activation in ("relu", "gelu"):
        def compute(activation=activation):
            student = m.PositionwiseFeedForward(D, FF, dropout=0.5, activation=activation)
            copy_weights(student, _torch_ffn(41).state_dict(), "linear1/linear2 pair")
            return run(m, student, x)
        outputs[activation] = safely(compute)
    return outputs


# ------------------------------------------------------------------ shared by 4.6 and 4.7


def _reference_encoder(seed: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(D, H, FF, batch_first=True, **kwargs)
    return randomise(layer, seed).eval()


def _reference_decoder(seed: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    layer = torch.nn.TransformerDecoderLayer(D, H, FF, batch_first=True, **kwargs)
    return randomise(layer, seed).eval()


def _student_layer(m, class_name: str, reference: torch.nn.Module, **kwargs):
    student = getattr(m, class_name)(D, H, FF, **kwargs)
    copy_weights(student, reference.state_dict(), class_name)
    return student


def _reference_output(reference, *inputs, **kwargs) -> np.ndarray:
    """torch's output on its slow path: grad enabled with parameters that require it (the fast
    path of eval mode zeroes padded positions instead of computing them)."""
    with torch.enable_grad():
        return reference(*inputs, **kwargs).detach().numpy()


def _tolerance(kwargs: dict) -> dict:
    return GELU_TOL if kwargs.get("activation") == "gelu" else {}


# ------------------------------------------------------------------ 4.6 encoder layer

ENCODER_CONFIGS = [  # (description, constructor kwargs)
    ("post-norm (norm_first=False), relu", {}),
    ("pre-norm (norm_first=True), gelu", {"norm_first": True, "activation": "gelu"}),
    ("post-norm, bias=False, layer_norm_eps=1e-3", {"bias": False, "layer_norm_eps": 1e-3}),
]


def _encoder_cases(seed: int) -> list:
    """(name, the student's kwargs, torch's kwargs) for the mask cases."""
    causal, keep = _causal(T), _keep(B, T, (5, 3))
    float_mask = randn(seed, T, T)
    return [
        ("no mask", {}, {}),
        ("a causal src_mask", {"src_mask": causal}, {"src_mask": ~causal}),
        ("a key padding mask", {"src_key_padding_mask": keep},
         {"src_mask": padding_as_attn_mask(keep, T, H)}),
        ("a float src_mask", {"src_mask": float_mask}, {"src_mask": float_mask}),
        ("is_causal=True with its mask", {"src_mask": causal, "is_causal": True},
         {"src_mask": ~causal, "is_causal": True}),
    ]


@check("blocks_encoder_layer", "oracle", weight=3)
def encoder_layer_matches_torch(m):
    """TransformerEncoderLayer equals nn.TransformerEncoderLayer with the same weights (eval
    mode, dropout 0.1): post- and pre-norm, relu and gelu, bias=False; no mask, a causal mask,
    a key padding mask, a float mask, is_causal."""
    x = randn(100, B, T, D)
    for k, (description, kwargs) in enumerate(ENCODER_CONFIGS):
        reference = _reference_encoder(110 + 10 * k, **kwargs)
        student = _student_layer(m, "TransformerEncoderLayer", reference, **kwargs)
        for name, mine, theirs in _encoder_cases(120 + k):
            assert_close(run(m, student, x, **mine), _reference_output(reference, x, **theirs),
                         f"the {description} encoder layer with {name}",
                         hint=MASK_HINT if "mask" in name and name != "no mask" else NORM_HINT,
                         **_tolerance(kwargs))


@check("blocks_encoder_layer", "gradient")
def encoder_layer_gradients_match_torch(m):
    """Gradients with respect to the input and every parameter equal torch autograd's, post- and
    pre-norm, with a key padding mask."""
    x, upstream, keep = randn(130, B, T, D), randn(131, B, T, D), _keep(B, T, (4, 5))
    for k, norm_first in enumerate((False, True)):
        reference = _reference_encoder(140 + k, norm_first=norm_first, dropout=0.0)
        student = _student_layer(m, "TransformerEncoderLayer", reference, norm_first=norm_first,
                                 dropout=0.0)
        _, expected, params = reference_grads(reference, [x], upstream,
                                              src_mask=padding_as_attn_mask(keep, T, H))
        got = gradients(m, student, [x], upstream, "TransformerEncoderLayer",
                        src_key_padding_mask=keep)
        what = "pre-norm" if norm_first else "post-norm"
        assert_close(input_gradient(got, 0, "src"), expected[0].numpy(), f"∂L/∂src ({what})",
                     hint=NORM_HINT)
        for name, grad in params.items():
            assert_close(param_gradient(got, name, "encoder layer"), grad.numpy(),
                         f"∂L/∂{name} ({what})", hint=NORM_HINT)


@check("blocks_encoder_layer", "invariant")
def encoder_layer_is_permutation_equivariant_and_ignores_padding(m):
    """Without positions or masks, permuting the tokens permutes the outputs (post- and
    pre-norm); changing padded tokens leaves the real tokens' outputs unchanged."""
    x = randn(150, B, T, D)
    perm = torch.tensor([3, 0, 4, 1, 2])
    keep = _keep(B, T, (3, 3))
    noisy = x.clone()
    noisy[:, 3:] = randn(151, B, T - 3, D, scale=10.0)
    for norm_first in (False, True):
        student = m.TransformerEncoderLayer(D, H, FF, norm_first=norm_first).double()
        base = run(m, student, x)
        what = "pre-norm" if norm_first else "post-norm"
        assert_close(run(m, student, x[:, perm]), base[:, perm.numpy()],
                     f"outputs for permuted tokens against permuted outputs ({what})",
                     hint="Every step of the layer treats tokens alike; only attention mixes "
                          "them, and it has no notion of order.")
        padded = run(m, student, x, src_key_padding_mask=keep)
        changed = run(m, student, noisy, src_key_padding_mask=keep)
        assert_close(changed[:, :3], padded[:, :3],
                     f"the real tokens' outputs after changing the padded ones ({what})",
                     hint=MASK_HINT)


@check("blocks_encoder_layer", "stability")
def encoder_layer_is_stable_for_huge_and_constant_inputs(m):
    """Inputs of magnitude 1e4 (float64 and float32) and constant inputs give finite outputs
    equal to torch's (post- and pre-norm)."""
    for k, norm_first in enumerate((False, True)):
        reference = _reference_encoder(160 + k, norm_first=norm_first)
        student = _student_layer(m, "TransformerEncoderLayer", reference, norm_first=norm_first)
        what = "pre-norm" if norm_first else "post-norm"
        for name, x, tol in (("magnitude 1e4", randn(170, B, T, D, scale=1e4), {}),
                             ("constant", torch.full((B, T, D), 2.5, dtype=torch.float64), {})):
            expected = _reference_output(reference, x)
            got = assert_finite(run(m, student, x), f"the {what} encoder layer on {name} inputs",
                                "LayerNorm must survive σ² = 0 (ε inside the root).")
            assert_close(got, expected, f"the {what} encoder layer on {name} inputs", **tol,
                         hint=NORM_HINT)
        x32 = randn(171, B, T, D, scale=1e4, dtype=torch.float32)
        reference32 = copy.deepcopy(reference).float()
        expected = _reference_output(reference32, x32)
        student32 = _student_layer(m, "TransformerEncoderLayer", reference32,
                                   norm_first=norm_first)
        got = assert_finite(run(m, student32, x32), f"the {what} encoder layer in float32 on "
                                                    f"magnitude 1e4", "LayerNorm's variance of "
                            "1e4-sized inputs is 1e8, fine in float32; squaring a sum first "
                            "is not: compute it as the mean of (x − μ)².")
        scale = 1e4 if norm_first else 1.0  # pre-norm keeps the residual stream's magnitude
        assert_close(got, expected, f"the {what} encoder layer in float32 on magnitude 1e4",
                     rtol=1e-4, atol=1e-4 * scale, hint=NORM_HINT)


@fingerprint("blocks_encoder_layer")
def encoder_layer_outputs(m):
    x = randn(180, B, T, D)
    keep = _keep(B, T, (5, 3))
    outputs = {}
    for norm_first in (False, True):
        def compute(norm_first=norm_first, **kwargs):
            reference = _reference_encoder(181, norm_first=norm_first)
            student = _student_layer(m, "TransformerEncoderLayer", reference,
                                     norm_first=norm_first)
            return run(m, student, x, **kwargs)
        tag = "pre" if norm_first else "post"
        outputs[f"{tag}_plain"] = safely(compute)
        outputs[f"{tag}_causal"] = safely(lambda c=compute: c(src_mask=_causal(T)))
        outputs[f"{tag}_padded"] = safely(lambda c=compute: c(src_key_padding_mask=keep))
    return outputs


# ------------------------------------------------------------------ 4.7 decoder layer

DECODER_CONFIGS = [
    ("post-norm (norm_first=False), relu", {}),
    ("pre-norm (norm_first=True), gelu", {"norm_first": True, "activation": "gelu"}),
]


def _decoder_cases() -> list:
    causal, tgt_keep, mem_keep = _causal(T), _keep(B, T, (5, 4)), _keep(B, S, (4, 6))
    return [
        ("no masks", {}, {}),
        ("a causal tgt_mask", {"tgt_mask": causal}, {"tgt_mask": ~causal}),
        ("a causal tgt_mask and a memory key padding mask",
         {"tgt_mask": causal, "memory_key_padding_mask": mem_keep},
         {"tgt_mask": ~causal, "memory_mask": padding_as_attn_mask(mem_keep, T, H)}),
        ("tgt_is_causal with its mask and a target key padding mask",
         {"tgt_mask": causal, "tgt_is_causal": True, "tgt_key_padding_mask": tgt_keep},
         {"tgt_mask": (~causal)[None] | padding_as_attn_mask(tgt_keep, T, H)}),
        ("a float memory_mask (T, S)", {"memory_mask": randn(190, T, S)},
         {"memory_mask": randn(190, T, S)}),
    ]


@check("blocks_decoder_layer", "oracle", weight=3)
def decoder_layer_matches_torch(m):
    """TransformerDecoderLayer equals nn.TransformerDecoderLayer with the same weights (eval
    mode, dropout 0.1, memory length S ≠ T): post- and pre-norm, relu and gelu; no masks, a
    causal target mask, memory and target padding masks, a float memory mask."""
    tgt, memory = randn(200, B, T, D), randn(201, B, S, D)
    for k, (description, kwargs) in enumerate(DECODER_CONFIGS):
        reference = _reference_decoder(210 + 10 * k, **kwargs)
        student = _student_layer(m, "TransformerDecoderLayer", reference, **kwargs)
        for name, mine, theirs in _decoder_cases():
            assert_close(run(m, student, tgt, memory, **mine),
                         _reference_output(reference, tgt, memory, **theirs),
                         f"the {description} decoder layer with {name}",
                         hint=MASK_HINT if "mask" in name and name != "no masks" else DECODER_HINT,
                         **_tolerance(kwargs))


@check("blocks_decoder_layer", "gradient")
def decoder_layer_gradients_match_torch(m):
    """Gradients with respect to the target, the memory and every parameter equal torch
    autograd's, post- and pre-norm, with a causal target mask."""
    tgt, memory, upstream = randn(220, B, T, D), randn(221, B, S, D), randn(222, B, T, D)
    causal = _causal(T)
    for k, norm_first in enumerate((False, True)):
        reference = _reference_decoder(230 + k, norm_first=norm_first, dropout=0.0)
        student = _student_layer(m, "TransformerDecoderLayer", reference, norm_first=norm_first,
                                 dropout=0.0)
        _, expected, params = reference_grads(reference, [tgt, memory], upstream,
                                              tgt_mask=~causal)
        got = gradients(m, student, [tgt, memory], upstream, "TransformerDecoderLayer",
                        tgt_mask=causal)
        what = "pre-norm" if norm_first else "post-norm"
        for index, name in enumerate(("tgt", "memory")):
            assert_close(input_gradient(got, index, name), expected[index].numpy(),
                         f"∂L/∂{name} ({what})", hint=DECODER_HINT)
        for name, grad in params.items():
            assert_close(param_gradient(got, name, "decoder layer"), grad.numpy(),
                         f"∂L/∂{name} ({what})", hint=DECODER_HINT)


@check("blocks_decoder_layer", "invariant")
def decoder_layer_with_causal_mask_ignores_future_targets(m):
    """With a causal target mask, changing target tokens t ≥ 3 leaves the outputs at t < 3
    unchanged, and changing padded memory tokens changes nothing (post- and pre-norm)."""
    tgt, memory = randn(240, B, T, D), randn(241, B, S, D)
    future = tgt.clone()
    future[:, 3:] = randn(242, B, T - 3, D, scale=10.0)
    mem_keep = _keep(B, S, (4, 4))
    noisy_memory = memory.clone()
    noisy_memory[:, 4:] = randn(243, B, S - 4, D, scale=10.0)
    for norm_first in (False, True):
        student = m.TransformerDecoderLayer(D, H, FF, norm_first=norm_first).double()
        what = "pre-norm" if norm_first else "post-norm"
        base = run(m, student, tgt, memory, tgt_mask=_causal(T), tgt_is_causal=True)
        changed = run(m, student, future, memory, tgt_mask=_causal(T), tgt_is_causal=True)
        assert_close(changed[:, :3], base[:, :3], f"outputs at t < 3 after changing target "
                     f"tokens t ≥ 3 ({what})",
                     hint="The causal tgt_mask goes to self-attention (True = may attend: "
                          "j ≤ i).")
        padded = run(m, student, tgt, memory, memory_key_padding_mask=mem_keep)
        moved = run(m, student, tgt, noisy_memory, memory_key_padding_mask=mem_keep)
        assert_close(moved, padded, f"outputs after changing padded memory tokens ({what})",
                     hint="memory_key_padding_mask goes to the cross-attention's "
                          "key_padding_mask.")


@check("blocks_decoder_layer", "stability")
def decoder_layer_is_stable_for_huge_inputs(m):
    """Targets and memory of magnitude 1e4 give finite outputs equal to torch's (post- and
    pre-norm, float64)."""
    tgt, memory = randn(250, B, T, D, scale=1e4), randn(251, B, S, D, scale=1e4)
    for k, norm_first in enumerate((False, True)):
        reference = _reference_decoder(260 + k, norm_first=norm_first)
        student = _student_layer(m, "TransformerDecoderLayer", reference, norm_first=norm_first)
        what = "pre-norm" if norm_first else "post-norm"
        got = assert_finite(run(m, student, tgt, memory, tgt_mask=_causal(T)),
                            f"the {what} decoder layer on inputs of magnitude 1e4",
                            "Scores of magnitude 1e8 are fine for a softmax that subtracts its "
                            "row maximum; a masked position must be −inf, not a finite −1e9.")
        assert_close(got, _reference_output(reference, tgt, memory, tgt_mask=~_causal(T)),
                     f"the {what} decoder layer on inputs of magnitude 1e4", hint=DECODER_HINT)


@fingerprint("blocks_decoder_layer")
def decoder_layer_outputs(m):
    tgt, memory = randn(270, B, T, D), randn(271, B, S, D)
    mem_keep = _keep(B, S, (4, 6))
    outputs = {}
    for norm_first in (False, True):
        def compute(norm_first=norm_first, **kwargs):
            reference = _reference_decoder(272, norm_first=norm_first)
            student = _student_layer(m, "TransformerDecoderLayer", reference,
                                     norm_first=norm_first)
            return run(m, student, tgt, memory, **kwargs)
        tag = "pre" if norm_first else "post"
        outputs[f"{tag}_plain"] = safely(compute)
        outputs[f"{tag}_causal"] = safely(lambda c=compute: c(tgt_mask=_causal(T)))
        outputs[f"{tag}_memory_padded"] = safely(lambda c=compute: c(
            memory_key_padding_mask=mem_keep))
    return outputs
