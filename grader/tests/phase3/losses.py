"""3.9–3.11 Losses: values and autograd gradients against torch's built-ins (or the published
formula, written independently here), finite differences of the student's own forward, extreme
logits, and the invariants each loss is known for.

The student's loss runs in the worker (grader/probes/phase3.loss_and_grads returns its value and
its autograd VJP); the references run in the judge.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises
from grader.checks.gradient import check_gradients
from grader.checks.oracle import assert_close, unpack
from grader.checks.properties import property_holds
from grader.checks.stability import EXTREME, assert_finite
from grader.session import run_probe
from grader.tests.phase3._helpers import attempt

REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ running losses


def _tensors(arrays: list, wrt: list[int]) -> list[torch.Tensor]:
    return [torch.tensor(np.asarray(a), requires_grad=i in wrt) for i, a in enumerate(arrays)]


def _upstream(shape, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


def reference(fn, arrays: list, kwargs: dict, wrt: list[int], upstream=None):
    """(value, [VJPs]) of the trusted torch function `fn`, computed in the judge."""
    tensors = _tensors(arrays, wrt)
    out = fn(*tensors, **kwargs)
    v = _upstream(out.shape) if upstream is None else upstream
    grads = torch.autograd.grad(out, [tensors[i] for i in wrt], torch.as_tensor(v, dtype=out.dtype))
    return out.detach().numpy(), [g.numpy() for g in grads], v


def student(m, name: str, arrays: list, kwargs: dict, wrt: list[int], upstream):
    """(value, [VJPs]) of the student's loss, by autograd in the worker."""
    value, grads = unpack(run_probe(m, "phase3.loss_and_grads", m, name, arrays, kwargs, wrt,
                                    upstream), 2, "the loss probe")
    return value, grads


def assert_loss_matches(m, name: str, fn, arrays: list, kwargs: dict, wrt: list[int],
                        label: str, hint: str, input_names: tuple[str, ...]) -> None:
    """The student's value and autograd gradients equal the reference's."""
    expected, expected_grads, v = reference(fn, arrays, kwargs, wrt)
    value, grads = student(m, name, arrays, kwargs, wrt, v)
    assert_close(value, expected, f"{label}: the loss", hint=hint)
    for i, got, exp in zip(wrt, grads, expected_grads, strict=True):
        assert_close(got, exp, f"{label}: autograd's gradient with respect to {input_names[i]}",
                     hint=hint + " (The value matches but the gradient does not: is part of "
                     "the computation detached, or done in NumPy?)")


def assert_gradient_is_consistent(m, name: str, arrays: list, kwargs: dict, wrt: list[int],
                                  label: str, input_names: tuple[str, ...]) -> None:
    """Autograd through the student's loss agrees with central differences of its forward."""
    names = [input_names[i] for i in wrt]

    def forward(inputs):
        args = list(arrays)
        for i, key in zip(wrt, names, strict=True):
            args[i] = inputs[key]
        return getattr(m, name)(*(torch.from_numpy(np.asarray(a)) for a in args), **kwargs)

    def vjp(inputs, v):
        args = list(arrays)
        for i, key in zip(wrt, names, strict=True):
            args[i] = inputs[key]
        _, grads = student(m, name, args, kwargs, wrt, v)
        return dict(zip(names, grads, strict=True))

    check_gradients(forward, vjp, {key: arrays[i] for i, key in zip(wrt, names, strict=True)},
                    what=label, passes=3,
                    hint="Autograd differentiates what you computed, so a mismatch means a "
                         "non-differentiable step (a .detach(), .item(), in-place write or "
                         "torch.tensor(...) rebuilt from values) sits between inputs and loss.")


# ------------------------------------------------------------------ 3.9 cross-entropy

CE_NAMES = ("logits", "target")
CE_HINT = ("ℓₙ = −(1 − ε)·log p[n, yₙ] − (ε/C)·Σ_c log p[n, c]; ignored rows cost 0 and the mean "
           "divides by the number of rows that are not ignored.")


