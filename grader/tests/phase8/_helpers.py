"""Shared pieces of the phase-8 checks: closed forms for Gaussian data, a statistical test of
sample moments, and handles to the trusted models of grader/probes/phase8.

For data x₀ ~ N(μ, Σ) everything a diffusion model does is linear and Gaussian, so the judge
knows the answers exactly: x_t ~ N(√ᾱ_t μ, V_t) with V_t = ᾱ_t Σ + (1 − ᾱ_t) I, the best noise
predictor is E[ε | x_t] = √(1 − ᾱ_t) V_t⁻¹ (x_t − √ᾱ_t μ), and the best reverse mean
E[x_{t−1} | x_t] follows from conditioning the joint Gaussian of (x_{t−1}, x_t). These are
derived here from the Gaussians, not from the DDPM update formulas the student writes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import CheckFailed
from grader.checks.oracle import as_array
from grader.session import StudentError, run_probe

F64 = torch.float64
MEAN = torch.tensor([0.8, -0.4], dtype=F64)
COVARIANCE = torch.tensor([[0.30, 0.12], [0.12, 0.20]], dtype=F64)
# 5.3 standard errors: two-sided p ≈ 1.2e-7 per statistic; a check tests ≤ 10 statistics, so a
# correct implementation that draws its noise differently fails it with probability < 1e-6.
Z_LIMIT = 5.3
FALSE_ALARM = "below 1e-6"


def betas_linear(T: int) -> torch.Tensor:
    """The linear schedule rescaled to T steps, as the judge computes it (closed form)."""
    scale = 1000 / T
    return torch.linspace(1e-4 * scale, 0.02 * scale, T, dtype=F64)


def alpha_bar_of(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t as exp Σ log(1 − β): the same numbers as a running product, reached another way."""
    return torch.exp(torch.cumsum(torch.log1p(-betas), dim=0))


def generator(m, seed: int):
    """A torch.Generator in the worker, seeded with `seed`."""
    return run_probe(m, "phase8.generator", seed)


def gaussian_model(m, betas: torch.Tensor, mean=MEAN, covariance=COVARIANCE):
    """The exact ε-predictor of N(mean, covariance) data, in the worker."""
    return run_probe(m, "phase8.gaussian_epsilon", mean, covariance, betas)


def recorder(m, inner=None):
    return run_probe(m, "phase8.recorder", inner)


def recorded(m, model) -> tuple[list[np.ndarray], list[np.ndarray]]:
    calls = run_probe(m, "phase8.recorded", model)
    return ([as_array(x, "x_t") for x in calls["x"]], [as_array(t, "t") for t in calls["t"]])


def marginal_covariance(alpha_bar: float, covariance=COVARIANCE) -> torch.Tensor:
    return alpha_bar * covariance + (1 - alpha_bar) * torch.eye(len(covariance), dtype=F64)


def expected_epsilon(x: torch.Tensor, alpha_bar: float, mean=MEAN,
                     covariance=COVARIANCE) -> torch.Tensor:
    """E[ε | x_t = x] for Gaussian data, (B, D)."""
    V = marginal_covariance(alpha_bar, covariance)
    return math.sqrt(1 - alpha_bar) * torch.linalg.solve(V, (x - math.sqrt(alpha_bar) * mean).T).T


def reverse_mean_map(betas: torch.Tensor, t: int, mean=MEAN, covariance=COVARIANCE):
    """(M, c) with E[x_{t−1} | x_t] = M x_t + c, by conditioning the joint Gaussian:
    Cov(x_{t−1}, x_t) = √α_t V_{t−1}; at t = 0 "x_{−1}" is x₀ itself (V = Σ)."""
    ab = alpha_bar_of(betas)
    a, a_prev = float(ab[t]), float(ab[t - 1]) if t > 0 else 1.0
    V_prev = marginal_covariance(a_prev, covariance)
    M = math.sqrt(1 - float(betas[t])) * V_prev @ torch.linalg.inv(marginal_covariance(a,
                                                                                      covariance))
    c = math.sqrt(a_prev) * mean - M @ (math.sqrt(a) * mean)
    return M, c


def ancestral_moments(betas: torch.Tensor, variance: str, mean=MEAN, covariance=COVARIANCE):
    """Mean and covariance of x₀ produced by exact ancestral sampling from x_T ~ N(0, I)."""
    ab = alpha_bar_of(betas)
    D = len(mean)
    m, C = torch.zeros(D, dtype=F64), torch.eye(D, dtype=F64)
    for t in reversed(range(len(betas))):
        M, c = reverse_mean_map(betas, t, mean, covariance)
        m, C = M @ m + c, M @ C @ M.T
        if t > 0:
            beta = float(betas[t])
            shrink = 1.0 if variance == "beta" else (1 - float(ab[t - 1])) / (1 - float(ab[t]))
            sigma2 = shrink * beta
            C = C + sigma2 * torch.eye(D, dtype=F64)
    return m, C


