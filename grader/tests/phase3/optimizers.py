"""3.2–3.4 SGD, Adagrad, RMSprop, Adam and AdamW, run side by side with torch.optim.

The worker runs the student's optimizer for 100 float64 steps on the Rosenbrock function (two
param groups with different lr, step(closure)) and on a small tanh MLP (one plain parameter
list, zero_grad / backward / step); the judge runs torch.optim on the very same problems
(grader/probes/phase3.run_problem) and compares every step. Closed forms on a constant gradient
and the Adam/AdamW invariants follow.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import assert_close
from grader.probes.phase3 import run_problem
from grader.session import fetch, run_probe
from grader.tests.phase3._helpers import assert_trajectory, attempt

STEPS = 100
ROSENBROCK = {"x": np.array([-1.2, 0.5, 1.8]), "y": np.array([1.0, -0.5, 2.5])}


def _mlp_arrays(seed: int = 3, hidden: int = 8, inputs: int = 4, outputs: int = 3, n: int = 32):
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(0, 0.5, (hidden, inputs)), "b1": rng.normal(0, 0.1, hidden),
            "W2": rng.normal(0, 0.5, (outputs, hidden)), "b2": rng.normal(0, 0.1, outputs),
            "X": rng.normal(size=(n, inputs)), "Y": rng.normal(size=(n, outputs))}


MLP = _mlp_arrays()

MOMENTUM_HINT = ("b ← g on the first step (a copy, state['momentum_buffer']), then "
                 "b ← μ·b + (1 − τ)·g; the step uses b.")
NESTEROV_HINT = "Nesterov: after updating b, step with g + μ·b (the look-ahead), not with b."
DECAY_HINT = "L2 weight decay: g ← ∇ + λ·p before anything else (momentum, moments)."
ADAGRAD_HINT = "s ← s + g²; p ← p − lr_t·g/(√s + ε) with lr_t = lr/(1 + (t − 1)·lr_decay)."
RMSPROP_HINT = "v ← α·v + (1 − α)·g² (α weighs the old average); p ← p − lr·g/(√v + ε)."
CENTERED_HINT = "centered: ḡ ← α·ḡ + (1 − α)·g and divide by √(v − ḡ²) + ε."
ADAM_HINT = ("m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), p ← p − lr·m̂/(√v̂ + ε): ε outside the root, "
             "t counted from 1.")
AMSGRAD_HINT = "AMSGrad keeps v_max = max(v_max, v) (raw v, not v̂) and uses v_max/(1 − β₂ᵗ)."
ADAMW_HINT = "AdamW: p ← p·(1 − lr·λ) first, then the plain Adam step; λ never enters g."

# exercise → optimizer → [(label, Rosenbrock kwargs, MLP kwargs, hint)]
CONFIGS = {
    "sgd": {"SGD": [
        ("lr only", {"lr": 2e-4}, {"lr": 0.05}, "p ← p − lr·∇."),
        ("momentum 0.9", {"lr": 2e-4, "momentum": 0.9}, {"lr": 0.02, "momentum": 0.9},
         MOMENTUM_HINT),
        ("momentum 0.9, dampening 0.5", {"lr": 2e-4, "momentum": 0.9, "dampening": 0.5},
         {"lr": 0.02, "momentum": 0.9, "dampening": 0.5},
         MOMENTUM_HINT + " The first step has no dampening: b starts as g itself."),
        ("Nesterov 0.9, weight_decay 0.1",
         {"lr": 2e-4, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
         {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
         NESTEROV_HINT + " " + DECAY_HINT),
        ("Nesterov 0.9", {"lr": 2e-4, "momentum": 0.9, "nesterov": True},
         {"lr": 0.02, "momentum": 0.9, "nesterov": True}, NESTEROV_HINT),
        ("momentum 1, weight_decay 1", {"lr": 1e-6, "momentum": 1.0, "weight_decay": 1.0},
         {"lr": 1e-3, "momentum": 1.0, "weight_decay": 1.0}, MOMENTUM_HINT + " " + DECAY_HINT),
    ]},
    "adagrad_rmsprop": {
        "Adagrad": [
            ("defaults", {}, {}, ADAGRAD_HINT),
            ("lr_decay, weight_decay, initial_accumulator_value",
             {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1},
             {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1},
             ADAGRAD_HINT + " s starts at initial_accumulator_value. " + DECAY_HINT),
            ("weight_decay 1", {"lr": 0.05, "weight_decay": 1.0}, {"lr": 0.05, "weight_decay": 1.0},
             DECAY_HINT),
        ],
        "RMSprop": [
            ("lr 1e-3", {"lr": 1e-3}, {"lr": 1e-3}, RMSPROP_HINT),
            ("centered", {"lr": 1e-3, "centered": True}, {"lr": 1e-3, "centered": True},
             CENTERED_HINT),
            ("momentum 0.9", {"lr": 1e-3, "momentum": 0.9}, {"lr": 1e-3, "momentum": 0.9},
             "With momentum: b ← μ·b + g/(√v + ε); p ← p − lr·b."),
            ("centered, momentum 0.5, weight_decay 0.1",
             {"lr": 1e-3, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
             {"lr": 1e-3, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
             CENTERED_HINT + " " + DECAY_HINT),
            ("weight_decay 1", {"lr": 1e-3, "weight_decay": 1.0}, {"lr": 1e-3, "weight_decay": 1.0},
             DECAY_HINT),
        ],
    },
    "adam": {
        "Adam": [
            ("lr 1e-2", {"lr": 1e-2}, {"lr": 1e-2}, ADAM_HINT),
            ("amsgrad", {"lr": 1e-2, "amsgrad": True}, {"lr": 1e-2, "amsgrad": True}, AMSGRAD_HINT),
            ("weight_decay 0.1 (L2), betas (0.8, 0.99)",
             {"lr": 1e-2, "weight_decay": 0.1, "betas": (0.8, 0.99)},
             {"lr": 1e-2, "weight_decay": 0.1, "betas": (0.8, 0.99)},
             "Adam's weight_decay is L2: g ← ∇ + λ·p before the moments (AdamW differs)."),
            ("weight_decay 1 (L2)", {"lr": 1e-2, "weight_decay": 1.0},
             {"lr": 1e-2, "weight_decay": 1.0}, "Adam's weight_decay is L2: g ← ∇ + λ·p."),
        ],
        "AdamW": [
            ("defaults but lr 1e-2 (weight_decay 1e-2)", {"lr": 1e-2}, {"lr": 1e-2}, ADAMW_HINT),
            ("amsgrad, weight_decay 0.1", {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.1},
             {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.1}, ADAMW_HINT + " " + AMSGRAD_HINT),
            ("betas (0.8, 0.99), eps 1e-6", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6},
             {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6},
             ADAMW_HINT + " Pass betas and eps on to Adam."),
        ],
    },
}
# the hyperparameters each class must store in its param groups, with torch.optim's defaults
DEFAULT_KEYS = {
    "SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    "Adagrad": ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
    "RMSprop": ("lr", "alpha", "eps", "weight_decay", "momentum", "centered"),
    "Adam": ("lr", "betas", "eps", "weight_decay", "amsgrad"),
    "AdamW": ("lr", "betas", "eps", "weight_decay", "amsgrad"),
}


def _default_lr(name: str) -> float:
    return inspect.signature(getattr(torch.optim, name)).parameters["lr"].default


def _runs(name: str, rosenbrock_kwargs: dict, mlp_kwargs: dict):
    """(label, problem, arrays, kwargs, groups, closure) of the two runs of one configuration:
    Rosenbrock in two groups (the second at 3× the lr) with step(closure); the MLP as a plain
    list with zero_grad(set_to_none=False), backward, step()."""
    lr = rosenbrock_kwargs.get("lr", _default_lr(name))
    return [("Rosenbrock, two param groups (lr and 3·lr), step(closure)", "rosenbrock",
             ROSENBROCK, rosenbrock_kwargs, [{}, {"lr": 3 * lr}], True),
            ("the tanh MLP, one group, zero_grad/backward/step", "mlp", MLP, mlp_kwargs, None,
             False)]


def _reference(name: str, problem: str, arrays: dict, kwargs: dict, groups, steps: int,
               closure: bool) -> dict:
    cls = getattr(torch.optim, name)
    return run_problem(lambda spec: cls(spec, **kwargs), problem, arrays, groups, steps, closure)


def _student(m, name: str, problem: str, arrays: dict, kwargs: dict, groups, steps: int,
             closure: bool) -> dict:
    return run_probe(m, "phase3.optimizer_trajectory", m, name, kwargs, problem, arrays, groups,
                     steps, closure)


def _declare_trajectory(exercise: str, name: str, label: str, rosenbrock_kwargs: dict,
                        mlp_kwargs: dict, hint: str) -> None:
    def trajectory_matches_torch(m):
        for where, problem, arrays, kwargs, groups, closure in _runs(name, rosenbrock_kwargs,
                                                                      mlp_kwargs):
            # torch.optim's run (judge) overlaps the student's (worker): the two are independent
            with ThreadPoolExecutor(max_workers=1) as pool:
                reference = pool.submit(_reference, name, problem, arrays, kwargs, groups, STEPS,
                                        closure)
                got = _student(m, name, problem, arrays, kwargs, groups, STEPS, closure)
                expected = reference.result()
            what = f"{name}({label}) on {where}: the parameter vector"
            assert_trajectory(got["params"], expected["params"], what, hint=hint)
            if float(got["grad_change"]) != 0:
                raise CheckFailed(f"{name}({label}) changed p.grad during step() (by up to "
                                  f"{float(got['grad_change']):.3g}).",
                                  "Never write into the gradient: grad.add_(…) or grad.mul_(…) "
                                  "modify p.grad; use grad = grad.add(…) (a new tensor).")

    slug = "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")
    while "__" in slug:
        slug = slug.replace("__", "_")
    test_name = f"{name.lower()}_{slug}_matches_torch_optim"
    trajectory_matches_torch.__name__ = test_name
    trajectory_matches_torch.__doc__ = (f"{name}({label}): {STEPS} float64 steps on Rosenbrock "
                                        f"and an MLP equal torch.optim.{name}'s to 1e-10.")
    trajectory_matches_torch.__module__ = __name__
    globals()[test_name] = check(exercise, "oracle")(trajectory_matches_torch)


for _exercise, _classes in CONFIGS.items():
    for _name, _configs in _classes.items():
        for _label, _rosenbrock, _mlp, _hint in _configs:
            _declare_trajectory(_exercise, _name, _label, _rosenbrock, _mlp, _hint)


def _same_value(got, expected) -> bool:
    """Equal numbers, bools or tuples of numbers (a list for a tuple is fine)."""
    try:
        got_array = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    expected_array = np.asarray(expected, dtype=np.float64)
    return got_array.shape == expected_array.shape and bool(np.all(got_array == expected_array))


def _assert_defaults(m, names) -> None:
    for name in names:
        optimizer = getattr(m, name)([torch.zeros(2, dtype=torch.float64, requires_grad=True)])
        groups = fetch(optimizer.param_groups)
        if not isinstance(groups, list) or not groups or not isinstance(groups[0], dict):
            raise CheckFailed(f"{name}(params).param_groups should be a list of dicts.")
        expected = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)]).defaults
        for key in DEFAULT_KEYS[name]:
            got = groups[0].get(key, "missing")
            if not _same_value(got, expected[key]):
                raise CheckFailed(f"{name}'s param group has {key} = {got!r}; torch.optim.{name} "
                                  f"defaults to {expected[key]!r}.",
                                  "Give every hyperparameter torch's default and store it in "
                                  "the group dict under torch's name.")


@check("sgd", "oracle")
def sgd_defaults_match_torch_optim(m):
    """SGD's param groups hold lr, momentum, dampening, weight_decay, nesterov: torch's defaults."""
    _assert_defaults(m, ["SGD"])


@check("adagrad_rmsprop", "oracle")
def adagrad_and_rmsprop_defaults_match_torch_optim(m):
    """Adagrad's and RMSprop's param groups hold every hyperparameter with torch's defaults."""
    _assert_defaults(m, ["Adagrad", "RMSprop"])


