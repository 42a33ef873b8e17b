"""An alternative correct phase-8 implementation, written unlike the reference on purpose.

Its author also wrote the reference, so it is not independent (tests/independent/ holds
implementations written from the stubs alone); it shows that the checks accept code that
differs from the reference in form. tests/test_alternative.py grades it at full marks.

It differs in form: log-space ᾱ, the posterior in precision form, sampling through x̂₀ and the
posterior, DDIM with explicit index pairs, a hand-made MLP forward.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .phase2_attention import sinusoidal_table
from .phase3_optim import AdamW, WarmupCosine


def linear_beta_schedule(T=1000, beta_start=1e-4, beta_end=0.02, dtype=torch.float64):
    if beta_end * 1000 / T >= 1:
        raise ValueError("T too small")
    steps = torch.arange(T, dtype=torch.float64)
    betas = beta_start + steps * (beta_end - beta_start) / max(T - 1, 1)
    return (betas * (1000 / T)).to(dtype)


def cosine_beta_schedule(T=1000, s=0.008, max_beta=0.999, dtype=torch.float64):
    def f(t):
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f(t) / f(t - 1), max_beta) for t in range(1, T + 1)]
    return torch.tensor(betas, dtype=torch.float64).to(dtype)


def alpha_bars(betas):
    return torch.exp(torch.cumsum(torch.log1p(-betas), dim=0))


def _col(values, index, like):
    out = values[index].to(like.dtype)
    while out.dim() < like.dim():
        out = out.unsqueeze(-1)
    return out


def q_sample(x0, t, betas, noise=None, generator=None):
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype) if noise is None else noise
    ab = _col(alpha_bars(betas), t, x0)
    return torch.sqrt(ab) * x0 + torch.sqrt(1 - ab) * eps


def posterior(x0, x_t, t, betas):
    ab = alpha_bars(betas)
    ab_prev = torch.ones_like(ab)
    ab_prev[1:] = ab[:-1]
    beta, prev = _col(betas, t, x_t), _col(ab_prev, t, x_t)
    # precision form: 1/β̃ = 1/(1 − ᾱ_prev) + α/β, written as a ratio to stay finite at t = 0
    variance = beta * (1 - prev) / (beta + (1 - beta) * (1 - prev))
    mean = torch.where(variance > 0, variance * (torch.sqrt(prev) * x0 / torch.clamp(1 - prev,
                                                                                   min=1e-300)
                                                 + torch.sqrt(1 - beta) * x_t / beta), x0)
    return mean, variance


def diffusion_loss(model, x0, betas, t=None, noise=None, generator=None):
    T = betas.shape[0]
    if t is None:
        t = torch.randint(T, (len(x0),), generator=generator)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    residual = noise - model(q_sample(x0, t, betas, noise), t)
    return residual.pow(2).sum() / residual.numel()


def p_sample(model, x_t, t, betas, variance="posterior", noise=None, generator=None):
    if variance == "posterior":
        use_beta = False
    elif variance == "beta":
        use_beta = True
    else:
        raise ValueError(variance)
    with torch.no_grad():
        index = torch.full((len(x_t),), t, dtype=torch.int64)
        ab = float(alpha_bars(betas)[t])
        eps = model(x_t, index)
        x0_hat = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        mean, var = posterior(x0_hat, x_t, index, betas)
        if t == 0:
            return mean
        if use_beta:
            var = torch.full_like(var, float(betas[t]))
        z = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype) if noise is None else noise
        return mean + var.sqrt() * z


def ddpm_sample(model, x_T, betas, variance="posterior", generator=None):
    x = x_T.clone()
    t = betas.shape[0] - 1
    while t >= 0:
        x = p_sample(model, x, t, betas, variance=variance, generator=generator)
        t -= 1
    return x


def ddim_timesteps(T, steps):
    if steps < 1 or steps > T:
        raise ValueError("steps out of range")
    return torch.tensor([(i * T) // steps for i in range(steps)], dtype=torch.int64)


def ddim_sample(model, x_T, betas, steps=50, eta=0.0, generator=None):
    ab = alpha_bars(betas).tolist()
    taus = ddim_timesteps(len(ab), steps).tolist()
    pairs = list(zip(taus[::-1], taus[-2::-1] + [None], strict=True))
    x = x_T
    with torch.no_grad():
        for now, nxt in pairs:
            a, a_next = ab[now], (1.0 if nxt is None else ab[nxt])
            eps = model(x, torch.full((len(x),), now, dtype=torch.int64))
            x0_hat = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
            sigma = eta * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
            x = math.sqrt(a_next) * x0_hat + math.sqrt(max(1 - a_next - sigma**2, 0.0)) * eps
            if sigma:
                x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x


class Denoiser(nn.Module):
    def __init__(self, data_dim=2, hidden_dim=128, num_layers=3, time_dim=32, T=1000):
        super().__init__()
        self.output = nn.Linear(hidden_dim, data_dim)
        self.hidden = nn.ModuleList([nn.Linear(hidden_dim, hidden_dim)
                                     for _ in range(num_layers)])
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, hidden_dim), nn.SiLU(),
                                      nn.Linear(hidden_dim, hidden_dim))
        self.input = nn.Linear(data_dim, hidden_dim)
        self.register_buffer("time_table", sinusoidal_table(T, time_dim), persistent=False)

    def forward(self, x, t):
        h = self.time_mlp(self.time_table.index_select(0, t)) + self.input(x)
        for layer in self.hidden:
            h = layer(h * torch.sigmoid(h))
        return self.output(h * torch.sigmoid(h))


def train_denoiser(model, data, betas, steps=2000, batch_size=256, lr=2e-3, warmup_steps=100,
                   weight_decay=0.0, generator=None):
    optimizer = AdamW(list(model.parameters()), lr=lr, weight_decay=weight_decay)
    schedule = WarmupCosine(optimizer, warmup_steps=warmup_steps, total_steps=steps)
    model.train()
    history = []
    for _ in range(steps):
        rows = torch.randint(len(data), (batch_size,), generator=generator)
        loss = diffusion_loss(model, data[rows], betas, generator=generator)
        for p in model.parameters():
            p.grad = None
        loss.backward()
        optimizer.step()
        schedule.step()
        history.append(loss.detach())
    return torch.stack(history)
