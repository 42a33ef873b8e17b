"""Phase 3 — Optimizers, learning-rate schedules and losses, in PyTorch.

Training is three things this phase builds: an optimizer that turns gradients into parameter
updates, a schedule that moves the learning rate as training goes, and a loss that says what
"better" means. Everything follows torch.optim / torch.nn.functional's defaults and semantics,
so the grader can run yours and PyTorch's side by side. Read curriculum.md §3 alongside.

Conventions used throughout:
- Parameters are leaf tensors with requires_grad=True; their gradients are in `p.grad`.
- Optimizers update parameters *in place* (`p.add_(...)` under no_grad) and never modify
  `p.grad`: a gradient may be read again (logged, clipped, accumulated) after the step.
- Per-parameter state lives in `optimizer.state[p]`, a dict created on the parameter's first
  update; hyperparameters live in `optimizer.param_groups[i]`, so two groups may differ.
- Schedulers change `group["lr"]` in place; they need nothing from an optimizer but its
  `param_groups`.
- Losses are differentiable functions of tensors, batch first; autograd gives their gradients.

Forbidden here: torch.optim, torch.nn.utils.clip_grad_*, and the built-in losses
(F.cross_entropy, F.binary_cross_entropy_with_logits, F.triplet_margin_loss, nn.*Loss …).
Allowed: tensor arithmetic, torch.logsumexp / log_softmax, F.logsigmoid, torch.linalg.vector_norm,
F.normalize.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

Params = Iterable[Tensor] | Iterable[dict]


# ---- 3.1 The optimizer base class ----


class Optimizer:
    """What every optimizer shares, as torch.optim.Optimizer: groups, state, zero_grad, step.

    `params` is an iterable of tensors (one group) or of dicts, each {"params": tensors,
    **hyperparameters}; `defaults` holds every hyperparameter a group does not set itself.
    - param_groups: list of dicts, each with "params" (a list of tensors) and every key of
      `defaults` (the group's own value where it gave one).
    - state: {parameter tensor: dict}, empty until the parameter's first update.
    Subclasses implement `update(param, grad, state, group)` for one parameter.
    """

    def __init__(self, params: Params, defaults: dict) -> None:
        """Build param_groups from `params` (one group per dict, or one for all tensors).

        ValueError for an empty `params`, as torch.optim: an optimizer over nothing would train
        nothing, silently.
        """
        # BEGIN SOLUTION
        # HINT: model.parameters() is a generator: turn it into a list before looking at it.
        self.defaults = dict(defaults)
        # KEEP guided
        self.state: dict[Tensor, dict] = {}
        self.param_groups: list[dict] = []
        # END KEEP
        params = list(params)
        # KEEP guided
        if not params:
        # END KEEP
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        # KEEP guided
        for group in groups:
        # END KEEP
            self.add_param_group(group)
        # END SOLUTION

    def add_param_group(self, group: dict) -> None:
        """Append a group: "params" as a list, each missing hyperparameter taken from defaults.

        ValueError if one of its parameters already belongs to a group.
        """
        # BEGIN SOLUTION
        # HINT: a group that sets only "lr" still needs every other default (dict.setdefault).
        # KEEP guided
        params = group["params"]
        # END KEEP
        group = {**group, "params": [params] if isinstance(params, Tensor) else list(params)}
        # KEEP guided
        for key, value in self.defaults.items():
        # END KEEP
            group.setdefault(key, value)
        seen = {id(p) for other in self.param_groups for p in other["params"]}
        # KEEP guided
        if any(id(p) in seen for p in group["params"]):
        # END KEEP
            raise ValueError("some parameters appear in more than one parameter group")
        # KEEP guided
        self.param_groups.append(group)
        # END KEEP
        # END SOLUTION

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient: p.grad = None (the default), or zero it in place."""
        # BEGIN SOLUTION
        # HINT: with set_to_none=False keep the same gradient tensor and fill it with zeros.
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()
        # END SOLUTION

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Update every parameter that has a gradient; return the closure's loss (else None).

        closure() re-evaluates the model (zero_grad, forward, backward) and returns the loss;
        it runs with autograd enabled, *before* the update. The updates themselves run under
        torch.no_grad(), one `update(p, p.grad, self.state[p], group)` per parameter; a
        parameter whose grad is None is skipped (it took no part in this loss).
        """
        # BEGIN SOLUTION
        # HINT: `with torch.enable_grad():` around the closure, `with torch.no_grad():` around
        # HINT: the updates (an in-place change of a leaf that requires grad is an error otherwise).
        # KEEP guided
        loss = None
        if closure is not None:
            with torch.enable_grad():
        # END KEEP
                loss = closure()
        # KEEP guided
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
        # END KEEP
                        continue
                    self.update(p, p.grad, self.state.setdefault(p, {}), group)
        return loss
        # END SOLUTION

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """Update one parameter in place; each optimizer below implements it."""
        # BEGIN SOLUTION hard
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")
        # END SOLUTION


# ---- 3.2 SGD with momentum ----


class SGD(Optimizer):
    """Stochastic gradient descent as torch.optim.SGD (defaults lr=1e-3, everything else off).

    With weight decay λ, momentum μ, dampening τ, for each parameter p and gradient ∇:
        g ← ∇ + λ·p
        if μ ≠ 0:  b ← g on the first step, else b ← μ·b + (1 − τ)·g     (state["momentum_buffer"])
                   g ← g + μ·b  (Nesterov)   or   g ← b
        p ← p − lr·g
    """

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        # BEGIN SOLUTION hard
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))
        # END SOLUTION

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """One SGD step for `param` (see the class docstring)."""
        # BEGIN SOLUTION guided-keep
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: grad.add(param, alpha=λ) makes a new tensor; grad.add_ would change p.grad.
        # KEEP guided
        if weight_decay != 0:
        # END KEEP
            grad = grad.add(param, alpha=weight_decay)
        # KEEP guided
        if momentum != 0:
        # END KEEP
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()  # a copy: never alias p.grad
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        param.add_(grad, alpha=-lr)
        # END SOLUTION


# ---- 3.3 Adagrad and RMSprop ----


class Adagrad(Optimizer):
    """Adagrad as torch.optim.Adagrad: per-coordinate steps shrinking with the gradients seen.

    t ← t + 1;  g ← ∇ + λ·p;  lr_t = lr/(1 + (t − 1)·lr_decay)
    s ← s + g²   (state["sum"], starting at initial_accumulator_value)
    p ← p − lr_t·g/(√s + ε)
    """

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        # BEGIN SOLUTION hard
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))
        # END SOLUTION

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """One Adagrad step for `param`."""
        # BEGIN SOLUTION guided-keep
        if not state:
            state["step"] = 0
            state["sum"] = torch.full_like(param, group["initial_accumulator_value"])
        state["step"] += 1
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: ε is added after the square root, and lr_decay counts from the first step (t − 1).
        # KEEP guided
        if group["weight_decay"] != 0:
        # END KEEP
            grad = grad.add(param, alpha=group["weight_decay"])
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"].addcmul_(grad, grad)
        param.addcdiv_(grad, state["sum"].sqrt().add_(group["eps"]), value=-lr)
        # END SOLUTION


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop: divide by a running RMS of the gradient.

    g ← ∇ + λ·p;  v ← α·v + (1 − α)·g²                     (state["square_avg"])
    centered: ḡ ← α·ḡ + (1 − α)·g;  d = √(v − ḡ²) + ε     (state["grad_avg"])
    otherwise d = √v + ε
    momentum μ > 0: b ← μ·b + g/d;  p ← p − lr·b          (state["momentum_buffer"])
    otherwise p ← p − lr·g/d
    """

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        # BEGIN SOLUTION hard
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))
        # END SOLUTION

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """One RMSprop step for `param`."""
        # BEGIN SOLUTION guided-keep
        alpha, eps, momentum = group["alpha"], group["eps"], group["momentum"]
        if not state:
            state["square_avg"] = torch.zeros_like(param)
            state["grad_avg"] = torch.zeros_like(param)
            state["momentum_buffer"] = torch.zeros_like(param)
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: α weighs the *old* average; a centered RMSprop divides by a standard deviation.
        # KEEP guided
        if group["weight_decay"] != 0:
        # END KEEP
            grad = grad.add(param, alpha=group["weight_decay"])
        square_avg = state["square_avg"].mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"].mul_(alpha).add_(grad, alpha=1 - alpha)
            denom = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_().add_(eps)
        else:
            denom = square_avg.sqrt().add_(eps)
        if momentum > 0:
            buf = state["momentum_buffer"].mul_(momentum).addcdiv_(grad, denom)
            param.add_(buf, alpha=-group["lr"])
        else:
            param.addcdiv_(grad, denom, value=-group["lr"])
        # END SOLUTION