@check("adam", "oracle")
def adam_and_adamw_defaults_match_torch_optim(m):
    """Adam's and AdamW's groups hold lr, betas, eps, weight_decay, amsgrad: torch's defaults."""
    _assert_defaults(m, ["Adam", "AdamW"])


# ------------------------------------------------------------------ closed forms and invariants

P0 = np.array([0.5, -1.0, 2.0, -0.25])
G = np.array([0.3, -2.0, 5.0, -0.7])  # every |g| between 0.3 and 5: the sign rule is sharp
T = 12
TIMES = np.arange(1, T + 1)[:, None]  # (T, 1): step t = 1 … T


def _run_constant(m, name, kwargs, grad=G, steps=T, p0=P0):
    return run_probe(m, "phase3.single_step", m, name, kwargs, p0, grad, steps)


def _sgd_closed_form(lr, momentum, dampening, nesterov):
    """p_t on a constant gradient g: b_t = μ^(t−1)·g + (1 − τ)·g·(1 − μ^(t−1))/(1 − μ)."""
    mu_power = momentum ** (TIMES - 1)
    buffers = mu_power * G + (1 - dampening) * G * (1 - mu_power) / (1 - momentum)  # (T, n)
    steps = lr * (G + momentum * buffers if nesterov else buffers)
    return P0 - np.cumsum(steps, axis=0)


