"""Phase 2 — Attention in PyTorch.

From a numerically safe softmax to the pieces of every modern Transformer: additive and
multiplicative attention, masks, scaled dot-product attention, multi-head self- and
cross-attention, sparse (sliding-window and strided) attention with a banded implementation
whose cost grows linearly with the sequence, and positional encodings (sinusoidal, learned,
rotary). Read curriculum.md §2 alongside.

Conventions used throughout:
- Batch first: sequences are (B, T, D); per-head tensors are (B, H, T, d) with d = D/H.
- Boolean masks mean True = MAY ATTEND (a real token, an allowed key). This is the convention
  of torch.nn.functional.scaled_dot_product_attention, and the OPPOSITE of
  torch.nn.MultiheadAttention's `attn_mask` / `key_padding_mask`, where True means "masked
  out". Convert with `~mask` when you compare with nn.MultiheadAttention.
- A float mask is added to the scores (0 = keep, −inf = masked), as in PyTorch.
- A query that may attend to nothing gets all-zero weights and a zero output, never nan.
- Parameter names and layouts follow PyTorch, so weights can be copied from torch modules.
- Forbidden: nn.MultiheadAttention, F.scaled_dot_product_attention,
  F.multi_head_attention_forward, and every softmax / log-softmax / logsumexp built-in.
  Everything else in torch (matmul, exp, amax, masked_fill, F.linear, F.dropout …) is yours.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ---- 2.1 Stable masked softmax ----


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """softmax of `scores` along `dim`, over the entries `mask` allows (True = may attend).

    scores: any shape; mask: bool, broadcastable to scores. Same shape and dtype as scores.
    With m = max over the allowed entries:  wᵢ = exp(sᵢ − m) / Σ_allowed exp(sⱼ − m),
    wᵢ = 0 where the mask is False or the score is −inf. A slice with nothing allowed is all
    zeros (never nan), and so is its gradient.
    """
    # BEGIN SOLUTION
    # HINT: masked_fill the forbidden scores with −inf *before* the max and the exp.
    # HINT: a fully masked row has max −inf, and −inf − (−inf) is nan: replace such a max by 0,
    # HINT: and divide by 1 where the sum is 0. The max needs no gradient (.detach()).
    # KEEP guided
    if mask is not None:
    # END KEEP
        scores = scores.masked_fill(~mask, float("-inf"))
    m = scores.amax(dim=dim, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(scores - m)
    total = e.sum(dim=dim, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))
    # END SOLUTION


# ---- 2.2 Additive (Bahdanau) and multiplicative (Luong) attention ----


def attend(scores: Tensor, values: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Turn scores into (context, weights): weights = masked_softmax over the keys, then Σ w·v.

    scores (..., Tq, Tk), values (..., Tk, Dv), mask bool broadcastable to the scores.
    Returns context (..., Tq, Dv) and weights (..., Tq, Tk); each row of weights sums to 1.
    """
    # BEGIN SOLUTION
    # HINT: each query's weights form a distribution over the *keys*: the last axis.
    weights = masked_softmax(scores, mask, dim=-1)  # (..., Tq, Tk)
    return weights @ values, weights  # (..., Tq, Dv), (..., Tq, Tk)
    # END SOLUTION