def _ce_case(args):
    n, c, seed, smoothing, reduction, ignore = args
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, c))
    target = rng.integers(0, c, n)
    kwargs = {"label_smoothing": smoothing, "reduction": reduction}
    if ignore is not None:
        kwargs["ignore_index"] = ignore
        drop = rng.random(n) < 0.3
        drop[0] = False  # keep one row, so that the mean is defined (all ignored: 0/0 = nan)
        target[drop] = ignore
        if target[0] == ignore:  # ignore_index may be a real class (1 here)
            target[0] = (ignore + 1) % c
    return logits, target, kwargs


CE_CASES = st.tuples(st.integers(1, 6), st.integers(2, 6), st.integers(0, 2**16),
                     st.sampled_from([0.0, 0.1, 0.35]), st.sampled_from(REDUCTIONS),
                     st.sampled_from([None, -100, 1])).map(_ce_case)


@check("cross_entropy_loss", "oracle")
def cross_entropy_matches_torch(m):
    """cross_entropy equals F.cross_entropy (value and gradient) with smoothing and ignore_index.

    Every reduction, random shapes, ignore_index −100 or a real class."""
    def prop(case):
        logits, target, kwargs = case
        assert_loss_matches(m, "cross_entropy", F.cross_entropy, [logits, target], kwargs, [0],
                            f"cross_entropy(logits {logits.shape}, {kwargs})", CE_HINT, CE_NAMES)

    property_holds(prop, CE_CASES, examples=12)


@check("cross_entropy_loss", "gradient")
def cross_entropy_gradient_agrees_with_finite_differences(m):
    """Autograd through cross_entropy agrees with central differences of it."""
    logits, target, kwargs = _ce_case((5, 4, 7, 0.2, "mean", -100))
    assert_gradient_is_consistent(m, "cross_entropy", [logits, target], kwargs, [0],
                                  "cross_entropy with label smoothing and ignored rows", CE_NAMES)


@check("cross_entropy_loss", "stability")
def cross_entropy_is_stable_at_1e4(m):
    """Logits of ±1e4 give finite, exact losses and gradients, with and without smoothing."""
    logits = np.array([[EXTREME, 0.0, -EXTREME], [-EXTREME, EXTREME, 0.0], [0.0, 0.0, 0.0]])
    target = np.array([2, 1, 0])
    for smoothing in (0.0, 0.1):
        kwargs = {"label_smoothing": smoothing, "reduction": "none"}
        label = f"cross_entropy at logits ±1e4 (label_smoothing={smoothing})"
        expected, expected_grads, v = reference(F.cross_entropy, [logits, target], kwargs, [0])
        value, grads = student(m, "cross_entropy", [logits, target], kwargs, [0], v)
        assert_finite(value, label, "log p = z − logsumexp(z) is finite for any finite z; "
                      "log(softmax(z)) is log 0 = −inf once a probability underflows.")
        assert_close(value, expected, label, hint=CE_HINT)
        assert_close(grads[0], expected_grads[0], f"{label}: the gradient")


@check("cross_entropy_loss", "oracle")
def cross_entropy_keeps_float32(m):
    """float32 logits give a float32 loss equal to torch's."""
    logits, target, kwargs = _ce_case((6, 5, 3, 0.1, "mean", None))
    logits = logits.astype(np.float32)
    value, _ = student(m, "cross_entropy", [logits, target], kwargs, [0], np.float32(1.0))
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), **kwargs)
    assert_close(value, expected.numpy(), "cross_entropy on float32 logits",
                 hint="Keep the logits' dtype: no .double() and no float64 constants tensors.")


