"""Phase 4 — Transformer blocks in PyTorch.

The pieces between attention and a whole model: the error function and GELU, layer
normalisation with a backward pass written by hand, RMSNorm, the position-wise feed-forward
network, and the Transformer encoder and decoder layers (post-norm as in Vaswani et al.,
pre-norm as in GPT-2), built on your own phase-2 MultiHeadAttention. Read curriculum.md §4
alongside.

Conventions used throughout:
- Batch first: sequences are (B, T, D).
- Boolean masks mean True = MAY ATTEND, as in phase 2 — the opposite of
  nn.TransformerEncoderLayer's src_mask / src_key_padding_mask, where True means "masked
  out". Float masks are added to the attention scores.
- Parameter names follow PyTorch (weight, bias; self_attn, linear1, linear2, norm1, norm2,
  norm3, multihead_attn), so a state_dict copied from torch's layers loads into yours.
- Nothing casts: float32 in, float32 out; float64 in, float64 out.
- Forbidden: nn.LayerNorm, F.layer_norm, nn.RMSNorm, F.rms_norm, nn.GELU, F.gelu, torch.erf
  (and its aliases), nn.Transformer and its layers, nn.MultiheadAttention and
  F.scaled_dot_product_attention. Everything else in torch is yours.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .phase2_attention import MultiHeadAttention

Shape = int | tuple[int, ...] | list[int] | torch.Size

# Abramowitz & Stegun 7.1.26: erf(x) ≈ 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^{−x²},
# t = 1/(1 + p·x), for x ≥ 0, with |error| ≤ 1.5e-7.
ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # the constant inside tanh-approximated GELU
GELU_CUBIC = 0.044715


# ---- 4.1 The error function ----


def erf(x: Tensor) -> Tensor:
    """erf(x) = (2/√π)∫₀ˣ e^{−s²} ds elementwise, by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7).

    The formula holds for x ≥ 0: evaluate it at |x| and use the odd symmetry
    erf(−x) = −erf(x). Same shape and dtype as x; finite for every finite x.
    """
    # BEGIN SOLUTION
    # HINT: evaluate the polynomial a₁t + … + a₅t⁵ by Horner's rule: t·(a₁ + t·(a₂ + …)).
    # HINT: torch.sign(x) is −1, 0 or 1 — and erf(0) = 0.
    z = x.abs()
    t = 1.0 / (1.0 + ERF_P * z)
    # KEEP guided
    a1, a2, a3, a4, a5 = ERF_A
    # END KEEP
    poly = t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))
    return torch.sign(x) * (1.0 - poly * torch.exp(-z * z))
    # END SOLUTION


# ---- 4.2 GELU ----


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU(x) = x·Φ(x), Φ the standard normal CDF, as torch.nn.functional.gelu.

    approximate="none":  0.5·x·(1 + erf(x/√2))        (through your erf)
    approximate="tanh":  0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    Any other approximate: ValueError.
    """
    # BEGIN SOLUTION
    # HINT: Φ(x) = (1 + erf(x/√2))/2.
    # KEEP guided
    if approximate == "tanh":
    # END KEEP
        # ½·(1 + tanh u) = sigmoid(2u): one elementwise pass where the formula takes three
        return x * torch.sigmoid(2.0 * SQRT_2_OVER_PI * (x + GELU_CUBIC * x**3))
    # KEEP guided
    if approximate != "none":
    # END KEEP
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    # END SOLUTION


class GELU(nn.Module):
    """GELU as a module, like torch.nn.GELU(approximate)."""

    def __init__(self, approximate: str = "none") -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.approximate = approximate
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """gelu(x, self.approximate)."""
        # BEGIN SOLUTION
        return gelu(x, self.approximate)
        # END SOLUTION


# ---- 4.3 LayerNorm with a hand-written backward ----


