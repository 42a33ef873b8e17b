"""Phase 8 — Denoising diffusion (DDPM and DDIM) on 2-D data, in PyTorch.

A diffusion model learns to undo noise. The forward process adds a little Gaussian noise at each
of T steps until the data is indistinguishable from N(0, I); a network learns to predict the
noise ε that was added, and sampling runs the process backwards from pure noise, one step at a
time (DDPM, Ho et al. 2020) or in a few large deterministic strides (DDIM, Song et al. 2021).
Read curriculum.md §8 alongside.

Conventions used throughout:
- Time steps are 0-based: index t ∈ {0, …, T−1} is the paper's step t + 1, so betas[0] = β₁ and
  alpha_bars[t] = ᾱ_{t+1}. The step before index 0 is the data itself: ᾱ_prev(0) = 1.
- A schedule is the tensor `betas` (T,); every function takes it (or computes ᾱ from it with
  your `alpha_bars`), so a schedule is just numbers, not an object.
- Data is batch first, (B, D) here (any (B, *) works); t is an int64 tensor (B,) of indices.
- A model is any callable model(x_t, t) → ε̂ with x_t's shape: it predicts the noise.
- Nothing casts: float32 in, float32 out; float64 in, float64 out. Inputs are never modified.
- Randomness comes from the optional `generator` (a torch.Generator): the same seed gives the
  same result.
- Forbidden: diffusers and other diffusion libraries. Everything in torch is yours.
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
REFERENCE_T = 1000  # the linear schedule's endpoints are stated for T = 1000 steps


def _per_example(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """values[t] (B,) reshaped to (B, 1, …, 1) so it broadcasts against `like` (B, *)."""
    return values[t].reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


# ---- 8.1 Noise schedules ----


def linear_beta_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                         dtype: torch.dtype = torch.float64) -> Tensor:
    """β_t evenly spaced from c·beta_start to c·beta_end over t = 1..T, with c = 1000/T (T,).

    Ho et al. give 1e-4 → 0.02 for T = 1000. For another T both ends are scaled by 1000/T (as in
    Nichol & Dhariwal's code), which keeps Σβ_t — and so ᾱ_T ≈ exp(−Σβ_t) — about the same.
    Raises ValueError when c·beta_end ≥ 1 (T too small: a step would erase the signal).
    """
    # BEGIN SOLUTION
    # HINT: c = 1000/T; torch.linspace(c·beta_start, c·beta_end, T) in float64, then .to(dtype).
    scale = REFERENCE_T / T
    # KEEP guided
    if scale * beta_end >= 1:
    # END KEEP
        raise ValueError(f"T = {T} is too small for the linear schedule: β_T = "
                         f"{scale * beta_end:g} ≥ 1")
    return torch.linspace(scale * beta_start, scale * beta_end, T,
                          dtype=torch.float64).to(dtype)  # (T,)
    # END SOLUTION


def cosine_beta_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999,
                         dtype: torch.dtype = torch.float64) -> Tensor:
    """The cosine schedule of Nichol & Dhariwal (2021) (T,):

    ᾱ(t) = f(t)/f(0),  f(t) = cos²(π/2 · (t/T + s)/(1 + s)),  β_t = min(1 − ᾱ(t)/ᾱ(t−1), max_beta)

    for t = 1..T. The offset s keeps β₁ from being vanishingly small; the cap keeps β_T < 1
    (f(T) = 0 would make β_T = 1). Computed in float64, returned in `dtype`.
    """
    # BEGIN SOLUTION
    # HINT: evaluate f on the T + 1 points t = 0, 1, …, T; β_t is a ratio of neighbours.
    steps = torch.arange(T + 1, dtype=torch.float64) / T  # (T+1,)
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2  # (T+1,)
    betas = 1 - f[1:] / f[:-1]  # (T,) ᾱ(t)/ᾱ(t−1) = f(t)/f(t−1): the 1/f(0) cancels
    return betas.clamp(max=max_beta).to(dtype)
    # END SOLUTION


# ---- 8.2 The forward process ----


def alpha_bars(betas: Tensor) -> Tensor:
    """ᾱ_t = Π_{s ≤ t} (1 − β_s), the fraction of the signal's variance left after step t (T,)."""
    # BEGIN SOLUTION
    # HINT: a running product: torch.cumprod.
    return torch.cumprod(1 - betas, dim=0)  # (T,)
    # END SOLUTION


def q_sample(x0: Tensor, t: Tensor, betas: Tensor, noise: Tensor | None = None,
             generator: torch.Generator | None = None) -> Tensor:
    """Jump straight to step t of the forward process (DDPM eq. 4):

    x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε,   ε ~ N(0, I),   so x_t ~ N(√ᾱ_t x₀, (1 − ᾱ_t) I).

    x0 (B, *), t int64 (B,); noise (B, *) is ε, drawn with `generator` when None.
    """
    # BEGIN SOLUTION
    # HINT: _per_example(alpha_bars(betas), t, x0) gives ᾱ_t shaped (B, 1, …) in x0's dtype.
    # KEEP guided
    if noise is None:
    # END KEEP
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    alpha_bar = _per_example(alpha_bars(betas), t, x0)  # (B, 1)
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise  # (B, D)
    # END SOLUTION


# ---- 8.3 The posterior q(x_{t−1} | x_t, x₀) ----


def posterior(x0: Tensor, x_t: Tensor, t: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance of q(x_{t−1} | x_t, x₀) = N(μ̃, β̃_t I) (DDPM eq. 6–7):

    μ̃ = √ᾱ_{t−1} β_t / (1 − ᾱ_t) · x₀ + √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x_t
    β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t

    with α_t = 1 − β_t and ᾱ_{t−1} = 1 at t = 0 (so μ̃ = x₀ and β̃ = 0 there).
    Returns mean (B, *) and variance (B, 1, …, 1), one number per example.
    """
    # BEGIN SOLUTION
    # HINT: ᾱ_prev is ᾱ shifted right by one with a 1 in front (torch.cat), not rolled.
    alpha_bar = alpha_bars(betas)  # (T,)
    alpha_bar_prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])  # (T,)
    beta, a, a_prev = (_per_example(v, t, x_t) for v in (betas, alpha_bar, alpha_bar_prev))
    mean = (a_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - a_prev) * x_t) / (1 - a)
    variance = (1 - a_prev) / (1 - a) * beta  # (B, 1)
    return mean, variance
    # END SOLUTION


# ---- 8.4 The ε-prediction loss ----


def diffusion_loss(model: Model, x0: Tensor, betas: Tensor, t: Tensor | None = None,
                   noise: Tensor | None = None,
                   generator: torch.Generator | None = None) -> Tensor:
    """The simplified DDPM objective (Ho et al. eq. 14): the mean squared error of the noise,

    L = mean ‖ε − ε_θ(√ᾱ_t x₀ + √(1 − ᾱ_t) ε, t)‖²,   t ~ U{0, …, T−1},  ε ~ N(0, I),

    averaged over every element. t (B,) and noise (B, *) are drawn with `generator` when None.
    Returns a scalar that carries the model's gradient.
    """
    # BEGIN SOLUTION
    # HINT: draw t with torch.randint(0, T, (B,), generator=generator), build x_t with q_sample.
    # KEEP guided
    if t is None:
    # END KEEP
        t = torch.randint(0, len(betas), (x0.shape[0],), generator=generator)
    # KEEP guided
    if noise is None:
    # END KEEP
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    x_t = q_sample(x0, t, betas, noise)  # (B, D)
    return ((model(x_t, t) - noise) ** 2).mean()
    # END SOLUTION


# ---- 8.5 Ancestral sampling (DDPM) ----


@torch.no_grad()
def p_sample(model: Model, x_t: Tensor, t: int, betas: Tensor, variance: str = "posterior",
             noise: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """One reverse step x_t → x_{t−1} (DDPM Algorithm 2):

    x_{t−1} = 1/√α_t · (x_t − β_t/√(1 − ᾱ_t) · ε_θ(x_t, t)) + σ_t z,   z ~ N(0, I)

    with σ_t² = β̃_t (variance="posterior") or β_t (variance="beta"), and no noise at t = 0
    (the last step returns the mean). t is one int for the whole batch; noise (B, *) is z,
    drawn with `generator` when None. Raises ValueError for another variance.
    """
    # BEGIN SOLUTION
    # HINT: the model takes t as a tensor: torch.full((B,), t, dtype=torch.long).
    # KEEP guided
    if variance not in ("posterior", "beta"):
    # END KEEP
        raise ValueError(f"variance must be 'posterior' or 'beta', got {variance!r}")
    beta = betas[t].to(x_t.dtype)
    alpha_bar = alpha_bars(betas).to(x_t.dtype)  # (T,)
    a = alpha_bar[t]
    # KEEP guided
    steps = torch.full((x_t.shape[0],), t, dtype=torch.long)  # (B,)
    # END KEEP
    mean = (x_t - beta / (1 - a).sqrt() * model(x_t, steps)) / (1 - beta).sqrt()  # (B, D)
    # KEEP guided
    if t == 0:
    # END KEEP
        return mean
    sigma2 = beta if variance == "beta" else (1 - alpha_bar[t - 1]) / (1 - a) * beta
    # KEEP guided
    if noise is None:
    # END KEEP
        noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype)
    return mean + sigma2.sqrt() * noise
    # END SOLUTION


@torch.no_grad()
def ddpm_sample(model: Model, x_T: Tensor, betas: Tensor, variance: str = "posterior",
                generator: torch.Generator | None = None) -> Tensor:
    """Ancestral sampling: x_{T−1}, …, x₀ by p_sample from x_T (B, *) ~ N(0, I), for
    t = T−1 down to 0; returns x₀ (B, *). The noise of each step is drawn with `generator`."""
    # BEGIN SOLUTION
    # KEEP guided
    x = x_T
    for t in reversed(range(len(betas))):
    # END KEEP
        x = p_sample(model, x, t, betas, variance, generator=generator)
    return x
    # END SOLUTION


# ---- 8.6 DDIM: fewer, deterministic steps ----


def ddim_timesteps(T: int, steps: int) -> Tensor:
    """The sub-sequence τ of DDIM: τ_i = ⌊i·T/steps⌋ for i = 0..steps−1, int64 (steps,),
    increasing from 0. Raises ValueError unless 1 ≤ steps ≤ T."""
    # BEGIN SOLUTION
    # KEEP guided
    if not 1 <= steps <= T:
    # END KEEP
        raise ValueError(f"steps must be in [1, T = {T}], got {steps}")
    return torch.arange(steps, dtype=torch.long) * T // steps  # (steps,)
    # END SOLUTION


@torch.no_grad()
def ddim_sample(model: Model, x_T: Tensor, betas: Tensor, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
    """DDIM sampling (Song et al. eq. 12) over τ = ddim_timesteps(T, steps), from τ_{S−1} down to
    τ₀, each step going from a = ᾱ_{τ_i} to a' = ᾱ_{τ_{i−1}} (a' = 1 after τ₀):

    x̂₀ = (x − √(1 − a) ε̂)/√a,   ε̂ = ε_θ(x, τ_i)
    σ = η · √((1 − a')/(1 − a)) · √(1 − a/a')
    x ← √a' x̂₀ + √(1 − a' − σ²) ε̂ + σ z,   z ~ N(0, I) drawn with `generator`

    η = 0 is deterministic (the same x_T always gives the same x₀); η = 1 with steps = T is
    ancestral sampling with σ² = β̃. Returns x₀ (B, *).
    """
    # BEGIN SOLUTION
    # HINT: walk i = S−1 … 0; after τ₀ the next ᾱ is 1 (the data), so x̂₀ is returned there.
    alpha_bar = alpha_bars(betas).to(x_T.dtype)  # (T,)
    taus = ddim_timesteps(len(betas), steps).tolist()
    # KEEP guided
    x = x_T
    for i in reversed(range(steps)):
    # END KEEP
        a = alpha_bar[taus[i]]
        a_prev = alpha_bar[taus[i - 1]] if i > 0 else a.new_ones(())
        eps = model(x, torch.full((x.shape[0],), taus[i], dtype=torch.long))  # (B, D)
        x0_hat = (x - (1 - a).sqrt() * eps) / a.sqrt()
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        x = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).sqrt() * eps
        # KEEP guided
        if eta > 0:
        # END KEEP
            x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x
    # END SOLUTION


# ---- 8.7 The denoiser: an MLP with a sinusoidal time embedding ----


class Denoiser(nn.Module):
    """ε_θ(x, t) for low-dimensional data: an MLP told the step through a time embedding.

        e = time_table[t]                          sinusoidal_table(T, time_dim) of phase 2, (B, E)
        h = input(x) + time_mlp(e)                 time_mlp = Linear(E, H), SiLU, Linear(H, H)
        h = layer(SiLU(h))  for layer in hidden    num_layers Linear(H, H)
        ε̂ = output(SiLU(h))                        Linear(H, D)

    time_table is a non-persistent buffer: fixed, never trained, and not in the state_dict (it
    is rebuilt from T and time_dim). Parameter names: input, time_mlp.0, time_mlp.2, hidden.0 …
    hidden.{num_layers−1}, output (each with weight and bias).
    """

    def __init__(self, data_dim: int = 2, hidden_dim: int = 128, num_layers: int = 3,
                 time_dim: int = 32, T: int = 1000) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.register_buffer("time_table", sinusoidal_table(T, time_dim), persistent=False)
        self.input = nn.Linear(data_dim, hidden_dim)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, hidden_dim), nn.SiLU(),
                                      nn.Linear(hidden_dim, hidden_dim))
        self.hidden = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers))
        self.output = nn.Linear(hidden_dim, data_dim)
        # END SOLUTION

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x (B, D), t int64 (B,) → ε̂ (B, D)."""
        # BEGIN SOLUTION
        # HINT: index the table with t itself: row t embeds step index t.
        h = self.input(x) + self.time_mlp(self.time_table[t])  # (B, H)
        # KEEP guided
        for layer in self.hidden:
        # END KEEP
            h = layer(F.silu(h))  # (B, H)
        return self.output(F.silu(h))  # (B, D)
        # END SOLUTION


# ---- 8.8 Training ----


def train_denoiser(model: nn.Module, data: Tensor, betas: Tensor, steps: int = 2000,
                   batch_size: int = 256, lr: float = 2e-3, warmup_steps: int = 100,
                   weight_decay: float = 0.0,
                   generator: torch.Generator | None = None) -> Tensor:
    """Fit `model` to `data` (N, D) by minimising diffusion_loss, with your phase-3 AdamW and a
    WarmupCosine schedule (warmup_steps of linear warmup, cosine decay to 0 at `steps`).

    Puts the model in training mode. Each step draws a batch of batch_size rows of data
    uniformly with replacement, then t and ε inside diffusion_loss, all with `generator`.
    Returns the loss of every step (steps,), in the loss's dtype.
    """
    # BEGIN SOLUTION
    # HINT: zero_grad, backward, optimizer.step(), then schedule.step() — every step.
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = WarmupCosine(optimizer, warmup_steps, steps)
    model.train()
    # KEEP guided
    losses = []
    for _ in range(steps):
    # END KEEP
        batch = data[torch.randint(0, len(data), (batch_size,), generator=generator)]  # (B, D)
        loss = diffusion_loss(model, batch, betas, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        # KEEP guided
        losses.append(loss.detach())
        # END KEEP
    return torch.stack(losses)  # (steps,)
    # END SOLUTION