class AdditiveAttention(nn.Module):
    """Bahdanau attention: score(q, k) = vᵀ tanh(W q + U k).

    Parameters (no biases): query_proj = W, nn.Linear(query_dim, hidden_dim);
    key_proj = U, nn.Linear(key_dim, hidden_dim); v = nn.Linear(hidden_dim, 1).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)
        # END SOLUTION

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query (..., Tq, Dq), keys (..., Tk, Dk) → scores (..., Tq, Tk), vᵀ tanh(W qᵢ + U kⱼ)."""
        # BEGIN SOLUTION
        # HINT: project once, then broadcast: (..., Tq, 1, H) + (..., 1, Tk, H).
        q = self.query_proj(query).unsqueeze(-2)  # (..., Tq, 1, H)
        k = self.key_proj(keys).unsqueeze(-3)  # (..., 1, Tk, H)
        return self.v(torch.tanh(q + k)).squeeze(-1)  # (..., Tq, Tk)
        # END SOLUTION

    def forward(self, query: Tensor, keys: Tensor, values: Tensor,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(context (..., Tq, Dv), weights (..., Tq, Tk)); mask True = may attend."""
        # BEGIN SOLUTION
        return attend(self.score(query, keys), values, mask)
        # END SOLUTION


class MultiplicativeAttention(nn.Module):
    """Luong attention: score(q, k) = qᵀk ("dot") or qᵀ W k ("general"). No 1/√d scaling.

    "general" has one parameter, W = nn.Linear(key_dim, query_dim, bias=False), whose weight
    (query_dim, key_dim) is Luong's W_a: score = q · (W_a k). "dot" needs key_dim == query_dim.
    Another method, or "dot" with key_dim ≠ query_dim, raises ValueError.
    """

    def __init__(self, query_dim: int, key_dim: int | None = None,
                 method: str = "general") -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        key_dim = query_dim if key_dim is None else key_dim
        if method not in ("dot", "general"):
            raise ValueError(f"method must be 'dot' or 'general', got {method!r}")
        if method == "dot" and key_dim != query_dim:
            raise ValueError(f"'dot' scores need key_dim == query_dim, got {key_dim} and "
                             f"{query_dim}: use method='general'")
        self.method = method
        self.W = nn.Linear(key_dim, query_dim, bias=False) if method == "general" else None
        # END SOLUTION

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query (..., Tq, Dq), keys (..., Tk, Dk) → scores (..., Tq, Tk)."""
        # BEGIN SOLUTION
        # HINT: W_a k for every key at once is self.W(keys) — shape (..., Tk, Dq).
        # KEEP guided
        if self.method == "general":
        # END KEEP
            keys = self.W(keys)  # (..., Tk, Dq)
        return query @ keys.transpose(-2, -1)  # (..., Tq, Tk)
        # END SOLUTION

    def forward(self, query: Tensor, keys: Tensor, values: Tensor,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(context (..., Tq, Dv), weights (..., Tq, Tk)); mask True = may attend."""
        # BEGIN SOLUTION
        return attend(self.score(query, keys), values, mask)
        # END SOLUTION


# ---- 2.3 Causal and padding masks ----


def causal_mask(tq: int, tk: int | None = None, device: torch.device | None = None) -> Tensor:
    """(tq, tk) bool, True where key j may be attended by query i: j ≤ i (tk defaults to tq).

    Aligned at the top-left, like torch's is_causal: query 0 sees key 0 only.
    """
    # BEGIN SOLUTION
    tk = tq if tk is None else tk
    return torch.ones(tq, tk, dtype=torch.bool, device=device).tril()
    # END SOLUTION


def padding_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(B, max_len) bool from lengths (B,): True at the real tokens t < lengths[b].

    max_len defaults to the longest length. Use it as key_padding_mask (True = may attend).
    """
    # BEGIN SOLUTION
    # HINT: compare a row of positions (1, T) with a column of lengths (B, 1).
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]
    # END SOLUTION


def additive_mask(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """A mask as something to add to scores: bool True → 0, False → −inf; floats pass through.

    Same shape as mask, floating `dtype`. Adding masks combines them (−inf wins).
    """
    # BEGIN SOLUTION
    # KEEP guided
    if mask.dtype != torch.bool:
    # END KEEP
        return mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask,
                                                                             float("-inf"))
    # END SOLUTION


# ---- 2.4 Scaled dot-product attention ----


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False,
                                 scale: float | None = None) -> tuple[Tensor, Tensor]:
    """softmax(Q Kᵀ·scale + M) V, returned with the weights.

    query (..., Tq, d_k), key (..., Tk, d_k), value (..., Tk, d_v) → output (..., Tq, d_v) and
    weights (..., Tq, Tk). scale defaults to 1/√d_k. attn_mask: bool (True = may attend) or
    float (added), broadcastable to (..., Tq, Tk). is_causal also forbids keys j > i (both
    masks apply when both are given). With dropout_p > 0 the weights are dropped out
    (F.dropout) before they multiply V, and those are the weights returned — as in PyTorch.
    Callers pass dropout_p = 0 in eval mode.
    """
    # BEGIN SOLUTION
    # HINT: without the 1/√d_k, dot products of d_k-dimensional vectors grow like √d_k and
    # HINT: the softmax saturates.
    # KEEP guided
    tq, tk = query.shape[-2], key.shape[-2]
    # END KEEP
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query @ key.transpose(-2, -1) * scale  # (..., Tq, Tk)
    # KEEP guided
    if attn_mask is not None:
    # END KEEP
        scores = scores + additive_mask(attn_mask, scores.dtype)
    # KEEP guided
    if is_causal:
    # END KEEP
        scores = scores + additive_mask(causal_mask(tq, tk, scores.device), scores.dtype)
    weights = masked_softmax(scores, dim=-1)  # (..., Tq, Tk)
    # KEEP guided
    if dropout_p > 0:
    # END KEEP
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights  # (..., Tq, d_v), (..., Tq, Tk)
    # END SOLUTION


