"""An alternative §6.9–6.11 of phase6_models (selective scan, Mamba, the sentiment classifier),
written unlike the reference: the sequential scan precomputes Ā and B̄x for all steps, the
parallel scan is Hillis–Steele over the whole axis with F.pad shifts (it may ignore `chunk`:
every chunk size gives the same result), the conv is F.conv1d with symmetric padding cut back
to the causal outputs, the step keeps its window as a rolled buffer, and pooling reads a
cumulative sum at each row's last real position. tests/test_phase6_mamba.py splices it into a
copy of the reference module in place of the reference's §6.9–6.11. Not importable alone."""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .phase4_blocks import RMSNorm


def selective_scan_sequential(x, delta, A, B, C):
    decay = torch.exp(torch.einsum("bld,dn->bldn", delta, A))
    drive = torch.einsum("bld,bln->bldn", delta * x, B)
    h = torch.zeros_like(decay[:, 0])
    out = []
    for t in range(x.shape[1]):
        h = torch.addcmul(drive[:, t], decay[:, t], h)
        out.append(torch.einsum("bdn,bn->bd", h, C[:, t]))
    return torch.stack(out, 1)


SCAN_CHUNK = 64


def combine(earlier, later):
    return later[0] * earlier[0], torch.addcmul(later[1], later[0], earlier[1])


def inclusive_scan(a, b, dim):
    a, b = a.movedim(dim, -1), b.movedim(dim, -1)
    length, shift = a.shape[-1], 1
    while shift < length:
        a_before = F.pad(a[..., :-shift], (shift, 0), value=1.0)
        b_before = F.pad(b[..., :-shift], (shift, 0), value=0.0)
        a, b = combine((a_before, b_before), (a, b))
        shift <<= 1
    return a.movedim(-1, dim), b.movedim(-1, dim)


def selective_scan_parallel(x, delta, A, B, C, chunk=SCAN_CHUNK):
    a = torch.exp(delta.unsqueeze(-1) * A)
    b = (delta * x).unsqueeze(-1) * B.unsqueeze(2)
    _, h = inclusive_scan(a, b, 1)
    return (h * C.unsqueeze(2)).sum(-1)


class MambaBlock(nn.Module):
    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank=None, dt_min=1e-3,
                 dt_max=0.1):
        super().__init__()
        self.d_inner, self.d_state, self.d_conv = expand * d_model, d_state, d_conv
        self.dt_rank = dt_rank if dt_rank is not None else -(-d_model // 16)
        self.dt_min, self.dt_max = dt_min, dt_max
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner)
        self.A_log = nn.Parameter(torch.zeros(self.d_inner, d_state))
        self.D = nn.Parameter(torch.zeros(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            n = torch.linspace(1, self.d_state, self.d_state)
            self.A_log.copy_(n.log().expand(self.d_inner, -1))
            self.D.copy_(torch.ones(self.d_inner))
            u = torch.rand(self.d_inner)
            dt = (math.log(self.dt_min) + u * (math.log(self.dt_max) - math.log(self.dt_min))).exp()
            self.dt_proj.bias.copy_(torch.log(torch.expm1(dt)))  # softplus⁻¹

    def selective_parameters(self, x):
        r, n = self.dt_rank, self.d_state
        projected = self.x_proj(x)
        dt, B, C = projected[..., :r], projected[..., r:r + n], projected[..., r + n:]
        return F.softplus(self.dt_proj(dt)), -self.A_log.exp(), B, C

    def forward(self, u):
        length = u.shape[1]
        xz = self.in_proj(u)
        x, z = xz[..., :self.d_inner], xz[..., self.d_inner:]
        x = F.conv1d(x.mT, self.conv1d.weight, self.conv1d.bias, padding=self.d_conv - 1,
                     groups=self.d_inner)[..., :length].mT
        x = x * torch.sigmoid(x)
        delta, A, B, C = self.selective_parameters(x)
        y = selective_scan_sequential(x, delta, A, B, C) + x * self.D
        return self.out_proj(y * z * torch.sigmoid(z))

    def step(self, u, state=None):
        xz = self.in_proj(u)
        x, z = xz[..., :self.d_inner], xz[..., self.d_inner:]
        if state is None:
            conv = torch.zeros(*x.shape, self.d_conv - 1, dtype=x.dtype)
            h = torch.zeros(*x.shape, self.d_state, dtype=x.dtype)
        else:
            conv, h = state
        window = torch.cat((conv, x.unsqueeze(-1)), -1)
        x = torch.einsum("bek,ek->be", window, self.conv1d.weight.squeeze(1)) + self.conv1d.bias
        x = F.silu(x)
        delta, A, B, C = self.selective_parameters(x)
        h = torch.exp(delta.unsqueeze(-1) * A) * h + torch.einsum("be,bn->ben", delta * x, B)
        y = torch.einsum("ben,bn->be", h, C) + x * self.D
        return self.out_proj(y * F.silu(z)), (window[..., 1:].clone(), h)


@dataclass
class MambaConfig:
    vocab_size: int
    d_model: int = 64
    n_layer: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | None = None


class MambaLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.mixer = MambaBlock(config.d_model, d_state=config.d_state, d_conv=config.d_conv,
                                expand=config.expand, dt_rank=config.dt_rank)

    def forward(self, x):
        return self.mixer(self.norm(x)) + x

    def step(self, x, state=None):
        out, state = self.mixer.step(self.norm(x), state)
        return out + x, state


class MambaLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList([MambaLayer(config) for _ in range(config.n_layer)])
        self.norm_f = RMSNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.embedding.weight, 0.0, 0.02)
        self.lm_head.weight = self.embedding.weight

    def forward(self, idx):
        x = self.embedding(idx)
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x) @ self.embedding.weight.T

    def step(self, idx, states=None):
        if states is not None and len(states) != len(self.layers):
            raise ValueError(f"{len(states)} states for {len(self.layers)} layers")
        x = self.embedding(idx)
        new = []
        for k, layer in enumerate(self.layers):
            x, state = layer.step(x, None if states is None else states[k])
            new.append(state)
        return self.lm_head(self.norm_f(x)), new


class SentimentClassifier(nn.Module):
    def __init__(self, vocab_size, d_model=64, n_layer=2, num_classes=2, d_state=16,
                 dropout=0.0):
        super().__init__()
        config = MambaConfig(vocab_size, d_model, n_layer, d_state)
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList([MambaLayer(config) for _ in range(n_layer)])
        self.norm_f = RMSNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.embedding.weight, 0.0, 0.02)

    def forward(self, idx, lengths):
        x = self.embedding(idx)
        for layer in self.layers:
            x = layer(x)
        h = self.norm_f(x)
        where = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[2])
        return self.head(self.drop(h.gather(1, where).squeeze(1)))
