"""The conventions every phase-8 function states, declared once (grader/checks/contracts.py):
float32 in → float32 out, float64 → float64, float32 agreeing with float64, the same result when
called twice with the same input (and, watched in the worker, inputs left unchanged)."""

from __future__ import annotations

import torch

from grader.checks.contracts import Numeric, contract_checks
from grader.tests.phase8._helpers import betas_linear, gaussian_model, generator, randn

BETAS = betas_linear(40)
T_STEPS = torch.tensor([0, 7, 20, 39])


def _x(seed: int, dtype, *shape: int) -> torch.Tensor:
    return randn(seed, *shape).to(dtype)


def _seeded_q_sample(m, dtype):
    # the same generator seed for both calls of the repeat check: a fresh generator each call
    def call(x0, t):
        return m.q_sample(x0, t, BETAS, generator=generator(m, 0))

    return call, [_x(40, dtype, 4, 2), T_STEPS], {}


def _denoiser(m, dtype):
    from grader.session import run_probe

    model = run_probe(m, "phase8.build", m.Denoiser, {"hidden_dim": 8, "T": 40}, 0, dtype)
    return model, [_x(41, dtype, 4, 2), T_STEPS], {}


DECLARATIONS = {
    "ddpm_schedules": [
        Numeric("linear_beta_schedule", lambda m, dt: (m.linear_beta_schedule, [100],
                                                       {"dtype": dt})),
        Numeric("cosine_beta_schedule", lambda m, dt: (m.cosine_beta_schedule, [100],
                                                       {"dtype": dt})),
    ],
    "ddpm_forward": [
        Numeric("alpha_bars", lambda m, dt: (m.alpha_bars, [BETAS.to(dt)], {})),
        Numeric("q_sample", lambda m, dt: (m.q_sample, [_x(42, dt, 4, 2), T_STEPS, BETAS,
                                                        _x(43, dt, 4, 2)], {})),
        Numeric("q_sample(generator=…)", _seeded_q_sample),
    ],
    "ddpm_posterior": [
        Numeric("posterior", lambda m, dt: (m.posterior, [_x(44, dt, 4, 2), _x(45, dt, 4, 2),
                                                          T_STEPS, BETAS], {}),
                outputs=("float", "float")),
    ],
    "ddpm_loss": [
        Numeric("diffusion_loss", lambda m, dt: (m.diffusion_loss, [
            gaussian_model(m, BETAS), _x(46, dt, 4, 2), BETAS, T_STEPS, _x(47, dt, 4, 2)], {})),
    ],
    "ddpm_sampling": [
        Numeric("p_sample", lambda m, dt: (m.p_sample, [gaussian_model(m, BETAS),
                                                        _x(48, dt, 4, 2), 11, BETAS],
                                           {"noise": _x(49, dt, 4, 2)})),
    ],
    "ddim_sampling": [
        Numeric("ddim_sample", lambda m, dt: (m.ddim_sample, [gaussian_model(m, BETAS),
                                                              _x(50, dt, 4, 2), BETAS],
                                              {"steps": 8})),
        Numeric("ddim_timesteps", lambda m, dt: (m.ddim_timesteps, [40, 8], {}), outputs="int",
                dtypes=("float64",)),
    ],
    "ddpm_denoiser": [Numeric("Denoiser.forward", _denoiser)],
}

for _exercise, _declarations in DECLARATIONS.items():
    globals().update(contract_checks(__name__, _exercise, _declarations, torch_phase=True))