# ---- 2.5 Multi-head attention ----


class MultiHeadAttention(nn.Module):
    """Multi-head attention laid out like torch.nn.MultiheadAttention(batch_first=True).

    Parameters: when kdim == vdim == embed_dim, in_proj_weight (3E, E) stacks W_q; W_k; W_v
    (and q_proj_weight, k_proj_weight, v_proj_weight are None); otherwise q_proj_weight (E, E),
    k_proj_weight (E, kdim), v_proj_weight (E, vdim) (and in_proj_weight is None): every name
    of torch's module exists, None where unused (register_parameter(name, None)).
    in_proj_bias (3E,) (None when bias=False) and out_proj = nn.Linear(E, E, bias).
    Initialised as torch does: Xavier-uniform projections, zero biases. Masks: True = MAY
    ATTEND (the opposite of nn.MultiheadAttention).
    embed_dim not divisible by num_heads, or batch_first=False, raises ValueError.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None,
                 batch_first: bool = True) -> None:
        # BEGIN SOLUTION hard
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
        # END SOLUTION

    def reset_parameters(self) -> None:
        """Xavier-uniform input projections, zero in_proj_bias and out_proj.bias (as torch)."""
        # BEGIN SOLUTION hard
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)
        # END SOLUTION

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, E) → (B, H, T, d): head h gets features h·d … (h+1)·d − 1 of each token."""
        # BEGIN SOLUTION
        # HINT: the features of one token are contiguous: view as (B, T, H, d) first.
        # KEEP guided
        B, T, _ = x.shape
        # END KEEP
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d)
        # END SOLUTION

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, H, T, d) → (B, T, E), the inverse of split_heads."""
        # BEGIN SOLUTION
        # KEEP guided
        B, H, T, d = x.shape
        # END KEEP
        return x.transpose(1, 2).reshape(B, T, H * d)  # (B, T, E)
        # END SOLUTION

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                attn_mask: Tensor | None = None, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, is_causal: bool = False,
                average_attn_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        """query (B, Tq, E), key (B, Tk, kdim), value (B, Tk, vdim) → (output (B, Tq, E), weights).

        attn_mask: (Tq, Tk), (B·H, Tq, Tk) as torch, or anything broadcastable to
        (B, H, Tq, Tk); key_padding_mask: (B, Tk), True = a real token that may be attended.
        Both bool (True = may attend) or float (added). weights: (B, Tq, Tk) averaged over the
        heads, (B, H, Tq, Tk) when average_attn_weights is False, None when need_weights is
        False. Dropout on the weights only in training mode.
        """
        # BEGIN SOLUTION
        # HINT: project with the three row blocks of in_proj_weight (and of in_proj_bias),
        # HINT: split heads, attend, merge heads, out_proj.
        # HINT: the padding mask hides *keys*: it becomes (B, 1, 1, Tk).
        # KEEP guided
        B, tq, tk = query.shape[0], query.shape[1], key.shape[1]
        # END KEEP
        if self._qkv_same_embed_dim:
            w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        # KEEP guided
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
        # END KEEP
            b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = self.split_heads(F.linear(query, w_q, b_q))  # (B, H, Tq, d)
        k = self.split_heads(F.linear(key, w_k, b_k))  # (B, H, Tk, d)
        v = self.split_heads(F.linear(value, w_v, b_v))  # (B, H, Tk, d)
        # KEEP guided
        mask = None
        if attn_mask is not None:
        # END KEEP
            mask = additive_mask(attn_mask, q.dtype)
            # KEEP guided
            if mask.dim() == 3:  # torch's (B·H, Tq, Tk) layout
            # END KEEP
                mask = mask.view(B, self.num_heads, tq, tk)
        # KEEP guided
        if key_padding_mask is not None:
        # END KEEP
            pad = additive_mask(key_padding_mask, q.dtype)[:, None, None, :]  # (B, 1, 1, Tk)
            mask = pad if mask is None else mask + pad
        dropout_p = self.dropout if self.training else 0.0
        out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p,
                                                    is_causal=is_causal)
        out = self.out_proj(self.merge_heads(out))  # (B, Tq, E)
        # KEEP guided
        if not need_weights:
        # END KEEP
            return out, None
        return out, weights.mean(dim=1) if average_attn_weights else weights
        # END SOLUTION


# ---- 2.6 Cross-attention ----


class CrossAttention(nn.Module):
    """Queries from one sequence attend to another, the context (encoder–decoder attention).

    attn = MultiHeadAttention(embed_dim, num_heads, dropout, bias, kdim=context_dim,
    vdim=context_dim); context_dim defaults to embed_dim.
    """

    def __init__(self, embed_dim: int, num_heads: int, context_dim: int | None = None,
                 dropout: float = 0.0, bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.attn = MultiHeadAttention(embed_dim, num_heads, dropout, bias, kdim=context_dim,
                                       vdim=context_dim)
        # END SOLUTION

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor | None = None,
                need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        """x (B, Tq, E), context (B, Tk, context_dim), context_mask (B, Tk) True = real token
        → (output (B, Tq, E), weights (B, Tq, Tk) averaged over heads, or None)."""
        # BEGIN SOLUTION
        # HINT: queries come from x; keys and values both come from the context.
        return self.attn(x, context, context, key_padding_mask=context_mask,
                         need_weights=need_weights)
        # END SOLUTION


# ---- 2.7 Sparse attention patterns ----


def sliding_window_mask(T: int, window: int, causal: bool = True,
                        device: torch.device | None = None) -> Tensor:
    """(T, T) bool local attention: True where 0 ≤ i − j < window (causal: the `window` most
    recent keys, itself included) or |i − j| < window (not causal: 2·window − 1 keys)."""
    # BEGIN SOLUTION
    positions = torch.arange(T, device=device)
    offset = positions[:, None] - positions[None, :]  # (T, T): i − j
    # KEEP guided
    if causal:
    # END KEEP
        return (offset >= 0) & (offset < window)
    return offset.abs() < window
    # END SOLUTION


def strided_mask(T: int, stride: int, device: torch.device | None = None) -> Tensor:
    """(T, T) bool strided attention (Sparse Transformer): True where j ≤ i and i − j is a
    multiple of `stride`. Its union with sliding_window_mask(T, stride) is the strided
    pattern of Child et al. (2019)."""
    # BEGIN SOLUTION
    positions = torch.arange(T, device=device)
    offset = positions[:, None] - positions[None, :]  # (T, T): i − j
    return (offset >= 0) & (offset % stride == 0)
    # END SOLUTION


# ---- 2.8 Banded sliding-window attention ----


def banded_attention(query: Tensor, key: Tensor, value: Tensor, window: int,
                     causal: bool = True, scale: float | None = None) -> Tensor:
    """Sliding-window attention in O(T·window) time and memory.

    query, key (..., T, d_k), value (..., T, d_v) → output (..., T, d_v), equal to
    scaled_dot_product_attention(query, key, value, sliding_window_mask(T, window, causal),
    scale=scale)[0] but never forming a T × T matrix. Method: cut the queries into blocks of
    `window`; block b needs only the keys from b·window − window to b·window + window (causal)
    or + 2·window (not causal) — unfold the padded keys and values into those overlapping
    spans, score each block against its span, mask what lies outside the band (or outside
    0 … T − 1), softmax, and weight the values.
    """
    # BEGIN SOLUTION
    # HINT: F.pad(key, (0, 0, left, right)) pads the time axis; key.unfold(-2, span, window)
    # HINT: gives (..., blocks, d_k, span) views without copying.
    # HINT: the band in block coordinates: query a (i = b·w + a), key c (j = b·w − w + c),
    # HINT: so i − j = a + w − c.
    T, w = query.shape[-2], window
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    blocks = -(-T // w)  # ⌈T / w⌉
    extra = blocks * w - T  # padding that completes the last block
    span = 2 * w if causal else 3 * w
    q = F.pad(query, (0, 0, 0, extra)).unflatten(-2, (blocks, w))  # (..., n, w, d_k)
    right = extra + (0 if causal else w)
    k = F.pad(key, (0, 0, w, right)).unfold(-2, span, w)  # (..., n, d_k, span)
    v = F.pad(value, (0, 0, w, right)).unfold(-2, span, w).transpose(-2, -1)  # (..., n, span, d_v)
    scores = q @ k * scale  # (..., n, w, span)
    a = torch.arange(w, device=query.device)[:, None]
    c = torch.arange(span, device=query.device)[None, :]
    offset = a + w - c  # (w, span): i − j inside every block
    band = (offset >= 0) & (offset < w) if causal else offset.abs() < w
    j = torch.arange(blocks, device=query.device)[:, None] * w - w + c[0]  # (n, span): key index
    allowed = band & ((j >= 0) & (j < T))[:, None, :]  # (n, w, span)
    weights = masked_softmax(scores, allowed, dim=-1)  # (..., n, w, span)
    out = (weights @ v).flatten(-3, -2)  # (..., n·w, d_v)
    return out[..., :T, :]
    # END SOLUTION


# ---- 2.9 Sinusoidal and learned positional encodings ----


def sinusoidal_table(length: int, dim: int, base: float = 10000.0,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | None = None) -> Tensor:
    """(length, dim) table of Vaswani et al.: PE[p, 2i] = sin(p·ωᵢ), PE[p, 2i+1] = cos(p·ωᵢ),
    ωᵢ = base^(−2i/dim). dim must be even (else ValueError). Computed in float64, returned in
    `dtype` on `device`."""
    # BEGIN SOLUTION
    # HINT: sin and cos interleave (even columns sin, odd columns cos): stack on a new last
    # HINT: axis, then flatten the last two.
    # KEEP guided
    if dim % 2:
    # END KEEP
        raise ValueError(f"sinusoidal encodings need an even dim, got {dim}")
    position = torch.arange(length, dtype=torch.float64, device=device)[:, None]  # (L, 1)
    omega = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
    angles = position * omega  # (L, dim/2)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2).to(dtype)  # (L, dim)
    # END SOLUTION


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[offset : offset + T] with the fixed table above, kept as the buffer `pe`
    (max_len, dim) — a buffer, not a parameter: it is never trained. Not persistent: it is
    recomputed from (max_len, dim, base), so the state_dict leaves it out."""

    def __init__(self, dim: int, max_len: int = 4096, base: float = 10000.0) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, dim, base), persistent=False)
        # END SOLUTION

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (..., T, dim) → x + pe[offset : offset + T], in x's dtype; ValueError when
        offset + T > max_len."""
        # BEGIN SOLUTION
        # KEEP guided
        T = x.shape[-2]
        if offset + T > self.pe.shape[0]:
        # END KEEP
            raise ValueError(f"positions up to {offset + T} exceed max_len {self.pe.shape[0]}")
        return x + self.pe[offset:offset + T].to(x.dtype)
        # END SOLUTION


class LearnedPositionalEmbedding(nn.Module):
    """x + weight[offset : offset + T] with a trained table, the parameter `weight`
    (max_len, dim), initialised N(0, 0.02²) as in GPT-2."""

    def __init__(self, max_len: int, dim: int) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        # END SOLUTION

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (..., T, dim) → x + weight[offset : offset + T]; ValueError when
        offset + T > max_len."""
        # BEGIN SOLUTION
        # KEEP guided
        T = x.shape[-2]
        if offset + T > self.weight.shape[0]:
        # END KEEP
            raise ValueError(f"positions up to {offset + T} exceed max_len {self.weight.shape[0]}")
        return x + self.weight[offset:offset + T]
        # END SOLUTION


