"""6.9 the selective scan: the sequential and the parallel scan against the closed form of the
recurrence computed in the judge (float64), against each other in float32 (values and
gradients), gradients against torch autograd and against finite differences, every chunk size,
stability at L = 4096 and at large Δ, and the dtype contract; combine and inclusive_scan on
their own, against the composition of affine maps computed in the judge."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close, unpack
from grader.checks.stability import assert_finite
from grader.session import run_probe
from grader.tests.phase2._helpers import gradients, input_gradient, run
from grader.tests.phase6._helpers import safely

F64 = torch.float64
TIGHT = {"rtol": 1e-10, "atol": 1e-10}
F32 = {"rtol": 1e-5, "atol": 1e-5}
NAMES = ("x", "delta", "A", "B", "C")
SCAN_HINT = ("Per channel d and state n: h_t = exp(Δ_t[d]·A[d, n])·h_{t−1} + Δ_t[d]·x_t[d]·"
             "B_t[n], starting from h_{−1} = 0, and y_t[d] = Σ_n C_t[n]·h_t[d, n]. B̄ = Δ·B "
             "(not B), Ā = exp(Δ·A) (not 1 + Δ·A).")
PARALLEL_HINT = ("The step t is the map h ↦ a_t h + b_t; composing step 1 after step 0 gives "
                 "(a₁a₀, a₁b₀ + b₁) — the later a multiplies the earlier b, so in every combine "
                 "the earlier positions go first, whatever the scheme (odd–even, Blelloch, "
                 "Hillis–Steele). Across chunks, each step adds a_t (composed from its chunk's "
                 "start) times the state the previous chunk ended in; the last chunk may be "
                 "shorter, and padding steps, if you pad, must be identities (a = 1, b = 0).")


def scan_inputs(seed: int, batch: int, length: int, channels: int, states: int,
                dtype: torch.dtype = F64, delta_scale: float = 1.0) -> list[torch.Tensor]:
    """[x, delta, A, B, C]: Δ > 0 (softplus of a normal, times delta_scale), A < 0."""
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=F64)

    x = normal(batch, length, channels)
    delta = torch.nn.functional.softplus(normal(batch, length, channels)) * delta_scale
    A = -torch.exp(normal(channels, states) * 0.5)
    return [t.to(dtype) for t in (x, delta, A, normal(batch, length, states),
                                  normal(batch, length, states))]


def closed_form(x, delta, A, B, C) -> torch.Tensor:
    """y (B, L, D) from h_t = Σ_{s ≤ t} exp(A·(S_t − S_s)) Δ_s x_s B_s, S the cumulative sum of
    Δ — the recurrence unrolled (no loop, differentiable), in float64. Only exponents ≤ 0 occur."""
    S = delta.cumsum(1)  # (B, L, D)
    gaps = S[:, :, None] - S[:, None, :]  # (B, t, s, D)
    causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()  # s ≤ t
    gaps = gaps.masked_fill(~causal[None, :, :, None], 0.0)[..., None]  # (B, t, s, D, 1)
    decay = torch.where(causal[None, :, :, None, None], torch.exp(gaps * A), 0.0)  # ≤ 1
    drive = (delta * x)[:, None, :, :, None] * B[:, None, :, None, :]  # (B, 1, s, D, N)
    h = (decay * drive).sum(2)  # (B, t, D, N)
    return (h * C[:, :, None, :]).sum(-1)


def recurrence_numpy(x, delta, A, B, C) -> np.ndarray:
    """The recurrence step by step in NumPy float64 (for long sequences)."""
    x, delta, A, B, C = (np.asarray(t, dtype=np.float64) for t in (x, delta, A, B, C))
    h = np.zeros((x.shape[0], x.shape[2], A.shape[1]))
    y = np.empty(x.shape)
    for t in range(x.shape[1]):
        h = np.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * x[:, t])[..., None] * \
            B[:, t, None, :]
        y[:, t] = (h * C[:, t, None, :]).sum(-1)
    return y


CASES = [(2, 9, 3, 4), (1, 1, 2, 3), (3, 33, 2, 1), (2, 70, 4, 5)]  # (B, L, D, N)
COMBINE_HINT = ("combine(earlier, later) is `later` applied after `earlier`: a₂(a₁h + b₁) + b₂ "
                "= (a₂a₁)h + (a₂b₁ + b₂), so it returns (a₂a₁, a₂b₁ + b₂) — the LATER a "
                "multiplies the EARLIER b. Swapping the roles gives (a₁a₂, a₁b₂ + b₁).")
INCLUSIVE_HINT = ("Position t of the result holds steps 0 … t composed, in order, along `dim` "
                  "(any dim, negative ones counted from the end): a = a₀a₁…a_t and b = the "
                  "state after steps 0 … t from h = 0. Position 0 is step 0 itself; every "
                  "length (1, odd, even) is allowed.")
SCAN_LAYOUTS = [  # (shape, dim): the scanned axis has length 1, odd and even, first to last
    ((1, 3, 2), 0), ((7, 2, 3), 0), ((2, 1, 3), 1), ((2, 6, 3), 1), ((3, 2, 13), -1),
    ((2, 9, 2, 3), -3), ((4, 2, 5), 2), ((2, 2, 1), -1), ((3, 2), -1),
]


def affine_steps(seed: int, shape: tuple[int, ...], dtype: torch.dtype = F64
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b): decays a in (0.2, 1) and drives b ~ N(0, 1), as the scan's steps are."""
    generator = torch.Generator().manual_seed(seed)
    a = 0.2 + 0.8 * torch.rand(shape, generator=generator, dtype=F64)
    return a.to(dtype), torch.randn(shape, generator=generator, dtype=F64).to(dtype)