def ddim_maps(betas: torch.Tensor, taus: list[int], eta: float, mean=MEAN,
              covariance=COVARIANCE):
    """(M, c, Q): DDIM from x_T gives x₀ = M x_T + c + noise of covariance Q, when the model is
    the exact E[ε | x] (so x̂₀ = E[x₀ | x] = μ + √a Σ V⁻¹ (x − √a μ))."""
    ab = alpha_bar_of(betas)
    D = len(mean)
    eye = torch.eye(D, dtype=F64)
    M, c, Q = eye.clone(), torch.zeros(D, dtype=F64), torch.zeros(D, D, dtype=F64)
    for i in reversed(range(len(taus))):
        a = float(ab[taus[i]])
        a_prev = float(ab[taus[i - 1]]) if i > 0 else 1.0
        V_inv = torch.linalg.inv(marginal_covariance(a, covariance))
        x0_gain = math.sqrt(a) * covariance @ V_inv  # x̂₀ = μ + G (x − √a μ)
        eps_gain = math.sqrt(1 - a) * V_inv  # ε̂ = E (x − √a μ)
        sigma2 = eta**2 * (1 - a_prev) / (1 - a) * (1 - a / a_prev)
        step = math.sqrt(a_prev) * x0_gain + math.sqrt(max(1 - a_prev - sigma2, 0.0)) * eps_gain
        shift = math.sqrt(a_prev) * mean - step @ (math.sqrt(a) * mean)
        M, c, Q = step @ M, step @ c + shift, step @ Q @ step.T + sigma2 * eye
    return M, c, Q


def assert_moments(samples, mean: torch.Tensor, covariance: torch.Tensor, what: str,
                   hint: str) -> None:
    """A statistical test: each coordinate's sample mean and each entry of the sample covariance
    within Z_LIMIT standard errors of the exact Gaussian moments (false alarm {FALSE_ALARM})."""
    x = as_array(samples, what).astype(np.float64)
    if x.ndim != 2 or x.shape[1] != len(mean):
        raise CheckFailed(f"{what} has shape {x.shape}, expected (N, {len(mean)}).", hint)
    if not np.isfinite(x).all():
        raise CheckFailed(f"{what} contains nan/inf.", hint)
    n = len(x)
    mu, C = mean.numpy(), covariance.numpy()
    got_mean, got_cov = x.mean(0), np.cov(x.T)
    for i in range(len(mu)):
        z = (got_mean[i] - mu[i]) / math.sqrt(C[i, i] / n)
        if abs(z) > Z_LIMIT:
            raise CheckFailed(
                f"{what}: coordinate {i} has sample mean {got_mean[i]:.4f} over {n} samples, "
                f"expected {mu[i]:.4f} ± {math.sqrt(C[i, i] / n):.4f} ({abs(z):.1f} standard "
                f"errors off; a correct sampler is this far with probability {FALSE_ALARM}).",
                hint)
    for i in range(len(mu)):
        for j in range(i, len(mu)):
            se = math.sqrt((C[i, i] * C[j, j] + C[i, j] ** 2) / n)
            z = (got_cov[i, j] - C[i, j]) / se
            if abs(z) > Z_LIMIT:
                raise CheckFailed(
                    f"{what}: covariance entry ({i}, {j}) is {got_cov[i, j]:.4f} over {n} "
                    f"samples, expected {C[i, j]:.4f} ± {se:.4f} ({abs(z):.1f} standard errors "
                    f"off; a correct sampler is this far with probability {FALSE_ALARM}).\n"
                    f"    got covariance:      {np.round(got_cov, 4).tolist()}\n"
                    f"    expected covariance: {np.round(C, 4).tolist()}", hint)


def assert_drawn_in_float64(noise, what: str, hint: str) -> None:
    """Fail when float64 noise sits on the float32 grid: it was drawn in float32 and promoted
    (torch.randn without dtype=), which keeps 24 of its 53 bits. A float64 draw lands within
    1e-12 (relative) of a float32 number with probability ≈ 2e-5."""
    values = np.asarray(noise, dtype=np.float64).ravel()
    values = values[np.isfinite(values) & (values != 0)]
    on_grid = np.abs(values.astype(np.float32).astype(np.float64) - values) <= 1e-12 * np.abs(
        values)
    if values.size and on_grid.mean() > 0.5:
        raise CheckFailed(f"{what} has only float32 precision ({on_grid.mean():.0%} of its values "
                          f"are float32 numbers) although the inputs are float64.", hint)


def safely(compute) -> np.ndarray:
    """A fingerprint output that survives a submission raising: NaN stands for "it raised"."""
    try:
        return np.asarray(compute(), dtype=np.float64)
    except (StudentError, CheckFailed):
        return np.array([np.nan])


def randn(seed: int, *shape: int, dtype: torch.dtype = F64, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=F64) * scale).to(dtype)
