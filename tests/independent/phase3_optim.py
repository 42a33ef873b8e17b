"""Phase 3, written independently of the reference from the stubs' docstrings alone.

It keeps every documented contract but takes other routes: Adam with ε folded into the
bias-corrected step size (Kingma & Ba's "ε̂" form, exactly equivalent), closed forms where a loop
would do (SGDR's cycle by a logarithm), the joint gradient norm of all gradients concatenated,
binary cross-entropy as t·softplus(−z) + (1 − t)·softplus(z), and einsum for similarities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

Params = Iterable[Tensor] | Iterable[dict]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    return {"none": lambda v: v, "sum": torch.sum, "mean": torch.mean}[reduction](loss)


# ---- 3.1 The optimizer base class ----


class Optimizer:
    """Groups, per-parameter state, zero_grad and step, as torch.optim.Optimizer."""

    def __init__(self, params: Params, defaults: dict) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        items = list(params)
        if not items:
            raise ValueError("an optimizer needs at least one parameter")
        if all(isinstance(item, dict) for item in items):
            for item in items:
                self.add_param_group(item)
        else:
            self.add_param_group({"params": items})

    def add_param_group(self, group: dict) -> None:
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one parameter group")
        new = {**self.defaults, **group, "params": params}
        self.param_groups.append(new)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.update(p, p.grad, self.state.setdefault(p, {}), group)
        return loss

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")


# ---- 3.2 SGD with momentum ----


class SGD(Optimizer):
    """p ← p − lr·g with g = ∇ + λp, optionally through a (Nesterov) momentum buffer."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
            ),
        )

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        wd, mu = group["weight_decay"], group["momentum"]
        g = grad + wd * param if wd != 0 else grad
        if mu != 0:
            if "momentum_buffer" in state:
                buf = state["momentum_buffer"]
                buf.mul_(mu).add_(g, alpha=1 - group["dampening"])
            else:
                buf = g.detach().clone()
                state["momentum_buffer"] = buf
            g = g + mu * buf if group["nesterov"] else buf
        param.sub_(group["lr"] * g)


# ---- 3.3 Adagrad and RMSprop ----


class Adagrad(Optimizer):
    """p ← p − lr_t·g/(√s + ε), s the running sum of g², lr_t = lr/(1 + (t − 1)·lr_decay)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
            ),
        )

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        if not state:
            state["step"] = 0
            state["sum"] = torch.full_like(param, group["initial_accumulator_value"])
        state["step"] += 1
        g = grad + group["weight_decay"] * param
        lr_t = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"].addcmul_(g, g)
        param.addcdiv_(g, state["sum"].sqrt() + group["eps"], value=-lr_t)


class RMSprop(Optimizer):
    """Divide the gradient by a running RMS (or standard deviation, when centered)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
            ),
        )

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        alpha, mu = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = torch.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(param)
            if mu > 0:
                state["momentum_buffer"] = torch.zeros_like(param)
        state["step"] += 1
        g = grad + group["weight_decay"] * param
        v = state["square_avg"]
        v.copy_(torch.lerp(g * g, v, alpha))  # α·v + (1 − α)·g²
        var = v
        if group["centered"]:
            gbar = state["grad_avg"]
            gbar.copy_(torch.lerp(g, gbar, alpha))
            var = v - gbar * gbar
        d = var.sqrt() + group["eps"]
        if mu > 0:
            buf = state["momentum_buffer"]
            buf.mul_(mu).add_(g / d)
            param.sub_(group["lr"] * buf)
        else:
            param.sub_(group["lr"] * g / d)


# ---- 3.4 Adam and AdamW ----


