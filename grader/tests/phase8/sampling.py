"""8.5 ancestral sampling and 8.6 DDIM, with the exact noise predictor of Gaussian data.

For data N(μ, Σ) the model E[ε | x_t] is known, so every reverse step has a known answer (the
Gaussian E[x_{t−1} | x_t] plus σ_t z), DDIM with η = 0 is a known affine map of x_T, and the
samples of a whole run have known mean and covariance (see _helpers.py).
"""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises
from grader.checks.oracle import as_array, assert_close
from grader.tests.phase8._helpers import (
    alpha_bar_of,
    ancestral_moments,
    assert_drawn_in_float64,
    assert_moments,
    betas_linear,
    ddim_maps,
    gaussian_model,
    generator,
    randn,
    recorded,
    recorder,
    reverse_mean_map,
    safely,
)

T_SAMPLE = 100
N_SAMPLES = 4000
STEP_HINT = ("x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε̂)/√α_t + σ_t·z with σ_t² = β̃_t ('posterior') "
             "or β_t ('beta'), α_t = 1 − β_t (not ᾱ_t); at t = 0 return the mean, no noise.")
DDIM_HINT = ("x̂₀ = (x − √(1 − a)·ε̂)/√a; x ← √a'·x̂₀ + √(1 − a' − σ²)·ε̂ + σ·z with a = ᾱ_τᵢ, "
             "a' = ᾱ_τᵢ₋₁ (1 after τ₀), σ = η·√((1 − a')/(1 − a))·√(1 − a/a').")


def _variance(betas, t: int, variance: str) -> float:
    ab = alpha_bar_of(betas)
    beta = float(betas[t])
    if t == 0:
        return 0.0
    return beta if variance == "beta" else (1 - float(ab[t - 1])) / (1 - float(ab[t])) * beta


# ------------------------------------------------------------------ 8.5 ancestral sampling