# ---- 3.4 Adam and AdamW ----


class Adam(Optimizer):
    """Adam as torch.optim.Adam (Kingma & Ba 2015), with L2 weight decay and AMSGrad.

    t ← t + 1;  g ← ∇ + λ·p  (AdamW instead shrinks p, see below)
    m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²       (state["exp_avg"], ["exp_avg_sq"])
    amsgrad: v_max ← max(v_max, v) and v_max replaces v below  (state["max_exp_avg_sq"])
    m̂ = m/(1 − β₁ᵗ);  v̂ = v/(1 − β₂ᵗ)
    p ← p − lr·m̂/(√v̂ + ε)
    """

    decoupled_weight_decay = False  # AdamW sets True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        # BEGIN SOLUTION hard
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))
        # END SOLUTION

    def update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        """One Adam (or AdamW) step for `param`."""
        # BEGIN SOLUTION guided-keep
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
            state["max_exp_avg_sq"] = torch.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: AdamW: p ← p·(1 − lr·λ) before the Adam step, and λ never touches the gradient.
        # KEEP guided
        if weight_decay != 0:
        # END KEEP
            if self.decoupled_weight_decay:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)
        exp_avg = state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # KEEP guided
        if group["amsgrad"]:
        # END KEEP
            exp_avg_sq = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq,
                                       out=state["max_exp_avg_sq"])
        # HINT: both moments start at 0, so early averages are too small by 1 − βᵗ: divide it out.
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        denom = (exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
        # END SOLUTION


class AdamW(Adam):
    """AdamW as torch.optim.AdamW (Loshchilov & Hutter 2019): decoupled weight decay.

    Before the Adam step, p ← p·(1 − lr·λ); the gradient is left alone. Default λ = 1e-2.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        # BEGIN SOLUTION hard
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
        # END SOLUTION


# ---- 3.5 Learning-rate schedules ----


class LRScheduler:
    """Base of the step-indexed schedules: group["lr"] = lr_at(base_lr, t) for every group.

    t = last_epoch counts step() calls: construction sets t = 0 (the lr of the first
    optimizer step), each step() adds 1. base_lrs are the groups' lrs at construction.
    Works with any object that has `param_groups` (a list of dicts with an "lr").
    """

    def __init__(self, optimizer) -> None:
        # BEGIN SOLUTION hard
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """The learning rate at step t of a group that started at base_lr."""
        # BEGIN SOLUTION hard
        raise NotImplementedError(f"{type(self).__name__} does not implement lr_at()")
        # END SOLUTION

    def step(self) -> None:
        """Advance one step and set every group's lr."""
        # BEGIN SOLUTION hard
        self.last_epoch += 1
        self._apply()
        # END SOLUTION

    def get_last_lr(self) -> list[float]:
        """The lr of every group, as set by the last step (or by construction)."""
        # BEGIN SOLUTION hard
        return [group["lr"] for group in self.optimizer.param_groups]
        # END SOLUTION

    def _apply(self) -> None:
        """group["lr"] ← lr_at(base_lr, last_epoch) for every group."""
        # BEGIN SOLUTION hard
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(base_lr, self.last_epoch)
        # END SOLUTION


class StepLR(LRScheduler):
    """lr_t = base·γ^⌊t/step_size⌋: multiply by γ every step_size steps
    (torch.optim.lr_scheduler.StepLR)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1) -> None:
        # BEGIN SOLUTION hard
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """base·γ^⌊t/step_size⌋."""
        # BEGIN SOLUTION
        # HINT: the first decay happens at t = step_size, not at t = step_size − 1.
        return base_lr * self.gamma ** (t // self.step_size)
        # END SOLUTION


class ExponentialLR(LRScheduler):
    """lr_t = base·γᵗ (torch.optim.lr_scheduler.ExponentialLR)."""

    def __init__(self, optimizer, gamma: float) -> None:
        # BEGIN SOLUTION hard
        self.gamma = gamma
        super().__init__(optimizer)
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """base·γᵗ."""
        # BEGIN SOLUTION
        return base_lr * self.gamma**t
        # END SOLUTION


class PolynomialLR(LRScheduler):
    """lr_t = base·(1 − min(t, T)/T)^power: decay to 0 in T = total_iters steps, then stay
    (torch.optim.lr_scheduler.PolynomialLR)."""

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0) -> None:
        # BEGIN SOLUTION hard
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer)
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """base·(1 − min(t, T)/T)^power."""
        # BEGIN SOLUTION
        # HINT: the power applies to the remaining fraction (1 − t/T), not to t/T.
        return base_lr * (1 - min(t, self.total_iters) / self.total_iters) ** self.power
        # END SOLUTION


class LinearLR(LRScheduler):
    """Linear warmup (or decay) of the lr factor from start_factor to end_factor over
    total_iters steps, then constant (torch.optim.lr_scheduler.LinearLR):
    lr_t = base·(s + (e − s)·min(t, T)/T)."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        # BEGIN SOLUTION hard
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer)
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """base·(s + (e − s)·min(t, T)/T)."""
        # BEGIN SOLUTION
        # HINT: at t = 0 the factor is start_factor: warmup starts low, not at the full lr.
        fraction = min(t, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * fraction)
        # END SOLUTION


