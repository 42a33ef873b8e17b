"""Phase 2, written independently of the reference from the stubs' docstrings alone.

Other routes than the obvious ones: a clamped softmax denominator, masks from index
arithmetic, every mask folded into one additive mask, per-query sliding windows (unfold with
step 1) for banded attention, and rotary embeddings as complex multiplication.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NEG_INF = float("-inf")

# ---- 2.1 Stable masked softmax ----


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """exp(s − m)/Σ_allowed exp(s − m) along dim; rows with nothing allowed are zeros."""
    if mask is not None:
        scores = scores.masked_fill(~mask.to(torch.bool), NEG_INF)
    peak = scores.amax(dim=dim, keepdim=True).detach()
    peak = torch.where(peak == NEG_INF, torch.zeros_like(peak), peak)
    # dividing, not subtracting log Σ: peak + log Σ rounds away the small part at |s| ≈ 1e4
    unnormalised = torch.exp(scores - peak)
    total = unnormalised.sum(dim=dim, keepdim=True)
    return unnormalised / total.clamp_min(torch.finfo(total.dtype).tiny)


# ---- 2.2 Additive (Bahdanau) and multiplicative (Luong) attention ----


def attend(scores: Tensor, values: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """weights = masked_softmax over keys; context = weights @ values."""
    weights = masked_softmax(scores, mask, dim=-1)  # (..., Tq, Tk)
    return torch.matmul(weights, values), weights  # (..., Tq, Dv)


class AdditiveAttention(nn.Module):
    """score(q, k) = vᵀ tanh(W q + U k)."""

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.query_proj(query).unsqueeze(-2)  # (..., Tq, 1, H)
        k = self.key_proj(keys).unsqueeze(-3)  # (..., 1, Tk, H)
        return torch.einsum("...h,h->...", torch.tanh(q + k), self.v.weight[0])  # (..., Tq, Tk)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return attend(self.score(query, keys), values, mask)


class MultiplicativeAttention(nn.Module):
    """score(q, k) = qᵀk ("dot") or qᵀ W_a k ("general")."""

    def __init__(self, query_dim: int, key_dim: int | None = None, method: str = "general") -> None:
        super().__init__()
        key_dim = query_dim if key_dim is None else key_dim
        if method not in ("dot", "general"):
            raise ValueError(f"method must be 'dot' or 'general', got {method!r}")
        if method == "dot" and key_dim != query_dim:
            raise ValueError(
                f"'dot' scores need key_dim == query_dim, got {key_dim} and "
                f"{query_dim}: use method='general'"
            )
        self.method = method
        self.W = nn.Linear(key_dim, query_dim, bias=False) if method == "general" else None

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        # qᵀ W_a k = (W_aᵀ q)·k: move W_a onto the queries instead of the keys
        q = query if self.W is None else torch.matmul(query, self.W.weight)  # (..., Tq, Dk)
        return torch.matmul(q, keys.transpose(-1, -2))  # (..., Tq, Tk)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return attend(self.score(query, keys), values, mask)


# ---- 2.3 Causal and padding masks ----


def causal_mask(tq: int, tk: int | None = None, device: torch.device | None = None) -> Tensor:
    """(tq, tk) bool, True where j ≤ i."""
    tk = tq if tk is None else tk
    rows = torch.arange(tq, device=device).unsqueeze(1)  # (tq, 1)
    cols = torch.arange(tk, device=device).unsqueeze(0)  # (1, tk)
    return cols <= rows


def padding_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(B, max_len) bool, True where t < lengths[b]."""
    lengths = torch.as_tensor(lengths)
    width = int(lengths.max()) if max_len is None else int(max_len)
    positions = torch.arange(width, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)


