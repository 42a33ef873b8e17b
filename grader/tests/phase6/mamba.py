"""6.10 the Mamba block and the Mamba language model, against a Mamba written in the judge from
torch ops (F.conv1d with symmetric padding cut back to causal, F.softplus, F.rms_norm, and the
scan as a float64 loop) with the same weights: outputs and gradients, the recurrent step
against the full forward, causality, finite differences, the documented initialisation, tying,
and the dtype contract."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks, raises, seeded_module
from grader.checks.gradient import check_gradients
from grader.checks.oracle import as_array, assert_close, unpack
from grader.session import fetch, run_probe
from grader.tests.phase2._helpers import copy_weights, gradients, input_gradient, run
from grader.tests.phase6._helpers import randint, randn, safely

F64 = torch.float64
TIGHT = {"rtol": 1e-8, "atol": 1e-10}
STEP_F32 = {"rtol": 1e-5, "atol": 1e-5}
BLOCK_HINT = ("x, z = in_proj(u).chunk(2); x = SiLU(conv1d(x padded by d_conv − 1 zeros on the "
              "LEFT only)); Δ, B, C = x_proj(x).split([dt_rank, N, N]); Δ = softplus(dt_proj(Δ));"
              " y = selective_scan(x, Δ, −exp(A_log), B, C) + D·x; out = out_proj(y·SiLU(z)).")
STEP_HINT = ("step keeps the last d_conv − 1 conv inputs (oldest first) and h: the conv output "
             "is Σ_k weight[:, 0, k]·window[k] + bias over [conv state, x_t], and h_t = "
             "exp(Δ_t A)·h + Δ_t x_t B_t — the same numbers forward computes at position t.")
LM_HINT = ("embedding → for each layer x = x + mixer(norm(x)) (norm your RMSNorm) → norm_f → "
           "lm_head, whose weight IS embedding.weight. No position embedding.")
BLOCK_CONFIGS = [  # (description, MambaBlock kwargs)
    ("d_model 8, defaults", {"d_model": 8}),
    ("d_model 6, d_state 3, d_conv 2, expand 1, dt_rank 2",
     {"d_model": 6, "d_state": 3, "d_conv": 2, "expand": 1, "dt_rank": 2}),
]
LM_SIZES = {"vocab_size": 13, "d_model": 8, "n_layer": 2, "d_state": 4}


class ReferenceBlock(nn.Module):
    """The Mamba block from torch ops, with the course's parameter names."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | None = None) -> None:
        super().__init__()
        inner, rank = expand * d_model, dt_rank or math.ceil(d_model / 16)
        self.sizes = (inner, d_state, d_conv, rank)
        self.in_proj = nn.Linear(d_model, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner)
        self.x_proj = nn.Linear(inner, rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(rank, inner)
        self.A_log = nn.Parameter(torch.zeros(inner, d_state))
        self.D = nn.Parameter(torch.zeros(inner))
        self.out_proj = nn.Linear(inner, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        inner, states, width, rank = self.sizes
        length = u.shape[1]
        x, z = self.in_proj(u).split(inner, dim=-1)
        # symmetric zero padding of width − 1, then the first L outputs: the causal ones
        x = F.conv1d(x.transpose(1, 2), self.conv1d.weight, self.conv1d.bias,
                     padding=width - 1, groups=inner)[..., :length]
        x = F.silu(x.transpose(1, 2))
        dt, B, C = torch.split(self.x_proj(x), [rank, states, states], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log)
        h = torch.zeros(u.shape[0], inner, states, dtype=u.dtype)
        ys = []
        for t in range(length):
            h = torch.exp(delta[:, t, :, None] * A) * h + \
                delta[:, t, :, None] * x[:, t, :, None] * B[:, t, None, :]
            ys.append(torch.einsum("ben,bn->be", h, C[:, t]))
        y = torch.stack(ys, 1) + self.D * x
        return self.out_proj(y * F.silu(z))


class ReferenceLM(nn.Module):
    def __init__(self, vocab_size: int, d_model: int, n_layer: int, d_state: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(nn.ModuleDict({
            "norm": nn.RMSNorm(d_model), "mixer": ReferenceBlock(d_model, d_state)})
            for _ in range(n_layer))
        self.norm_f = nn.RMSNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embedding(idx)
        for layer in self.layers:
            x = x + layer["mixer"](layer["norm"](x))
        return self.lm_head(self.norm_f(x))


def randomised(module: nn.Module, seed: int) -> nn.Module:
    """The module in float64 with every parameter random: A_log = log U(0.5, 4), dt_proj.bias
    around softplus⁻¹ of 0.01 … 1, norm weights 1 ± 0.3, the rest N(0, 0.3²)."""
    module = module.to(F64)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=generator, dtype=F64)
            if name.endswith("A_log"):
                value = torch.log(0.5 + 3.5 * torch.rand(p.shape, generator=generator,
                                                         dtype=F64))
            elif name.endswith("dt_proj.bias"):
                value = noise - 2.0
            elif "norm" in name:
                value = 1.0 + 0.3 * noise
            else:
                value = 0.3 * noise
            p.copy_(value)
    return module.eval()


def paired_blocks(m, seed: int, dtype: torch.dtype = F64, **kwargs):
    """(reference block with random weights, the student's MambaBlock(**kwargs) holding them)."""
    reference = randomised(ReferenceBlock(**kwargs), seed)
    student = m.MambaBlock(**kwargs)
    copy_weights(student, {k: v.to(dtype) for k, v in reference.state_dict().items()},
                 "Mamba block", hint=BLOCK_HINT, cast=True)
    return reference.to(dtype), student


def paired_lms(m, seed: int, dtype: torch.dtype = F64):
    reference = randomised(ReferenceLM(**LM_SIZES), seed)
    student = m.MambaLM(m.MambaConfig(**LM_SIZES))
    state = {name: p.detach().to(dtype) for name, p in reference.named_parameters()}
    copy_weights(student, state, "Mamba language model", hint=LM_HINT, cast=True)
    return reference.to(dtype), student


def stepped(m, model, inputs: list, what: str, hint: str) -> np.ndarray:
    """The outputs of model.step(input_t, state) for every t, from state None, stacked on axis 1."""
    state, outputs = None, []
    for t, value in enumerate(inputs):
        result = run_probe(m, "phase2.run", model.step, [value, state])
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed(f"{what}.step should return (output, state), got "
                              f"{type(result).__name__}.", hint)
        output, state = result
        outputs.append(as_array(output, f"{what}.step's output at position {t}"))
    return np.stack(outputs, axis=1)


# ------------------------------------------------------------------------------ MambaBlock


@check("mamba_block", "oracle", weight=3)
def mamba_block_matches_a_torch_reference(m):
    """MambaBlock's output equals a Mamba block built from torch ops with the same weights
    (float64) for two configurations (non-default d_state, d_conv, expand, dt_rank) and
    L = 1, 3, 12; this also checks every parameter's name and shape."""
    for k, (description, kwargs) in enumerate(BLOCK_CONFIGS):
        reference, student = paired_blocks(m, 100 + k, **kwargs)
        for length in (1, 3, 12):
            u = randn(110 + k + length, 2, length, kwargs["d_model"])
            with torch.no_grad():
                expected = reference(u).numpy()
            assert_close(run(m, student, u), expected,
                         f"MambaBlock's output ({description}, L = {length})", hint=BLOCK_HINT,
                         **TIGHT)


@check("mamba_block", "gradient", weight=2)
def mamba_block_gradients_match_torch(m):
    """The gradients of Σ upstream·output with respect to the input and every parameter equal
    torch autograd's through the reference block (float64)."""
    reference, student = paired_blocks(m, 120, **BLOCK_CONFIGS[1][1])
    u, upstream = randn(121, 2, 9, 6), randn(122, 2, 9, 6)
    result = gradients(m, student, [u], upstream, "MambaBlock")
    leaf = u.clone().requires_grad_()
    (reference(leaf) * upstream).sum().backward()
    assert_close(input_gradient(result, 0, "the input u"), leaf.grad.numpy(), "∂/∂u",
                 hint=BLOCK_HINT, **TIGHT)
    for name, p in reference.named_parameters():
        if result["params"].get(name) is None:
            raise CheckFailed(f"no gradient reaches MambaBlock.{name}.",
                              "Use every parameter in forward, as the docstring says.")
        assert_close(result["params"][name], p.grad.numpy(), f"∂/∂{name}", hint=BLOCK_HINT,
                     **TIGHT)


@check("mamba_block", "gradient")
def mamba_block_passes_a_finite_difference_check(m):
    """The block's gradient with respect to its input agrees with central finite differences
    (float64)."""
    _, student = paired_blocks(m, 130, **BLOCK_CONFIGS[1][1])

    def forward(values):
        return run(m, student, torch.from_numpy(values["u"]))

    def vjp(values, v):
        result = gradients(m, student, [torch.from_numpy(values["u"])], torch.from_numpy(v),
                           "MambaBlock")
        return {"u": input_gradient(result, 0, "the input u")}

    check_gradients(forward, vjp, {"u": randn(131, 1, 7, 6).numpy()}, what="MambaBlock",
                    hint=BLOCK_HINT)


@check("mamba_block", "oracle")
def selective_parameters_are_softplus_and_minus_exp(m):
    """selective_parameters(x) returns (Δ, A, B, C) computed in the judge from the block's own
    weights: Δ = softplus(dt_proj(x_proj(x)[..., :R])) > 0, A = −exp(A_log), B and C the next
    N and the last N columns of x_proj(x) — for a sequence (B, L, E) and a token (B, E), both
    configurations (float64)."""
    hint = ("dt, B, C = x_proj(x).split([dt_rank, N, N], dim=-1); Δ = F.softplus(dt_proj(dt)) "
            "(the step size must be positive); A = −exp(A_log) (negative: the state decays).")
    for k, (description, kwargs) in enumerate(BLOCK_CONFIGS):
        reference, student = paired_blocks(m, 190 + k, **kwargs)
        inner, states, _, rank = reference.sizes
        for shape in ((2, 5, inner), (3, inner)):
            x = randn(195 + k + len(shape), *shape)
            with torch.no_grad():
                dt, B, C = torch.split(reference.x_proj(x), [rank, states, states], dim=-1)
                expected = (F.softplus(reference.dt_proj(dt)), -torch.exp(reference.A_log),
                            B, C)
            got = unpack(run_probe(m, "phase2.run", student.selective_parameters, [x]), 4,
                         "selective_parameters")
            for name, value, wanted in zip(("Δ", "A", "B", "C"), got, expected, strict=True):
                assert_close(value, wanted.numpy(), f"selective_parameters' {name} "
                             f"({description}, x of shape {shape})", hint=hint, **TIGHT)


@check("mamba_block", "invariant", weight=2)
def mamba_block_steps_equal_the_full_forward(m):
    """Stepping MambaBlock.step through a sequence token by token from state None gives
    forward's outputs: within 1e-10 in float64 (both configurations) and 1e-5 in float32; the
    returned state is (conv (B, E, d_conv − 1), ssm (B, E, N))."""
    for k, (description, kwargs) in enumerate(BLOCK_CONFIGS):
        for dtype, tolerance in ((F64, TIGHT), (torch.float32, STEP_F32)):
            _, student = paired_blocks(m, 140 + k, dtype=dtype, **kwargs)
            u = randn(145 + k, 2, 10, kwargs["d_model"], dtype=dtype)
            full = run(m, student, u)
            steps = stepped(m, student, [u[:, t] for t in range(10)], "MambaBlock", STEP_HINT)
            assert_close(steps, full, f"MambaBlock.step token by token ({description}, "
                         f"{str(dtype)[6:]}) against forward", hint=STEP_HINT, **tolerance)
    kwargs = BLOCK_CONFIGS[1][1]
    _, student = paired_blocks(m, 149, **kwargs)
    _, state = run_probe(m, "phase2.run", student.step, [randn(150, 3, 6), None])
    shapes = [tuple(as_array(s, "the state").shape) for s in state] if isinstance(
        state, (tuple, list)) else None
    if shapes != [(3, 6, 1), (3, 6, 3)]:
        raise CheckFailed(f"after one step of a batch of 3 (E = 6, d_conv = 2, N = 3) the "
                          f"state has shapes {shapes}, expected [(3, 6, 1), (3, 6, 3)].",
                          "state = (conv (B, E, d_conv − 1), ssm (B, E, N)), as documented.")


@check("mamba_block", "invariant")
def mamba_block_is_causal(m):
    """Changing the input from position t on leaves the outputs before t unchanged (and changes
    those from t on): the conv is padded on the left, the scan runs forward."""
    kwargs = BLOCK_CONFIGS[0][1]
    _, student = paired_blocks(m, 160, **kwargs)
    u = randn(161, 2, 12, 8)
    base = run(m, student, u)
    for t in (1, 6, 11):
        changed = u.clone()
        changed[:, t:] += randn(162 + t, 2, 12 - t, 8)
        out = run(m, student, changed)
        assert_close(out[:, :t], base[:, :t], f"the outputs of positions 0 … {t - 1} after "
                     f"changing the input from position {t} on", hint="Pad the conv input "
                     "with d_conv − 1 zeros on the left only: position t then sees inputs "
                     "t − d_conv + 1 … t.", **TIGHT)
        if np.allclose(out[:, t:], base[:, t:]):
            raise CheckFailed(f"changing the input from position {t} on did not change the "
                              "outputs there.", BLOCK_HINT)


@check("mamba_block", "invariant")
def mamba_block_is_initialised_as_documented(m):
    """At init A_log[e, n] = log(n + 1) (S4D-real: A = −1, −2, …, −N in every channel), D = 1,
    softplus(dt_proj.bias) spread over [dt_min, dt_max] (here 0.004 … 0.05, a log-uniform draw
    reaching both halves of the log range), and dt_rank None is ⌈d_model / 16⌉ (d_model 31,
    33, 40, 48)."""
    block = seeded_module(m, m.MambaBlock, 40, 5, dt_min=0.004, dt_max=0.05)
    A_log, D = as_array(fetch(block.A_log), "A_log"), as_array(fetch(block.D), "D")
    assert_close(A_log, np.log(np.tile(np.arange(1.0, 6.0), (80, 1))).astype(A_log.dtype),
                 "A_log at init", hint="S4D-real: A_log = log(arange(1, N + 1)) repeated for "
                 "each of the E channels, shape (E, N).")
    assert_close(D, np.ones(80, dtype=D.dtype), "D at init", hint="D starts at ones (E,).")
    bias = torch.from_numpy(as_array(fetch(block.dt_proj.bias), "dt_proj.bias")).double()
    dt = F.softplus(bias).numpy()
    middle = math.sqrt(0.004 * 0.05)
    if dt.min() < 0.004 * (1 - 1e-4) or dt.max() > 0.05 * (1 + 1e-4) or \
            not (dt < middle).any() or not (dt > middle).any():
        raise CheckFailed(f"softplus(dt_proj.bias) at init ranges over {dt.min():.4g} … "
                          f"{dt.max():.4g}, expected values spread over [0.004, 0.05].",
                          "Draw Δ₀ = exp(U(log dt_min, log dt_max)) per channel and set the "
                          "bias to its inverse softplus, Δ₀ + log(−expm1(−Δ₀)).")
    for d_model, rank in ((40, 3), (48, 3), (33, 3), (31, 2)):
        block = seeded_module(m, m.MambaBlock, d_model, 2)
        shape = tuple(as_array(fetch(block.dt_proj.weight), "dt_proj.weight").shape)
        if shape != (2 * d_model, rank):
            raise CheckFailed(f"dt_proj.weight of MambaBlock({d_model}) has shape {shape}, "
                              f"expected {(2 * d_model, rank)}: dt_rank None means "
                              f"⌈{d_model} / 16⌉ = {rank}.",
                              "dt_rank = dt_rank or math.ceil(d_model / 16).")


DECLARED_BLOCK = [
    Numeric("MambaBlock.forward",
            lambda m, dt: (seeded_module(m, m.MambaBlock, 6, 3).to(dt),
                           [randn(170, 2, 5, 6, dtype=dt)], {})),
    Numeric("MambaBlock.step",
            lambda m, dt: (seeded_module(m, m.MambaBlock, 6, 3).to(dt).step,
                           [randn(171, 2, 6, dtype=dt), (randn(172, 2, 12, 3, dtype=dt),
                                                         randn(173, 2, 12, 3, dtype=dt))], {}),
            outputs=("float", None)),
]
globals().update(contract_checks(__name__, "mamba_block", DECLARED_BLOCK, torch_phase=True))


@fingerprint("mamba_block")
def mamba_block_outputs(m):
    u = randn(180, 1, 6, 6)

    def forward():
        _, student = paired_blocks(m, 181, **BLOCK_CONFIGS[1][1])
        return np.round(run(m, student, u), 4)

    def steps():
        _, student = paired_blocks(m, 181, **BLOCK_CONFIGS[1][1])
        return np.round(stepped(m, student, [u[:, t] for t in range(6)], "MambaBlock", ""), 4)

    def init():
        block = seeded_module(m, m.MambaBlock, 4, 3)
        return np.concatenate([as_array(fetch(block.A_log), "").ravel(),
                               as_array(fetch(block.D), "").ravel()])

    def parameters():
        _, student = paired_blocks(m, 181, **BLOCK_CONFIGS[1][1])
        values = unpack(run_probe(m, "phase2.run", student.selective_parameters,
                                  [randn(182, 1, 3, 6)]), 4, "")
        return np.concatenate([np.ravel(np.round(as_array(v, ""), 4)) for v in values])

    return {"forward": safely(forward), "steps": safely(steps), "init": safely(init),
            "selective_parameters": safely(parameters)}


# ------------------------------------------------------------------------------ MambaLM


@check("mamba_lm", "oracle", weight=2)
def mamba_lm_matches_a_torch_reference(m):
    """MambaLM's logits equal those of the reference (nn.Embedding, nn.RMSNorm, the reference
    block, a tied head) with the same weights, float64, T = 1 and 9."""
    reference, student = paired_lms(m, 200)
    for length in (1, 9):
        idx = randint(201 + length, 13, 2, length)
        with torch.no_grad():
            expected = reference(idx).numpy()
        assert_close(run(m, student, idx), expected, f"MambaLM's logits (T = {length})",
                     hint=LM_HINT, **TIGHT)


@check("mamba_lm", "gradient")
def mamba_lm_gradients_match_torch(m):
    """The gradient of Σ upstream·logits with respect to every parameter equals torch autograd's
    through the reference (the tied embedding gets both its gradients)."""
    reference, student = paired_lms(m, 210)
    idx, upstream = randint(211, 13, 2, 7), randn(212, 2, 7, 13)
    result = gradients(m, student, [idx], upstream, "MambaLM")
    (reference(idx) * upstream).sum().backward()
    for name, p in reference.named_parameters():
        if result["params"].get(name) is None:
            raise CheckFailed(f"no gradient reaches the parameter {name} of your MambaLM.",
                              "Use every parameter in forward (not a copy or .data).")
        assert_close(result["params"][name], p.grad.numpy(), f"∂/∂{name}", hint=LM_HINT, **TIGHT)


@check("mamba_lm", "oracle")
def mamba_layer_is_a_residual_around_the_mixer(m):
    """MambaLayer(x) = x + mixer(norm(x)) against the reference layer with the same weights
    (float64), and MambaLayer.step token by token from state None gives those outputs while
    returning, as its state, what its mixer's step returns for norm(x_t)."""
    reference = randomised(ReferenceLM(**LM_SIZES), 260).layers[0]
    student = m.MambaLayer(m.MambaConfig(**LM_SIZES))
    copy_weights(student, reference.state_dict(), "Mamba layer", hint=LM_HINT, cast=True)
    x = randn(261, 2, 7, LM_SIZES["d_model"])
    with torch.no_grad():
        normed = reference["norm"](x)
        expected = (x + reference["mixer"](normed)).numpy()
    assert_close(run(m, student, x), expected, "MambaLayer(x)", hint="A pre-norm residual "
                 "layer: x + mixer(norm(x)) — the input itself is added back.", **TIGHT)
    steps = stepped(m, student, [x[:, t] for t in range(7)], "MambaLayer", STEP_HINT)
    assert_close(steps, expected, "MambaLayer.step token by token against x + mixer(norm(x))",
                 hint="step(x_t, state): y, state = mixer.step(norm(x_t), state); return "
                      "x_t + y, state.", **TIGHT)
    layer_state = mixer_state = None
    for t in range(3):
        _, layer_state = run_probe(m, "phase2.run", student.step, [x[:, t], layer_state])
        _, mixer_state = run_probe(m, "phase2.run", student.mixer.step,
                                   [normed[:, t], mixer_state])
        for name, ours, mixers in zip(("conv", "ssm"), unpack(layer_state, 2, "the state"),
                                      mixer_state, strict=True):
            assert_close(ours, as_array(mixers, f"the mixer's {name} state"),
                         f"MambaLayer.step's {name} state after {t + 1} tokens against its "
                         "mixer's step on norm(x_t)", hint="Return the mixer's new state as it "
                         "is: the layer keeps no state of its own.", **TIGHT)


@check("mamba_lm", "invariant", weight=2)
def mamba_lm_generation_by_steps_equals_the_full_forward(m):
    """Feeding tokens one at a time through MambaLM.step from states None gives the logits of
    the full forward: within 1e-5 in float32 (the check HF transformers runs), 1e-10 in
    float64; a list of states of the wrong length raises ValueError."""
    for dtype, tolerance in ((torch.float32, STEP_F32), (F64, TIGHT)):
        _, student = paired_lms(m, 220, dtype=dtype)
        idx = randint(221, 13, 3, 12)
        full = run(m, student, idx)
        steps = stepped(m, student, [idx[:, t] for t in range(12)], "MambaLM", STEP_HINT)
        assert_close(steps, full, f"MambaLM.step token by token ({str(dtype)[6:]}) against "
                     "the full forward", hint=STEP_HINT + " Each layer keeps its own state.",
                     **tolerance)
    raises(lambda: run_probe(m, "phase2.run", student.step, [idx[:, 0], [None]]), "ValueError",
           "MambaLM.step with one state for a 2-layer model",
           "One state per layer: zip(self.layers, states, strict=True) refuses a list of "
           "another length.")


@check("mamba_lm", "invariant")
def mamba_lm_is_causal(m):
    """Changing the tokens from position t on leaves the logits before t unchanged."""
    _, student = paired_lms(m, 230)
    idx = randint(231, 13, 2, 10)
    base = run(m, student, idx)
    for t in (1, 7):
        changed = idx.clone()
        changed[:, t:] = (changed[:, t:] + 1 + randint(232 + t, 12, 2, 10 - t)) % 13
        out = run(m, student, changed)
        assert_close(out[:, :t], base[:, :t], f"the logits of positions 0 … {t - 1} after "
                     f"changing the tokens from position {t} on", hint=LM_HINT, **TIGHT)
        if np.allclose(out[:, t:], base[:, t:]):
            raise CheckFailed(f"changing the tokens from position {t} on did not change the "
                              "logits there: the output ignores its input.", LM_HINT)


@check("mamba_lm", "invariant")
def mamba_lm_head_is_tied_and_initialised(m):
    """lm_head.weight is embedding.weight itself (named_parameters lists it once), the embedding
    starts N(0, 0.02²), and the norms are your RMSNorm with weight 1."""
    model = seeded_module(m, m.MambaLM, m.MambaConfig(vocab_size=300, d_model=64, n_layer=2))
    names = list(run_probe(m, "phase2.parameter_shapes", model))
    embedding = as_array(fetch(model.embedding.weight), "embedding.weight")
    head = as_array(fetch(model.lm_head.weight), "lm_head.weight")
    if "lm_head.weight" in names or not np.array_equal(head, embedding):
        raise CheckFailed("lm_head.weight is not embedding.weight itself"
                          + (" (it is a parameter of its own)" if "lm_head.weight" in names
                             else "") + ": the head is not tied.",
                          "Assign the Parameter: self.lm_head.weight = self.embedding.weight.")
    if abs(embedding.mean()) > 0.002 or abs(embedding.std() - 0.02) > 0.002:
        raise CheckFailed(f"the embedding starts with mean {embedding.mean():.4f} and std "
                          f"{embedding.std():.4f}, expected N(0, 0.02²).",
                          "nn.init.normal_(self.embedding.weight, std=0.02).")
    for name in ("norm_f.weight", "layers.0.norm.weight", "layers.1.norm.weight"):
        if name not in names:
            raise CheckFailed(f"MambaLM has no parameter {name}.", LM_HINT)
    if any(name.startswith(("pos", "wpe")) for name in names):
        raise CheckFailed("MambaLM has a position embedding.", LM_HINT)


DECLARED_LM = [
    Numeric("MambaLM.forward",
            lambda m, dt: (seeded_module(m, m.MambaLM, m.MambaConfig(**LM_SIZES)).to(dt),
                           [randint(240, 13, 2, 5)], {})),
]
globals().update(contract_checks(__name__, "mamba_lm", DECLARED_LM, torch_phase=True))


@fingerprint("mamba_lm")
def mamba_lm_outputs(m):
    idx = randint(250, 13, 1, 6)

    def model():  # the student's own init: a failed weight copy must not look like a mistake
        return seeded_module(m, m.MambaLM, m.MambaConfig(**LM_SIZES), seed=251).double()

    def forward():
        return np.round(run(m, model(), idx), 6)

    def steps():
        return np.round(stepped(m, model(), [idx[:, t] for t in range(6)], "MambaLM", ""), 6)

    def tied():
        return float("lm_head.weight" not in run_probe(m, "phase2.parameter_shapes", model()))

    def layer():
        block = seeded_module(m, m.MambaLayer, m.MambaConfig(**LM_SIZES), seed=252).double()
        return np.round(run(m, block, randn(253, 1, 4, LM_SIZES["d_model"])), 6)

    return {"forward": safely(forward), "steps": safely(steps), "tied": safely(tied),
            "layer": safely(layer)}