class Adam(Optimizer):
    """Adam with L2 weight decay (or decoupled, for AdamW) and AMSGrad."""

    decoupled_weight_decay = False

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad),
        )

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        if self.decoupled_weight_decay:
            param.mul_(1 - lr * wd)
            g = grad
        else:
            g = grad + wd * param
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_((1 - beta1) * g)
        v.mul_(beta2).add_((1 - beta2) * g * g)
        if group["amsgrad"]:
            torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        # lr·m̂/(√v̂ + ε) = [lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)]·m/(√v + ε·√(1 − β₂ᵗ)).
        root_c2 = math.sqrt(1 - beta2**t)
        step_size = lr * root_c2 / (1 - beta1**t)
        param.addcdiv_(m, v.sqrt() + group["eps"] * root_c2, value=-step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay p ← p·(1 − lr·λ); default λ = 1e-2."""

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )


# ---- 3.5 Learning-rate schedules ----


class LRScheduler:
    """group["lr"] = lr_at(base_lr, t) for every group, t counting step() calls from 0."""

    def __init__(self, optimizer) -> None:
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, base_lr: float, t: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not implement lr_at()")

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def _apply(self) -> None:
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(base_lr, self.last_epoch)


class StepLR(LRScheduler):
    """lr_t = base·γ^⌊t/step_size⌋."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """lr_t = base·γᵗ."""

    def __init__(self, optimizer, gamma: float) -> None:
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma**t


class PolynomialLR(LRScheduler):
    """lr_t = base·(1 − min(t, T)/T)^power."""

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0) -> None:
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        remaining = max(self.total_iters - t, 0) / self.total_iters
        return base_lr * remaining**self.power


class LinearLR(LRScheduler):
    """lr_t = base·(s + (e − s)·min(t, T)/T)."""

    def __init__(
        self,
        optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        if t >= self.total_iters:
            return base_lr * self.end_factor
        frac = t / self.total_iters
        return base_lr * ((1 - frac) * self.start_factor + frac * self.end_factor)


# ---- 3.6 Cosine schedules ----


def _half_cosine(eta_min: float, eta_max: float, progress: float) -> float:
    """η_min + (η_max − η_min)·cos²(π·progress/2), the same half cosine as (1 + cos πq)/2."""
    return eta_min + (eta_max - eta_min) * math.cos(math.pi * progress / 2) ** 2


class CosineAnnealingLR(LRScheduler):
    """lr_t = η_min + (base − η_min)·(1 + cos(π·t/T_max))/2."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        return _half_cosine(self.eta_min, base_lr, t / self.T_max)


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: cycles of length T_0·T_multⁱ, each a half cosine from base to η_min."""

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        super().__init__(optimizer)

    def _position(self, t: int) -> tuple[int, int]:
        """(T_cur, T_i) of the cycle holding step t, by the geometric series in closed form."""
        if self.T_mult == 1:
            return t % self.T_0, self.T_0
        m = self.T_mult
        n = int(math.log(t * (m - 1) / self.T_0 + 1, m))

        def start(k: int) -> int:
            return self.T_0 * (m**k - 1) // (m - 1)

        # The logarithm may land one cycle off near a boundary; integers settle it.
        while n > 0 and start(n) > t:
            n -= 1
        while start(n + 1) <= t:
            n += 1
        return t - start(n), self.T_0 * m**n

    def lr_at(self, base_lr: float, t: int) -> float:
        t_cur, t_i = self._position(t)
        return _half_cosine(self.eta_min, base_lr, t_cur / t_i)


class WarmupCosine(LRScheduler):
    """Linear warmup over W steps from 0, then a half cosine to η_min at T, then η_min."""

    def __init__(
        self, optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0
    ) -> None:
        self.warmup_steps, self.total_steps, self.eta_min = warmup_steps, total_steps, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, t: int) -> float:
        W, T = self.warmup_steps, self.total_steps
        if t < W:
            return base_lr * t / W
        q = 1.0 if t >= T else (t - W) / (T - W)
        return _half_cosine(self.eta_min, base_lr, q)


# ---- 3.7 Reduce on plateau ----


class ReduceLROnPlateau:
    """Cut every group's lr by `factor` once the metric has not improved for `patience` steps."""

    def __init__(
        self,
        optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"unknown mode {mode!r} or threshold_mode {threshold_mode!r}")
        if factor >= 1.0:
            raise ValueError("factor should be < 1.0")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        groups = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * groups
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, current: float) -> bool:
        # Flip the sign for "max" so both modes become "smaller is better".
        sign = 1.0 if self.mode == "min" else -1.0
        a, best = sign * current, sign * self.best
        if self.threshold_mode == "rel":
            bar = best * (1 - sign * self.threshold)
        else:
            bar = best - self.threshold
        return a < bar

    def step(self, metric: float) -> None:
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                old = group["lr"]
                new = max(old * self.factor, floor)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


