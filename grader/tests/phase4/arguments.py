"""Every documented argument, mode and error of phase 4 that the topic files do not reach:
LayerNorm and RMSNorm without affine parameters, eps=None in float32, a callable activation,
attention dropout and `is_causal` flags inside the layers, a decoder without biases, the
documented ValueErrors. (Found by `make mutate`: each check states a contract, not a mutant.)"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import CheckFailed, check
from grader.checks.contracts import raises
from grader.checks.oracle import assert_close
from grader.session import fetch
from grader.tests.phase4._helpers import copy_weights, gradients, randn, randomise, run

B, T, D, H, FF = 2, 5, 8, 2, 16
DTYPE_HINT = "Nothing casts: float32 in, float32 out (no .double(), no float64 constants)."


def _float32(m, module, *inputs, what: str, expected) -> None:
    """The student's module on float32 inputs returns float32 close to torch's float32."""
    got = run(m, module, *inputs)
    assert_close(got, expected, f"{what} in float32", rtol=1e-4, atol=1e-5, hint=DTYPE_HINT)


# ------------------------------------------------------------------ 4.2 GELU


@check("blocks_gelu", "invariant")
def gelu_rejects_an_unknown_approximation(m):
    """gelu(x, approximate) raises ValueError for anything but "none" and "tanh"."""
    x = randn(301, 4)
    raises(
        lambda: m.gelu(x, "sigmoid"),
        "ValueError",
        'gelu(x, approximate="sigmoid")',
        "Compare approximate with 'tanh' and 'none' and raise ValueError otherwise.",
    )


# ------------------------------------------------------------------ 4.3 / 4.4 the norms


def _attributes(student, reference: torch.nn.Module, names: tuple, what: str) -> None:
    """The documented attributes hold what torch's module holds."""
    for name in names:
        got, want = fetch(getattr(student, name)), getattr(reference, name)
        if (list(got) if isinstance(got, (tuple, list)) else got) != (
            list(want) if isinstance(want, tuple) else want
        ):
            raise CheckFailed(
                f"{what}.{name} is {got!r}, expected {want!r} (as torch's).",
                "Store the documented attributes as the constructor got them "
                "(normalized_shape as a tuple).",
            )


@check("blocks_layernorm", "oracle")
def layer_norm_module_without_affine_or_bias_matches_torch(m):
    """LayerNorm(elementwise_affine=False) and LayerNorm(bias=False) equal nn.LayerNorm and
    keep torch's attributes; backward works when every dimension of x is normalised (no batch)."""
    x = randn(310, 3, 4, 6, scale=2.0, shift=0.5)
    for kwargs in ({"elementwise_affine": False}, {"bias": False}):
        reference = torch.nn.LayerNorm(6, eps=1e-3, **kwargs).double()
        if reference.weight is not None:
            with torch.no_grad():
                reference.weight.copy_(randn(311, 6, shift=1.0))
        student = m.LayerNorm(6, eps=1e-3, **kwargs)
        _attributes(
            student,
            reference,
            ("normalized_shape", "eps", "elementwise_affine"),
            f"LayerNorm(6, eps=1e-3, {kwargs})",
        )
        copy_weights(student, reference.state_dict(), f"LayerNorm(6, {kwargs})")
        with torch.no_grad():
            expected = reference(x)
        assert_close(
            run(m, student, x),
            expected.numpy(),
            f"LayerNorm(6, eps=1e-3, {kwargs})",
            hint="Without affine parameters forward passes weight = bias = None.",
        )
    weight, bias = randn(312, 4, 6, shift=1.0), randn(313, 4, 6)
    x, upstream = randn(314, 4, 6), randn(315, 4, 6)
    leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    (F.layer_norm(leaves[0], (4, 6), leaves[1], leaves[2]) * upstream).sum().backward()
    got = gradients(m, m.layer_norm, [x, (4, 6), weight, bias], upstream, "layer_norm")
    for index, (name, leaf) in zip(
        (0, 2, 3), (("x", leaves[0]), ("weight", leaves[1]), ("bias", leaves[2])), strict=True
    ):
        grad = got["inputs"][index]
        if grad is None:
            raise CheckFailed(f"no gradient reaches {name} of layer_norm on x (4, 6) over (4, 6).")
        assert_close(
            grad,
            leaf.grad.numpy(),
            f"∂L/∂{name} of layer_norm on x (4, 6) normalised over (4, 6): no leading dimension",
            hint="The leading dimensions may be "
            "none at all: reshape to (−1, *normalized_shape) before summing.",
        )