@check("sgd", "invariant")
def sgd_on_a_constant_gradient_follows_the_momentum_series(m):
    """On a constant gradient g, SGD's buffer is the geometric series μ^(t−1)·g + (1−τ)·g·Σμᵏ."""
    for kwargs, hint in [({"lr": 0.1, "momentum": 0.9}, MOMENTUM_HINT),
                         ({"lr": 0.1, "momentum": 0.9, "dampening": 0.3},
                          MOMENTUM_HINT + " No dampening on the first step."),
                         ({"lr": 0.1, "momentum": 0.8, "nesterov": True}, NESTEROV_HINT)]:
        expected = _sgd_closed_form(kwargs["lr"], kwargs["momentum"], kwargs.get("dampening", 0.0),
                                    kwargs.get("nesterov", False))
        assert_trajectory(_run_constant(m, "SGD", kwargs), expected,
                          f"SGD({kwargs}) on the constant gradient {G}: p after each step",
                          rtol=1e-12, atol=1e-12, hint=hint, step_name="step (from 0)")


@check("adagrad_rmsprop", "invariant")
def adagrad_and_rmsprop_on_a_constant_gradient_follow_their_closed_forms(m):
    """On a constant gradient Adagrad and RMSprop (plain and centered) follow their closed forms.

    Adagrad's sum is s₀ + t·g², RMSprop's average (1 − αᵗ)·g², the centered variance
    αᵗ(1 − αᵗ)·g²."""
    lr, decay, s0, eps = 0.1, 0.05, 0.2, 1e-3  # a large ε: inside or outside the root shows
    lr_t = lr / (1 + (TIMES - 1) * decay)
    adagrad = P0 - np.cumsum(lr_t * G / (np.sqrt(s0 + TIMES * G**2) + eps), axis=0)
    got = _run_constant(m, "Adagrad", {"lr": lr, "lr_decay": decay, "eps": eps,
                                       "initial_accumulator_value": s0})
    assert_trajectory(got, adagrad, "Adagrad(lr=0.1, lr_decay=0.05, eps=1e-3, "
                      "initial_accumulator_value=0.2) on a constant gradient", rtol=1e-12,
                      atol=1e-12, hint=ADAGRAD_HINT, step_name="step (from 0)")
    alpha, eps = 0.9, 1e-8
    decayed = alpha**TIMES  # (T, 1)
    for centered, scale, hint in [(False, np.sqrt(1 - decayed), RMSPROP_HINT),
                                  (True, np.sqrt(decayed * (1 - decayed)), CENTERED_HINT)]:
        expected = P0 - np.cumsum(lr * G / (scale * np.abs(G) + eps), axis=0)
        got = _run_constant(m, "RMSprop", {"lr": lr, "alpha": alpha, "centered": centered})
        assert_trajectory(got, expected, f"RMSprop(lr=0.1, alpha=0.9, centered={centered}) on a "
                          f"constant gradient", rtol=1e-9, atol=1e-12, hint=hint,
                          step_name="step (from 0)")