@check("cross_entropy_loss", "oracle")
def reduce_helper_reduces_as_documented(m):
    """_reduce(loss, r): 'none' → the loss itself, 'sum' → its sum, 'mean' → its mean, in the
    loss's dtype and differentiable; any other r raises ValueError. The binary and metric
    losses reduce through it (cross_entropy's mean divides by the counted rows instead)."""
    logits, target, kwargs = _ce_case((6, 5, 3, 0.0, "sum", None))
    assert_loss_matches(m, "cross_entropy", F.cross_entropy, [logits, target], kwargs, [0],
                        "cross_entropy(reduction='sum')", CE_HINT, ("logits", "target"))
    loss = np.random.default_rng(8).uniform(0.1, 2.0, (3, 4))
    for dtype in (np.float32, np.float64):
        for reduction, fn in (("mean", torch.mean), ("sum", torch.sum), ("none", lambda t: t)):
            label = f"_reduce(loss, {reduction!r}) on {np.dtype(dtype)} loss"
            arrays, v = [loss.astype(dtype)], _upstream(loss.shape if reduction == "none" else ())
            value, grads = student(m, "_reduce", arrays, {"reduction": reduction}, [0], v)
            expected, expected_grads, _ = reference(fn, arrays, {}, [0], v)
            if np.asarray(value).dtype != dtype:
                raise CheckFailed(f"{label} has dtype {np.asarray(value).dtype}.",
                                  "Reduce with loss.sum() / loss.mean(): no .float() or .double().")
            assert_close(value, expected, label, hint="'mean' is loss.mean(), 'sum' loss.sum().")
            assert_close(grads[0], expected_grads[0], f"{label}: the gradient")
    raises(lambda: m._reduce(torch.ones(2), "average"), "ValueError", "_reduce(loss, 'average')",
           "Only 'none', 'mean' and 'sum' are reductions: anything else is a typo to report.")


@fingerprint("cross_entropy_loss")
def cross_entropy_outputs(m):
    outputs = {}
    cases = {"plain": (5, 4, 1, 0.0, "none", None), "smooth": (5, 4, 2, 0.3, "none", None),
             "ignore_mean": (6, 3, 3, 0.0, "mean", -100),
             "ignore_smooth": (6, 3, 4, 0.2, "mean", 1),
             "sum": (4, 5, 5, 0.1, "sum", -100)}
    for key, args in cases.items():
        logits, target, kwargs = _ce_case(args)
        run = attempt(lambda logits=logits, target=target, kwargs=kwargs: student(
            m, "cross_entropy", [logits, target], kwargs, [0], _upstream(
                (len(target),) if kwargs["reduction"] == "none" else ())))
        outputs[f"{key}_value"] = np.asarray(run[0]) if isinstance(run, tuple) else run
        outputs[f"{key}_grad"] = np.asarray(run[1][0]) if isinstance(run, tuple) else run
    logits = np.array([[EXTREME, 0.0, -EXTREME]])
    run = attempt(lambda: student(m, "cross_entropy", [logits, np.array([2])],
                                  {"label_smoothing": 0.1}, [0], 1.0))
    outputs["extreme"] = np.asarray(run[0]) if isinstance(run, tuple) else run
    return outputs


# ------------------------------------------------------------------ 3.10 binary losses

BINARY_NAMES = ("logits", "targets")
BCE_HINT = "ℓ = max(z, 0) − z·t + log(1 + e^(−|z|)), then the reduction."
FOCAL_HINT = ("ℓ = α_t·(1 − p_t)^γ·BCE(z, t) with p_t = p·t + (1 − p)(1 − t) and "
              "α_t = α·t + (1 − α)(1 − t); no α_t when α < 0.")


def _binary_case(seed: int, shape=(4, 3), soft: bool = True, spread: float = 3.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, spread, shape)
    targets = rng.uniform(0, 1, shape).round(1) if soft else rng.integers(0, 2, shape) * 1.0
    return logits, targets


