"""3.8 Gradient clipping, against torch.nn.utils.clip_grad_norm_ / clip_grad_value_ run in the
judge on copies of the same gradients."""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, run_probe
from grader.tests.phase3._helpers import attempt, number

NORM_HINT = ("total = ‖(‖g₁‖_p, ‖g₂‖_p, …)‖_p over the parameters that have a gradient; every "
             "gradient × min(1, max_norm/(total + 1e-6)); return total (before clipping).")


def _grads(seed: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return [scale * rng.normal(size=(3, 4)), None, scale * rng.normal(size=5),
            scale * rng.normal(size=(2, 2, 2))]


def _torch_clip(name: str, grads: list, args: tuple, kwargs: dict):
    """torch's result and the gradients afterwards (NaN where a parameter had none)."""
    params = []
    for g in grads:
        p = torch.zeros(np.shape(g) if g is not None else (1,), dtype=torch.float64,
                        requires_grad=True)
        if g is not None:
            p.grad = torch.tensor(g)
        params.append(p)
    out = getattr(torch.nn.utils, name)(params, *args, **kwargs)
    after = [p.grad.numpy() if p.grad is not None else np.full(p.shape, np.nan) for p in params]
    return out, after


def _student_clip(m, name, grads, args, kwargs, form="list"):
    return run_probe(m, "phase3.clip", m, name, grads, args, kwargs, form)


def _compare(m, name, grads, args, kwargs, label, hint, form="list"):
    out, after = _student_clip(m, name, grads, args, kwargs, form)
    if form == "tensor":
        grads = grads[:1]
        after = after[:1]
    expected_out, expected_after = _torch_clip(name, grads, args, kwargs)
    if name == "clip_grad_norm_":
        total = number(out)
        if total.shape != ():
            raise CheckFailed(f"{label}: clip_grad_norm_ returned {out!r}; it should return the "
                              f"total norm as a 0-d tensor.", NORM_HINT)
        assert_close(total, expected_out.numpy(), f"{label}: the returned total norm",
                     hint=NORM_HINT, check_dtype=False)
    elif out is not None:
        raise CheckFailed(f"{label}: clip_grad_value_ should return None, it returned {out!r}.")
    for i, (got, expected) in enumerate(zip(after, expected_after, strict=True)):
        assert_close(as_array(got, "a gradient"), expected, f"{label}: parameter {i}'s gradient "
                     f"afterwards{' (it had none: it must stay None)' if grads[i] is None else ''}",
                     hint=hint)


CASES = [  # (max_norm, norm_type, label)
    (1.0, 2.0, "max_norm=1 (clips)"),
    (100.0, 2.0, "max_norm=100 (the gradients are already smaller: untouched)"),
    (2.0, 1.0, "norm_type=1"),
    (0.5, math.inf, "norm_type=inf"),
    (3.0, 3.5, "norm_type=3.5"),
]


@check("grad_clipping", "oracle")
def clip_grad_norm_matches_torch(m):
    """clip_grad_norm_ returns torch's total norm and leaves its gradients (p = 1, 2, 3.5, inf)."""
    grads = _grads(0, scale=2.0)
    for max_norm, norm_type, label in CASES:
        _compare(m, "clip_grad_norm_", grads, (max_norm,), {"norm_type": norm_type},
                 f"clip_grad_norm_({label})", NORM_HINT)


@check("grad_clipping", "oracle")
def clip_grad_norm_accepts_a_tensor_or_a_generator(m):
    """clip_grad_norm_ takes a single tensor or a generator (model.parameters()) too."""
    grads = _grads(1, scale=3.0)
    _compare(m, "clip_grad_norm_", grads, (1.0,), {}, "clip_grad_norm_(a generator, 1.0)",
             "Read the parameters into a list once: a generator can be iterated only once.",
             form="generator")
    _compare(m, "clip_grad_norm_", grads, (1.0,), {}, "clip_grad_norm_(one tensor, 1.0)",
             "A lone tensor is one parameter: wrap it in a list.", form="tensor")


@check("grad_clipping", "stability")
def clip_grad_norm_handles_zero_and_missing_gradients(m):
    """Zero gradients stay zero (no 0/0), no gradients at all give a total norm of 0."""
    zeros = [np.zeros((3, 2)), np.zeros(4)]
    out, after = _student_clip(m, "clip_grad_norm_", zeros, (1.0,), {})
    if float(number(out)) != 0.0 or not all(np.array_equal(a, z) for a, z in zip(after, zeros,
                                                                                   strict=True)):
        raise CheckFailed(f"with all-zero gradients clip_grad_norm_ returned {out!r} and left "
                          f"gradients with max |g| {max(np.nanmax(np.abs(a)) for a in after):.3g}.",
                          "The 1e-6 in max_norm/(total + 1e-6) is there so that a zero norm "
                          "gives a finite (clamped) factor, not 0/0.")
    out, _ = _student_clip(m, "clip_grad_norm_", [None, None], (1.0,), {})
    if float(number(out)) != 0.0:
        raise CheckFailed(f"with no gradient at all clip_grad_norm_ returned {out!r}, expected "
                          f"tensor(0.).", "No gradients: return torch.tensor(0.0).")


@check("grad_clipping", "stability")
def clip_grad_norm_refuses_a_nonfinite_norm_on_request(m):
    """With error_if_nonfinite=True an inf or nan gradient raises RuntimeError."""
    grads = [np.array([1.0, np.inf]), np.array([2.0])]
    try:
        _student_clip(m, "clip_grad_norm_", grads, (1.0,), {"error_if_nonfinite": True})
    except StudentError as error:
        if error.type == "RuntimeError":
            return
        if error.not_implemented or error.forbidden:
            raise
        raise CheckFailed(f"an inf gradient with error_if_nonfinite=True raised {error.type}, "
                          f"expected RuntimeError.") from None
    raise CheckFailed("an inf gradient with error_if_nonfinite=True raised nothing.",
                      "Check torch.isfinite(total) and raise RuntimeError when it is not.")


@check("grad_clipping", "oracle")
def clip_grad_value_matches_torch(m):
    """clip_grad_value_ clamps every gradient element into [−c, c] in place and returns None."""
    grads = _grads(2, scale=2.0)
    for clip_value in (0.5, 1.5, 10.0):
        _compare(m, "clip_grad_value_", grads, (clip_value,), {},
                 f"clip_grad_value_({clip_value})",
                 "Clamp both sides: g.clamp_(−clip_value, clip_value); skip missing gradients.")


@fingerprint("grad_clipping")
def grad_clipping_outputs(m):
    outputs = {}
    grads = _grads(0, scale=2.0)
    for i, (max_norm, norm_type, _) in enumerate(CASES):
        run = attempt(lambda max_norm=max_norm, norm_type=norm_type: _student_clip(
            m, "clip_grad_norm_", grads, (max_norm,), {"norm_type": norm_type}))
        outputs[f"norm_{i}_total"] = number(run[0]) if isinstance(run, tuple) else run
        outputs[f"norm_{i}_grads"] = np.concatenate([np.ravel(a) for a in run[1]]) \
            if isinstance(run, tuple) else run
    run = attempt(lambda: _student_clip(m, "clip_grad_value_", grads, (0.5,), {}))
    outputs["value"] = np.concatenate([np.ravel(a) for a in run[1]]) if isinstance(run, tuple) \
        else run
    return outputs