@check("adam", "invariant")
def adam_steps_by_lr_times_sign_g_at_any_gradient_scale(m):
    """On a constant gradient every Adam/AdamW step is lr·g/(|g| + ε) ≈ lr·sign(g), at any scale."""
    for name in ("Adam", "AdamW"):
        for amsgrad in (False, True):
            for scale in (1e-3, 1.0, 1e3):
                kwargs = {"lr": 0.01, "amsgrad": amsgrad, "weight_decay": 0.0}
                got = np.asarray(_run_constant(m, name, kwargs, grad=scale * G, steps=3))
                steps = np.diff(np.vstack([P0, got]), axis=0)  # (3, n)
                expected = np.broadcast_to(-0.01 * np.sign(G), steps.shape)
                assert_close(steps, expected, f"{name}(lr=0.01, amsgrad={amsgrad}): the first 3 "
                             f"steps on the constant gradient {scale:g}·{G}", rtol=1e-3, atol=0,
                             hint="With bias correction m̂ = g and v̂ = g² on a constant "
                                  "gradient, so each step is lr·g/(|g| + ε) ≈ lr·sign(g). "
                                  + ADAM_HINT)


@check("adam", "invariant")
def adamw_with_zero_gradient_shrinks_weights_by_1_minus_lr_lambda(m):
    """With a zero gradient, each AdamW step multiplies the weights by exactly (1 − lr·λ)."""
    lr, decay = 0.01, 0.1
    got = _run_constant(m, "AdamW", {"lr": lr, "weight_decay": decay}, grad=np.zeros_like(P0),
                        steps=5)
    expected = P0 * (1 - lr * decay) ** TIMES[:5]
    assert_trajectory(got, expected, "AdamW(lr=0.01, weight_decay=0.1) with a zero gradient",
                      rtol=1e-14, atol=0, hint=ADAMW_HINT + " With g = 0 the Adam part is "
                      "0/(0 + ε) = 0, so only the decay moves p.", step_name="step (from 0)")