# ---- 3.6 Cosine schedules ----


class CosineAnnealingLR(LRScheduler):
    """lr_t = η_min + (base − η_min)·(1 + cos(π·t/T_max))/2: half a cosine from base down to
    η_min at t = T_max, and back up after it (torch.optim.lr_scheduler.CosineAnnealingLR)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0) -> None:
        # BEGIN SOLUTION hard
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """η_min + (base − η_min)·(1 + cos(π·t/T_max))/2."""
        # BEGIN SOLUTION
        # HINT: the minimum is reached at t = T_max exactly: cos(π) = −1.
        cosine = (1 + math.cos(math.pi * t / self.T_max)) / 2  # from 1 at t = 0 to 0 at T_max
        return self.eta_min + (base_lr - self.eta_min) * cosine
        # END SOLUTION


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter 2017), as torch.optim.lr_scheduler.CosineAnnealingWarmRestarts.

    Cycle i lasts T_i = T_0·T_multⁱ steps; within it, with T_cur the steps since the restart,
    lr = η_min + (base − η_min)·(1 + cos(π·T_cur/T_i))/2, and lr jumps back to base when
    T_cur reaches T_i.
    """

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        # BEGIN SOLUTION hard
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        super().__init__(optimizer)
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """The cosine of the cycle that contains step t."""
        # BEGIN SOLUTION
        # HINT: walk the cycles: while t is past the current one, subtract its length and grow it.
        t_cur, t_i = t, self.T_0
        # KEEP guided
        while t_cur >= t_i:
        # END KEEP
            t_cur -= t_i
            t_i *= self.T_mult
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
        # END SOLUTION


