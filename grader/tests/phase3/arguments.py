"""Every documented argument, mode and error of phase 3 that the topic files do not reach: the
documented ValueErrors, zero_grad(set_to_none=False) on parameters without gradients, the
default 'mean' reduction, label smoothing 0 with a masked class, focal loss with α = 0, easy
triplets, clipping without gradients or with error_if_nonfinite, WarmupCosine one step after
warmup, and ReduceLROnPlateau in every mode, at its boundaries and from a first bad metric.
(Found by `make mutate`: each check states a contract, not a mutant.)"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grader.checks import CheckFailed, check
from grader.checks.contracts import raises
from grader.checks.oracle import assert_close
from grader.session import run_probe
from grader.tests.phase3._helpers import assert_trajectory

ERROR_HINT = "Check the argument against the documented choices and raise ValueError otherwise."
BASE_LRS = [0.1, 0.03]


def _tensor(values, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


# ------------------------------------------------------------------ 3.1 / 3.2 optimizers


@check("optimizer_base", "invariant")
def optimizer_zero_grad_skips_missing_gradients(m):
    """zero_grad(set_to_none=False) leaves a parameter that never had a gradient at None."""
    if not run_probe(m, "phase3.base_zero_grad_without_grads", m):
        raise CheckFailed(
            "zero_grad(set_to_none=False) gave a gradient to a parameter that had none (or "
            "removed one that had).",
            "Skip parameters whose grad is None; zero the others in place.",
        )


@check("sgd", "invariant")
def sgd_refuses_nesterov_without_momentum_or_with_dampening(m):
    """SGD(nesterov=True) raises ValueError with momentum 0 and with a dampening ≠ 0; its first
    step with momentum μ moves p by −lr·(1 + μ)·g (the buffer starts as g)."""
    got = run_probe(
        m, "phase3.single_step", m, "SGD", {"lr": 0.1, "momentum": 0.5, "nesterov": True},
        [1.0, -2.0], [4.0, 2.0],
    )  # fmt: skip
    assert_close(
        np.asarray(got)[0],
        np.array([1.0, -2.0]) - 0.1 * 1.5 * np.array([4.0, 2.0]),
        "the first SGD(lr=0.1, momentum=0.5, nesterov=True) step",
        hint="Nesterov: b ← g on the first step, then p ← p − lr·(g + μ·b).",
    )
    p = [_tensor([1.0], True)]
    hint = "Nesterov needs momentum > 0 and dampening = 0, as torch.optim.SGD says."
    raises(lambda: m.SGD(p, lr=0.1, nesterov=True), "ValueError", "SGD(nesterov=True)", hint)
    raises(
        lambda: m.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
        "ValueError",
        "SGD(momentum=0.9, dampening=0.1, nesterov=True)",
        hint,
    )


# ------------------------------------------------------------------ 3.6 / 3.7 schedules


@check("cosine_schedules", "oracle")
def warmup_cosine_ends_one_step_after_warmup(m):
    """WarmupCosine(warmup_steps=3, total_steps=4): base·t/3 for t < 3, base at t = 3, η_min
    from t = 4 on (the closed form with a one-step cosine)."""
    got, _ = run_probe(
        m,
        "phase3.schedule_trajectory",
        m,
        "WarmupCosine",
        {"warmup_steps": 3, "total_steps": 4, "eta_min": 0.001},
        BASE_LRS,
        6,
    )
    t = np.arange(7)[:, None]
    base = np.array(BASE_LRS)[None, :]
    progress = np.clip(t - 3.0, 0.0, 1.0)  # (t − W)/(T − W) with T − W = 1
    cosine = 0.001 + (base - 0.001) * (1 + np.cos(np.pi * progress)) / 2
    assert_trajectory(
        got,
        np.where(t < 3, base * t / 3, cosine),
        "WarmupCosine(warmup_steps=3, total_steps=4, eta_min=0.001): [lr of group 0, group 1]",
        hint="The cosine runs over T − W steps, here a single one.",
        step_name="step",
    )


def _torch_plateau(kwargs: dict, metrics, base_lrs: list[float]) -> np.ndarray:
    params = [torch.zeros(1, requires_grad=True) for _ in base_lrs]
    optimizer = torch.optim.SGD(
        [{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs, strict=True)]
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    lrs = []
    for metric in metrics:
        scheduler.step(float(metric))
        lrs.append([g["lr"] for g in optimizer.param_groups])
    return np.array(lrs)


# metrics that sit exactly on the thresholds (all exact in binary), or start badly
PLATEAU_CASES = [
    ({"mode": "max", "threshold": 0.5, "patience": 0, "factor": 0.5},
     [2.0, 3.0, 4.5, 5.0, 7.5, 7.0, 12.0], "mode='max', rel threshold 0.5, patience 0"),
    ({"mode": "max", "threshold_mode": "abs", "threshold": 0.5, "patience": 0, "factor": 0.5},
     [1.0, 1.5, 1.75, 2.5, 2.0], "mode='max', abs threshold 0.5, patience 0"),
    ({"mode": "min", "threshold_mode": "abs", "threshold": 0.5, "patience": 0, "factor": 0.5},
     [4.0, 3.5, 3.25, 2.5, 3.0], "mode='min', abs threshold 0.5, patience 0"),
    ({"mode": "min", "threshold": 0.5, "patience": 0, "factor": 0.5},
     [8.0, 4.0, 3.0, 1.0, 2.0], "mode='min', rel threshold 0.5, patience 0"),
    ({"patience": 1, "cooldown": 1, "factor": 0.5},
     [float("inf"), float("inf"), 1.0, 2.0, 2.0, 2.0, 2.0, 2.0], "a first metric of inf"),
    ({"patience": 0, "factor": 0.5, "min_lr": [0.1 - 5e-9, 0.0]},
     [1.0, 2.0, 2.0], "min_lr within eps of the lr (no cut: the change is ≤ eps)"),
    ({"patience": 0, "factor": 0.5, "eps": 0.25, "min_lr": [0.75, 0.0]},
     [1.0, 2.0, 2.0], "a change of exactly eps (no cut)", [1.0, 0.5]),
]  # fmt: skip


@check("reduce_on_plateau", "oracle")
def reduce_on_plateau_modes_and_boundaries_match_torch(m):
    """ReduceLROnPlateau equals torch's in max/min × rel/abs modes on metrics exactly at the
    threshold, from a first metric of inf, and when a cut would change the lr by ≤ eps;
    get_last_lr() reports the lrs; invalid mode, threshold_mode and factor ≥ 1 raise
    ValueError."""
    for kwargs, metrics, label, *lrs in PLATEAU_CASES:
        base_lrs = lrs[0] if lrs else BASE_LRS
        got = run_probe(m, "phase3.plateau_trajectory", m, kwargs, base_lrs, metrics)
        assert_trajectory(
            got,
            _torch_plateau(kwargs, metrics, base_lrs),
            f"ReduceLROnPlateau({label}): the lrs after each step(metric)",
            hint="better: < best·(1 − t) or < best − t ('min'); > best·(1 + t) or > best + t "
            "('max'); equal to the bound is not better. A cut that changes the lr by ≤ eps is "
            "skipped.",
            step_name="evaluation",
            rtol=0.0,
            atol=0.0,
        )
    scheduler = m.ReduceLROnPlateau(m.SGD([_tensor([1.0], True)], lr=0.25))
    last = scheduler.get_last_lr()
    if not isinstance(last, list) or last != [0.25]:
        raise CheckFailed(
            f"get_last_lr() of a fresh ReduceLROnPlateau(SGD(lr=0.25)) returned {last!r}, "
            "expected the list [0.25].",
            "Return [group['lr'] for group in the optimizer's param_groups].",
        )
    params = [_tensor([1.0], True)]
    for kwargs in ({"mode": "maximum"}, {"threshold_mode": "relative"}, {"factor": 1.0}):
        raises(
            lambda kwargs=kwargs: m.ReduceLROnPlateau(m.SGD(params, lr=0.1), **kwargs),
            "ValueError",
            f"ReduceLROnPlateau(..., {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})",
            ERROR_HINT,
        )


# ------------------------------------------------------------------ 3.8 clipping


@check("grad_clipping", "oracle")
def clip_grad_norm_without_gradients_and_with_error_if_nonfinite(m):
    """clip_grad_norm_ returns torch.tensor(0.) (float32) without gradients; with
    error_if_nonfinite it raises RuntimeError only for a non-finite norm, and without it returns
    that norm; float32 gradients give a float32 norm."""
    total, _ = run_probe(m, "phase3.clip", m, "clip_grad_norm_", [None], (1.0,), {})
    if not isinstance(total, torch.Tensor) or total.dtype != torch.float32 or float(total) != 0:
        raise CheckFailed(
            f"clip_grad_norm_ on parameters without gradients returned {total!r}; torch "
            "returns torch.tensor(0.), a float32 zero.",
            "With no gradient at all return torch.tensor(0.0).",
        )
    total, _ = run_probe(
        m, "phase3.clip", m, "clip_grad_norm_", [[3.0, 4.0]], (1.0,), {"error_if_nonfinite": True}
    )
    assert_close(total, np.array(5.0), "clip_grad_norm_(..., error_if_nonfinite=True), finite")
    raises(
        lambda: run_probe(
            m,
            "phase3.clip",
            m,
            "clip_grad_norm_",
            [[np.inf, 1.0]],
            (1.0,),
            {"error_if_nonfinite": True},
        ),
        "RuntimeError",
        "clip_grad_norm_ of an inf gradient with error_if_nonfinite=True",
        "Raise RuntimeError only when error_if_nonfinite is set and the norm is nan or inf.",
    )
    total, _ = run_probe(m, "phase3.clip", m, "clip_grad_norm_", [[np.inf, 1.0]], (1.0,), {})
    if not np.isinf(float(total)):
        raise CheckFailed(
            f"clip_grad_norm_ of an inf gradient without error_if_nonfinite returned {total!r}; "
            "torch returns the inf norm.",
            "Without error_if_nonfinite a non-finite norm is returned, not raised.",
        )
    total = run_probe(m, "phase3.clip_float32", m, [3.0, 0.0, 4.0])
    if not isinstance(total, torch.Tensor) or total.dtype != torch.float32:
        raise CheckFailed(
            f"clip_grad_norm_ of float32 gradients returned {total!r}; the norm keeps their dtype.",
            "Compute the norm from the gradients themselves (no .double()).",
        )


# ------------------------------------------------------------------ 3.9 – 3.11 losses


def _value(m, name: str, arrays: list, kwargs: dict):
    upstream = 1.0 if kwargs.get("reduction", "mean") != "none" else np.ones(len(arrays[0]))
    value, _ = run_probe(m, "phase3.loss_and_grads", m, name, arrays, kwargs, [0], upstream)
    return value


@check("cross_entropy_loss", "oracle")
def cross_entropy_defaults_to_mean_and_keeps_masked_classes_finite(m):
    """cross_entropy's default reduction is 'mean'; an unknown reduction raises ValueError;
    with label_smoothing = 0 a class whose logit is −inf (masked) costs nothing extra."""
    logits = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 3.0], [2.0, 0.0, 1.0]])
    target = np.array([1, 2, 0])
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(target)).numpy()
    assert_close(_value(m, "cross_entropy", [logits, target], {}), expected,
                 "cross_entropy(logits, target) with the default reduction",
                 hint="The default reduction is 'mean'.")  # fmt: skip
    raises(
        lambda: m.cross_entropy(torch.tensor(logits), torch.tensor(target), reduction="avg"),
        "ValueError",
        "cross_entropy(..., reduction='avg')",
        ERROR_HINT,
    )
    masked = logits.copy()
    masked[:, 2] = -np.inf
    target = np.array([1, 0, 0])
    expected = F.cross_entropy(torch.tensor(masked), torch.tensor(target), reduction="none")
    assert_close(
        _value(m, "cross_entropy", [masked, target], {"reduction": "none"}),
        expected.numpy(),
        "cross_entropy with a −inf logit and label_smoothing = 0",
        hint="Without smoothing only log p[y] counts: never multiply a −inf log p by 0.",
    )


@check("binary_losses", "oracle")
def focal_loss_weights_by_alpha_zero_too(m):
    """sigmoid_focal_loss with α = 0 weights positives by 0 and negatives by 1 (only α < 0
    turns the weighting off); the default reduction of bce_with_logits is 'mean'."""
    logits, targets = np.array([-2.0, -0.5, 0.0, 1.5, 3.0]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    z, t = torch.tensor(logits), torch.tensor(targets)
    p = torch.sigmoid(z)
    p_t = p * t + (1 - p) * (1 - t)
    bce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    expected = (1 - t) * (1 - p_t) ** 2 * bce  # α_t = 0·t + 1·(1 − t)
    assert_close(
        _value(m, "sigmoid_focal_loss", [logits, targets], {"alpha": 0.0, "reduction": "none"}),
        expected.numpy(),
        "sigmoid_focal_loss(..., alpha=0)",
        hint="α_t = α·t + (1 − α)·(1 − t) for every α ≥ 0, α = 0 included.",
    )
    assert_close(
        _value(m, "bce_with_logits", [logits, targets], {}),
        bce.mean().numpy(),
        "bce_with_logits(logits, targets) with the default reduction",
        hint="The default reduction is 'mean'.",
    )


@check("metric_losses", "oracle")
def triplet_loss_is_zero_for_easy_triplets(m):
    """triplet_margin_loss is 0 (not negative) for triplets whose negative is already farther
    than the positive by more than the margin, as F.triplet_margin_loss."""
    anchor = np.zeros((3, 2))
    positive = np.array([[0.1, 0.0], [0.0, 0.2], [0.3, 0.0]])
    negative = np.array([[5.0, 0.0], [0.0, -4.0], [3.0, 3.0]])
    expected = F.triplet_margin_loss(
        *map(torch.tensor, (anchor, positive, negative)), reduction="none"
    )
    assert_close(
        _value(m, "triplet_margin_loss", [anchor, positive, negative], {"reduction": "none"}),
        expected.numpy(),
        "triplet_margin_loss on easy triplets",
        hint="ℓ = max(0, d(a, p) − d(a, n) + margin): clamp at 0.",
    )
