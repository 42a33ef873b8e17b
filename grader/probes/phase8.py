"""Trusted code run in the worker next to the student's phase-8 functions. Returns tensors,
numbers and dicts of them (or handles to the objects below); every verdict is reached in the
judge.

The models here are what the graded checks hand to the student's loss, samplers and training
loop: the exact noise predictor of Gaussian data, a recorder that remembers every call, and a
per-step affine model whose best fit on Gaussian data is known in closed form.
"""

from __future__ import annotations

import torch
from torch import nn

MAX_RECORDED = 2000  # calls a Recorder keeps: a sampler makes T of them


def seed_global(seed: int) -> None:
    """torch.manual_seed(seed): the global generator, for code that ignores `generator=`."""
    torch.manual_seed(seed)


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed` (the student's functions take it as `generator=`)."""
    return torch.Generator().manual_seed(seed)


class GaussianEpsilon(nn.Module):
    """The optimal ε-predictor for data x₀ ~ N(μ, Σ) under the schedule `betas`:

    x_t ~ N(√ᾱ_t μ, C_t) with C_t = ᾱ_t Σ + (1 − ᾱ_t) I, and
    E[ε | x_t] = √(1 − ᾱ_t) C_t⁻¹ (x_t − √ᾱ_t μ).
    ᾱ is computed here, not with the student's alpha_bars. Works in the dtype of x_t.
    """

    def __init__(self, mean: torch.Tensor, covariance: torch.Tensor, betas: torch.Tensor):
        super().__init__()
        mean, covariance = mean.double(), covariance.double()
        alpha_bar = torch.cumprod(1 - betas.double(), dim=0)  # (T,)
        eye = torch.eye(len(mean), dtype=torch.float64)
        marginal = alpha_bar[:, None, None] * covariance + (1 - alpha_bar[:, None, None]) * eye
        self.register_buffer("gain", (1 - alpha_bar).sqrt()[:, None, None]
                             * torch.linalg.inv(marginal))  # (T, D, D)
        self.register_buffer("centre", alpha_bar.sqrt()[:, None] * mean)  # (T, D)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        gain, centre = self.gain[t].to(x.dtype), self.centre[t].to(x.dtype)  # (B, D, D), (B, D)
        return torch.einsum("bij,bj->bi", gain, x - centre)


def gaussian_epsilon(mean, covariance, betas) -> GaussianEpsilon:
    return GaussianEpsilon(mean, covariance, betas)


class Recorder(nn.Module):
    """Calls `inner` (a model or None for "predict zeros") and remembers each (x_t, t) it saw."""

    def __init__(self, inner: nn.Module | None = None):
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if len(self.calls) < MAX_RECORDED:
            self.calls.append((x.detach().clone(), torch.as_tensor(t).detach().clone()))
        return torch.zeros_like(x) if self.inner is None else self.inner(x, t)


def recorder(inner=None) -> Recorder:
    return Recorder(inner)


def recorded(model: Recorder) -> dict:
    """{"x": [x_t of each call], "t": [t of each call]} in call order."""
    return {"x": [x for x, _ in model.calls], "t": [t for _, t in model.calls]}


class SquashedLinear(nn.Module):
    """A differentiable model with parameters: ε̂ = tanh(x·W + b·(t + 1)/T) (for the loss's checks).

    W and b are fixed random numbers; the judge evaluates the same formula to know ε̂."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, T: int):
        super().__init__()
        self.weight, self.bias, self.T = nn.Parameter(weight.clone()), nn.Parameter(bias.clone()), T

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        scale = ((t + 1).to(x.dtype) / self.T)[:, None]  # (B, 1)
        return torch.tanh(x @ self.weight.to(x.dtype) + self.bias.to(x.dtype) * scale)


def squashed_linear(weight, bias, T: int) -> SquashedLinear:
    return SquashedLinear(weight, bias, T)


def loss_and_gradients(loss_fn, model: nn.Module, args: list, kwargs: dict) -> dict:
    """Call the student's loss, backpropagate it, and return the loss and the gradients of the
    model's parameters ({"loss", "grad_fn", "grads": {name: grad or None}})."""
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model, *args, **kwargs)
    if not isinstance(loss, torch.Tensor) or loss.grad_fn is None:
        return {"loss": loss.detach() if isinstance(loss, torch.Tensor) else loss,
                "grad_fn": "None", "grads": {}}
    loss.backward()
    return {"loss": loss.detach(), "grad_fn": type(loss.grad_fn).__name__,
            "grads": {n: None if p.grad is None else p.grad.clone()
                      for n, p in model.named_parameters()}}


class AffinePerStep(nn.Module):
    """ε̂ = W_t x + c_t with its own (W_t, c_t) for every step, every entry starting at `init`:
    the linear family that contains the exact predictor of Gaussian data (GaussianEpsilon), so
    training on such data should approach it."""

    def __init__(self, T: int, dim: int, init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full((T, dim, dim), init))
        self.bias = nn.Parameter(torch.full((T, dim), init))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bij,bj->bi", self.weight[t].to(x.dtype), x) + self.bias[t].to(x.dtype)


def affine_per_step(T: int, dim: int, init: float = 0.0) -> AffinePerStep:
    return AffinePerStep(T, dim, init)


def parameter_gradients(module: nn.Module, inputs: list, upstream: torch.Tensor) -> dict:
    """{name: ∂(Σ upstream·module(*inputs))/∂parameter, or None} by autograd."""
    module.zero_grad(set_to_none=True)
    (module(*inputs) * upstream).sum().backward()
    return {n: None if p.grad is None else p.grad.clone() for n, p in module.named_parameters()}


def state(module: nn.Module) -> dict:
    """{name: detached copy} of the module's parameters and buffers, persistent or not."""
    found = {name: p.detach().clone() for name, p in module.named_parameters()}
    found.update({f"buffer:{name}": b.detach().clone() for name, b in module.named_buffers()})
    return found


def state_dict_keys(module: nn.Module) -> list:
    return sorted(module.state_dict())


def build(factory, kwargs: dict, seed: int, dtype: torch.dtype | None = None):
    """factory(**kwargs) right after torch.manual_seed(seed), cast to `dtype` when given."""
    torch.manual_seed(seed)
    module = factory(**kwargs)
    return module.to(dtype) if dtype is not None else module
