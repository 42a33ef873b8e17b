"""A GPT assembled from torch built-ins (nn.Embedding, nn.LayerNorm, nn.Linear,
F.scaled_dot_product_attention, F.gelu) with the course's parameter names, so that its weights
copy into the student's GPT by name. It lives in the judge (and in bench/gpt.py), never in the
worker: the student's GPT is compared with it, it is not a copy of the reference solution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Attention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, bias: bool) -> None:
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.c_attn(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class _MLP(nn.Module):
    def __init__(self, n_embd: int, bias: bool) -> None:
        super().__init__()
        self.linear1 = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.linear2 = nn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.gelu(self.linear1(x), approximate="tanh"))


class _Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, bias: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = _Attention(n_embd, n_head, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = _MLP(n_embd, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = x + self.attn(self.ln_1(x))
        return attended + self.mlp(self.ln_2(attended))


class TorchGPT(nn.Module):
    """forward(idx) → logits (B, T, V); the head shares the token embedding's weight."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
                 bias: bool = True) -> None:
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(_Block(n_embd, n_head, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    @torch.no_grad()
    def greedy(self, idx: torch.Tensor, new_tokens: int) -> torch.Tensor:
        """Greedy decoding, the context cropped to the last block_size tokens."""
        for _ in range(new_tokens):
            logits = self(idx[:, -self.block_size:])[:, -1]
            idx = torch.cat((idx, logits.argmax(-1, keepdim=True)), dim=1)
        return idx


def random_gpt(seed: int, vocab_size: int = 23, block_size: int = 12, n_layer: int = 2,
               n_head: int = 2, n_embd: int = 16, bias: bool = True,
               dtype: torch.dtype = torch.float64) -> TorchGPT:
    """A TorchGPT with every parameter random (norm weights 1 ± 0.3), in eval mode."""
    torch.manual_seed(seed)
    model = TorchGPT(vocab_size, block_size, n_layer, n_head, n_embd, bias).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            value = torch.randn(p.shape, generator=generator, dtype=torch.float64) * 0.3
            if "ln" in name and name.endswith("weight"):
                value += 1.0
            p.copy_(value)
    return model.eval()