class WarmupCosine(LRScheduler):
    """Linear warmup then cosine decay, the usual Transformer schedule:

    t < W:       lr = base·t/W                                (from 0 up to base)
    t ≥ W:       lr = η_min + (base − η_min)·(1 + cos(π·q))/2,  q = min(1, (t − W)/(T − W))
    with W = warmup_steps, T = total_steps > W (at least one decay step); continuous at
    t = W, η_min from t = T on.
    """

    def __init__(self, optimizer, warmup_steps: int, total_steps: int,
                 eta_min: float = 0.0) -> None:
        # BEGIN SOLUTION hard
        self.warmup_steps, self.total_steps, self.eta_min = warmup_steps, total_steps, eta_min
        super().__init__(optimizer)
        # END SOLUTION

    def lr_at(self, base_lr: float, t: int) -> float:
        """base·t/W during warmup, then a cosine from base to η_min over the remaining steps."""
        # BEGIN SOLUTION
        # HINT: the cosine's clock starts at the end of warmup: its progress is (t − W)/(T − W).
        # KEEP guided
        if t < self.warmup_steps:
        # END KEEP
            return base_lr * t / self.warmup_steps
        progress = min(1.0, (t - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2
        # END SOLUTION


# ---- 3.7 Reduce on plateau ----


class ReduceLROnPlateau:
    """Cut the lr by `factor` when a metric stops improving, as
    torch.optim.lr_scheduler.ReduceLROnPlateau.

    step(metric), once per evaluation:
    - better means < best·(1 − threshold) (mode "min", threshold_mode "rel"),
      < best − threshold ("abs"); for mode "max": > best·(1 + threshold), > best + threshold.
      best starts at +inf ("min") or −inf ("max"); a better metric becomes best and resets the
      count of bad epochs, any other adds one.
    - during a cooldown (the `cooldown` steps after a cut) bad epochs are not counted.
    - when the count of bad epochs exceeds `patience`: each group's lr ← max(lr·factor,
      min_lr) (skipped if that changes it by ≤ eps), the cooldown starts, the count resets.
    min_lr is one float or a list with one value per group.
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0.0, eps: float = 1e-8) -> None:
        # BEGIN SOLUTION hard
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
        # END SOLUTION

    def is_better(self, current: float) -> bool:
        """Whether `current` improves on self.best by more than the threshold."""
        # BEGIN SOLUTION
        # HINT: "rel" compares with best·(1 ∓ threshold), "abs" with best ∓ threshold.
        # KEEP guided
        if self.mode == "min":
        # END KEEP
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" \
                else self.best - self.threshold
            return current < bound
        bound = self.best * (1 + self.threshold) if self.threshold_mode == "rel" \
            else self.best + self.threshold
        return current > bound
        # END SOLUTION

    def step(self, metric: float) -> None:
        """Record one evaluation of the metric; cut the lrs if it has plateaued."""
        # BEGIN SOLUTION
        # HINT: patience = 2 tolerates two bad epochs: the cut comes on the third.
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        # KEEP guided
        if self.cooldown_counter > 0:
        # END KEEP
            self.cooldown_counter -= 1
            # KEEP guided
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
            # END KEEP
                new_lr = max(group["lr"] * self.factor, min_lr)
                # KEEP guided
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
                # END KEEP
            self.cooldown_counter = self.cooldown
            # KEEP guided
            self.num_bad_epochs = 0
            # END KEEP
        # END SOLUTION

    def get_last_lr(self) -> list[float]:
        """The lr of every group."""
        # BEGIN SOLUTION hard
        return [group["lr"] for group in self.optimizer.param_groups]
        # END SOLUTION


# ---- 3.8 Gradient clipping ----


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm, in place.

    The total norm is the p-norm of the vector of every gradient's p-norm (= the norm of all
    gradients concatenated; norm_type=inf gives the largest |gᵢ|). Every gradient is then
    multiplied by min(1, max_norm/(total + 1e-6)). Parameters whose grad is None are skipped;
    with no gradient at all the result is torch.tensor(0.). RuntimeError if the total norm is
    nan or inf and error_if_nonfinite. Returns the total norm *before* clipping.
    """
    # BEGIN SOLUTION
    # HINT: one scale for all gradients (the joint norm), not one per tensor.
    # HINT: torch.linalg.vector_norm(x, ord) handles ord = inf; never scale a gradient *up*.
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    # KEEP guided
    if not grads:
    # END KEEP
        return torch.tensor(0.0)
    # KEEP guided
    with torch.no_grad():
    # END KEEP
        norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])
        total = torch.linalg.vector_norm(norms, norm_type)
        # KEEP guided
        if error_if_nonfinite and not torch.isfinite(total):
        # END KEEP
            raise RuntimeError(f"the total norm of order {norm_type} of the gradients is "
                               f"{total.item()}: cannot clip")
        scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        # KEEP guided
        for g in grads:
        # END KEEP
            g.mul_(scale)
    return total
    # END SOLUTION


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [−clip_value, clip_value], in place."""
    # BEGIN SOLUTION
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    # KEEP guided
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
    # END KEEP
                p.grad.clamp_(-clip_value, clip_value)
    # END SOLUTION


# ---- 3.9 Cross-entropy ----


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """'none' → loss itself, 'sum' → its sum, 'mean' → its mean."""
    # BEGIN SOLUTION hard
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    # END SOLUTION


def cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of softmax(logits) against class indices, as F.cross_entropy.

    logits (N, C), target (N,) int64. With log p = log_softmax(logits) and smoothing ε, row n
    costs  ℓₙ = −(1 − ε)·log p[n, yₙ] − (ε/C)·Σ_c log p[n, c]  (the target distribution puts
    1 − ε + ε/C on yₙ and ε/C on every class). Rows with yₙ = ignore_index cost 0 and are not
    counted. reduction: 'none' → ℓ (N,); 'sum' → Σℓ; 'mean' → Σℓ / (number of counted rows).
    """
    # BEGIN SOLUTION
    # HINT: log p = z − logsumexp(z) is stable at |z| = 1e4; log(softmax(z)) is not.
    # HINT: an ignored row's target (e.g. −100) is not a valid index: replace it before gather.
    log_p = logits - torch.logsumexp(logits, dim=-1, keepdim=True)  # (N, C)
    keep = target != ignore_index  # (N,)
    safe_target = torch.where(keep, target, torch.zeros_like(target))
    nll = -log_p.gather(1, safe_target[:, None]).squeeze(1)  # (N,)
    # KEEP guided
    if label_smoothing > 0:  # only then: a −inf logit (a masked class) makes Σ_c log p = −inf
    # END KEEP
        smooth = -log_p.mean(dim=-1)  # (N,): the uniform part, (1/C)·Σ_c −log p
        nll = (1 - label_smoothing) * nll + label_smoothing * smooth
    loss = torch.where(keep, nll, torch.zeros_like(nll))
    # KEEP guided
    if reduction == "mean":
    # END KEEP
        return loss.sum() / keep.sum()
    return _reduce(loss, reduction)
    # END SOLUTION