class LayerNormFunction(torch.autograd.Function):
    """Layer normalisation as one autograd Function, backward derived by hand.

    y = LayerNormFunction.apply(x, normalized_shape, weight, bias, eps)
    x (..., *S) with S = normalized_shape (a tuple); weight, bias of shape S or None.
    Over the last len(S) dimensions of each position: μ = mean(x), σ² = mean((x − μ)²)
    (biased), x̂ = (x − μ)/√(σ² + ε), y = weight·x̂ + bias.

    backward gets g = ∂L/∂y and returns (∂L/∂x, None, ∂L/∂weight, ∂L/∂bias, None) with no
    autograd. With dx̂ = g·weight and means taken over the normalised dimensions:
        ∂L/∂x = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / √(σ² + ε)
        ∂L/∂weight = Σ g·x̂,  ∂L/∂bias = Σ g   (sums over every leading dimension)
    """

    @staticmethod
    def forward(ctx, x: Tensor, normalized_shape: tuple[int, ...], weight: Tensor | None,
                bias: Tensor | None, eps: float) -> Tensor:
        """Normalise, save what backward needs (x̂, 1/√(σ² + ε), weight); returns y."""
        # BEGIN SOLUTION
        # HINT: the normalised dimensions are the last len(normalized_shape): dims = (−k, …, −1).
        # HINT: two passes — first μ, then the mean of (x − μ)² — stay exact for large offsets.
        dims = tuple(range(-len(normalized_shape), 0))
        centred = x - x.mean(dim=dims, keepdim=True)  # (..., *S)
        inv_std = torch.rsqrt((centred * centred).mean(dim=dims, keepdim=True) + eps)  # (..., 1…)
        x_hat = centred * inv_std  # (..., *S)
        y = x_hat if weight is None else x_hat * weight
        # KEEP guided
        if bias is not None:
        # END KEEP
            y = y + bias
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.dims, ctx.has_bias = dims, bias is not None
        return y
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        """grad_out (..., *S) → (dx, None, dweight or None, dbias or None, None)."""
        # BEGIN SOLUTION
        # HINT: x̂ depends on x directly and through μ and σ²: the two mean terms are those paths.
        # HINT: weight and bias are shared by every position: sum their gradients over the
        # HINT: leading dimensions (reshape to (−1, *S) and sum dim 0).
        x_hat, inv_std, weight = ctx.saved_tensors
        dims = ctx.dims
        # KEEP guided
        shape = x_hat.shape[len(x_hat.shape) - len(dims):]
        # END KEEP
        d_hat = grad_out if weight is None else grad_out * weight  # (..., *S)
        dx = inv_std * (d_hat - d_hat.mean(dim=dims, keepdim=True)
                        - x_hat * (d_hat * x_hat).mean(dim=dims, keepdim=True))
        dweight = None if weight is None else (grad_out * x_hat).reshape(-1, *shape).sum(0)
        dbias = grad_out.reshape(-1, *shape).sum(0) if ctx.has_bias else None
        return dx, None, dweight, dbias, None
        # END SOLUTION


def layer_norm(x: Tensor, normalized_shape: Shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Same call as torch.nn.functional.layer_norm, through LayerNormFunction.

    normalized_shape is an int (the last dimension) or a tuple of trailing dimensions.
    """
    # BEGIN SOLUTION
    # KEEP guided
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    # END KEEP
    return LayerNormFunction.apply(x, tuple(normalized_shape), weight, bias, eps)
    # END SOLUTION


class LayerNorm(nn.Module):
    """torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias) on layer_norm.

    Attributes: normalized_shape (a tuple), eps, elementwise_affine; parameters weight (ones)
    and bias (zeros) of shape normalized_shape — both None when elementwise_affine is False,
    bias None when bias is False.
    """

    def __init__(self, normalized_shape: Shape, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape)) if bias else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x (..., *normalized_shape) → the same shape."""
        # BEGIN SOLUTION
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        # END SOLUTION


# ---- 4.4 RMSNorm ----


def rms_norm(x: Tensor, normalized_shape: Shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """RMSNorm, the same call as torch.nn.functional.rms_norm: y = x/√(mean(x²) + ε)·weight.

    The mean runs over the last len(normalized_shape) dimensions. No centring, no bias.
    eps=None means torch.finfo(x.dtype).eps. Plain autograd is fine here.
    """
    # BEGIN SOLUTION
    # HINT: RMSNorm (Zhang & Sennrich 2019) drops LayerNorm's mean: do not subtract it.
    # KEEP guided
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    # END KEEP
    dims = tuple(range(-len(normalized_shape), 0))
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    y = x * torch.rsqrt((x * x).mean(dim=dims, keepdim=True) + eps)  # (..., *S)
    return y if weight is None else y * weight
    # END SOLUTION


class RMSNorm(nn.Module):
    """torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True) on rms_norm.

    Attributes normalized_shape (a tuple), eps, elementwise_affine; parameter weight (ones,
    shape normalized_shape), None when elementwise_affine is False.
    """

    def __init__(self, normalized_shape: Shape, eps: float | None = None,
                 elementwise_affine: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
        else:
            self.register_parameter("weight", None)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x (..., *normalized_shape) → the same shape."""
        # BEGIN SOLUTION
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)
        # END SOLUTION


# ---- 4.5 The position-wise feed-forward network ----


def get_activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """"relu" → F.relu, "gelu" → your gelu (exact), a callable → itself; else ValueError."""
    # BEGIN SOLUTION
    # KEEP guided
    if callable(activation):
    # END KEEP
        return activation
    # KEEP guided
    if activation == "relu":
    # END KEEP
        return F.relu
    # KEEP guided
    if activation == "gelu":
    # END KEEP
        return gelu
    raise ValueError(f"activation should be 'relu', 'gelu' or a callable, got {activation!r}")
    # END SOLUTION


class PositionwiseFeedForward(nn.Module):
    """FFN(x) = linear2(dropout(activation(linear1(x)))), applied to every position alike.

    linear1 = nn.Linear(d_model, dim_feedforward, bias), linear2 = nn.Linear(dim_feedforward,
    d_model, bias), dropout = nn.Dropout(dropout), activation = get_activation(activation).
    x (B, T, d_model) → (B, T, d_model). The Transformer layers below hold the same four
    attributes under the same names, as torch's do.
    """

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float = 0.0,
                 activation: str | Callable[[Tensor], Tensor] = "relu", bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.activation = get_activation(activation)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x (..., d_model) → (..., d_model)."""
        # BEGIN SOLUTION
        # HINT: the non-linearity sits between the two linear maps, dropout right after it.
        return self.linear2(self.dropout(self.activation(self.linear1(x))))  # (..., d_model)
        # END SOLUTION


# ---- 4.6 The Transformer encoder layer ----


class TransformerEncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual branch with LayerNorm,
    as torch.nn.TransformerEncoderLayer(batch_first=True).

    Post-norm (norm_first=False, Vaswani et al.):   x = norm1(x + SA(x));  x = norm2(x + FF(x))
    Pre-norm  (norm_first=True, GPT-2):             x = x + SA(norm1(x));  x = x + FF(norm2(x))
    SA(x) = dropout1(self_attn(x, x, x)[0]), FF(x) = dropout2(linear2(dropout(act(linear1(x))))).

    Submodules, named as torch's: self_attn = MultiHeadAttention(d_model, nhead, dropout, bias)
    from phase 2; linear1, dropout, linear2 and activation as in PositionwiseFeedForward;
    norm1, norm2 = LayerNorm(d_model, layer_norm_eps, bias=bias); dropout1, dropout2.
    batch_first=False raises ValueError: this course is batch-first.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable[[Tensor], Tensor] = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        if not batch_first:
            raise ValueError("this course is batch-first: inputs are (B, T, D)")
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = get_activation(activation)
        # END SOLUTION

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                  is_causal: bool) -> Tensor:
        """dropout1 of self-attention over x (no weights needed)."""
        # BEGIN SOLUTION
        out, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)
        return self.dropout1(out)  # (B, T, D)
        # END SOLUTION

    def _ff_block(self, x: Tensor) -> Tensor:
        """dropout2 of the feed-forward network."""
        # BEGIN SOLUTION
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        # END SOLUTION

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """src (B, T, D) → (B, T, D), post- or pre-norm as self.norm_first says.

        src_mask (T, T) or (B·nhead, T, T) and src_key_padding_mask (B, T): True = may attend
        (a real token), or float (added). is_causal also forbids attending to later positions.
        """
        # BEGIN SOLUTION
        # HINT: pre-norm normalises the *input of each branch*; post-norm normalises the sum.
        # KEEP guided
        x = src
        # END KEEP
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x
        # END SOLUTION