@check("ddpm_sampling", "oracle", weight=3)
def reverse_step_is_the_gaussian_conditional_plus_noise(m):
    """With the exact ε-predictor of Gaussian data and given noise z, p_sample(x_t, t) equals
    E[x_{t−1} | x_t] + σ_t z, σ_t² = β̃_t (variance="posterior", the default) or β_t ("beta"),
    at t = T−1, T/2, 1 and 0 (no noise at t = 0), float64 and float32."""
    betas = betas_linear(T_SAMPLE)
    model = gaussian_model(m, betas)
    x, z = randn(20, 6, 2), randn(21, 6, 2)
    for t in (T_SAMPLE - 1, T_SAMPLE // 2, 1, 0):
        M, c = reverse_mean_map(betas, t)
        for variance in ("posterior", "beta"):
            kwargs = {} if variance == "posterior" else {"variance": "beta"}
            expected = x @ M.T + c + _variance(betas, t, variance) ** 0.5 * z
            assert_close(m.p_sample(model, x, t, betas, noise=z, **kwargs), expected.numpy(),
                         f"p_sample at t = {t}, variance={variance!r}", hint=STEP_HINT)
        posterior = x @ M.T + c + _variance(betas, t, "posterior") ** 0.5 * z
        assert_close(m.p_sample(model, x.float(), t, betas, noise=z.float()),
                     posterior.float().numpy(), f"p_sample at t = {t} in float32", rtol=1e-4,
                     atol=1e-5, hint="Cast the schedule values to x's dtype. " + STEP_HINT)


@check("ddpm_sampling", "invariant")
def reverse_step_calls_the_model_with_a_batch_of_t(m):
    """p_sample calls the model once with x_t and t as an int64 tensor (B,) filled with t,
    leaves x_t unchanged, raises ValueError for an unknown variance, and draws z with the
    generator (the same seed, the same step)."""
    betas = betas_linear(T_SAMPLE)
    x = randn(22, 5, 2)
    original = x.clone()
    model = recorder(m, gaussian_model(m, betas))
    m.p_sample(model, x, 37, betas, generator=generator(m, 0))
    xs, ts = recorded(m, model)
    if len(ts) != 1 or ts[0].shape != (5,) or ts[0].dtype != np.int64 or np.any(ts[0] != 37):
        raise CheckFailed(f"p_sample(model, x, 37, …) called the model {len(ts)} time(s) with t "
                          f"{ts[0] if ts else None!r}; expected once, with an int64 tensor of "
                          f"five 37s.", "torch.full((B,), t, dtype=torch.long).")
    if not torch.equal(x, original):
        raise CheckFailed("p_sample changed x_t in place.")
    assert_close(xs[0], x.numpy(), "the x_t the model saw")
    first = as_array(m.p_sample(model, x, 37, betas, generator=generator(m, 4)), "p_sample")
    again = as_array(m.p_sample(model, x, 37, betas, generator=generator(m, 4)), "p_sample")
    if not np.array_equal(first, again):
        raise CheckFailed("p_sample with the same generator seed gave different steps.",
                          "Draw z with torch.randn(x.shape, generator=generator, dtype=x.dtype).")
    M, c = reverse_mean_map(betas, 37)
    assert_drawn_in_float64(first - (x @ M.T + c).numpy(), "the noise σ_t·z of p_sample",
                            "Draw z in x's dtype: torch.randn(x.shape, generator=generator, "
                            "dtype=x.dtype).")
    raises(lambda: m.p_sample(model, x, 37, betas, variance="large"), "ValueError",
           "p_sample(…, variance='large')", "Accept 'posterior' and 'beta' only.")


@check("ddpm_sampling", "invariant", weight=3)
def ancestral_samples_have_the_exact_moments(m):
    """ddpm_sample from x_T ~ N(0, I) with the exact ε-predictor of N(μ, Σ) data gives samples
    whose mean and covariance are those exact ancestral sampling produces (T = 100, 4 000
    samples, both variance choices; a statistical test, false alarm below 1e-6); the model sees
    t = T−1, …, 0 in order; the same seed gives the same samples; x_T is unchanged."""
    betas = betas_linear(T_SAMPLE)
    model = recorder(m, gaussian_model(m, betas))
    x_T = randn(23, N_SAMPLES, 2)
    original = x_T.clone()
    samples = m.ddpm_sample(model, x_T, betas, generator=generator(m, 5))
    _, ts = recorded(m, model)
    order = [int(t[0]) if t.size else -1 for t in ts]
    if order != list(range(T_SAMPLE - 1, -1, -1)):
        raise CheckFailed(f"ddpm_sample called the model at t = {order[:4]} … {order[-3:]} "
                          f"({len(order)} calls); expected T−1, T−2, …, 0 ({T_SAMPLE} calls).",
                          "for t in reversed(range(T)): x = p_sample(model, x, t, …).")
    if not torch.equal(x_T, original):
        raise CheckFailed("ddpm_sample changed x_T in place.")
    if as_array(samples, "samples").dtype != np.float64:
        raise CheckFailed(f"ddpm_sample of float64 x_T returned {as_array(samples, 's').dtype} "
                          f"samples: keep x_T's dtype.")
    mean, covariance = ancestral_moments(betas, "posterior")
    assert_moments(samples, mean, covariance, "ddpm_sample's samples (variance='posterior')",
                   STEP_HINT)
    few = x_T[:64]
    first, again = (as_array(m.ddpm_sample(gaussian_model(m, betas), few, betas,
                                           generator=generator(m, 9)), "samples")
                    for _ in range(2))
    if not np.array_equal(first, again):
        raise CheckFailed("ddpm_sample with the same generator seed gave different samples.",
                          "Draw every z with the generator you are given.")
    beta_samples = m.ddpm_sample(gaussian_model(m, betas), x_T, betas, variance="beta",
                                 generator=generator(m, 6))
    mean, covariance = ancestral_moments(betas, "beta")
    assert_moments(beta_samples, mean, covariance, "ddpm_sample's samples (variance='beta')",
                   "Pass `variance` on to p_sample. " + STEP_HINT)


@check("ddpm_sampling", "stability")
def ancestral_sampling_keeps_float32(m):
    """ddpm_sample of float32 x_T with float64 betas returns float32 samples with the exact
    moments (T = 50, 2 000 samples; a statistical test, false alarm below 1e-6)."""
    betas = betas_linear(50)
    x_T = randn(24, 2000, 2, dtype=torch.float32)
    samples = m.ddpm_sample(gaussian_model(m, betas), x_T, betas, generator=generator(m, 7))
    got = as_array(samples, "float32 samples")
    if got.dtype != np.float32:
        raise CheckFailed(f"ddpm_sample of float32 x_T returned {got.dtype} samples.",
                          "Keep x's dtype: cast schedule values to it and draw z in x's dtype.")
    mean, covariance = ancestral_moments(betas, "posterior")
    assert_moments(got, mean, covariance, "float32 samples", STEP_HINT)


@fingerprint("ddpm_sampling")
def sampling_outputs(m):
    betas = betas_linear(30)
    model = gaussian_model(m, betas)
    x, z = randn(25, 3, 2), randn(26, 3, 2)
    outputs = {f"step_{t}_{v}": safely(lambda t=t, v=v: m.p_sample(model, x, t, betas, v,
                                                                   noise=z))
               for t in (0, 1, 15, 29) for v in ("posterior", "beta")}

    def first_t():
        traced = recorder(m, model)
        m.ddpm_sample(traced, x, betas, generator=generator(m, 0))
        return recorded(m, traced)[1][0][:1]

    outputs["first_t"] = safely(first_t)
    outputs["beta_run"] = safely(lambda: m.ddpm_sample(model, x, betas, "beta",
                                                       generator=generator(m, 1)))
    return outputs


# ------------------------------------------------------------------ 8.6 DDIM


@check("ddim_sampling", "oracle")
def ddim_timesteps_are_evenly_spread(m):
    """ddim_timesteps(T, S) = [⌊i·T/S⌋ for i < S] as int64 (T = 1000, S = 50, 7, 1, 1000), and
    raises ValueError for S = 0 and S > T."""
    for T, S in ((1000, 50), (1000, 7), (1000, 1), (1000, 1000), (90, 40)):
        got = m.ddim_timesteps(T, S)
        assert_close(got, np.array([i * T // S for i in range(S)], dtype=np.int64),
                     f"ddim_timesteps({T}, {S})", hint="τ_i = i·T // S, starting at 0.")
    for T, S in ((100, 0), (100, 101)):
        raises(lambda T=T, S=S: m.ddim_timesteps(T, S), "ValueError", f"ddim_timesteps({T}, {S})",
               "Check 1 ≤ steps ≤ T first.")


@check("ddim_sampling", "oracle", weight=3)
def deterministic_ddim_is_the_exact_affine_map(m):
    """With η = 0 and the exact ε-predictor of Gaussian data, ddim_sample(x_T) equals the affine
    map the DDIM update makes of x_T (computed from E[x₀ | x] and E[ε | x]) for S = 1, 7 and 50
    steps of T = 200, in float64 (1e-9) and float32."""
    betas = betas_linear(200)
    model = gaussian_model(m, betas)
    x_T = randn(27, 8, 2)
    expected = {}
    for steps in (1, 7, 50):
        M, c, _ = ddim_maps(betas, [i * 200 // steps for i in range(steps)], 0.0)
        expected[steps] = (x_T @ M.T + c).numpy()
        assert_close(m.ddim_sample(model, x_T, betas, steps=steps), expected[steps],
                     f"ddim_sample with steps={steps}, η = 0", hint=DDIM_HINT)
    assert_close(m.ddim_sample(model, x_T, betas), expected[50],
                 "ddim_sample with the default steps (50) and η (0)", hint=DDIM_HINT)
    assert_close(m.ddim_sample(model, x_T.float(), betas, steps=7),
                 expected[7].astype(np.float32), "ddim_sample with steps=7 in float32",
                 rtol=1e-4, atol=1e-5, hint="Cast ᾱ to x's dtype. " + DDIM_HINT)


@check("ddim_sampling", "invariant", weight=2)
def deterministic_ddim_is_deterministic(m):
    """With η = 0 the same x_T gives the same samples (torch.equal) whatever the generator; the
    model sees τ_{S−1}, …, τ₀ in order as int64 (B,) tensors; x_T is unchanged."""
    betas = betas_linear(200)
    x_T = randn(28, 16, 2)
    original = x_T.clone()
    model = recorder(m, gaussian_model(m, betas))
    first = as_array(m.ddim_sample(model, x_T, betas, steps=10, generator=generator(m, 1)),
                     "ddim_sample")
    second = as_array(m.ddim_sample(gaussian_model(m, betas), x_T, betas, steps=10,
                                    generator=generator(m, 2)), "ddim_sample")
    if not np.array_equal(first, second):
        raise CheckFailed("ddim_sample with η = 0 gave different samples for the same x_T.",
                          "With η = 0, σ = 0: draw no noise at all.")
    _, ts = recorded(m, model)
    order = [int(t[0]) if t.size else -1 for t in ts]
    if order != list(range(180, -1, -20)) or any(t.dtype != np.int64 or t.shape != (16,)
                                                  for t in ts):
        raise CheckFailed(f"ddim_sample(steps=10) of T = 200 called the model at t = {order}; "
                          f"expected 180, 160, …, 0, each as an int64 tensor (B,).",
                          "Walk ddim_timesteps(T, steps) from the last to the first.")
    if not torch.equal(x_T, original):
        raise CheckFailed("ddim_sample changed x_T in place.")


@check("ddim_sampling", "invariant", weight=2)
def stochastic_ddim_has_the_exact_moments(m):
    """With η > 0, DDIM's samples have the exact mean and covariance of the stochastic DDIM
    process (η = 0.5 with 20 steps, η = 1 with S = T = 100 — which is ancestral sampling with
    β̃); a statistical test on 4 000 samples, false alarm below 1e-6; same seed, same samples."""
    betas = betas_linear(T_SAMPLE)
    x_T = randn(29, N_SAMPLES, 2)
    for eta, steps in ((0.5, 20), (1.0, T_SAMPLE)):
        samples = m.ddim_sample(gaussian_model(m, betas), x_T, betas, steps=steps, eta=eta,
                                generator=generator(m, 8))
        M, c, Q = ddim_maps(betas, [i * T_SAMPLE // steps for i in range(steps)], eta)
        assert_moments(samples, c, M @ M.T + Q, f"ddim_sample's samples with η = {eta}, "
                       f"steps = {steps}", DDIM_HINT)
    first, again = (as_array(m.ddim_sample(gaussian_model(m, betas), x_T[:64], betas, steps=10,
                                           eta=0.5, generator=generator(m, 9)), "samples")
                    for _ in range(2))
    if not np.array_equal(first, again):
        raise CheckFailed("ddim_sample with η > 0 and the same generator seed gave different "
                          "samples.", "Draw z with the generator you are given.")


@check("ddim_sampling", "invariant")
def stochastic_ddim_adds_noise_of_size_sigma(m):
    """With a model that predicts ε̂ = 0 and x_T = 0, the x the model sees at DDIM's second step
    is σ·z: divided by the documented σ = η·√((1 − a')/(1 − a))·√(1 − a/a') it must be standard
    normal (4 000 draws, η = 0.8, 2 steps of a constant β = 0.03 schedule, so that a = ᾱ₁₀ ≈ 0.7;
    false alarm below 1e-6), drawn in float64."""
    betas = torch.full((20,), 0.03, dtype=torch.float64)
    ab = alpha_bar_of(betas)
    model = recorder(m)
    m.ddim_sample(model, torch.zeros(N_SAMPLES, 2, dtype=torch.float64), betas, steps=2,
                  eta=0.8, generator=generator(m, 10))
    xs, _ = recorded(m, model)
    if len(xs) != 2:
        raise CheckFailed(f"ddim_sample(steps=2) called the model {len(xs)} times, expected 2.")
    a, a_prev = float(ab[10]), float(ab[0])
    sigma = 0.8 * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
    z = xs[1] / sigma
    for values in (xs[1], z):
        assert_drawn_in_float64(values, "DDIM's noise σ·z", "Draw z in x's dtype: "
                                "torch.randn(x.shape, generator=generator, dtype=x.dtype).")
    assert_moments(z, torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64),
                   "the noise DDIM added, divided by σ", DDIM_HINT)


@fingerprint("ddim_sampling")
def ddim_outputs(m):
    betas = betas_linear(40)
    model = gaussian_model(m, betas)
    x_T = randn(30, 3, 2)
    return {"timesteps": safely(lambda: m.ddim_timesteps(40, 6)),
            "one_step": safely(lambda: m.ddim_sample(model, x_T, betas, steps=1)),
            "four_steps": safely(lambda: m.ddim_sample(model, x_T, betas, steps=4)),
            "all_steps": safely(lambda: m.ddim_sample(model, x_T, betas, steps=40)),
            "eta_half": safely(lambda: m.ddim_sample(model, x_T, betas, steps=4, eta=0.5,
                                                     generator=generator(m, 0)))}

