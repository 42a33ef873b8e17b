"""What phase 0's docstrings promise beyond the formulas: the documented errors (an impossible
dropout probability, an unknown fan mode, a one-sample training batch, lists of different
lengths), float32 kept by the layers without parameters, and train()/eval() reaching every
layer of a Sequential. Each check first makes one ordinary call, so that a stub whose given
code already raises still reads as not implemented."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check
from grader.checks.contracts import raises
from grader.checks.oracle import as_array, assert_close
from grader.session import StudentError, fetch

X = np.random.default_rng(61).normal(size=(6, 5))
DOUT = np.random.default_rng(62).normal(size=(6, 5))


@check("batchnorm", "invariant")
def batchnorm_trains_on_two_samples_and_refuses_one(m):
    """N = 2 in training matches torch (output and running variance); a batch of one sample
    raises ValueError, as torch does — the unbiased variance N/(N − 1) would be infinite —
    or at least leaves the running statistics finite."""
    bn = m.BatchNorm1d(5)
    got = as_array(bn.forward(X[:2]), "BatchNorm1d(5).forward(x) with N = 2")
    reference = torch.nn.BatchNorm1d(5).double()
    want = reference(torch.tensor(X[:2])).detach().numpy()
    assert_close(
        got,
        want,
        "BatchNorm1d.forward on a batch of 2 samples",
        hint="Two samples are enough: only N = 1 has no unbiased variance.",
    )
    assert_close(
        as_array(fetch(bn.running_var), "running_var"),
        reference.running_var.numpy(),
        "running_var after a batch of 2 samples",
    )
    one = m.BatchNorm1d(5)
    try:
        one.forward(X[:1])
    except StudentError as raised:
        if raised.not_implemented:
            raise
        if raised.type == "ValueError":
            return
        raise CheckFailed(
            f"BatchNorm1d.forward on one sample in training raised {raised.type}: {raised.message}",
            "Raise ValueError, as torch does.",
        ) from None
    stats = [
        as_array(fetch(one.running_mean), "running_mean"),
        as_array(fetch(one.running_var), "running_var"),
    ]
    if not all(np.isfinite(s).all() for s in stats):
        raise CheckFailed(
            "after a training forward on a batch of one sample, the running statistics are "
            "not finite: σ²·N/(N − 1) divided by zero.",
            "A batch of one has no unbiased variance: raise ValueError, as torch does "
            '("Expected more than 1 value per channel when training").',
        )


@check("dropout", "invariant")
def dropout_rejects_impossible_probabilities(m):
    """Dropout(p) for p outside [0, 1] raises ValueError; p = 0 and p = 1 are allowed."""
    for p in (0.0, 1.0):
        as_array(m.Dropout(p, rng=0).forward(X), f"Dropout({p}).forward(x)")
    hint = "A probability lies in [0, 1]: check it in __init__, before anything is drawn."
    for p in (-0.5, 1.5):
        raises(lambda p=p: m.Dropout(p, rng=0), "ValueError", f"Dropout({p})", hint)


@check("dropout", "invariant")
def dropout_keeps_float32_and_forgets_its_mask_in_eval(m):
    """float32 in → float32 out, in training and in eval, forward and backward; backward after
    an eval-mode forward is the identity (the last forward used no mask)."""
    x, dout = X.astype(np.float32), DOUT.astype(np.float32)
    layer = m.Dropout(0.5, rng=0)
    for what, value in (
        ("a training forward", layer.forward(x)),
        ("backward after it", layer.backward(dout)),
    ):
        _float32(value, f"Dropout(0.5): {what}")
    layer.eval()
    _float32(layer.forward(x), "Dropout(0.5) in eval: forward")
    back = layer.backward(dout)
    _float32(back, "Dropout(0.5) in eval: backward")
    assert_close(
        as_array(back, "backward"),
        dout,
        "Dropout.backward after an eval-mode forward",
        hint="An eval forward applies no mask, so backward must not apply the mask of "
        "an earlier training forward: forget it (self.mask = None) in eval.",
    )


def _float32(value, what: str, hint: str | None = None) -> None:
    dtype = as_array(value, what).dtype
    if dtype != np.float32:
        raise CheckFailed(
            f"{what} returned {dtype} for float32 inputs.",
            hint
            or "A layer without parameters keeps its input's precision: no float64 "
            "constants arrays, no .astype(float).",
        )


@check("init", "invariant")
def he_init_rejects_an_unknown_mode(m):
    """he_uniform and he_normal take mode "fan_in" or "fan_out"; any other raises ValueError."""
    for name in ("he_uniform", "he_normal"):
        as_array(getattr(m, name)((4, 3), mode="fan_out", rng=0), f"{name}(mode='fan_out')")
        raises(
            lambda name=name: getattr(m, name)((4, 3), mode="fan_avg", rng=0),
            "ValueError",
            f"{name}((4, 3), mode='fan_avg')",
            "Only fan_in and fan_out are defined: a dict lookup with .get() returns None "
            "for a typo, which must not pass silently.",
        )


@check("mlp", "invariant")
def relu_and_sequential_keep_float32(m):
    """ReLU and a Sequential of ReLUs keep float32, forward and backward (no parameters to
    promote them)."""
    x, dout = X.astype(np.float32), DOUT.astype(np.float32)
    for name, layer in (
        ("ReLU()", m.ReLU()),
        ("Sequential(ReLU(), ReLU())", m.Sequential(m.ReLU(), m.ReLU())),
    ):
        _float32(layer.forward(x), f"{name}.forward")
        _float32(
            layer.backward(dout),
            f"{name}.backward",
            "Return what the layers return: relu and relu_backward keep the dtype.",
        )


@check("mlp", "invariant")
def sequential_train_and_eval_reach_every_layer(m):
    """model.eval() puts its Dropout into eval mode (forward is then deterministic and equals
    the model without it), and model.train() puts it back into training."""
    linear = m.Linear(5, 4, rng=0)
    plain = as_array(linear.forward(X), "Linear.forward")
    model = m.Sequential(linear, m.Dropout(0.5, rng=0))
    model.eval()
    assert_close(
        as_array(model.forward(X), "Sequential.forward after eval()"),
        plain,
        "Sequential(Linear, Dropout).forward after model.eval()",
        hint="eval() calls eval() on every layer that has one.",
    )
    model.train()
    if np.allclose(as_array(model.forward(X), "Sequential.forward after train()"), plain):
        raise CheckFailed(
            "after model.eval() and model.train(), Dropout dropped nothing.",
            "train() calls train() on every layer that has one.",
        )


@check("mlp", "invariant")
def sgd_step_rejects_lists_of_different_lengths(m):
    """sgd_step with more params than grads (or fewer) raises ValueError instead of updating
    only the first pairs."""
    params, grads = [np.ones(3), np.ones(2)], [np.ones(3), np.ones(2)]
    m.sgd_step(params, grads, 0.1)
    hint = (
        "A missing gradient is a bug upstream: zip(params, grads, strict=True) raises "
        "ValueError instead of silently skipping the parameters left over."
    )
    raises(
        lambda: m.sgd_step(params, grads[:1], 0.1),
        "ValueError",
        "sgd_step with 2 params and 1 grad",
        hint,
    )
    raises(
        lambda: m.sgd_step(params[:1], grads, 0.1),
        "ValueError",
        "sgd_step with 1 param and 2 grads",
        hint,
    )