@check("blocks_rmsnorm", "oracle")
def rms_norm_module_without_affine_and_in_float32_matches_torch(m):
    """RMSNorm(elementwise_affine=False) equals nn.RMSNorm without weight; RMSNorm keeps
    float32 (eps=None then means float32's epsilon)."""
    x = randn(320, 3, 4, 6, scale=0.5)
    reference = torch.nn.RMSNorm(6, eps=1e-2, elementwise_affine=False).double()
    with torch.no_grad():
        expected = reference(x)
    student = m.RMSNorm(6, eps=1e-2, elementwise_affine=False)
    _attributes(
        student,
        reference,
        ("normalized_shape", "eps", "elementwise_affine"),
        "RMSNorm(6, eps=1e-2, elementwise_affine=False)",
    )
    assert_close(
        run(m, student, x),
        expected.numpy(),
        "RMSNorm(6, eps=1e-2, elementwise_affine=False)",
        hint="Without a weight forward passes weight = None.",
    )
    reference = torch.nn.RMSNorm(6).float()
    with torch.no_grad():
        reference.weight.copy_(randn(321, 6, shift=1.0))
        expected = reference(x.float() * 1e-3)
    student = m.RMSNorm(6)
    copy_weights(student, reference.state_dict(), "RMSNorm(6)")
    _float32(
        m,
        student,
        x.float() * 1e-3,
        what="RMSNorm(6) with eps=None on small inputs",
        expected=expected.numpy(),
    )


# ------------------------------------------------------------------ 4.5 the feed-forward network


@check("blocks_ffn", "oracle")
def ffn_takes_a_callable_activation(m):
    """get_activation returns a callable as it is and rejects unknown names with ValueError;
    PositionwiseFeedForward(activation=torch.tanh) uses it."""
    x = randn(330, B, T, D)
    tanh = m.torch.tanh  # a callable that lives in the worker, as a student would pass one
    activation = m.get_activation(tanh)
    assert_close(
        activation(x),
        torch.tanh(x).numpy(),
        "get_activation(torch.tanh)(x)",
        hint="A callable activation is returned as it is.",
    )
    raises(
        lambda: m.get_activation("swish"),
        "ValueError",
        'get_activation("swish")',
        "Only 'relu', 'gelu' and callables are accepted; raise ValueError for the rest.",
    )
    torch.manual_seed(331)
    layers = randomise(
        torch.nn.ModuleDict({"linear1": torch.nn.Linear(D, FF), "linear2": torch.nn.Linear(FF, D)}),
        331,
    )
    student = m.PositionwiseFeedForward(D, FF, activation=tanh)
    copy_weights(student, layers.state_dict(), "linear1/linear2 pair")
    with torch.no_grad():
        expected = layers["linear2"](torch.tanh(layers["linear1"](x)))
    assert_close(
        run(m, student, x),
        expected.numpy(),
        "PositionwiseFeedForward(activation=torch.tanh)",
        hint="activation = get_activation(activation), between the linear maps.",
    )


# ------------------------------------------------------------------ 4.6 / 4.7 the layers