def _focal_reference(logits, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """Lin et al.'s definition for 0/1 targets: −α_t·(1 − p_t)^γ·log p_t, log p_t by logsigmoid."""
    signed = torch.where(targets > 0.5, logits, -logits)  # log p_t = logsigmoid(±z)
    log_p_t = F.logsigmoid(signed)
    loss = -(1 - log_p_t.exp()) ** gamma * log_p_t
    if alpha >= 0:
        loss = torch.where(targets > 0.5, torch.full_like(loss, alpha), 1 - alpha) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@check("binary_losses", "oracle")
def bce_with_logits_matches_torch(m):
    """bce_with_logits equals F.binary_cross_entropy_with_logits, value and gradient.

    Every reduction, soft targets."""
    for seed, shape in [(0, (4, 3)), (1, (7,)), (2, (2, 3, 2))]:
        logits, targets = _binary_case(seed, shape)
        for reduction in REDUCTIONS:
            assert_loss_matches(m, "bce_with_logits", F.binary_cross_entropy_with_logits,
                                [logits, targets], {"reduction": reduction}, [0, 1],
                                f"bce_with_logits(shape {shape}, reduction={reduction!r})",
                                BCE_HINT, BINARY_NAMES)


@check("binary_losses", "stability")
def bce_with_logits_is_stable_at_1e4(m):
    """BCE-with-logits at |z| = 1e4 gives finite, exact losses and gradients."""
    logits = np.array([EXTREME, -EXTREME, EXTREME, -EXTREME, 0.0, 30.0, -30.0])
    targets = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.2, 0.9])
    kwargs = {"reduction": "none"}
    expected, expected_grads, v = reference(F.binary_cross_entropy_with_logits, [logits, targets],
                                            kwargs, [0])
    value, grads = student(m, "bce_with_logits", [logits, targets], kwargs, [0], v)
    assert_finite(value, "bce_with_logits at |z| = 1e4",
                  "Use max(z, 0) − z·t + log1p(exp(−|z|)): exp(−|z|) ≤ 1 never overflows, "
                  "while log(σ(z)) is log 0 = −inf at z = −1e4.")
    assert_close(value, expected, "bce_with_logits at |z| = 1e4", hint=BCE_HINT)
    assert_finite(grads[0], "the gradient of bce_with_logits at |z| = 1e4",
                  "The gradient is σ(z) − t: finite for any z when σ is torch.sigmoid, nan when "
                  "it goes through log(σ(z)) = −inf.")
    assert_close(grads[0], expected_grads[0], "the gradient of bce_with_logits at |z| = 1e4")


@check("binary_losses", "oracle")
def focal_loss_matches_its_definition(m):
    """sigmoid_focal_loss equals −α_t·(1 − p_t)^γ·log p_t (Lin et al. 2017), value and gradient."""
    logits, targets = _binary_case(3, (5, 4), soft=False)
    for kwargs in [{}, {"alpha": 0.6, "gamma": 1.0}, {"alpha": -1.0, "gamma": 3.5},
                   {"alpha": 0.25, "gamma": 2.0, "reduction": "mean"},
                   {"alpha": 0.4, "gamma": 0.5, "reduction": "sum"}]:
        assert_loss_matches(m, "sigmoid_focal_loss", _focal_reference, [logits, targets], kwargs,
                            [0], f"sigmoid_focal_loss({kwargs or 'defaults'})", FOCAL_HINT,
                            BINARY_NAMES)


@check("binary_losses", "invariant")
def focal_loss_with_gamma_0_is_alpha_weighted_bce(m):
    """With γ = 0 the focal loss is BCE weighted by α_t (and plain BCE when α < 0)."""
    logits, targets = _binary_case(4, (6, 3), soft=False)
    for alpha in (0.25, 0.8, -1.0):
        weight = np.where(targets > 0.5, alpha, 1 - alpha) if alpha >= 0 else np.ones_like(targets)
        expected = F.binary_cross_entropy_with_logits(
            torch.from_numpy(logits), torch.from_numpy(targets), weight=torch.from_numpy(weight),
            reduction="none").numpy()
        value, _ = student(m, "sigmoid_focal_loss", [logits, targets],
                           {"alpha": alpha, "gamma": 0.0}, [0], np.ones_like(logits))
        assert_close(value, expected, f"sigmoid_focal_loss(alpha={alpha}, gamma=0)",
                     hint="γ = 0 removes the modulating factor (1 − p_t)^γ = 1; what is left is "
                          "α_t·BCE, with α_t = α for positives and 1 − α for negatives.")


@check("binary_losses", "stability")
def focal_loss_is_stable_at_1e4(m):
    """The focal loss at |z| = 1e4 (confident right and wrong) is finite and exact, gradient too."""
    logits = np.array([EXTREME, -EXTREME, EXTREME, -EXTREME, 0.0])
    targets = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    expected, expected_grads, v = reference(_focal_reference, [logits, targets], {}, [0])
    value, grads = student(m, "sigmoid_focal_loss", [logits, targets], {}, [0], v)
    assert_finite(value, "sigmoid_focal_loss at |z| = 1e4", "Build it on the stable BCE.")
    assert_close(value, expected, "sigmoid_focal_loss at |z| = 1e4", hint=FOCAL_HINT)
    assert_close(grads[0], expected_grads[0], "the gradient of sigmoid_focal_loss at |z| = 1e4")


