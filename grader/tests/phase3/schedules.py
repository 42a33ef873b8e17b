"""3.5–3.7 Learning-rate schedules over 1000 steps, against torch.optim.lr_scheduler where it
has the schedule and against the closed form otherwise (warmup + cosine).

The student's scheduler drives a stand-in optimizer (two param groups, lr 0.1 and 0.03) in the
worker; torch's drives a torch.optim.SGD with the same groups in the judge.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import assert_close
from grader.session import run_probe
from grader.tests.phase3._helpers import assert_trajectory, attempt

STEPS = 1000
BASE_LRS = [0.1, 0.03]
TOLERANCE = {"rtol": 1e-9, "atol": 1e-13}  # torch's recursive forms agree with ours to ~1e-15

STEP_HINT = "lr_t = base·γ^⌊t/step_size⌋: the first cut is at t = step_size (integer division)."
EXPONENTIAL_HINT = "lr_t = base·γᵗ, with t = 0 at construction (the first lr is base itself)."
POLYNOMIAL_HINT = ("lr_t = base·(1 − min(t, T)/T)^power: the power applies to the remaining "
                   "fraction.")
LINEAR_HINT = ("lr_t = base·(s + (e − s)·min(t, T)/T): start at start_factor·base, reach "
               "end_factor·base at t = T, then stay there.")
COSINE_HINT = ("lr_t = η_min + (base − η_min)·(1 + cos(π·t/T_max))/2: the minimum is at t = T_max "
               "exactly, and η_min is the floor, not 0.")
RESTARTS_HINT = ("Cycle i lasts T_0·T_multⁱ steps; T_cur counts from 0 at each restart, where the "
                 "lr is back at base.")
WARMUP_COSINE_HINT = ("t < W: base·t/W. t ≥ W: the cosine's progress is (t − W)/(T − W), so it "
                      "starts at base exactly where the warmup ends.")

# exercise → [(scheduler, kwargs, hint)] compared with torch.optim.lr_scheduler
TORCH_SCHEDULES = {
    "lr_schedules": [
        ("StepLR", {"step_size": 100}, STEP_HINT),
        ("StepLR", {"step_size": 30, "gamma": 0.5}, STEP_HINT),
        ("ExponentialLR", {"gamma": 0.995}, EXPONENTIAL_HINT),
        ("PolynomialLR", {}, POLYNOMIAL_HINT),
        ("PolynomialLR", {"total_iters": 800, "power": 2.0}, POLYNOMIAL_HINT),
        ("LinearLR", {}, LINEAR_HINT),
        ("LinearLR", {"start_factor": 0.01, "total_iters": 500}, LINEAR_HINT),
        ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 700}, LINEAR_HINT),
    ],
    "cosine_schedules": [
        ("CosineAnnealingLR", {"T_max": 300, "eta_min": 1e-4}, COSINE_HINT),
        ("CosineAnnealingLR", {"T_max": 1000}, COSINE_HINT),
        ("CosineAnnealingWarmRestarts", {"T_0": 50, "T_mult": 2, "eta_min": 1e-5}, RESTARTS_HINT),
        ("CosineAnnealingWarmRestarts", {"T_0": 64}, RESTARTS_HINT),
    ],
}
WARMUP_COSINE = [{"warmup_steps": 100, "total_steps": 900, "eta_min": 1e-5},
                 {"warmup_steps": 10, "total_steps": 1000}]


def _torch_optimizer(base_lrs):
    params = [torch.zeros(1, requires_grad=True) for _ in base_lrs]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs,
                                                                        strict=True)])


def _torch_schedule(name: str, kwargs: dict, steps: int = STEPS) -> np.ndarray:
    """torch's lrs after construction and after each step (steps + 1, groups)."""
    optimizer = _torch_optimizer(BASE_LRS)
    scheduler = getattr(torch.optim.lr_scheduler, name)(optimizer, **kwargs)
    lrs = [[g["lr"] for g in optimizer.param_groups]]
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
        warnings.simplefilter("ignore")
        for _ in range(steps):
            scheduler.step()
            lrs.append([g["lr"] for g in optimizer.param_groups])
    return np.array(lrs)


def _warmup_cosine(warmup_steps: int, total_steps: int, eta_min: float = 0.0,
                   steps: int = STEPS) -> np.ndarray:
    """The closed form, vectorised over t and the groups (steps + 1, groups)."""
    t = np.arange(steps + 1)[:, None]
    base = np.array(BASE_LRS)[None, :]
    progress = np.clip((t - warmup_steps) / (total_steps - warmup_steps), 0.0, 1.0)
    cosine = eta_min + (base - eta_min) * (1 + np.cos(np.pi * progress)) / 2
    return np.where(t < warmup_steps, base * t / warmup_steps, cosine)


def _student(m, name: str, kwargs: dict, steps: int = STEPS):
    return run_probe(m, "phase3.schedule_trajectory", m, name, kwargs, BASE_LRS, steps)