# ---- 3.10 Binary losses ----


def bce_with_logits(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of σ(z) against targets t ∈ [0, 1], from the logits z (any shape),
    as F.binary_cross_entropy_with_logits:
    ℓ = −t·log σ(z) − (1 − t)·log(1 − σ(z)) = (1 − t)·z − log σ(z)   (log(1 − σ(z)) = log σ(z) − z).
    Its gradient is σ(z) − t everywhere, z = 0 included.
    """
    # BEGIN SOLUTION
    # HINT: torch.log(torch.sigmoid(z)) is log 0 = −inf at z = −1e4; F.logsigmoid(z) is exact.
    # HINT: max(z, 0) + log1p(e^(−|z|)) has the right value, but autograd through its two kinks
    # HINT: gives a wrong gradient at exactly z = 0 (the output of a zero-initialised head).
    loss = (1 - targets) * logits - F.logsigmoid(logits)
    return _reduce(loss, reduction)
    # END SOLUTION


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0,
                       reduction: str = "none") -> Tensor:
    """Focal loss (Lin et al. 2017) as torchvision.ops.sigmoid_focal_loss, any shape:

    p = σ(z);  p_t = p·t + (1 − p)·(1 − t);  α_t = α·t + (1 − α)·(1 − t)
    ℓ = α_t·(1 − p_t)^γ·BCE(z, t)      (no α_t factor when α < 0)
    γ = 0 gives the α-weighted BCE; γ > 0 down-weights well-classified examples.
    """
    # BEGIN SOLUTION
    # HINT: reuse bce_with_logits(…, reduction="none") for the stable log term.
    p = torch.sigmoid(logits)
    ce = bce_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    # KEEP guided
    if alpha >= 0:
    # END KEEP
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction)
    # END SOLUTION


# ---- 3.11 Metric-learning losses ----


def contrastive_loss(x1: Tensor, x2: Tensor, same: Tensor, margin: float = 1.0,
                     reduction: str = "mean") -> Tensor:
    """Pair contrastive loss (Hadsell, Chopra & LeCun 2006).

    x1, x2 (N, D) embeddings, same (N,) 1.0 for a similar pair, 0.0 for a dissimilar one;
    d = ‖x1 − x2‖₂ per row.  ℓ = ½·[same·d² + (1 − same)·max(0, margin − d)²]:
    similar pairs are pulled together, dissimilar ones pushed until they are margin apart.
    """
    # BEGIN SOLUTION
    # HINT: torch.linalg.vector_norm has gradient 0 at 0; sqrt(sum(x²)) has an infinite one there.
    d = torch.linalg.vector_norm(x1 - x2, dim=-1)  # (N,)
    loss = 0.5 * (same * d**2 + (1 - same) * torch.clamp(margin - d, min=0) ** 2)
    return _reduce(loss, reduction)
    # END SOLUTION


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                        reduction: str = "mean") -> Tensor:
    """Triplet margin loss (Schroff et al. 2015) as F.triplet_margin_loss.

    anchor, positive, negative (N, D); d(x, y) = ‖x − y + eps‖_p per row (F.pairwise_distance).
    ℓ = max(0, d(a, pos) − d(a, neg) + margin); with swap, d(a, neg) is replaced by
    min(d(a, neg), d(pos, neg)) (Balntas et al. 2016).
    """
    # BEGIN SOLUTION
    # HINT: the hinge is on distances, not squared distances; eps is added to the difference.
    def distance(x: Tensor, y: Tensor) -> Tensor:
        return torch.linalg.vector_norm(x - y + eps, ord=p, dim=-1)  # (N,)

    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    # KEEP guided
    if swap:
    # END KEEP
        d_neg = torch.minimum(d_neg, distance(positive, negative))
    return _reduce(torch.clamp(d_pos - d_neg + margin, min=0), reduction)
    # END SOLUTION


def info_nce(query: Tensor, key: Tensor, temperature: float = 0.1) -> Tensor:
    """InfoNCE with in-batch negatives (van den Oord et al. 2018; as in MoCo and CLIP).

    query, key (N, D): row i of key is the positive of query i, the other N − 1 rows are its
    negatives. s = q̂·k̂ᵀ/τ (N, N) with q̂, k̂ the rows scaled to unit length (cosine
    similarity); loss = cross_entropy(s, [0, 1, …, N − 1]), the mean over the N queries.
    """
    # BEGIN SOLUTION
    # HINT: the positives are on the diagonal, so the "class" of row i is i.
    logits = F.normalize(query, dim=-1) @ F.normalize(key, dim=-1).T / temperature  # (N, N)
    return cross_entropy(logits, torch.arange(len(query), device=query.device))
    # END SOLUTION


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent, SimCLR's loss (Chen et al. 2020): two views z1, z2 (N, D) of N examples.

    z = the 2N rows of z1 and z2, scaled to unit length; s = z·zᵀ/τ (2N, 2N). Row i's positive
    is the other view of the same example (i ± N); its negatives are the 2N − 2 other rows —
    never itself. loss = mean over all 2N rows of −log(exp(s_i,pos)/Σ_{k≠i} exp(s_ik)).
    """
    # BEGIN SOLUTION
    # HINT: exclude s_ii by setting it to −inf before the softmax, not by subtracting it after.
    # KEEP guided
    n = len(z1)
    # END KEEP
    z = F.normalize(torch.cat([z1, z2]), dim=-1)  # (2N, D)
    sim = z @ z.T / temperature  # (2N, 2N)
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, -math.inf)
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # (2N,)
    return cross_entropy(sim, positives)
    # END SOLUTION