@check("binary_losses", "gradient")
def binary_loss_gradients_agree_with_finite_differences(m):
    """Autograd through bce_with_logits and sigmoid_focal_loss agrees with central differences."""
    logits, targets = _binary_case(5, (3, 4))
    assert_gradient_is_consistent(m, "bce_with_logits", [logits, targets], {}, [0, 1],
                                  "bce_with_logits", BINARY_NAMES)
    logits, targets = _binary_case(6, (3, 4), soft=False)
    assert_gradient_is_consistent(m, "sigmoid_focal_loss", [logits, targets],
                                  {"alpha": 0.3, "gamma": 2.0, "reduction": "mean"}, [0],
                                  "sigmoid_focal_loss", BINARY_NAMES)


@fingerprint("binary_losses")
def binary_losses_outputs(m):
    outputs = {}
    logits, targets = _binary_case(7, (4, 3))
    extreme = np.array([EXTREME, -EXTREME, 2.0, -3.0, 0.0])
    hard = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    runs = {
        "bce": ("bce_with_logits", [logits, targets], {"reduction": "none"}),
        "bce_extreme": ("bce_with_logits", [extreme, hard], {"reduction": "none"}),
        "focal": ("sigmoid_focal_loss", [logits, targets.round()], {}),
        "focal_gamma0": ("sigmoid_focal_loss", [logits, targets.round()], {"gamma": 0.0}),
        "focal_alpha": ("sigmoid_focal_loss", [logits, targets.round()], {"alpha": 0.9}),
        "focal_extreme": ("sigmoid_focal_loss", [extreme, hard], {}),
    }
    for key, (name, arrays, kwargs) in runs.items():
        run = attempt(lambda name=name, arrays=arrays, kwargs=kwargs: student(
            m, name, arrays, kwargs, [0], np.ones_like(arrays[0])))
        outputs[f"{key}_value"] = np.asarray(run[0]) if isinstance(run, tuple) else run
        outputs[f"{key}_grad"] = np.asarray(run[1][0]) if isinstance(run, tuple) else run
    return outputs


# ------------------------------------------------------------------ 3.11 metric losses

PAIR_NAMES = ("x1", "x2", "same")
TRIPLET_NAMES = ("anchor", "positive", "negative")
CONTRASTIVE_HINT = ("ℓ = ½·[same·d² + (1 − same)·max(0, margin − d)²] with d = ‖x1 − x2‖₂: the "
                    "margin applies to dissimilar pairs (same = 0) only.")
TRIPLET_HINT = ("ℓ = max(0, d(a, p) − d(a, n) + margin) with d(x, y) = ‖x − y + eps‖_p (not "
                "squared); swap uses min(d(a, n), d(p, n)).")
INFO_NCE_HINT = ("Normalise the rows, s = q̂·k̂ᵀ/τ, and take cross-entropy with target i for row i "
                 "(the positive is on the diagonal).")
NT_XENT_HINT = ("2N rows; row i's positive is i ± N; mask s_ii with −inf before the log-softmax "
                "and average over all 2N rows.")


def _contrastive_reference(x1, x2, same, margin=1.0, reduction="mean"):
    d = ((x1 - x2) ** 2).sum(-1).sqrt()
    loss = 0.5 * torch.where(same > 0.5, d**2, torch.relu(margin - d) ** 2)
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def _info_nce_reference(query, key, temperature=0.1):
    q = query / query.norm(dim=1, keepdim=True)
    k = key / key.norm(dim=1, keepdim=True)
    s = q @ k.T / temperature  # (N, N)
    return (torch.logsumexp(s, dim=1) - s.diagonal()).mean()


def _nt_xent_reference(z1, z2, temperature=0.5):
    """Chen et al.'s ℓ(i, j) = −log(exp(s_ij)/Σ_{k≠i} exp(s_ik)), averaged over the 2N rows."""
    n = len(z1)
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    s = z @ z.T / temperature
    terms = []
    for i in range(2 * n):
        others = torch.cat([s[i, :i], s[i, i + 1:]])
        terms.append(torch.logsumexp(others, dim=0) - s[i, (i + n) % (2 * n)])
    return torch.stack(terms).mean()


def _pairs(seed: int, n: int = 6, d: int = 3):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 0.6, (n, d)), rng.normal(0, 0.6, (n, d))
    same = (np.arange(n) % 2).astype(np.float64)
    return x1, x2, same