def _label(name: str, kwargs: dict) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


def _assert_schedule(m, name: str, kwargs: dict, expected: np.ndarray, hint: str) -> None:
    lrs, last = _student(m, name, kwargs, len(expected) - 1)
    label = _label(name, kwargs)
    assert_trajectory(lrs, expected, f"{label}: [lr of group 0, group 1]", hint=hint, **TOLERANCE)
    assert_trajectory(last, expected, f"{label}: get_last_lr()", **TOLERANCE,
                      hint="get_last_lr() returns the lr of every group, as last set.")


def _declare(exercise: str, name: str, configs: list) -> None:
    def schedule_matches_torch(m):
        for kwargs, hint in configs:
            _assert_schedule(m, name, kwargs, _torch_schedule(name, kwargs), hint)

    test_name = f"{name.lower()}_matches_torch_over_{STEPS}_steps"
    schedule_matches_torch.__name__ = test_name
    schedule_matches_torch.__doc__ = (f"{name} sets the same lr as torch.optim.lr_scheduler.{name} "
                                      f"at each of {STEPS} steps, for every param group.")
    schedule_matches_torch.__module__ = __name__
    globals()[test_name] = check(exercise, "oracle")(schedule_matches_torch)


for _exercise, _schedules in TORCH_SCHEDULES.items():
    for _name in dict.fromkeys(name for name, _, _ in _schedules):
        _declare(_exercise, _name, [(k, h) for n, k, h in _schedules if n == _name])


@check("lr_schedules", "invariant")
def linear_warmup_reaches_the_full_lr_and_stays(m):
    """LinearLR climbs by equal steps from start_factor·base to base at t = T, then stays."""
    lrs, _ = _student(m, "LinearLR", {"start_factor": 0.01, "total_iters": 500})
    lrs = np.asarray(lrs)[:, 0]
    base = BASE_LRS[0]
    assert_close(lrs[0], 0.01 * base, "LinearLR(start_factor=0.01): the lr at t = 0",
                 hint="Warmup starts low: the lr at construction is start_factor·base.")
    assert_close(np.diff(lrs[:501]), np.full(500, 0.99 * base / 500),
                 "LinearLR(start_factor=0.01, total_iters=500): the increments over t = 0 … 500",
                 rtol=1e-9, atol=1e-15, hint=LINEAR_HINT)
    assert_close(lrs[500:], np.full(len(lrs) - 500, base), "LinearLR: the lr from t = T on",
                 hint="After total_iters the factor stays at end_factor: clamp t at T.")


@check("cosine_schedules", "oracle")
def warmup_cosine_matches_its_closed_form(m):
    """WarmupCosine equals base·t/W, then η_min + (base − η_min)(1 + cos(π(t − W)/(T − W)))/2."""
    for kwargs in WARMUP_COSINE:
        _assert_schedule(m, "WarmupCosine", kwargs, _warmup_cosine(**kwargs), WARMUP_COSINE_HINT)


@check("cosine_schedules", "invariant")
def warmup_cosine_is_continuous_at_the_end_of_warmup(m):
    """WarmupCosine reaches base at t = W and no step changes the lr by more than base/W."""
    kwargs = {"warmup_steps": 100, "total_steps": 900, "eta_min": 1e-5}
    lrs = np.asarray(_student(m, "WarmupCosine", kwargs)[0])[:, 0]
    base = BASE_LRS[0]
    assert_close(lrs[100], base, "WarmupCosine(warmup_steps=100): the lr at t = 100",
                 hint="At the end of warmup the lr is the full base lr: the cosine starts there.")
    jumps = np.abs(np.diff(lrs))
    worst = int(np.argmax(jumps))
    if jumps[worst] > base / 100 * (1 + 1e-9):
        raise CheckFailed(f"WarmupCosine({kwargs}) jumps by {jumps[worst]:.4g} between t = {worst} "
                          f"and t = {worst + 1} (lr {lrs[worst]:.6g} → {lrs[worst + 1]:.6g}); no "
                          f"step may exceed base/W = {base / 100:.4g}.", WARMUP_COSINE_HINT)


@check("cosine_schedules", "invariant")
def cosine_schedules_hit_their_ends(m):
    """CosineAnnealingLR is at η_min at t = T_max; warm restarts are back at base at restarts."""
    lrs = np.asarray(_student(m, "CosineAnnealingLR", {"T_max": 300, "eta_min": 1e-4}, 300)[0])
    assert_close(lrs[300], np.array([1e-4, 1e-4]), "CosineAnnealingLR(T_max=300, eta_min=1e-4) at "
                 "t = 300", hint=COSINE_HINT)
    lrs = np.asarray(_student(m, "CosineAnnealingWarmRestarts", {"T_0": 50, "T_mult": 2}, 800)[0])
    restarts = [0, 50, 150, 350, 750]
    assert_close(lrs[restarts], np.array([BASE_LRS] * len(restarts)),
                 f"CosineAnnealingWarmRestarts(T_0=50, T_mult=2) at the restarts t = {restarts}",
                 hint=RESTARTS_HINT)