def additive_mask(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """bool True → 0, False → −inf; float masks pass through, in `dtype`."""
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return out.masked_fill(~mask, NEG_INF)


# ---- 2.4 Scaled dot-product attention ----


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """softmax(Q Kᵀ·scale + M) V and the (dropped-out) weights."""
    tq, tk = query.shape[-2], key.shape[-2]
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = torch.matmul(query, key.transpose(-1, -2)) * factor  # (..., Tq, Tk)
    allowed = None
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            allowed = attn_mask
        else:
            scores = scores + attn_mask.to(scores.dtype)
    if is_causal:
        lower = causal_mask(tq, tk, device=scores.device)
        allowed = lower if allowed is None else allowed & lower
    weights = masked_softmax(scores, allowed, dim=-1)
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return torch.matmul(weights, value), weights  # (..., Tq, d_v)


# ---- 2.5 Multi-head attention ----


class MultiHeadAttention(nn.Module):
    """Multi-head attention laid out like torch.nn.MultiheadAttention(batch_first=True)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if not batch_first:
            raise ValueError("this course is batch-first: inputs are (B, T, E)")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.dropout = dropout
        self.batch_first = True
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, E) → (B, H, T, d)."""
        return x.unflatten(-1, (self.num_heads, self.head_dim)).permute(0, 2, 1, 3)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, H, T, d) → (B, T, E)."""
        return x.permute(0, 2, 1, 3).flatten(-2)

    def _projections(self) -> list[tuple[Tensor, Tensor | None]]:
        if self._qkv_same_embed_dim:
            weights = list(self.in_proj_weight.split(self.embed_dim, dim=0))
        else:
            weights = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        if self.in_proj_bias is None:
            biases: list[Tensor | None] = [None, None, None]
        else:
            biases = list(self.in_proj_bias.split(self.embed_dim))
        return list(zip(weights, biases, strict=True))

    def _combined_mask(
        self,
        attn_mask: Tensor | None,
        key_padding_mask: Tensor | None,
        batch: int,
        tq: int,
        tk: int,
        dtype: torch.dtype,
    ) -> Tensor | None:
        """Every mask as one additive float mask broadcastable to (B, H, Tq, Tk)."""
        total = None
        if attn_mask is not None:
            if attn_mask.dim() == 3 and attn_mask.shape[0] == batch * self.num_heads:
                attn_mask = attn_mask.reshape(batch, self.num_heads, tq, tk)
            total = additive_mask(attn_mask, dtype)
        if key_padding_mask is not None:
            padding = additive_mask(key_padding_mask, dtype).reshape(batch, 1, 1, tk)
            total = padding if total is None else total + padding
        return total

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        is_causal: bool = False,
        average_attn_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        batch, tq, tk = query.shape[0], query.shape[1], key.shape[1]
        heads = [
            self.split_heads(F.linear(x, w, b))
            for x, (w, b) in zip((query, key, value), self._projections(), strict=True)
        ]  # 3 × (B, H, T, d)
        mask = self._combined_mask(attn_mask, key_padding_mask, batch, tq, tk, heads[0].dtype)
        p = self.dropout if self.training else 0.0
        out, weights = scaled_dot_product_attention(
            *heads, attn_mask=mask, dropout_p=p, is_causal=is_causal
        )
        out = self.out_proj(self.merge_heads(out))  # (B, Tq, E)
        if not need_weights:
            return out, None
        return out, weights.mean(dim=1) if average_attn_weights else weights


# ---- 2.6 Cross-attention ----


class CrossAttention(nn.Module):
    """Queries from x attend to the context."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        context_dim: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(
            embed_dim, num_heads, dropout, bias, kdim=context_dim, vdim=context_dim
        )

    def forward(
        self,
        x: Tensor,
        context: Tensor,
        context_mask: Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        return self.attn(
            x, context, context, key_padding_mask=context_mask, need_weights=need_weights
        )


# ---- 2.7 Sparse attention patterns ----


def _offsets(T: int, device: torch.device | None) -> Tensor:
    """(T, T) of i − j."""
    index = torch.arange(T, device=device)
    return index.unsqueeze(1) - index.unsqueeze(0)


def sliding_window_mask(
    T: int, window: int, causal: bool = True, device: torch.device | None = None
) -> Tensor:
    """True where 0 ≤ i − j < window (causal) or |i − j| < window."""
    gap = _offsets(T, device)
    if causal:
        return (gap >= 0) & (gap < window)
    return gap.abs() < window


def strided_mask(T: int, stride: int, device: torch.device | None = None) -> Tensor:
    """True where j ≤ i and stride divides i − j."""
    gap = _offsets(T, device)
    return (gap >= 0) & (torch.remainder(gap, stride) == 0)


# ---- 2.8 Banded sliding-window attention ----


def banded_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    window: int,
    causal: bool = True,
    scale: float | None = None,
) -> Tensor:
    """Sliding-window attention in O(T·window): each query scores only its own span of keys.

    Query i sees keys j = i − (window − 1) + c for c in 0 … span − 1, span = window (causal)
    or 2·window − 1; the padded keys are unfolded with step 1 into those per-query spans.
    """
    T = query.shape[-2]
    reach = window - 1
    span = window if causal else 2 * window - 1
    right = 0 if causal else reach
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    key_spans = F.pad(key, (0, 0, reach, right)).unfold(-2, span, 1)  # (..., T, d_k, span)
    value_spans = F.pad(value, (0, 0, reach, right)).unfold(-2, span, 1)  # (..., T, d_v, span)
    scores = torch.einsum("...td,...tds->...ts", query, key_spans) * factor  # (..., T, span)
    j = (
        torch.arange(T, device=query.device).unsqueeze(1)
        - reach
        + torch.arange(span, device=query.device)
    )  # (T, span) the key index of each slot
    inside = (j >= 0) & (j < T)
    weights = masked_softmax(scores, inside, dim=-1)
    return torch.einsum("...ts,...tds->...td", weights, value_spans)  # (..., T, d_v)