def _triplets(seed: int, n: int = 6, d: int = 4):
    """Even rows: a negative near the anchor; odd rows: a negative near the positive, where
    swap=True makes a difference (d(p, n) < d(a, n))."""
    rng = np.random.default_rng(seed)
    anchor = rng.normal(size=(n, d))
    positive = anchor + rng.normal(0, 0.7, (n, d))
    negative = np.where(np.arange(n)[:, None] % 2 == 0, anchor, positive) \
        + rng.normal(0, 0.4, (n, d))
    return anchor, positive, negative


def _views(seed: int, n: int = 5, d: int = 4):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, d))
    return base + rng.normal(0, 0.5, (n, d)), base + rng.normal(0, 0.5, (n, d))


@check("metric_losses", "oracle")
def contrastive_loss_matches_its_definition(m):
    """contrastive_loss equals ½[same·d² + (1 − same)·max(0, m − d)²], value and gradient."""
    x1, x2, same = _pairs(0)
    for kwargs in [{}, {"margin": 2.0, "reduction": "sum"}, {"margin": 0.5, "reduction": "none"}]:
        assert_loss_matches(m, "contrastive_loss", _contrastive_reference, [x1, x2, same], kwargs,
                            [0, 1], f"contrastive_loss({kwargs or 'defaults'})", CONTRASTIVE_HINT,
                            PAIR_NAMES)


@check("metric_losses", "stability")
def contrastive_loss_gradient_is_finite_for_identical_points(m):
    """An identical pair (d = 0) has a finite gradient: 0 for a similar and a dissimilar pair."""
    x = np.array([[0.3, -0.2, 0.5], [1.0, 2.0, -1.0]])
    for same in (np.array([1.0, 0.0]), np.array([0.0, 1.0])):
        value, grads = student(m, "contrastive_loss", [x, x.copy(), same], {"reduction": "sum"},
                               [0, 1], 1.0)
        assert_close(value, 0.5 * float((1 - same).sum()), f"contrastive_loss of identical "
                     f"points with same = {same}", hint=CONTRASTIVE_HINT)
        for g, who in zip(grads, ("x1", "x2"), strict=True):
            assert_finite(g, f"the gradient with respect to {who} when x1 = x2",
                          "sqrt(Σ(x1 − x2)²) has an infinite derivative at 0 (its backward divides "
                          "by d = 0): use torch.linalg.vector_norm, whose gradient at 0 is 0.")
            assert_close(g, np.zeros_like(x), f"the gradient with respect to {who} when x1 = x2")


@check("metric_losses", "oracle")
def triplet_margin_loss_matches_torch(m):
    """triplet_margin_loss equals F.triplet_margin_loss (p, eps, swap, margin, reductions)."""
    anchor, positive, negative = _triplets(1)
    for kwargs in [{}, {"margin": 2.0, "p": 1.0}, {"p": 3.0, "swap": True},
                   {"margin": 0.5, "swap": True, "reduction": "none"}, {"reduction": "sum"}]:
        assert_loss_matches(m, "triplet_margin_loss", F.triplet_margin_loss,
                            [anchor, positive, negative], kwargs, [0, 1, 2],
                            f"triplet_margin_loss({kwargs or 'defaults'})", TRIPLET_HINT,
                            TRIPLET_NAMES)


@check("metric_losses", "oracle")
def info_nce_matches_its_definition(m):
    """info_nce equals mean_i [logsumexp_j s_ij − s_ii], s = q̂·k̂ᵀ/τ, value and gradient."""
    query, key = _views(2)
    for kwargs in [{}, {"temperature": 0.5}, {"temperature": 0.05}]:
        assert_loss_matches(m, "info_nce", _info_nce_reference, [query, key], kwargs, [0, 1],
                            f"info_nce({kwargs or 'defaults'})", INFO_NCE_HINT, ("query", "key"))


@check("metric_losses", "oracle")
def nt_xent_matches_its_definition(m):
    """nt_xent equals SimCLR's mean over 2N rows of −log(exp(s_i,pos)/Σ_{k≠i} exp(s_ik))."""
    z1, z2 = _views(3)
    for kwargs in [{}, {"temperature": 0.1}]:
        assert_loss_matches(m, "nt_xent", _nt_xent_reference, [z1, z2], kwargs, [0, 1],
                            f"nt_xent({kwargs or 'defaults'})", NT_XENT_HINT, ("z1", "z2"))