def _decoder(seed: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    layer = torch.nn.TransformerDecoderLayer(D, H, FF, batch_first=True, **kwargs)
    return randomise(layer, seed).eval()


def _output(reference, *inputs, **kwargs) -> np.ndarray:
    with torch.enable_grad():  # torch's slow path, as in layers.py
        return reference(*inputs, **kwargs).detach().numpy()


def _causal(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).tril()


@check("blocks_encoder_layer", "invariant")
def encoder_layer_refuses_batch_second_is_causal_alone_and_drops_out_in_attention(m):
    """TransformerEncoderLayer(batch_first=False) raises ValueError; is_causal=True without a
    mask equals a causal mask; in training mode with the layer's own dropouts at 0,
    self-attention still applies dropout (two seeds differ)."""
    raises(
        lambda: m.TransformerEncoderLayer(D, H, FF, batch_first=False),
        "ValueError",
        "TransformerEncoderLayer(batch_first=False)",
        "This course is batch-first: refuse batch_first=False with ValueError.",
    )
    torch.manual_seed(343)
    reference = randomise(torch.nn.TransformerEncoderLayer(D, H, FF, batch_first=True), 343)
    student = m.TransformerEncoderLayer(D, H, FF)
    copy_weights(student, reference.eval().state_dict(), "TransformerEncoderLayer")
    x = randn(344, B, T, D)
    assert_close(
        run(m, student, x, is_causal=True),
        _output(reference, x, src_mask=~_causal(T)),
        "the encoder layer with is_causal=True and no src_mask",
        hint="Pass is_causal on to self-attention: it forbids attending to later "
        "positions even without a mask.",
    )
    _attention_drops_out(
        m,
        m.TransformerEncoderLayer(D, H, FF, dropout=0.5).double(),
        ["self_attn"],
        ["dropout", "dropout1", "dropout2"],
        randn(340, B, T, D),
    )


@check("blocks_decoder_layer", "invariant")
def decoder_layer_refuses_batch_second_and_drops_out_in_both_attentions(m):
    """TransformerDecoderLayer(batch_first=False) raises ValueError; in training mode with the
    layer's own dropouts at 0, self- and cross-attention each apply dropout."""
    raises(
        lambda: m.TransformerDecoderLayer(D, H, FF, batch_first=False),
        "ValueError",
        "TransformerDecoderLayer(batch_first=False)",
        "This course is batch-first: refuse batch_first=False with ValueError.",
    )
    _attention_drops_out(
        m,
        m.TransformerDecoderLayer(D, H, FF, dropout=0.5).double(),
        ["self_attn", "multihead_attn"],
        ["dropout", "dropout1", "dropout2", "dropout3"],
        randn(341, B, T, D),
        randn(342, B, T + 1, D),
    )


def _attention_drops_out(m, layer, attentions: list[str], dropouts: list[str], *inputs) -> None:
    for name in dropouts:
        getattr(layer, name).p = 0.0
    layer.train()
    for name in attentions:
        for other in attentions:
            getattr(layer, other).train(other == name)
        first = run(m, layer, *inputs, train=None, seed=1)
        second = run(m, layer, *inputs, train=None, seed=2)
        if np.allclose(first, second):
            raise CheckFailed(
                f"in training mode with dropout = 0.5 and only {name} in training mode, two "
                f"forwards with different seeds agree: {name} applies no dropout.",
                f"Pass dropout on to the attention: {name} = MultiHeadAttention(d_model, nhead, "
                f"dropout=dropout, bias=bias).",
            )


@check("blocks_decoder_layer", "oracle")
def decoder_layer_without_bias_and_with_causal_flags_matches_torch(m):
    """A decoder layer with bias=False and layer_norm_eps=1e-2 equals torch's; tgt_is_causal and
    memory_is_causal without masks equal explicit causal masks."""
    tgt, memory = randn(350, B, T, D), randn(351, B, T, D)
    reference = _decoder(352, bias=False, layer_norm_eps=1e-2)
    student = m.TransformerDecoderLayer(D, H, FF, bias=False, layer_norm_eps=1e-2)
    copy_weights(student, reference.state_dict(), "TransformerDecoderLayer(bias=False)")
    assert_close(
        run(m, student, tgt, memory),
        _output(reference, tgt, memory),
        "the decoder layer with bias=False, layer_norm_eps=1e-2",
        hint="Pass bias to every sub-layer (attentions, linears, norms) and "
        "layer_norm_eps to every norm.",
    )
    reference = _decoder(353)
    student = m.TransformerDecoderLayer(D, H, FF)
    copy_weights(student, reference.state_dict(), "TransformerDecoderLayer")
    causal = _causal(T)
    for flag, mask in (("tgt_is_causal", "tgt_mask"), ("memory_is_causal", "memory_mask")):
        assert_close(
            run(m, student, tgt, memory, **{flag: True}),
            _output(reference, tgt, memory, **{mask: ~causal}),
            f"the decoder layer with {flag}=True and no {mask}",
            hint=f"Pass {flag} on to the attention as is_causal: it forbids attending "
            f"to later positions even without a mask.",
        )