# ---- 2.9 Sinusoidal and learned positional encodings ----


def sinusoidal_table(
    length: int,
    dim: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> Tensor:
    """PE[p, 2i] = sin(p·ωᵢ), PE[p, 2i+1] = cos(p·ωᵢ), ωᵢ = base^(−2i/dim)."""
    if dim % 2:
        raise ValueError(f"sinusoidal tables need an even dim, got {dim}")
    even = torch.arange(0, dim, 2, dtype=torch.float64)
    omega = torch.exp(even * (-math.log(base) / dim))  # (dim/2,)
    angles = torch.outer(torch.arange(length, dtype=torch.float64), omega)  # (L, dim/2)
    table = torch.empty(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table.to(dtype=dtype, device=device)


def _window(table: Tensor, x: Tensor, offset: int) -> Tensor:
    T = x.shape[-2]
    if offset < 0 or offset + T > table.shape[0]:
        raise ValueError(
            f"positions {offset} … {offset + T - 1} exceed the table of {table.shape[0]}"
        )
    return table.narrow(0, offset, T)


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[offset : offset + T] from the fixed buffer `pe`."""

    def __init__(self, dim: int, max_len: int = 4096, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, dim, base), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        return x + _window(self.pe, x, offset).to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """x + weight[offset : offset + T] from the trained table `weight`."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_len, dim) * 0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        return x + _window(self.weight, x, offset)


# ---- 2.10 Rotary position embedding ----


class RotaryEmbedding(nn.Module):
    """RoPE as complex multiplication: (x₂ᵢ + i·x₂ᵢ₊₁)·e^(i·p·θᵢ)."""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"rotary embeddings need an even dim, got {dim}")
        self.dim, self.base = dim, base

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        T = x.shape[-2]
        if positions is None:
            positions = torch.arange(T, device=x.device)
        theta = self.base ** (
            -torch.arange(0, self.dim, 2, dtype=torch.float64, device=x.device) / self.dim
        )  # (dim/2,)
        angles = positions.to(device=x.device, dtype=torch.float64).unsqueeze(-1) * theta
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        rotation = torch.polar(torch.ones_like(angles), angles).to(
            torch.complex128 if work == torch.float64 else torch.complex64
        )  # (T, dim/2)
        pairs = x.to(work).unflatten(-1, (self.dim // 2, 2)).contiguous()  # (..., T, dim/2, 2)
        rotated = torch.view_as_complex(pairs) * rotation  # (..., T, dim/2)
        return torch.view_as_real(rotated).flatten(-2).to(x.dtype)  # (..., T, dim)
