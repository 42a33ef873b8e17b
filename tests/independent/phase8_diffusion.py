"""Phase 8, written independently of the reference from the stubs' docstrings alone.

Other routes than the obvious ones: the linear schedule from its closed form instead of
linspace, ᾱ as the exponential of a running sum of log(1 − β), the cosine schedule's β as one
minus a squared ratio of cosines, ᾱ_{t−1} gathered with a clamp and a where instead of a
shifted copy, the reverse step as the posterior at the model's x̂₀ (not Algorithm 2's line),
and DDIM as one affine update of x and ε̂ per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .phase2_attention import sinusoidal_table
from .phase3_optim import AdamW, WarmupCosine

Model = Callable[[Tensor, Tensor], Tensor]
REFERENCE_T = 1000


def _gather(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """values[t] as (B, 1, …, 1) in like's dtype, so it broadcasts against like (B, *)."""
    picked = values.index_select(0, t.reshape(-1).long())
    return picked.to(like.dtype).view(-1, *(1 for _ in like.shape[1:]))


def _standard_normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


# ---- 8.1 Noise schedules ----


def linear_beta_schedule(
    T: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """β_t = c·(β_start + (t − 1)/(T − 1)·(β_end − β_start)), t = 1..T, c = 1000/T."""
    scale = REFERENCE_T / T
    if scale * beta_end >= 1:
        raise ValueError(f"T={T} is too small: a step of β={scale * beta_end:g} erases the signal")
    fraction = torch.arange(T, dtype=torch.float64) / max(T - 1, 1)  # (T,) from 0 to 1
    betas = scale * (beta_start + fraction * (beta_end - beta_start))
    return betas.to(dtype)


def cosine_beta_schedule(
    T: int = 1000, s: float = 0.008, max_beta: float = 0.999, dtype: torch.dtype = torch.float64
) -> Tensor:
    """β_t = min(1 − (cos θ_t / cos θ_{t−1})², max_beta), θ_t = π/2·(t/T + s)/(1 + s)."""
    theta = (torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * (math.pi / 2)
    cosine = torch.cos(theta)  # (T + 1,)
    # ᾱ(t)/ᾱ(t − 1) = f(t)/f(t − 1): the normalisation by f(0) cancels
    betas = 1.0 - (cosine[1:] / cosine[:-1]) ** 2
    return betas.clamp(max=max_beta).to(dtype)


# ---- 8.2 The forward process ----


def alpha_bars(betas: Tensor) -> Tensor:
    """ᾱ_t = exp Σ_{s ≤ t} log(1 − β_s), in betas' dtype."""
    return torch.exp(torch.cumsum(torch.log1p(-betas.double()), dim=0)).to(betas.dtype)


def q_sample(
    x0: Tensor,
    t: Tensor,
    betas: Tensor,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε."""
    eps = _standard_normal(x0, generator) if noise is None else noise
    signal = _gather(alpha_bars(betas), t, x0)  # (B, 1, …)
    return torch.addcmul(signal.sqrt() * x0, (1 - signal).sqrt(), eps)


# ---- 8.3 The posterior ----


def _previous_alpha_bar(abar: Tensor, t: Tensor) -> Tensor:
    """ᾱ_{t−1} per index, with ᾱ_{−1} = 1 (the data)."""
    t = t.reshape(-1).long()
    earlier = abar.index_select(0, (t - 1).clamp(min=0))
    return torch.where(t == 0, torch.ones_like(earlier), earlier)


def posterior(x0: Tensor, x_t: Tensor, t: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
    """μ̃ = √ᾱ_{t−1}β_t/(1 − ᾱ_t)·x₀ + √α_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t,
    β̃ = (1 − ᾱ_{t−1})β_t/(1 − ᾱ_t)."""
    abar = alpha_bars(betas)
    shape = (-1, *(1 for _ in x_t.shape[1:]))
    now = abar.index_select(0, t.reshape(-1).long())  # (B,)
    before = _previous_alpha_bar(abar, t)  # (B,)
    beta = betas.index_select(0, t.reshape(-1).long())  # (B,)
    remaining = 1 - now
    x0_weight = (before.sqrt() * beta / remaining).to(x_t.dtype).view(shape)
    xt_weight = ((1 - beta).sqrt() * (1 - before) / remaining).to(x_t.dtype).view(shape)
    variance = ((1 - before) / remaining * beta).to(x_t.dtype).view(shape)
    return x0_weight * x0 + xt_weight * x_t, variance


# ---- 8.4 The ε-prediction loss ----


def diffusion_loss(
    model: Model,
    x0: Tensor,
    betas: Tensor,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """mean over every element of (ε − ε_θ(x_t, t))², x_t = q_sample(x₀, t, β, ε)."""
    # the noise is drawn before the steps: the docstring fixes what is drawn, not the order
    eps = _standard_normal(x0, generator) if noise is None else noise
    if t is None:
        t = torch.randint(0, betas.shape[0], (x0.shape[0],), generator=generator, device=x0.device)
    predicted = model(q_sample(x0, t, betas, noise=eps), t)
    return (predicted - eps).square().mean()


# ---- 8.5 Ancestral sampling ----


@torch.no_grad()
def p_sample(
    model: Model,
    x_t: Tensor,
    t: int,
    betas: Tensor,
    variance: str = "posterior",
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """x_{t−1} = μ̃(x̂₀, x_t) + σ_t z with x̂₀ = (x_t − √(1 − ᾱ_t)ε̂)/√ᾱ_t: Algorithm 2 rewritten."""
    if variance not in ("posterior", "beta"):
        raise ValueError(f"variance must be 'posterior' or 'beta', got {variance!r}")
    steps = torch.full((x_t.shape[0],), int(t), dtype=torch.long, device=x_t.device)
    eps_hat = model(x_t, steps)
    abar_t = alpha_bars(betas)[int(t)].item()
    x0_hat = (x_t - math.sqrt(1 - abar_t) * eps_hat) / math.sqrt(abar_t)
    mean, tilde = posterior(x0_hat, x_t, steps, betas)
    if t == 0:
        return mean
    spread = tilde if variance == "posterior" else _gather(betas, steps, x_t)
    z = _standard_normal(x_t, generator) if noise is None else noise
    return mean + spread.sqrt() * z


@torch.no_grad()
def ddpm_sample(
    model: Model,
    x_T: Tensor,
    betas: Tensor,
    variance: str = "posterior",
    generator: torch.Generator | None = None,
) -> Tensor:
    """p_sample from t = T − 1 down to 0."""
    x = x_T
    for t in reversed(range(betas.shape[0])):
        x = p_sample(model, x, t, betas, variance=variance, generator=generator)
    return x


# ---- 8.6 DDIM ----


def ddim_timesteps(T: int, steps: int) -> Tensor:
    """τ_i = ⌊i·T/steps⌋, i = 0 … steps − 1."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be between 1 and T={T}, got {steps}")
    return torch.div(torch.arange(steps, dtype=torch.int64) * T, steps, rounding_mode="floor")


@torch.no_grad()
def ddim_sample(
    model: Model,
    x_T: Tensor,
    betas: Tensor,
    steps: int = 50,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """x ← √(a'/a)·x + (√(1 − a' − σ²) − √(a'(1 − a)/a))·ε̂ + σz: eq. 12 with x̂₀ substituted."""
    abar = alpha_bars(betas).double()
    taus = ddim_timesteps(betas.shape[0], steps).tolist()
    x = x_T
    for i in range(len(taus) - 1, -1, -1):
        a = abar[taus[i]].item()
        a_next = abar[taus[i - 1]].item() if i > 0 else 1.0
        sigma = eta * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
        eps_hat = model(x, torch.full((x.shape[0],), taus[i], dtype=torch.long, device=x.device))
        direction = math.sqrt(max(1 - a_next - sigma**2, 0.0))
        x = math.sqrt(a_next / a) * x + (direction - math.sqrt(a_next * (1 - a) / a)) * eps_hat
        if sigma > 0:
            x = x + sigma * _standard_normal(x, generator)
    return x


# ---- 8.7 The denoiser ----


class Denoiser(nn.Module):
    """ε̂ = output(SiLU(… layer(SiLU(input(x) + time_mlp(time_table[t]))) …))."""

    def __init__(
        self,
        data_dim: int = 2,
        hidden_dim: int = 128,
        num_layers: int = 3,
        time_dim: int = 32,
        T: int = 1000,
    ) -> None:
        super().__init__()
        self.register_buffer("time_table", sinusoidal_table(T, time_dim), persistent=False)
        self.input = nn.Linear(data_dim, hidden_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim)
        )
        self.hidden = nn.ModuleList([nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers)])
        self.output = nn.Linear(hidden_dim, data_dim)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x (B, D), t (B,) → ε̂ (B, D)."""
        embedding = self.time_table[t.long()].to(x.dtype)  # (B, E)
        h = self.input(x) + self.time_mlp(embedding)  # (B, H)
        layers = [*self.hidden, self.output]
        for layer in layers:
            h = layer(F.silu(h))
        return h  # (B, D)


# ---- 8.8 Training ----


def train_denoiser(
    model: nn.Module,
    data: Tensor,
    betas: Tensor,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 2e-3,
    warmup_steps: int = 100,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DDPM Algorithm 1 with AdamW under WarmupCosine; the loss of every step (steps,)."""
    model.train()
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = WarmupCosine(optimizer, warmup_steps, steps)
    losses = []
    for _ in range(steps):
        rows = torch.randint(
            0, data.shape[0], (batch_size,), generator=generator, device=data.device
        )
        loss = diffusion_loss(model, data[rows], betas, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.detach())
    if not losses:
        return torch.zeros(0, dtype=data.dtype)
    return torch.stack(losses)
