"""8.1 noise schedules and 8.2 the forward process, against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises
from grader.checks.oracle import as_array, assert_close
from grader.tests.phase8._helpers import (
    F64,
    FALSE_ALARM,
    Z_LIMIT,
    alpha_bar_of,
    assert_drawn_in_float64,
    betas_linear,
    generator,
    randn,
    safely,
)

LINEAR_HINT = ("β_t = c·β_start + (t − 1)/(T − 1)·c·(β_end − β_start) for t = 1..T with "
               "c = 1000/T: torch.linspace(c·beta_start, c·beta_end, T).")
COSINE_HINT = ("ᾱ(t) = f(t)/f(0) with f(t) = cos²(π/2·(t/T + s)/(1 + s)) on t = 0..T; "
               "β_t = 1 − ᾱ(t)/ᾱ(t − 1), then clamp to max_beta.")
ALPHA_BAR_HINT = "ᾱ_t = Π_{s ≤ t}(1 − β_s): a running product (torch.cumprod), not a sum."
Q_SAMPLE_HINT = ("x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε with ᾱ_t = alpha_bars(betas)[t], one per example, "
                 "shaped (B, 1, …) to broadcast.")


def _cosine_alpha_bar(T: int, s: float = 0.008) -> np.ndarray:
    """ᾱ(t) = f(t)/f(0) on t = 0..T, the closed form of Nichol & Dhariwal."""
    steps = np.arange(T + 1) / T
    f = np.cos((steps + s) / (1 + s) * np.pi / 2) ** 2
    return f / f[0]


# ------------------------------------------------------------------ 8.1 schedules


@check("ddpm_schedules", "oracle", weight=2)
def linear_schedule_matches_its_closed_form(m):
    """linear_beta_schedule gives β_t = c·(β_start + (t − 1)(β_end − β_start)/(T − 1)) with
    c = 1000/T: at T = 1000 (1e-4 → 0.02), T = 250 (×4), T = 4000 (×¼) and other endpoints."""
    for T, kwargs in ((1000, {}), (250, {}), (4000, {}), (500, {"beta_start": 1e-3,
                                                                 "beta_end": 0.01})):
        start, end = kwargs.get("beta_start", 1e-4), kwargs.get("beta_end", 0.02)
        c = 1000 / T
        expected = c * (start + np.arange(T) / (T - 1) * (end - start))
        assert_close(m.linear_beta_schedule(T, **kwargs), expected,
                     f"linear_beta_schedule({T}{''.join(f', {k}={v}' for k, v in kwargs.items())})",
                     hint=LINEAR_HINT)


@check("ddpm_schedules", "invariant")
def linear_schedule_keeps_the_total_noise_for_every_T(m):
    """The rescaling keeps Σβ_t = 1000·(β_start + β_end)/2 for every T, so ᾱ_T ≈ 4e-5 (≈ 0) at
    T = 1000 and nearly the same at T = 50 … 5000; ᾱ_t decreases strictly."""
    for T in (50, 333, 1000, 5000):
        betas = as_array(m.linear_beta_schedule(T), f"linear_beta_schedule({T})")
        total = betas.sum() if betas.shape == (T,) else math.nan
        if not abs(total - 1000 * (1e-4 + 0.02) / 2) < 1e-9:
            raise CheckFailed(f"Σβ_t of linear_beta_schedule({T}) is {total:.6g}, expected "
                              f"{1000 * 0.0201 / 2:g} (the same for every T).",
                              "Scale both ends by 1000/T: T·mean(β) stays 1000·mean(β at 1000).")
        alpha_bar = np.cumprod(1 - betas)
        if not (np.all(np.diff(alpha_bar) < 0) and alpha_bar[-1] < 1e-3):
            raise CheckFailed(f"with T = {T}, ᾱ_t should fall strictly towards 0, but ᾱ_T = "
                              f"{alpha_bar[-1]:.3g}.", LINEAR_HINT)


@check("ddpm_schedules", "stability")
def linear_schedule_rejects_a_too_short_T(m):
    """linear_beta_schedule raises ValueError when c·β_end ≥ 1 (T = 20 and T = 5), and keeps the
    requested dtype (float32) otherwise."""
    for T in (20, 5):
        raises(lambda T=T: m.linear_beta_schedule(T), "ValueError",
               f"linear_beta_schedule({T}) (β_T = {1000 / T * 0.02:g} ≥ 1)",
               "Check c·beta_end < 1 before building the schedule.")
    got = as_array(m.linear_beta_schedule(100, dtype=torch.float32), "the float32 schedule")
    assert_close(got, (10 * np.linspace(1e-4, 0.02, 100)).astype(np.float32),
                 "linear_beta_schedule(100, dtype=torch.float32)", hint=LINEAR_HINT)


@check("ddpm_schedules", "oracle", weight=2)
def cosine_schedule_matches_its_closed_form(m):
    """cosine_beta_schedule's ᾱ_t = Π(1 − β) equals f(t)/f(0) wherever β_t is below the cap, and
    β_t = max_beta where the closed form exceeds it (T = 1000 and 200; s = 0.008 and 0.05;
    max_beta = 0.999 and 0.3), in float64 by default and in float32 on request."""
    for T, s, cap in ((1000, 0.008, 0.999), (200, 0.008, 0.999), (200, 0.05, 0.3)):
        ratio = _cosine_alpha_bar(T, s)
        expected = np.minimum(1 - ratio[1:] / ratio[:-1], cap)
        kwargs = {} if (s, cap) == (0.008, 0.999) else {"s": s, "max_beta": cap}
        what = f"cosine_beta_schedule({T}{''.join(f', {k}={v}' for k, v in kwargs.items())})"
        assert_close(m.cosine_beta_schedule(T, **kwargs), expected, what, rtol=1e-9, atol=1e-15,
                     hint=COSINE_HINT)
    got = m.cosine_beta_schedule(100, dtype=torch.float32)
    ratio = _cosine_alpha_bar(100)
    assert_close(got, np.minimum(1 - ratio[1:] / ratio[:-1], 0.999).astype(np.float32),
                 "cosine_beta_schedule(100, dtype=torch.float32)", hint=COSINE_HINT)


@check("ddpm_schedules", "invariant")
def cosine_schedule_is_capped_and_reaches_zero(m):
    """The cosine schedule's β rises to exactly max_beta at t = T (f(T) = 0 would make it 1),
    β₁ is not vanishingly small (the offset s), and ᾱ_T < 1e-6."""
    betas = as_array(m.cosine_beta_schedule(1000), "cosine_beta_schedule(1000)")
    if betas.shape != (1000,):
        raise CheckFailed(f"cosine_beta_schedule(1000) has shape {betas.shape}, expected (1000,).")
    if betas[-1] != 0.999 or betas.max() > 0.999:
        raise CheckFailed(f"β_T is {betas[-1]!r} and max β is {betas.max()!r}: β must be capped "
                          f"at max_beta = 0.999.", "clamp(max=max_beta) after the ratio.")
    if not 1e-5 < betas[0] < 1e-4:
        raise CheckFailed(f"β₁ = {betas[0]:.3g}; with s = 0.008 it is ≈ 4.1e-5 (without s it "
                          f"would be ≈ 2.5e-6).", COSINE_HINT)
    if np.cumprod(1 - betas)[-1] >= 1e-6 or np.any(np.diff(betas) < 0):
        raise CheckFailed("the cosine schedule's β should rise monotonically and leave ᾱ_T < 1e-6.",
                          COSINE_HINT)


@fingerprint("ddpm_schedules")
def schedule_outputs(m):
    return {"linear": safely(lambda: m.linear_beta_schedule(1000)[::111]),
            "linear_250": safely(lambda: m.linear_beta_schedule(250)[::50]),
            "linear_short": safely(lambda: m.linear_beta_schedule(20)),
            "cosine": safely(lambda: m.cosine_beta_schedule(1000)[[0, 1, 500, 998, 999]]),
            "cosine_s": safely(lambda: m.cosine_beta_schedule(50, s=0.05, max_beta=0.3))}


# ------------------------------------------------------------------ 8.2 the forward process


@check("ddpm_forward", "oracle")
def alpha_bars_is_the_running_product(m):
    """alpha_bars(β) equals exp(Σ_{s≤t} log(1 − β_s)) for random β in float64 and float32 and
    leaves β unchanged."""
    betas = torch.rand(300, generator=torch.Generator().manual_seed(1), dtype=F64) * 0.05
    original = betas.clone()
    assert_close(m.alpha_bars(betas), alpha_bar_of(betas).numpy(), "alpha_bars(betas)",
                 hint=ALPHA_BAR_HINT)
    assert_close(m.alpha_bars(betas.float()), alpha_bar_of(betas).float().numpy(),
                 "alpha_bars(betas) in float32", rtol=1e-5, atol=1e-7, hint=ALPHA_BAR_HINT)
    if not torch.equal(betas, original):
        raise CheckFailed("alpha_bars changed its input betas in place.",
                          "Compute 1 − β into a new tensor (no in-place ops on betas).")


@check("ddpm_forward", "oracle", weight=2)
def q_sample_matches_the_closed_form_for_given_noise(m):
    """q_sample(x₀, t, β, noise) = √ᾱ_t x₀ + √(1 − ᾱ_t) ε with a different t per example, for
    (B, 2) and (B, 3, 4) data, float64 and float32; inputs unchanged."""
    betas = betas_linear(200)
    alpha_bar = alpha_bar_of(betas)
    t = torch.tensor([0, 1, 57, 120, 199, 199])
    for shape in ((6, 2), (6, 3, 4)):
        x0, noise = randn(2, *shape), randn(3, *shape)
        copies = (x0.clone(), noise.clone(), t.clone(), betas.clone())
        a = alpha_bar[t].reshape(-1, *([1] * (len(shape) - 1)))
        expected = a.sqrt() * x0 + (1 - a).sqrt() * noise
        assert_close(m.q_sample(x0, t, betas, noise), expected.numpy(),
                     f"q_sample of {shape} data", hint=Q_SAMPLE_HINT)
        if not all(torch.equal(a, b) for a, b in zip((x0, noise, t, betas), copies, strict=True)):
            raise CheckFailed("q_sample changed one of its inputs in place.",
                              "Build x_t as a new tensor.")
        assert_close(m.q_sample(x0.float(), t, betas, noise.float()), expected.float().numpy(),
                     f"q_sample of {shape} float32 data (float64 betas)",
                     hint="Keep x₀'s dtype: cast the gathered ᾱ_t to x₀'s dtype.")


@check("ddpm_forward", "invariant", weight=2)
def q_sample_draws_from_the_forward_marginal(m):
    """Without noise, q_sample draws x_t ~ N(√ᾱ_t x₀, (1 − ᾱ_t) I): the mean and variance of
    20 000 draws are within 5.3 standard errors (false alarm below 1e-6); the same seed gives
    the same draws, another seed others."""
    betas = betas_linear(100)
    alpha_bar = alpha_bar_of(betas)
    n = 20_000
    t = torch.tensor([5, 60]).repeat_interleave(n // 2)  # (n,)
    x0 = torch.tensor([1.5, -2.0], dtype=F64).expand(n, 2).contiguous()
    draws = as_array(m.q_sample(x0, t, betas, generator=generator(m, 0)), "q_sample(…)")
    again = as_array(m.q_sample(x0, t, betas, generator=generator(m, 0)), "q_sample(…)")
    other = as_array(m.q_sample(x0, t, betas, generator=generator(m, 1)), "q_sample(…)")
    if draws.shape != (n, 2):
        raise CheckFailed(f"q_sample returned shape {draws.shape}, expected {(n, 2)}.")
    if not np.array_equal(draws, again) or np.array_equal(draws, other):
        raise CheckFailed("q_sample with the same generator seed should give the same draws and "
                          "another seed different ones.",
                          "Draw ε with torch.randn(x0.shape, generator=generator, dtype=...).")
    a = alpha_bar[t].numpy()[:, None]
    assert_drawn_in_float64((draws - np.sqrt(a) * x0.numpy()) / np.sqrt(1 - a), "the noise ε",
                            "Draw ε in x0's dtype: torch.randn(x0.shape, generator=generator, "
                            "dtype=x0.dtype).")
    for half, step in ((slice(0, n // 2), 5), (slice(n // 2, n), 60)):
        a = float(alpha_bar[step])
        sample = draws[half]
        for what, got, expected, se in (
                ("mean", sample.mean(0), math.sqrt(a) * x0[0].numpy(),
                 math.sqrt((1 - a) / (n // 2))),
                ("variance", sample.var(0, ddof=1), np.full(2, 1 - a),
                 (1 - a) * math.sqrt(2 / (n // 2 - 1)))):
            z = np.abs(got - expected) / se
            if z.max() > Z_LIMIT:
                raise CheckFailed(
                    f"at t = {step}, the sample {what} of x_t is {np.round(got, 4).tolist()}, "
                    f"expected {np.round(expected, 4).tolist()} ± {se:.4f} ({z.max():.1f} "
                    f"standard errors off; a correct q_sample is this far with probability "
                    f"{FALSE_ALARM}).", Q_SAMPLE_HINT)


@fingerprint("ddpm_forward")
def forward_outputs(m):
    betas = betas_linear(50)
    x0, noise = randn(4, 5, 2), randn(5, 5, 2)
    t = torch.tensor([0, 3, 17, 33, 49])
    return {"alpha_bars": safely(lambda: m.alpha_bars(betas)[::7]),
            "q_sample": safely(lambda: m.q_sample(x0, t, betas, noise))}
