"""8.3 the posterior q(x_{t−1} | x_t, x₀), by Bayes' rule on two Gaussians, and 8.4 the
ε-prediction loss, with a known model whose prediction the judge evaluates itself."""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close, assert_scalar, unpack
from grader.session import run_probe
from grader.tests.phase8._helpers import (
    F64,
    alpha_bar_of,
    assert_drawn_in_float64,
    betas_linear,
    generator,
    randn,
    recorded,
    recorder,
    safely,
)

POSTERIOR_HINT = ("μ̃ = √ᾱ_{t−1}·β_t/(1 − ᾱ_t)·x₀ + √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t and "
                  "β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t, with ᾱ_{t−1} = 1 at t = 0.")
LOSS_HINT = ("x_t = q_sample(x₀, t, β, ε); the loss is the mean over every element of "
             "(ε − model(x_t, t))² — the target is the noise ε, not x₀.")


def _bayes_posterior(x0, x_t, t, betas):
    """N(x_{t−1}; √ᾱ_{t−1} x₀, (1 − ᾱ_{t−1}) I) · N(x_t; √α_t x_{t−1}, β_t I), normalised:
    precision = 1/(1 − ᾱ_{t−1}) + α_t/β_t, mean = variance·(√ᾱ_{t−1} x₀/(1 − ᾱ_{t−1}) + √α_t
    x_t/β_t). At t = 0 the prior is a point mass at x₀."""
    ab = alpha_bar_of(betas)
    means, variances = [], []
    for i, step in enumerate(t.tolist()):
        if step == 0:
            means.append(x0[i])
            variances.append(0.0)
            continue
        prior_var, beta = 1 - float(ab[step - 1]), float(betas[step])
        var = 1 / (1 / prior_var + (1 - beta) / beta)
        means.append(var * (math.sqrt(float(ab[step - 1])) * x0[i] / prior_var
                            + math.sqrt(1 - beta) * x_t[i] / beta))
        variances.append(var)
    return torch.stack(means), torch.tensor(variances, dtype=F64)


# ------------------------------------------------------------------ 8.3 the posterior