def running_composition(a: torch.Tensor, b: torch.Tensor, dim: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) of steps 0 … t composed at every t along dim: a product and the state after the
    steps from h = 0, both accumulated step by step (float64)."""
    steps_a, steps_b = a.movedim(dim, -1).unbind(-1), b.movedim(dim, -1).unbind(-1)
    total_a, state = torch.ones_like(steps_a[0]), torch.zeros_like(steps_b[0])
    prefixes_a, prefixes_b = [], []
    for step_a, step_b in zip(steps_a, steps_b, strict=True):
        total_a, state = step_a * total_a, step_a * state + step_b
        prefixes_a.append(total_a)
        prefixes_b.append(state)
    return (torch.stack(prefixes_a, -1).movedim(-1, dim),
            torch.stack(prefixes_b, -1).movedim(-1, dim))


def _pair(value, what: str) -> tuple[np.ndarray, np.ndarray]:
    first, second = unpack(value, 2, what)
    return as_array(first, f"{what}[0]"), as_array(second, f"{what}[1]")


@check("selective_scan", "oracle", weight=2)
def sequential_scan_equals_the_recurrence(m):
    """selective_scan_sequential equals the unrolled recurrence (float64, within 1e-10) for
    L = 1, 9, 33, 70, one or several channels and states."""
    for k, shape in enumerate(CASES):
        inputs = scan_inputs(10 + k, *shape)
        assert_close(run(m, m.selective_scan_sequential, *inputs), closed_form(*inputs).numpy(),
                     f"selective_scan_sequential (B, L, D, N) = {shape}", hint=SCAN_HINT, **TIGHT)


@check("selective_scan", "oracle", weight=3)
def parallel_scan_equals_the_recurrence_for_every_chunk(m):
    """selective_scan_parallel equals the unrolled recurrence (float64, within 1e-10) for
    L = 1, 9, 33, 70 with the default chunk and with chunk = 1, 4, 7 and 128 (L not a multiple
    of the chunk, a single chunk, chunks of one step)."""
    for k, shape in enumerate(CASES):
        inputs = scan_inputs(20 + k, *shape)
        expected = closed_form(*inputs).numpy()
        for chunk in (None, 1, 4, 7, 128):
            kwargs = {} if chunk is None else {"chunk": chunk}
            assert_close(run(m, m.selective_scan_parallel, *inputs, **kwargs), expected,
                         f"selective_scan_parallel (B, L, D, N) = {shape}, "
                         f"chunk = {chunk or 'default'}", hint=PARALLEL_HINT, **TIGHT)


@check("selective_scan", "invariant", weight=2)
def parallel_equals_sequential_in_float32_with_gradients(m):
    """In float32 the parallel and the sequential scan agree within 1e-5 in their values and in
    the gradients with respect to all five inputs."""
    inputs = scan_inputs(30, 2, 50, 3, 4, dtype=torch.float32)
    upstream = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(31))
    results = {name: gradients(m, getattr(m, name), inputs, upstream, name)
               for name in ("selective_scan_sequential", "selective_scan_parallel")}
    sequential, parallel = results.values()
    assert_close(parallel["output"], as_array(sequential["output"], "the sequential scan"),
                 "the parallel scan's output (float32) against your sequential scan's",
                 hint=PARALLEL_HINT, **F32)
    for index, name in enumerate(NAMES):
        assert_close(input_gradient(parallel, index, name),
                     input_gradient(sequential, index, name),
                     f"the parallel scan's ∂/∂{name} (float32) against your sequential scan's",
                     hint=PARALLEL_HINT, **F32)


@check("selective_scan", "gradient", weight=2)
def scan_gradients_match_torch_autograd(m):
    """The gradients of both scans with respect to x, Δ, A, B and C equal torch autograd's
    through the unrolled recurrence (float64)."""
    inputs = scan_inputs(40, 2, 21, 3, 4)
    upstream = torch.randn(2, 21, 3, generator=torch.Generator().manual_seed(41), dtype=F64)
    leaves = [t.clone().requires_grad_() for t in inputs]
    (closed_form(*leaves) * upstream).sum().backward()
    for name, hint in (("selective_scan_sequential", SCAN_HINT),
                       ("selective_scan_parallel", PARALLEL_HINT)):
        result = gradients(m, getattr(m, name), inputs, upstream, name)
        for index, input_name in enumerate(NAMES):
            assert_close(input_gradient(result, index, input_name), leaves[index].grad.numpy(),
                         f"∂/∂{input_name} of {name}", hint=hint, rtol=1e-8, atol=1e-10)


@check("selective_scan", "gradient")
def parallel_scan_passes_a_finite_difference_check(m):
    """The parallel scan's gradients agree with central finite differences in float64 (every
    input perturbed along random directions), chunk 4 over L = 11."""
    inputs = {name: t.numpy() for name, t in zip(NAMES, scan_inputs(50, 1, 11, 2, 3),
                                                   strict=True)}

    def forward(values):
        return run(m, m.selective_scan_parallel,
                   *(torch.from_numpy(values[name]) for name in NAMES), chunk=4)

    def vjp(values, v):
        result = gradients(m, m.selective_scan_parallel,
                           [torch.from_numpy(values[name]) for name in NAMES],
                           torch.from_numpy(v), "selective_scan_parallel", chunk=4)
        return {name: input_gradient(result, index, name) for index, name in enumerate(NAMES)}

    check_gradients(forward, vjp, inputs, what="selective_scan_parallel", hint=PARALLEL_HINT)


@check("selective_scan", "stability", weight=2)
def scans_are_stable_on_long_sequences_and_large_steps(m):
    """At L = 4096 the parallel scan stays finite and equals the recurrence (float64); with
    steps Δ up to ~10³ (exp(Δ·A) underflows to 0) both scans stay finite and exact."""
    inputs = scan_inputs(60, 1, 4096, 2, 3)
    y = assert_finite(run(m, m.selective_scan_parallel, *inputs),
                      "the parallel scan at L = 4096",
                      "Combine the steps with products and sums of exp(Δ·A) ≤ 1 only; never "
                      "divide by a cumulative product (it underflows to 0).")
    assert_close(y, recurrence_numpy(*inputs), "the parallel scan at L = 4096",
                 hint=PARALLEL_HINT, rtol=1e-9, atol=1e-9)
    inputs = scan_inputs(61, 2, 40, 3, 4, delta_scale=300.0)
    expected = closed_form(*inputs).numpy()
    for name in ("selective_scan_sequential", "selective_scan_parallel"):
        y = assert_finite(run(m, getattr(m, name), *inputs), f"{name} with Δ up to ~10³",
                          "exp(Δ·A) with A < 0 is in (0, 1] for any Δ ≥ 0: compute exactly "
                          "that, never exp(−Δ·A) or a division.")
        assert_close(y, expected, f"{name} with Δ up to ~10³", hint=SCAN_HINT, rtol=1e-9,
                     atol=1e-9)


@check("selective_scan", "oracle")
def combine_applies_the_later_step_after_the_earlier(m):
    """combine(earlier, later) = (a₂a₁, a₂b₁ + b₂) for steps (a₁, b₁) then (a₂, b₂), on
    random steps where the order matters (the operator is not commutative), float64."""
    for k, shape in enumerate([(2, 3, 4), (7,), (3, 1, 2)]):
        (a1, b1), (a2, b2) = affine_steps(300 + k, shape), affine_steps(310 + k, shape)
        what = f"two steps of shape {shape}"
        got = _pair(run_probe(m, "phase2.run", m.combine, [(a1, b1), (a2, b2)]),
                    f"combine on {what}")
        for index, (value, expected) in enumerate(zip(got, (a2 * a1, a2 * b1 + b2),
                                                      strict=True)):
            assert_close(value, expected.numpy(), f"combine(earlier, later)[{index}] on {what}",
                         hint=COMBINE_HINT, **TIGHT)


@check("selective_scan", "oracle", weight=2)
def inclusive_scan_composes_every_prefix_along_dim(m):
    """inclusive_scan(a, b, dim) holds, at position t along dim, steps 0 … t composed — the
    running product of a and the state after those steps from h = 0, accumulated step by step
    in the judge (float64): dim 0, 1, 2, −1 and −3, the scanned axis of length 1, 2, 5, 6, 7,
    9 and 13."""
    for k, (shape, dim) in enumerate(SCAN_LAYOUTS):
        a, b = affine_steps(320 + k, shape)
        what = f"inclusive_scan on shape {shape}, dim = {dim}"
        got = _pair(run_probe(m, "phase2.run", m.inclusive_scan, [a, b, dim]), what)
        for index, (value, expected) in enumerate(zip(got, running_composition(a, b, dim),
                                                      strict=True)):
            assert_close(value, expected.numpy(), f"{what}: output {index}",
                         hint=INCLUSIVE_HINT, **TIGHT)


@check("selective_scan", "gradient")
def inclusive_scan_returns_new_tensors_with_torchs_gradients(m):
    """inclusive_scan returns new tensors, not its inputs (at length 1 too: the steps composed
    are step 0 itself, a copy of it), and the gradients of each output with respect to a and b
    equal torch autograd's through the running composition (float64)."""
    for k, (shape, dim) in enumerate([((2, 1, 3), 1), ((1, 4), 0), ((2, 6, 3), 1),
                                      ((3, 7), -1)]):
        a, b = affine_steps(340 + k, shape)
        leaves = [a.clone().requires_grad_(), b.clone().requires_grad_()]
        expected = running_composition(*leaves, dim)
        for output in (0, 1):
            what = f"inclusive_scan on shape {shape}, dim = {dim}: output {output}"
            upstream = torch.randn(shape, generator=torch.Generator().manual_seed(350 + k),
                                   dtype=F64)
            result = run_probe(m, "phase2.vjp", m.inclusive_scan, [a, b], upstream,
                               {"dim": dim}, output=output)
            if result["inputs"] is None:
                raise CheckFailed(
                    f"{what} is one of its inputs itself (or a tensor cut off from autograd).",
                    "Return new tensors: a caller that writes into the result would otherwise "
                    "change its own steps. At length 1 return a.clone(), b.clone().")
            grads = torch.autograd.grad(expected[output], leaves, upstream, retain_graph=True,
                                        allow_unused=True)
            for index, (name, grad) in enumerate(zip("ab", grads, strict=True)):
                wanted = np.zeros(shape) if grad is None else grad.numpy()
                got = result["inputs"][index]
                assert_close(np.zeros(shape) if got is None else as_array(got, name), wanted,
                             f"∂/∂{name} of {what}", hint=INCLUSIVE_HINT, **TIGHT)


