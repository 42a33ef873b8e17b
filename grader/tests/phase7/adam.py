"""7.6 Adam for the NumPy library: trajectories against torch.optim.Adam on the same gradients,
every documented argument, in-place updates, untouched gradients, and the first-step size."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises
from grader.checks.oracle import assert_close
from grader.session import StudentError, run_probe
from grader.tests.phase7._helpers import MISSING, normal, tolerance

ADAM_HINT = (
    "m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), "
    "v̂ = v/(1−β₂ᵗ), t counted from 1; ε outside the square root."
)
CONFIGS = [  # (label, kwargs, hint)
    ("defaults", {}, ADAM_HINT),
    (
        "lr 0.05, betas (0.8, 0.99), eps 1e-6",
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6},
        ADAM_HINT,
    ),
    (
        "weight_decay 0.1",
        {"lr": 0.01, "weight_decay": 0.1},
        "torch's Adam adds the L2 term to the gradient, g ← g + λ·p, before the moments.",
    ),
    (
        "amsgrad",
        {"lr": 0.01, "betas": (0.9, 0.9), "amsgrad": True},
        "AMSGrad keeps v_max = max(v_max, v) of the raw v, and uses v_max in place of v.",
    ),
]
STEPS = 8


def _problem(seed, dtype=np.float64):
    """Two parameters and a gradient sequence whose scale changes (amsgrad matters)."""
    params = [normal(seed, (3, 2), dtype), normal(seed + 1, (4,), dtype)]
    scales = np.array([1.0, 3.0, 0.1, 2.0, 0.01, 5.0, 0.5, 1.0])[:STEPS]
    grads = [
        [normal(seed + 10 + 2 * t, p.shape, dtype) * np.asarray(s, dtype) for p in params]
        for t, s in enumerate(scales)
    ]
    return params, grads


def _torch_trajectory(params, grads, kwargs):
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    optimizer = torch.optim.Adam(tensors, **kwargs)
    trajectory = []
    for step_grads in grads:
        for t, g in zip(tensors, step_grads, strict=True):
            t.grad = torch.tensor(g)
        optimizer.step()
        trajectory.append([t.detach().numpy().copy() for t in tensors])
    return trajectory


def _run(m, params, grads, kwargs):
    trajectory, grads_after = run_probe(m, "phase7.adam_run", m, params, grads, kwargs)
    if not isinstance(trajectory, list) or len(trajectory) != len(grads):
        raise CheckFailed("Adam.step should update the parameters once per call.")
    return trajectory, grads_after


@check("cnn_adam", "oracle")
def adam_trajectories_match_torch(m):
    """8 steps of Adam equal torch.optim.Adam's for defaults, betas, eps, weight_decay, amsgrad."""
    for index, (label, kwargs, hint) in enumerate(CONFIGS):
        for dtype in (np.float64, np.float32):
            params, grads = _problem(index, dtype)
            expected = _torch_trajectory(params, grads, kwargs)
            got, _ = _run(m, params, grads, kwargs)
            for t, (got_t, expected_t) in enumerate(zip(got, expected, strict=True)):
                for k, (g, e) in enumerate(zip(got_t, expected_t, strict=True)):
                    assert_close(
                        g,
                        e,
                        f"parameter {k} after step {t + 1} ({label}, "
                        f"{np.dtype(dtype).name}), as seen through the array you were "
                        "given",
                        hint=hint + " Update each array in place (p -= …).",
                        **tolerance(dtype),
                    )


@check("cnn_adam", "invariant")
def adam_leaves_the_gradients_unchanged(m):
    """step(grads) does not modify the gradient arrays, even with weight decay."""
    params, grads = _problem(20)
    _, grads_after = _run(m, params, grads, {"lr": 0.01, "weight_decay": 0.5})
    for t, (before, after) in enumerate(zip(grads, grads_after, strict=True)):
        for k, (b, a) in enumerate(zip(before, after, strict=True)):
            if not np.array_equal(np.asarray(a), b):
                raise CheckFailed(
                    f"Adam.step modified gradient {k} of step {t + 1} in place.",
                    "g = g + λ·p makes a new array; g += λ·p writes into the layer's gradient.",
                )


@check("cnn_adam", "invariant")
def adam_first_step_has_size_lr_whatever_the_gradient_scale(m):
    """The first step moves every coordinate by ≈ lr, for gradients of size 1e-3 and 1e3."""
    for scale in (1e-3, 1e3):
        params = [np.zeros(5)]
        grads = [[np.array([1.0, -2.0, 0.5, -0.25, 3.0]) * scale]]
        trajectory, _ = _run(m, params, grads, {"lr": 0.1})
        assert_close(
            np.abs(np.asarray(trajectory[0][0])),
            np.full(5, 0.1),
            f"|first step| with gradients of size {scale:g}",
            rtol=1e-4,
            hint="m̂/√v̂ = g/|g| on the first step: bias correction makes it lr·sign(g).",
        )


@check("cnn_adam", "invariant")
def adam_rejects_a_gradient_list_of_the_wrong_length(m):
    """step with fewer gradients than parameters raises ValueError instead of skipping some."""
    optimizer = m.Adam([np.zeros(2), np.zeros(3)], lr=0.1)
    raises(
        lambda: optimizer.step([np.ones(2)]),
        "ValueError",
        "Adam.step with 1 gradient for 2 parameters",
        "zip(params, grads, strict=True) raises ValueError on a length mismatch.",
    )


@fingerprint("cnn_adam")
def adam_outputs(m):
    outputs = {}
    for index, (_, kwargs, _) in enumerate(CONFIGS):
        params, grads = _problem(30 + index)
        outputs.update(
            dict.fromkeys((f"{index}_last", f"{index}_first", f"{index}_grads"), MISSING)
        )
        try:
            trajectory, grads_after = run_probe(m, "phase7.adam_run", m, params, grads, kwargs)
            outputs[f"{index}_last"] = np.concatenate([np.ravel(p) for p in trajectory[-1]])
            outputs[f"{index}_first"] = np.concatenate([np.ravel(p) for p in trajectory[0]])
            outputs[f"{index}_grads"] = np.concatenate([np.ravel(g) for g in grads_after[-1]])
        except (StudentError, CheckFailed):
            pass
    return outputs