def _fingerprint(m, exercise: str) -> dict:
    outputs = {}
    for name, configs in CONFIGS[exercise].items():
        for i, (_, rosenbrock_kwargs, mlp_kwargs, _) in enumerate(configs):
            for _, problem, arrays, kwargs, groups, closure in _runs(name, rosenbrock_kwargs,
                                                                      mlp_kwargs):
                args = (name, problem, arrays, kwargs, groups, 20, closure)
                run = attempt(lambda args=args: _student(m, *args))
                key = f"{name}_{i}_{problem}"
                outputs[f"{key}_params"] = run["params"] if isinstance(run, dict) else run
                outputs[f"{key}_grad_change"] = run["grad_change"] if isinstance(run, dict) else run
    return outputs


@fingerprint("sgd")
def sgd_outputs(m):
    outputs = _fingerprint(m, "sgd")
    outputs["constant_nesterov"] = attempt(
        lambda: _run_constant(m, "SGD", {"lr": 0.1, "momentum": 0.8, "nesterov": True}))
    return outputs


@fingerprint("adagrad_rmsprop")
def adagrad_rmsprop_outputs(m):
    outputs = _fingerprint(m, "adagrad_rmsprop")
    outputs["constant_adagrad"] = attempt(lambda: _run_constant(
        m, "Adagrad", {"lr": 0.1, "lr_decay": 0.05, "eps": 1e-3, "initial_accumulator_value": 0.2}))
    for centered in (False, True):
        outputs[f"constant_rmsprop_{centered}"] = attempt(
            lambda centered=centered: _run_constant(m, "RMSprop",
                                                    {"lr": 0.1, "centered": centered}))
    return outputs


@fingerprint("adam")
def adam_outputs(m):
    outputs = _fingerprint(m, "adam")
    for scale in (1e-3, 1e3):
        outputs[f"sign_{scale:g}"] = attempt(
            lambda scale=scale: _run_constant(m, "Adam", {"lr": 0.01}, grad=scale * G, steps=3))
    outputs["adamw_zero_grad"] = attempt(
        lambda: _run_constant(m, "AdamW", {"lr": 0.01, "weight_decay": 0.1},
                              grad=np.zeros_like(P0), steps=5))
    return outputs
