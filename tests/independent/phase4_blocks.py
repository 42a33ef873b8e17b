"""Phase 4, written independently of the reference from the stubs' docstrings alone.

Other routes than the obvious ones: erf by an explicit power sum and a sign-free where, LayerNorm
sums over the leading dimensions by index tuples, and the Transformer layers as a loop over
(norm, branch) pairs instead of spelled-out residual lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .phase2_attention import MultiHeadAttention

Shape = int | tuple[int, ...] | list[int] | torch.Size

ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


def _as_shape(normalized_shape: Shape) -> tuple[int, ...]:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(n) for n in normalized_shape)


def _trailing(k: int) -> tuple[int, ...]:
    return tuple(range(-k, 0))


def _sum_leading(t: Tensor, leading: tuple[int, ...]) -> Tensor:
    # sum(dim=()) would sum every dimension: with no leading dimensions there is nothing to sum
    return t.sum(dim=leading) if leading else t.clone()


# ---- 4.1 The error function ----


def erf(x: Tensor) -> Tensor:
    """Abramowitz–Stegun 7.1.26 at |x|, made odd: erf(x) = sign(x)·(1 − Σₖ aₖtᵏ·e^{−x²})."""
    # the power sum cancels (the aₖ alternate in sign): float32 rounding alone would cost
    # about 1.5e-7 on top of the formula's own 1.5e-7, so narrower dtypes work in float64
    work = x if x.dtype == torch.float64 else x.to(torch.float64)
    magnitude = work.abs()
    t = 1.0 / (1.0 + ERF_P * magnitude)
    power = t
    series = torch.zeros_like(work)
    for coefficient in ERF_A:
        series = series + coefficient * power
        power = power * t
    positive = (1.0 - series * torch.exp(-magnitude * magnitude)).to(x.dtype)
    # at x = 0 the formula leaves ≈1e-9; the exact value is 0
    return torch.where(x > 0, positive, torch.where(x < 0, -positive, torch.zeros_like(x)))


# ---- 4.2 GELU ----


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x): exact through erf, or the tanh approximation."""
    if approximate == "none":
        return x * (0.5 + 0.5 * erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)
        return x * (0.5 + 0.5 * torch.tanh(inner))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


class GELU(nn.Module):
    """GELU as a module."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)


# ---- 4.3 LayerNorm with a hand-written backward ----


class LayerNormFunction(torch.autograd.Function):
    """Layer normalisation with a hand-derived backward."""

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        normalized_shape: tuple[int, ...],
        weight: Tensor | None,
        bias: Tensor | None,
        eps: float,
    ) -> Tensor:
        dims = _trailing(len(normalized_shape))
        centred = x - x.mean(dim=dims, keepdim=True)
        inv_std = torch.rsqrt(centred.square().mean(dim=dims, keepdim=True) + eps)
        x_hat = centred * inv_std  # (..., *S)
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.has_bias = bias is not None
        ctx.k = len(normalized_shape)
        y = x_hat if weight is None else x_hat * weight
        return y if bias is None else y + bias

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x_hat, inv_std, weight = ctx.saved_tensors
        dims = _trailing(ctx.k)
        leading = tuple(range(grad_out.dim() - ctx.k))
        d_hat = grad_out if weight is None else grad_out * weight
        dx = (
            d_hat
            - d_hat.mean(dim=dims, keepdim=True)
            - x_hat * (d_hat * x_hat).mean(dim=dims, keepdim=True)
        ) * inv_std
        d_weight = None if weight is None else _sum_leading(grad_out * x_hat, leading)
        d_bias = _sum_leading(grad_out, leading) if ctx.has_bias else None
        return dx, None, d_weight, d_bias, None


def layer_norm(
    x: Tensor,
    normalized_shape: Shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """F.layer_norm's call, through LayerNormFunction."""
    return LayerNormFunction.apply(x, _as_shape(normalized_shape), weight, bias, eps)


class LayerNorm(nn.Module):
    """torch.nn.LayerNorm on layer_norm."""

    def __init__(
        self,
        normalized_shape: Shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
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

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


# ---- 4.4 RMSNorm ----


def rms_norm(
    x: Tensor, normalized_shape: Shape, weight: Tensor | None = None, eps: float | None = None
) -> Tensor:
    """x/√(mean(x²) + ε)·weight over the trailing dims; ε defaults to finfo(x.dtype).eps."""
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    dims = _trailing(len(_as_shape(normalized_shape)))
    rms = (x * x).mean(dim=dims, keepdim=True).add(eps).sqrt()
    y = x / rms
    return y if weight is None else y * weight


class RMSNorm(nn.Module):
    """torch.nn.RMSNorm on rms_norm."""

    def __init__(
        self, normalized_shape: Shape, eps: float | None = None, elementwise_affine: bool = True
    ) -> None:
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

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)


# ---- 4.5 The position-wise feed-forward network ----

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": gelu}


def get_activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """A name from ACTIVATIONS, or a callable as is."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")
        return ACTIVATIONS[activation]
    if callable(activation):
        return activation
    raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")


def _feed_forward(layer: nn.Module, x: Tensor) -> Tensor:
    return layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))


class PositionwiseFeedForward(nn.Module):
    """linear2(dropout(activation(linear1(x))))."""

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.activation = get_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return _feed_forward(self, x)


def _residual_stack(
    x: Tensor, steps: list[tuple[nn.Module, Callable[[Tensor], Tensor]]], norm_first: bool
) -> Tensor:
    """Apply each (norm, branch) residually: pre-norm x + f(n(x)), post-norm n(x + f(x))."""
    for norm, branch in steps:
        x = x + branch(norm(x)) if norm_first else norm(x + branch(x))
    return x


# ---- 4.6 The Transformer encoder layer ----


class TransformerEncoderLayer(nn.Module):
    """Self-attention and feed-forward, each residual with LayerNorm (post- or pre-norm)."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = True,
        norm_first: bool = False,
        bias: bool = True,
    ) -> None:
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

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        out, _ = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )
        return self.dropout1(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(_feed_forward(self, x))

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        def attention(h: Tensor) -> Tensor:
            return self._sa_block(h, src_mask, src_key_padding_mask, is_causal)

        steps = [(self.norm1, attention), (self.norm2, self._ff_block)]
        return _residual_stack(src, steps, self.norm_first)


# ---- 4.7 The Transformer decoder layer ----


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to memory and feed-forward, each residual."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = True,
        norm_first: bool = False,
        bias: bool = True,
    ) -> None:
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

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        out, _ = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )
        return self.dropout1(out)

    def _mha_block(
        self,
        x: Tensor,
        memory: Tensor,
        attn_mask: Tensor | None,
        key_padding_mask: Tensor | None,
        is_causal: bool,
    ) -> Tensor:
        out, _ = self.multihead_attn(
            x,
            memory,
            memory,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )
        return self.dropout2(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout3(_feed_forward(self, x))

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        def self_attention(h: Tensor) -> Tensor:
            return self._sa_block(h, tgt_mask, tgt_key_padding_mask, tgt_is_causal)

        def cross_attention(h: Tensor) -> Tensor:
            return self._mha_block(
                h, memory, memory_mask, memory_key_padding_mask, memory_is_causal
            )

        steps = [
            (self.norm1, self_attention),
            (self.norm2, cross_attention),
            (self.norm3, self._ff_block),
        ]
        return _residual_stack(tgt, steps, self.norm_first)