# ---- 3.8 Gradient clipping ----


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients by min(1, max_norm/(‖all gradients concatenated‖_p + 1e-6))."""
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    flat = torch.cat([g.detach().reshape(-1) for g in grads])
    total = torch.linalg.vector_norm(flat, float(norm_type))
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {total}")
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [−clip_value, clip_value], in place."""
    for g in _grads(parameters):
        torch.clamp(g, -clip_value, clip_value, out=g)


# ---- 3.9 Cross-entropy ----


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """ℓₙ = −(1 − ε)·log p[n, yₙ] − (ε/C)·Σ_c log p[n, c]; ignored rows cost 0, not counted."""
    _check_reduction(reduction)
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (N, C)
    kept = target != ignore_index  # (N,)
    picked = log_p.gather(1, torch.where(kept, target, 0)[:, None]).squeeze(1)  # (N,)
    loss = -picked
    eps = label_smoothing
    if eps > 0:
        # Only with smoothing do the other classes count; a −inf logit then makes it infinite.
        loss = (1 - eps) * loss - eps * log_p.mean(dim=1)
    loss = torch.where(kept, loss, torch.zeros_like(loss))
    if reduction == "mean":
        return loss.sum() / kept.sum()
    return _reduce(loss, reduction)


# ---- 3.10 Binary losses ----


def bce_with_logits(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """ℓ = t·softplus(−z) + (1 − t)·softplus(z), with softplus(z) = −log σ(−z)."""
    _check_reduction(reduction)
    loss = -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits))
    return _reduce(loss, reduction)


def sigmoid_focal_loss(
    logits: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """ℓ = α_t·(1 − p_t)^γ·BCE(z, t); no α_t when α < 0."""
    _check_reduction(reduction)
    p = torch.sigmoid(logits)
    miss = p + targets - 2 * p * targets  # 1 − p_t
    loss = bce_with_logits(logits, targets, reduction="none") * miss**gamma
    if alpha >= 0:
        loss = loss * ((1 - alpha) + (2 * alpha - 1) * targets)  # α_t
    return _reduce(loss, reduction)


# ---- 3.11 Metric-learning losses ----


def contrastive_loss(
    x1: Tensor, x2: Tensor, same: Tensor, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """ℓ = ½·[same·d² + (1 − same)·max(0, margin − d)²], d = ‖x1 − x2‖₂."""
    _check_reduction(reduction)
    diff = x1 - x2  # (N, D)
    sq = torch.einsum("nd,nd->n", diff, diff)  # d², smooth at d = 0
    d = torch.linalg.vector_norm(diff, dim=1)
    gap = torch.relu(margin - d)
    loss = 0.5 * torch.lerp(gap * gap, sq, same.to(sq.dtype))
    return _reduce(loss, reduction)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """ℓ = max(0, d(a, pos) − d(a, neg) + margin), d(x, y) = ‖x − y + eps‖_p."""
    _check_reduction(reduction)

    def dist(u: Tensor, v: Tensor) -> Tensor:
        return torch.linalg.vector_norm(u - v + eps, ord=p, dim=-1)

    d_neg = dist(anchor, negative)
    if swap:
        d_neg = torch.minimum(d_neg, dist(positive, negative))
    loss = torch.relu(margin + dist(anchor, positive) - d_neg)
    return _reduce(loss, reduction)


def info_nce(query: Tensor, key: Tensor, temperature: float = 0.1) -> Tensor:
    """mean_i [logsumexp_j s_ij − s_ii], s = q̂·k̂ᵀ/τ."""
    s = torch.einsum("id,jd->ij", F.normalize(query, dim=1), F.normalize(key, dim=1))
    s = s / temperature  # (N, N)
    return (torch.logsumexp(s, dim=1) - s.diagonal()).mean()


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """mean over 2N rows of logsumexp_{k≠i} s_ik − s_i,pos, s = ẑ·ẑᵀ/τ, pos = i ± N."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D)
    s = torch.einsum("id,jd->ij", z, z) / temperature  # (2N, 2N)
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    s = s.masked_fill(self_mask, -math.inf)
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # (2N,)
    positives = s.gather(1, pos[:, None]).squeeze(1)
    return (torch.logsumexp(s, dim=1) - positives).mean()