# ------------------------------------------------------------------ ReduceLROnPlateau


def _metrics(seed: int, n: int = 300) -> np.ndarray:
    """A loss curve: fast progress, a long plateau of tiny (sub-threshold) gains and noise,
    a second drop, another plateau."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    curve = 1.0 / (1 + t / 15) + 0.3 * (t < 150) - 1e-6 * t
    return curve + rng.normal(0, 0.003, n) * (rng.random(n) < 0.3)


PLATEAU_CASES = [
    ({}, _metrics(0), "mode='min', defaults"),
    ({"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 3, "cooldown": 2,
      "factor": 0.5, "min_lr": [1e-3, 1e-4]}, -_metrics(1), "mode='max', abs threshold, cooldown"),
    ({"threshold": 0.05, "patience": 1, "factor": 0.7, "min_lr": 0.005}, _metrics(2),
     "rel threshold 0.05, patience 1, min_lr 0.005"),
]
PLATEAU_HINT = ("Count bad epochs (not better than best by the threshold); cut when the count "
                "exceeds patience, then reset it and start the cooldown; never go below min_lr.")


def _torch_plateau(kwargs: dict, metrics: np.ndarray) -> np.ndarray:
    optimizer = _torch_optimizer(BASE_LRS)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    lrs = []
    for metric in metrics:
        scheduler.step(float(metric))
        lrs.append([g["lr"] for g in optimizer.param_groups])
    return np.array(lrs)


@check("reduce_on_plateau", "oracle")
def reduce_on_plateau_matches_torch(m):
    """ReduceLROnPlateau cuts the lrs at the same evaluations as torch's, in min and max modes."""
    for kwargs, metrics, label in PLATEAU_CASES:
        got = run_probe(m, "phase3.plateau_trajectory", m, kwargs, BASE_LRS, metrics)
        assert_trajectory(got, _torch_plateau(kwargs, metrics), f"ReduceLROnPlateau({label}): the "
                          f"lrs after each step(metric)", hint=PLATEAU_HINT,
                          step_name="evaluation", **TOLERANCE)


@check("reduce_on_plateau", "invariant")
def a_constant_metric_is_cut_every_cooldown_plus_patience_plus_one(m):
    """On a constant metric: cuts at evaluation patience + 2, then every cooldown + patience + 1.

    The first metric always improves on best = ±inf; the cut comes when the count of bad
    evaluations exceeds patience."""
    patience, cooldown = 4, 3
    metrics = np.ones(40)
    got = np.asarray(run_probe(m, "phase3.plateau_trajectory", m,
                               {"patience": patience, "cooldown": cooldown, "factor": 0.5},
                               BASE_LRS, metrics))[:, 0]
    cuts = np.flatnonzero(np.diff(np.concatenate([[BASE_LRS[0]], got])) < 0) + 1  # 1-based
    expected = np.arange(patience + 2, 41, cooldown + patience + 1)
    if not np.array_equal(cuts, expected):
        raise CheckFailed(f"with patience={patience}, cooldown={cooldown} and a constant metric, "
                          f"your lr was cut at evaluations {cuts.tolist()}; expected "
                          f"{expected.tolist()}.",
                          "The first metric always improves on best = inf; the next patience + 1 "
                          "are bad, and the cut comes when the count *exceeds* patience. During "
                          "the cooldown bad epochs are not counted.")


# ------------------------------------------------------------------ fingerprints


def _schedule_outputs(m, cases) -> dict:
    outputs = {}
    for i, (name, kwargs) in enumerate(cases):
        run = attempt(lambda name=name, kwargs=kwargs: _student(m, name, kwargs, 400))
        outputs[f"{name}_{i}"] = run[0] if isinstance(run, tuple) else run
    return outputs


@fingerprint("lr_schedules")
def lr_schedules_outputs(m):
    return _schedule_outputs(m, [(n, k) for n, k, _ in TORCH_SCHEDULES["lr_schedules"]])


@fingerprint("cosine_schedules")
def cosine_schedules_outputs(m):
    cases = [(n, k) for n, k, _ in TORCH_SCHEDULES["cosine_schedules"]]
    return _schedule_outputs(m, cases + [("WarmupCosine", k) for k in WARMUP_COSINE])


@fingerprint("reduce_on_plateau")
def reduce_on_plateau_outputs(m):
    outputs = {}
    for i, (kwargs, metrics, _) in enumerate(PLATEAU_CASES):
        outputs[f"case_{i}"] = attempt(lambda kwargs=kwargs, metrics=metrics: run_probe(
            m, "phase3.plateau_trajectory", m, kwargs, BASE_LRS, metrics))
    outputs["constant"] = attempt(lambda: run_probe(
        m, "phase3.plateau_trajectory", m, {"patience": 4, "cooldown": 3, "factor": 0.5},
        BASE_LRS, np.ones(40)))
    return outputs