# ---- 2.10 Rotary position embedding ----


class RotaryEmbedding(nn.Module):
    """RoPE (Su et al., RoFormer): rotate each interleaved pair (x₀, x₁), (x₂, x₃), … of the
    last axis by the angle p·θᵢ, θᵢ = base^(−2i/dim), p the token's position:

        (x₂ᵢ, x₂ᵢ₊₁) ↦ (x₂ᵢ cos pθᵢ − x₂ᵢ₊₁ sin pθᵢ,  x₂ᵢ sin pθᵢ + x₂ᵢ₊₁ cos pθᵢ).

    Applied to queries and keys (not values), it makes q·k depend on positions only through
    their difference. No parameters. dim must be even (else ValueError).
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        if dim % 2:
            raise ValueError(f"rotary embeddings need an even dim, got {dim}")
        self.dim, self.base = dim, base
        # END SOLUTION

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """x (..., T, dim), positions (T,) ints (default 0 … T − 1) → rotated x, same shape and
        dtype. Angles are computed in float64 so that large positions stay exact."""
        # BEGIN SOLUTION
        # HINT: x[..., 0::2] and x[..., 1::2] are the two halves of every pair; put the results
        # HINT: back in the same interleaved order.
        # KEEP guided
        T = x.shape[-2]
        if positions is None:
        # END KEEP
            positions = torch.arange(T, device=x.device)
        theta = self.base ** (-torch.arange(0, self.dim, 2, dtype=torch.float64,
                                            device=x.device) / self.dim)  # (dim/2,)
        angles = positions.to(torch.float64)[:, None] * theta  # (T, dim/2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, dim/2)
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
        return rotated.flatten(-2)  # (..., T, dim)
        # END SOLUTION