DECLARED = [
    Numeric("combine", lambda m, dt: (m.combine, [affine_steps(360, (2, 5), dt),
                                                 affine_steps(361, (2, 5), dt)], {}),
            outputs=("float", "float")),
    Numeric("inclusive_scan(dim=1)",
            lambda m, dt: (m.inclusive_scan, [*affine_steps(362, (2, 7, 3), dt), 1], {}),
            outputs=("float", "float")),
    Numeric("inclusive_scan at length 1",
            lambda m, dt: (m.inclusive_scan, [*affine_steps(363, (2, 1, 3), dt), 1], {}),
            outputs=("float", "float")),
    Numeric("selective_scan_sequential",
            lambda m, dt: (m.selective_scan_sequential, scan_inputs(70, 2, 6, 3, 2, dt), {})),
    Numeric("selective_scan_parallel(chunk=4)",
            lambda m, dt: (m.selective_scan_parallel, scan_inputs(71, 2, 10, 3, 2, dt),
                           {"chunk": 4})),
]
globals().update(contract_checks(__name__, "selective_scan", DECLARED, torch_phase=True))


@fingerprint("selective_scan")
def scan_outputs(m):
    inputs = scan_inputs(80, 1, 12, 2, 3)

    def scan(name, **kwargs):
        return lambda: np.round(run(m, getattr(m, name), *inputs, **kwargs), 4)

    steps = affine_steps(81, (2, 5, 3))

    def composed(name, *args):
        return lambda: np.concatenate([np.ravel(np.round(as_array(v, ""), 4)) for v in
                                       unpack(run_probe(m, "phase2.run", getattr(m, name),
                                                        list(args)), 2, name)])

    return {"sequential": safely(scan("selective_scan_sequential")),
            "combine": safely(composed("combine", steps, affine_steps(82, (2, 5, 3)))),
            "combine_float32_itemsize": safely(lambda: float(as_array(unpack(run_probe(
                m, "phase2.run", m.combine, [affine_steps(84, (3,), torch.float32),
                                             affine_steps(85, (3,), torch.float32)]),
                2, "combine")[0], "combine").itemsize)),
            "inclusive_dim_0": safely(composed("inclusive_scan", *steps, 0)),
            "inclusive_last_dim": safely(composed("inclusive_scan", *steps, -1)),
            "inclusive_length_1_is_new": safely(lambda: float(run_probe(
                m, "phase2.vjp", m.inclusive_scan, list(affine_steps(83, (2, 1, 3))),
                torch.ones(2, 1, 3, dtype=F64), {"dim": 1})["inputs"] is not None)),
            "parallel": safely(scan("selective_scan_parallel", chunk=4)),
            "parallel_one_chunk": safely(scan("selective_scan_parallel", chunk=16))}