@check("metric_losses", "invariant")
def contrastive_objectives_ignore_scale_order_and_view_swap(m):
    """InfoNCE and NT-Xent ignore row lengths and pair order; NT-Xent is symmetric in its views."""
    z1, z2 = _views(4, n=6)
    order = np.random.default_rng(0).permutation(6)
    scale = np.random.default_rng(1).uniform(0.2, 5.0, (6, 1))
    for name, hint in (("info_nce", INFO_NCE_HINT), ("nt_xent", NT_XENT_HINT)):
        base, _ = student(m, name, [z1, z2], {}, [0], 1.0)
        for label, (a, b) in {"rows rescaled": (z1 * scale, z2 / scale),
                              "pairs reordered": (z1[order], z2[order])}.items():
            value, _ = student(m, name, [a, b], {}, [0], 1.0)
            assert_close(value, base, f"{name} with {label}", rtol=1e-10, hint=hint)
    swapped, _ = student(m, "nt_xent", [z2, z1], {}, [0], 1.0)
    assert_close(swapped, student(m, "nt_xent", [z1, z2], {}, [0], 1.0)[0],
                 "nt_xent(z2, z1) against nt_xent(z1, z2)", rtol=1e-10,
                 hint="Both views are anchors: average over all 2N rows, not only the first N.")


@check("metric_losses", "gradient")
def metric_loss_gradients_agree_with_finite_differences(m):
    """Autograd through each metric loss agrees with central differences of it."""
    x1, x2, same = _pairs(5)
    assert_gradient_is_consistent(m, "contrastive_loss", [x1, x2, same], {}, [0, 1],
                                  "contrastive_loss", PAIR_NAMES)
    anchor, positive, negative = _triplets(6)
    assert_gradient_is_consistent(m, "triplet_margin_loss", [anchor, positive, negative],
                                  {"swap": True}, [0, 1, 2], "triplet_margin_loss", TRIPLET_NAMES)
    query, key = _views(7)
    assert_gradient_is_consistent(m, "info_nce", [query, key], {}, [0, 1], "info_nce",
                                  ("query", "key"))
    assert_gradient_is_consistent(m, "nt_xent", [query, key], {}, [0, 1], "nt_xent", ("z1", "z2"))


@fingerprint("metric_losses")
def metric_losses_outputs(m):
    x1, x2, same = _pairs(8)
    anchor, positive, negative = _triplets(9)
    z1, z2 = _views(10)
    runs = {
        "contrastive": ("contrastive_loss", [x1, x2, same], {"reduction": "none"}, (6,)),
        "contrastive_margin": ("contrastive_loss", [x1, x2, same], {"margin": 2.0}, ()),
        "triplet": ("triplet_margin_loss", [anchor, positive, negative], {"reduction": "none"},
                    (6,)),
        "triplet_swap": ("triplet_margin_loss", [anchor, positive, negative],
                         {"swap": True, "reduction": "none"}, (6,)),
        "info_nce": ("info_nce", [z1, z2], {}, ()),
        "info_nce_hot": ("info_nce", [z1, z2], {"temperature": 0.5}, ()),
        "nt_xent": ("nt_xent", [z1, z2], {}, ()),
        "nt_xent_swapped": ("nt_xent", [z2, z1], {"temperature": 0.2}, ()),
    }
    same_points = np.array([[0.3, -0.2, 0.5], [1.0, 2.0, -1.0]])
    runs["contrastive_identical"] = ("contrastive_loss", [same_points, same_points.copy(),
                                                          np.array([1.0, 0.0])], {}, ())
    outputs = {}
    for key, (name, arrays, kwargs, shape) in runs.items():
        run = attempt(lambda name=name, arrays=arrays, kwargs=kwargs, shape=shape: student(
            m, name, arrays, kwargs, [0], np.ones(shape)))
        outputs[f"{key}_value"] = np.asarray(run[0]) if isinstance(run, tuple) else run
        outputs[f"{key}_grad"] = np.asarray(run[1][0]) if isinstance(run, tuple) else run
    return outputs