@check("ddpm_posterior", "oracle", weight=3)
def posterior_matches_bayes_rule(m):
    """posterior(x₀, x_t, t, β) returns the mean and variance Bayes' rule gives for
    q(x_{t−1} | x_t, x₀) (a Gaussian prior on x_{t−1} times the one-step likelihood), for a
    different t per example including t = 0 and t = T − 1, linear and cosine-like schedules."""
    for T, betas in ((100, betas_linear(100)),
                     (40, torch.linspace(0.01, 0.5, 40, dtype=F64) ** 1.5)):
        t = torch.tensor([0, 1, 2, T // 2, T - 2, T - 1])
        x0, x_t = randn(6, 6, 2), randn(7, 6, 2)
        mean, variance = unpack(m.posterior(x0, x_t, t, betas), 2, "posterior")
        expected_mean, expected_var = _bayes_posterior(x0, x_t, t, betas)
        assert_close(mean, expected_mean.numpy(), f"the posterior mean (T = {T})",
                     hint=POSTERIOR_HINT)
        var = as_array(variance, "the posterior variance")
        if var.shape != (6, 1):
            raise CheckFailed(f"the posterior variance has shape {var.shape}, expected (6, 1): "
                              f"one number per example, shaped to broadcast against (6, 2).")
        assert_close(var[:, 0], expected_var.numpy(), f"the posterior variance β̃_t (T = {T})",
                     hint="β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t, smaller than β_t: not β_t itself.")


@check("ddpm_posterior", "invariant")
def posterior_at_t0_is_the_data_and_keeps_dtypes(m):
    """At t = 0 the posterior mean is x₀ and its variance 0 (ᾱ_{−1} = 1); (B, 3, 4) data gives a
    (B, 1, 1) variance; float32 data gives float32 results with float64 betas; inputs unchanged."""
    betas = betas_linear(60)
    x0, x_t = randn(8, 4, 3, 4), randn(9, 4, 3, 4)
    copies = (x0.clone(), x_t.clone(), betas.clone())
    mean, variance = unpack(m.posterior(x0, x_t, torch.zeros(4, dtype=torch.long), betas), 2,
                            "posterior")
    assert_close(mean, x0.numpy(), "the posterior mean at t = 0",
                 hint="ᾱ_{t−1} at t = 0 is 1 (no noise yet), not ᾱ_{T−1}: do not index [-1].")
    assert_close(variance, np.zeros((4, 1, 1)), "the posterior variance at t = 0",
                 hint="(B, *) data has a (B, 1, …, 1) variance; at t = 0 it is 0.")
    if not all(torch.equal(a, b) for a, b in zip((x0, x_t, betas), copies, strict=True)):
        raise CheckFailed("posterior changed one of its inputs in place.")
    t = torch.tensor([3, 30, 59, 1])
    mean32, var32 = unpack(m.posterior(x0.float(), x_t.float(), t, betas), 2, "posterior")
    expected_mean, expected_var = _bayes_posterior(x0, x_t, t, betas)
    assert_close(mean32, expected_mean.float().numpy(), "the float32 posterior mean",
                 hint="Cast the gathered schedule values to x's dtype.")
    assert_close(var32, expected_var.float().numpy().reshape(4, 1, 1),
                 "the float32 posterior variance")


@fingerprint("ddpm_posterior")
def posterior_outputs(m):
    betas = betas_linear(30)
    x0, x_t = randn(10, 4, 2), randn(11, 4, 2)
    t = torch.tensor([0, 1, 15, 29])
    return {"mean": safely(lambda: m.posterior(x0, x_t, t, betas)[0]),
            "variance": safely(lambda: m.posterior(x0, x_t, t, betas)[1])}


# ------------------------------------------------------------------ 8.4 the loss

T_LOSS = 50
WEIGHT = torch.tensor([[0.7, -0.3], [0.4, 0.9]], dtype=F64)
BIAS = torch.tensor([0.2, -0.5], dtype=F64)


def _model(m):
    """ε̂ = tanh(x W + b·(t + 1)/T) with parameters W, b, in the worker."""
    return run_probe(m, "phase8.squashed_linear", WEIGHT, BIAS, T_LOSS)


def _expected_loss(x0, t, noise, betas, weight=WEIGHT, bias=BIAS):
    a = alpha_bar_of(betas)[t][:, None]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    prediction = torch.tanh(x_t @ weight + bias * ((t + 1).to(F64) / T_LOSS)[:, None])
    return ((noise - prediction) ** 2).mean()


@check("ddpm_loss", "oracle", weight=2)
def loss_is_the_noise_mse_for_given_t_and_noise(m):
    """diffusion_loss(model, x₀, β, t, noise) equals mean (ε − ε̂(x_t, t))² for a known model
    ε̂ = tanh(x W + b(t + 1)/T) and x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε, in float64 and float32."""
    betas = betas_linear(T_LOSS)
    x0, noise = randn(12, 16, 2), randn(13, 16, 2)
    t = torch.arange(16) * 3 % T_LOSS
    expected = float(_expected_loss(x0, t, noise, betas))
    for dtype in (F64, torch.float32):
        got = assert_scalar(m.diffusion_loss(_model(m), x0.to(dtype), betas, t, noise.to(dtype)),
                            "diffusion_loss")
        tol = 1e-12 if dtype == F64 else 1e-5
        if not abs(got - expected) <= tol * max(1.0, abs(expected)):
            raise CheckFailed(f"diffusion_loss in {str(dtype)[6:]} is {got:.10g}, expected "
                              f"{expected:.10g}.", LOSS_HINT)


@check("ddpm_loss", "gradient")
def loss_gradients_reach_the_model(m):
    """Backpropagating diffusion_loss gives the model's parameters the gradients torch autograd
    finds for the same closed-form loss (float64, 1e-9)."""
    betas = betas_linear(T_LOSS)
    x0, noise = randn(14, 10, 2), randn(15, 10, 2)
    t = torch.tensor([0, 4, 9, 13, 22, 31, 40, 45, 48, 49])
    result = run_probe(m, "phase8.loss_and_gradients", m.diffusion_loss, _model(m),
                       [x0, betas, t, noise], {})
    if result["grad_fn"] == "None":
        raise CheckFailed("diffusion_loss returned a value that carries no gradient.",
                          "Return a tensor built from model(x_t, t) with torch operations (no "
                          ".item(), .detach() or torch.no_grad()).")
    weight, bias = WEIGHT.clone().requires_grad_(True), BIAS.clone().requires_grad_(True)
    _expected_loss(x0, t, noise, betas, weight, bias).backward()
    for name, leaf in (("weight", weight), ("bias", bias)):
        got = result["grads"].get(name)
        if got is None:
            raise CheckFailed(f"no gradient reached the model's {name}.", LOSS_HINT)
        assert_close(got, leaf.grad.numpy(), f"∂loss/∂{name}", rtol=1e-9, atol=1e-12,
                     hint=LOSS_HINT)


@check("ddpm_loss", "invariant", weight=2)
def loss_draws_t_uniformly_and_noise_as_documented(m):
    """With t and noise omitted, the model sees t drawn uniformly from {0, …, T−1} (a χ² test on
    4 000 draws, false alarm below 1e-6) and x_t = q_sample(x₀, t, β, ε) for the noise ε the
    loss then uses; given noise is used as it is; the same seed gives the same loss."""
    T = 8
    betas = betas_linear(25)[:T].contiguous()
    x0 = randn(16, 4000, 2)
    model = recorder(m)
    loss = assert_scalar(m.diffusion_loss(model, x0, betas, generator=generator(m, 3)),
                         "diffusion_loss")
    xs, ts = recorded(m, model)
    if len(ts) != 1:
        raise CheckFailed(f"diffusion_loss called the model {len(ts)} times, expected once.")
    t = ts[0].astype(np.int64)
    if t.shape != (4000,) or t.min() < 0 or t.max() >= T:
        raise CheckFailed(f"the model got t of shape {t.shape} with values in [{t.min()}, "
                          f"{t.max()}], expected (4000,) integers in [0, {T - 1}].",
                          "t = torch.randint(0, T, (B,), generator=generator).")
    counts = np.bincount(t, minlength=T)
    chi2 = float(((counts - 500) ** 2 / 500).sum())
    if chi2 > 41.0:  # χ² with 7 degrees of freedom: P(> 41) ≈ 8e-7
        raise CheckFailed(f"t is not uniform over 0..{T - 1}: counts {counts.tolist()} (χ² = "
                          f"{chi2:.1f} > 41; false alarm below 1e-6).",
                          "Draw every step with the same probability: randint(0, T).")
    a = alpha_bar_of(betas)[torch.from_numpy(t)][:, None]
    noise = (torch.from_numpy(xs[0]) - a.sqrt() * x0) / (1 - a).sqrt()  # the ε it must have used
    expected = float((noise**2).mean())
    if not abs(loss - expected) < 1e-9:
        raise CheckFailed(f"the loss {loss:.6g} is not the mean of ε² ({expected:.6g}) for the ε "
                          f"in the x_t the model saw (it predicted 0).", LOSS_HINT)
    assert_drawn_in_float64(noise.numpy(), "the noise ε in x_t", "Draw ε in x0's dtype: "
                            "torch.randn(x0.shape, generator=generator, dtype=x0.dtype).")
    if not abs(float(noise.std()) - 1) < 0.02:
        raise CheckFailed(f"the noise in x_t has standard deviation {float(noise.std()):.3f}, "
                          f"expected 1 (ε ~ N(0, I)).", LOSS_HINT)
    given = randn(17, 4000, 2)
    model = recorder(m)
    m.diffusion_loss(model, x0, betas, t=torch.from_numpy(t), noise=given)
    xs, _ = recorded(m, model)
    assert_close(xs[0], (a.sqrt() * x0 + (1 - a).sqrt() * given).numpy(),
                 "the x_t the model saw for given t and noise", hint=LOSS_HINT)
    # the zero model's loss is mean ε² whatever t is: compare the steps it was shown too
    model = recorder(m)
    again = assert_scalar(m.diffusion_loss(model, x0, betas, generator=generator(m, 3)),
                          "diffusion_loss")
    same_t = recorded(m, model)[1][0]
    model = recorder(m)
    m.diffusion_loss(model, x0, betas, generator=generator(m, 4))
    other_t = recorded(m, model)[1][0]
    if again != loss or not np.array_equal(same_t, t) or np.array_equal(other_t, t):
        raise CheckFailed("diffusion_loss should give the same loss for the same generator seed "
                          "and draw other steps t for another seed.",
                          "Draw both t and ε with the generator you are given.")


@fingerprint("ddpm_loss")
def loss_outputs(m):
    betas = betas_linear(T_LOSS)
    x0, noise = randn(18, 8, 2), randn(19, 8, 2)
    t = torch.tensor([0, 5, 10, 20, 30, 40, 45, 49])

    def smallest_t():
        model = recorder(m)
        m.diffusion_loss(model, randn(20, 2000, 2), betas, generator=generator(m, 0))
        return recorded(m, model)[1][0].min()

    return {"loss": safely(lambda: m.diffusion_loss(_model(m), x0, betas, t, noise)),
            "smallest_t": safely(smallest_t)}