# ---- 4.7 The Transformer decoder layer ----


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the encoder's output (the memory) and a
    feed-forward network, each in a residual branch with LayerNorm, as
    torch.nn.TransformerDecoderLayer(batch_first=True).

    Post-norm: x = norm1(x + SA(x)); x = norm2(x + MHA(x, mem)); x = norm3(x + FF(x))
    Pre-norm:  x = x + SA(norm1(x)); x = x + MHA(norm2(x), mem); x = x + FF(norm3(x))
    MHA(x, mem) = dropout2(multihead_attn(x, mem, mem)[0]): queries from the target, keys and
    values from the memory (never normalised here: the encoder did that).

    Submodules, named as torch's: self_attn, multihead_attn = MultiHeadAttention(d_model,
    nhead, dropout, bias); linear1, dropout, linear2, activation; norm1, norm2, norm3;
    dropout1, dropout2, dropout3 (dropout3 follows the feed-forward network).
    batch_first=False raises ValueError: this course is batch-first.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable[[Tensor], Tensor] = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        if not batch_first:
            raise ValueError("this course is batch-first: inputs are (B, T, D)")
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = get_activation(activation)
        # END SOLUTION

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                  is_causal: bool) -> Tensor:
        """dropout1 of masked self-attention over the target."""
        # BEGIN SOLUTION
        out, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)
        return self.dropout1(out)  # (B, T, D)
        # END SOLUTION

    def _mha_block(self, x: Tensor, memory: Tensor, attn_mask: Tensor | None,
                   key_padding_mask: Tensor | None, is_causal: bool) -> Tensor:
        """dropout2 of cross-attention: queries from x, keys and values from the memory.

        x (B, T, D), memory (B, S, D) → (B, T, D).
        """
        # BEGIN SOLUTION
        out, _ = self.multihead_attn(x, memory, memory, attn_mask=attn_mask,
                                     key_padding_mask=key_padding_mask, need_weights=False,
                                     is_causal=is_causal)
        return self.dropout2(out)  # (B, T, D)
        # END SOLUTION

    def _ff_block(self, x: Tensor) -> Tensor:
        """dropout3 of the feed-forward network."""
        # BEGIN SOLUTION
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        # END SOLUTION

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        """tgt (B, T, D), memory (B, S, D) → (B, T, D), post- or pre-norm as self.norm_first says.

        tgt_mask (T, T), memory_mask (T, S), key padding masks (B, T) and (B, S): True = may
        attend, or float (added). tgt_is_causal forbids attending to later target positions;
        memory_is_causal forbids target position i to attend memory positions j > i.
        """
        # BEGIN SOLUTION
        # KEEP guided
        x = tgt
        # END KEEP
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                               memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x
        # END SOLUTION
