"""1.1–1.4 The cells: RNNCell, LSTMCell and GRUCell against torch.nn's cells with copied weights,
their gating invariants, and the peephole LSTM against nn.LSTMCell with shifted biases."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.checks.stability import assert_finite
from grader.session import run_probe
from grader.tests.phase1._helpers import (
    DT,
    assert_dtype,
    check_uniform_init,
    compare_vjp,
    load,
    randn,
    reference,
    state_of,
    structure,
)

RNN_HINT = "h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh): both biases, and W_hh transposed."
LSTM_HINT = ("Gates in PyTorch's order (i, f, g, o): σ on i, f, o and tanh on g only; "
             "c' = f⊙c + i⊙g, then h' = o⊙tanh(c') with the new c'.")
GRU_HINT = ("PyTorch's GRU: n = tanh(x_n + r⊙(W_hn h + b_hn)) and h' = (1 − z)⊙n + z⊙h; "
            "gate order (r, z, n).")


def _gates(H: int, size: int, blocks: dict[int, float], seed: int) -> torch.Tensor:
    """A bias vector of `size` with block k (rows kH…(k+1)H) set to blocks[k]."""
    bias = randn(seed, size)
    for k, value in blocks.items():
        bias[k * H:(k + 1) * H] = value
    return bias


# ------------------------------------------------------------------ 1.1 RNNCell


@check("rnn_cell", "oracle")
def rnn_cell_matches_torch(m):
    """RNNCell equals nn.RNNCell with copied weights: tanh and relu, with and without bias."""
    for k, (B, I, H, bias, act) in enumerate([(3, 4, 5, True, "tanh"), (2, 5, 3, False, "tanh"),
                                              (4, 3, 3, True, "relu")]):
        ref = reference(nn.RNNCell, I, H, bias=bias, nonlinearity=act, seed=k)
        cell = m.RNNCell(I, H, bias=bias, nonlinearity=act)
        load(m, cell, state_of(ref), "RNNCell")
        x, h = randn(10 + k, B, I), randn(20 + k, B, H)
        with torch.no_grad():
            want, want_zero = ref(x, h), ref(x)
        what = f"RNNCell({I}, {H}, bias={bias}, nonlinearity={act!r})"
        assert_close(cell(x, h), want.numpy(), f"{what}(x, h)", hint=RNN_HINT)
        assert_close(cell(x), want_zero.numpy(), f"{what}(x) with the default h = 0",
                     hint="With h=None start from zeros of shape (B, H) and x's dtype.")


@check("rnn_cell", "gradient")
def rnn_cell_gradients_match_torch(m):
    """Gradients with respect to x, h and every parameter equal autograd's through nn.RNNCell."""
    ref = reference(nn.RNNCell, 4, 3, seed=3)
    cell = m.RNNCell(4, 3)
    load(m, cell, state_of(ref), "RNNCell")
    compare_vjp(m, cell, ref, [randn(1, 5, 4), randn(2, 5, 3)], ["x", "h"], ["h'"], "RNNCell",
                RNN_HINT)


@check("rnn_cell", "oracle")
def rnn_cell_initialises_like_torch(m):
    """RNNCell's parameters have torch's shapes and are drawn from U(−1/√H, 1/√H)."""
    check_uniform_init(m, "RNNCell", (60, 15), 15, {"weight_ih": (15, 60), "weight_hh": (15, 15),
                                                    "bias_ih": (15,), "bias_hh": (15,)})


@check("rnn_cell", "stability")
def rnn_cell_keeps_float32_and_saturates_quietly(m):
    """In float32 the cell stays float32 and matches torch; inputs of ±1e4 saturate, no nan."""
    ref = reference(nn.RNNCell, 3, 4, seed=4).float()
    cell = m.RNNCell(3, 4)
    load(m, cell, {k: v.float() for k, v in state_of(ref).items()}, "RNNCell")
    x, h = randn(5, 2, 3).float(), randn(6, 2, 4).float()
    out = cell(x, h)
    assert_dtype(out, torch.float32, "RNNCell's output for float32 inputs")
    with torch.no_grad():
        assert_close(out, ref(x, h).numpy(), "RNNCell in float32")
    huge = torch.tensor([[1e4, -1e4, 1e4], [-1e4, 1e4, 0.0]], dtype=torch.float32)
    assert_finite(cell(huge, h), "RNNCell on inputs of ±1e4",
                  "tanh saturates at ±1 for any finite input: use torch.tanh, not a formula "
                  "with exp(2x), which overflows.")


@fingerprint("rnn_cell")
def rnn_cell_outputs(m):
    outputs = {}
    for act in ("tanh", "relu"):
        ref = reference(nn.RNNCell, 4, 3, nonlinearity=act, seed=7)
        cell = m.RNNCell(4, 3, nonlinearity=act)
        run_probe(m, "phase1.load_weights", cell, state_of(ref), False)
        outputs[act] = cell(randn(8, 3, 4), randn(9, 3, 3))
    params = run_probe(m, "phase1.parameters", _seeded(m, "RNNCell", 60, 15))
    outputs["init_top"] = np.round(max(float(np.abs(as_array(p, n)).max()) for n, p in
                                       params.items()) * np.sqrt(15), 1)
    return outputs


def _seeded(m, name: str, *args):
    run_probe(m, "phase1.seed", 0)
    return getattr(m, name)(*args)


# ------------------------------------------------------------------ 1.2 LSTMCell


@check("lstm_cell", "oracle")
def lstm_cell_matches_torch(m):
    """LSTMCell returns nn.LSTMCell's (h', c') with copied weights, with and without bias."""
    for k, (B, I, H, bias) in enumerate([(3, 4, 5, True), (2, 3, 2, False), (1, 2, 4, True)]):
        ref = reference(nn.LSTMCell, I, H, bias=bias, seed=10 + k)
        cell = m.LSTMCell(I, H, bias=bias)
        load(m, cell, state_of(ref), "LSTMCell")
        x, h, c = randn(30 + k, B, I), randn(40 + k, B, H), randn(50 + k, B, H, scale=2.0)
        with torch.no_grad():
            want, want_zero = ref(x, (h, c)), ref(x)
        what = f"LSTMCell({I}, {H}, bias={bias})"
        got = structure(cell(x, (h, c)), f"{what}(x, (h, c))", 2)
        for value, expected, name in zip(got, want, ("h'", "c'"), strict=True):
            assert_close(value, expected.numpy(), f"{what}: {name}", hint=LSTM_HINT)
        got = structure(cell(x), f"{what}(x)", 2)
        for value, expected, name in zip(got, want_zero, ("h'", "c'"), strict=True):
            assert_close(value, expected.numpy(), f"{what}(x) with the default state 0: {name}",
                         hint="With state=None start from h = c = 0.")


@check("lstm_cell", "gradient")
def lstm_cell_gradients_match_torch(m):
    """Gradients for x, h, c and every parameter equal autograd's through nn.LSTMCell."""
    ref = reference(nn.LSTMCell, 3, 4, seed=13)
    cell = m.LSTMCell(3, 4)
    load(m, cell, state_of(ref), "LSTMCell")
    compare_vjp(m, cell, ref, [randn(1, 2, 3), (randn(2, 2, 4), randn(3, 2, 4))], ["x", "h", "c"],
                ["h'", "c'"], "LSTMCell", LSTM_HINT)


@check("lstm_cell", "invariant")
def lstm_cell_with_open_forget_and_closed_input_gate_keeps_its_cell_state(m):
    """With forget-gate bias +1000 and input-gate bias −1000, c stays exactly c₀ for 20 steps."""
    I, H = 3, 4
    state = state_of(reference(nn.LSTMCell, I, H, seed=14))
    state["bias_ih"] = _gates(H, 4 * H, {0: -1000.0, 1: 1000.0}, seed=1)
    cell = m.LSTMCell(I, H)
    load(m, cell, state, "LSTMCell")
    h, c0 = randn(2, 2, H), randn(3, 2, H, scale=2.0)
    c = c0
    for t in range(20):
        h, c = structure(cell(randn(100 + t, 2, I, scale=3.0), (h, c)), "LSTMCell(x, (h, c))", 2)
    assert_close(c, c0.numpy(), "the cell state after 20 steps with f = 1, i = 0", atol=1e-12,
                 hint="Block 1 of the gates is the forget gate, block 0 the input gate; "
                      "c' = f⊙c + i⊙g keeps c when f = 1 and i = 0.")


@check("lstm_cell", "stability")
def lstm_cell_keeps_float32_and_saturates_quietly(m):
    """In float32 the cell stays float32 and matches torch; inputs of ±1e4 give no nan."""
    ref = reference(nn.LSTMCell, 3, 4, seed=15).float()
    cell = m.LSTMCell(3, 4)
    load(m, cell, {k: v.float() for k, v in state_of(ref).items()}, "LSTMCell")
    x, h, c = randn(5, 2, 3).float(), randn(6, 2, 4).float(), randn(7, 2, 4).float()
    got = structure(cell(x, (h, c)), "LSTMCell(x, (h, c))", 2)
    with torch.no_grad():
        want = ref(x, (h, c))
    for value, expected, name in zip(got, want, ("h'", "c'"), strict=True):
        assert_dtype(value, torch.float32, f"LSTMCell's {name} for float32 inputs")
        assert_close(value, expected.numpy(), f"LSTMCell in float32: {name}")
    huge = torch.tensor([[1e4, -1e4, 1e4], [-1e4, 1e4, 0.0]], dtype=torch.float32)
    for value in structure(cell(huge, (h, c)), "LSTMCell(x, (h, c))", 2):
        assert_finite(value, "LSTMCell on inputs of ±1e4",
                      "torch.sigmoid and torch.tanh are stable; a hand-made 1/(1 + exp(−x)) "
                      "may not be.")


@check("lstm_cell", "oracle")
def lstm_cell_initialises_like_torch(m):
    """LSTMCell's parameters have torch's (4H, ·) shapes and are drawn from U(−1/√H, 1/√H)."""
    H, I = 15, 60
    check_uniform_init(m, "LSTMCell", (I, H), H, {"weight_ih": (4 * H, I), "weight_hh": (4 * H, H),
                                                  "bias_ih": (4 * H,), "bias_hh": (4 * H,)})


@fingerprint("lstm_cell")
def lstm_cell_outputs(m):
    ref = reference(nn.LSTMCell, 3, 4, seed=16)
    cell = m.LSTMCell(3, 4)
    run_probe(m, "phase1.load_weights", cell, state_of(ref), False)
    h, c = cell(randn(1, 3, 3), (randn(2, 3, 4), randn(3, 3, 4, scale=2.0)))
    return {"h": h, "c": c}


# ------------------------------------------------------------------ 1.3 GRUCell


@check("gru_cell", "oracle")
def gru_cell_matches_torch(m):
    """GRUCell equals nn.GRUCell with copied weights, with and without bias."""
    for k, (B, I, H, bias) in enumerate([(3, 4, 5, True), (2, 3, 2, False), (1, 2, 4, True)]):
        ref = reference(nn.GRUCell, I, H, bias=bias, seed=20 + k)
        cell = m.GRUCell(I, H, bias=bias)
        load(m, cell, state_of(ref), "GRUCell")
        x, h = randn(60 + k, B, I), randn(70 + k, B, H)
        with torch.no_grad():
            want, want_zero = ref(x, h), ref(x)
        what = f"GRUCell({I}, {H}, bias={bias})"
        assert_close(cell(x, h), want.numpy(), f"{what}(x, h)", hint=GRU_HINT)
        assert_close(cell(x), want_zero.numpy(), f"{what}(x) with the default h = 0")


@check("gru_cell", "gradient")
def gru_cell_gradients_match_torch(m):
    """Gradients with respect to x, h and every parameter equal autograd's through nn.GRUCell."""
    ref = reference(nn.GRUCell, 3, 4, seed=23)
    cell = m.GRUCell(3, 4)
    load(m, cell, state_of(ref), "GRUCell")
    compare_vjp(m, cell, ref, [randn(1, 2, 3), randn(2, 2, 4)], ["x", "h"], ["h'"], "GRUCell",
                GRU_HINT)


@check("gru_cell", "invariant")
def gru_cell_with_update_gate_pinned_keeps_its_state(m):
    """With update-gate bias +1000 (z = 1), h stays exactly h₀ for 20 steps."""
    I, H = 3, 4
    state = state_of(reference(nn.GRUCell, I, H, seed=24))
    state["bias_ih"] = _gates(H, 3 * H, {1: 1000.0}, seed=2)
    cell = m.GRUCell(I, H)
    load(m, cell, state, "GRUCell")
    h0 = randn(4, 2, H)
    h = h0
    for t in range(20):
        h = cell(randn(200 + t, 2, I, scale=3.0), h)
    assert_close(h, h0.numpy(), "the hidden state after 20 steps with z = 1", atol=1e-12,
                 hint="In PyTorch's GRU z weights the old state: h' = (1 − z)⊙n + z⊙h. The "
                      "textbook form h' = (1 − z)⊙h + z⊙h̃ is the mirror image.")


@check("gru_cell", "invariant")
def gru_cell_with_reset_gate_closed_ignores_the_whole_hidden_projection(m):
    """With r = 0 and z = 0, h' = tanh(x W_inᵀ + b_in): r scales W_hn·h + b_hn, bias included."""
    I, H = 3, 4
    state = state_of(reference(nn.GRUCell, I, H, seed=25))
    state["bias_ih"] = _gates(H, 3 * H, {0: -1000.0, 1: -1000.0}, seed=3)
    state["bias_hh"] = randn(5, 3 * H, scale=2.0)  # a large b_hn, to be seen if r misses it
    cell = m.GRUCell(I, H)
    load(m, cell, state, "GRUCell")
    x, h = randn(6, 3, I), randn(7, 3, H)
    expected = torch.tanh(x @ state["weight_ih"][2 * H:].T + state["bias_ih"][2 * H:])
    assert_close(cell(x, h), expected.numpy(), "GRUCell with r = 0 and z = 0",
                 hint="PyTorch applies r after the matmul, to (W_hn h + b_hn): with r = 0 "
                      "neither h nor b_hn reaches n.")


@check("gru_cell", "stability")
def gru_cell_keeps_float32_and_saturates_quietly(m):
    """In float32 the cell stays float32 and matches torch; inputs of ±1e4 give no nan."""
    ref = reference(nn.GRUCell, 3, 4, seed=26).float()
    cell = m.GRUCell(3, 4)
    load(m, cell, {k: v.float() for k, v in state_of(ref).items()}, "GRUCell")
    x, h = randn(5, 2, 3).float(), randn(6, 2, 4).float()
    out = cell(x, h)
    assert_dtype(out, torch.float32, "GRUCell's output for float32 inputs")
    with torch.no_grad():
        assert_close(out, ref(x, h).numpy(), "GRUCell in float32")
    huge = torch.tensor([[1e4, -1e4, 1e4], [-1e4, 1e4, 0.0]], dtype=torch.float32)
    assert_finite(cell(huge, h), "GRUCell on inputs of ±1e4",
                  "σ and tanh saturate for any finite input: use torch.sigmoid and torch.tanh, "
                  "not formulas with exp, which overflow.")


@check("gru_cell", "oracle")
def gru_cell_initialises_like_torch(m):
    """GRUCell's parameters have torch's (3H, ·) shapes and are drawn from U(−1/√H, 1/√H)."""
    H, I = 15, 60
    check_uniform_init(m, "GRUCell", (I, H), H, {"weight_ih": (3 * H, I), "weight_hh": (3 * H, H),
                                                 "bias_ih": (3 * H,), "bias_hh": (3 * H,)})


@fingerprint("gru_cell")
def gru_cell_outputs(m):
    ref = reference(nn.GRUCell, 3, 4, seed=27)
    cell = m.GRUCell(3, 4)
    run_probe(m, "phase1.load_weights", cell, state_of(ref), False)
    return {"h": cell(randn(1, 3, 3), randn(2, 3, 4)), "h_zero": cell(randn(3, 2, 3))}


# ------------------------------------------------------------------ 1.4 PeepholeLSTMCell

PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")
PEEPHOLE_HINT = ("i and f peek at the old c, o at the new c': i = σ(i + w_ci⊙c), "
                 "f = σ(f + w_cf⊙c), o = σ(o + w_co⊙c').")


def _peephole_state(I: int, H: int, seed: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    state = state_of(reference(nn.LSTMCell, I, H, seed=seed))
    for k, name in enumerate(PEEPHOLES):
        state[name] = randn(seed + k, H, scale=scale)
    return state


def _peephole_reference(x, h, c, s: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.lstm_cell, one sample at a time, with the peepholes folded into the biases.

    For a single sample w⊙c is a fixed vector, so a diagonal peephole is an extra bias: shift
    the input/forget biases by w_ci⊙c, w_cf⊙c to get c'; run again with the output bias also
    shifted by w_co⊙c' to get h'. Differentiable end to end, so autograd gives the gradients."""
    zeros = torch.zeros_like(s["weight_ci"])
    hs, cs = [], []
    for b in range(x.shape[0]):
        xb, state = x[b:b + 1], (h[b:b + 1], c[b:b + 1])
        peek = [s["weight_ci"] * c[b], s["weight_cf"] * c[b], zeros]
        _, c_new = torch.lstm_cell(xb, state, s["weight_ih"], s["weight_hh"],
                                   s["bias_ih"] + torch.cat([*peek, zeros]), s["bias_hh"])
        h_new, _ = torch.lstm_cell(xb, state, s["weight_ih"], s["weight_hh"],
                                   s["bias_ih"] + torch.cat([*peek, s["weight_co"] * c_new[0]]),
                                   s["bias_hh"])
        hs.append(h_new)
        cs.append(c_new)
    return torch.cat(hs), torch.cat(cs)


@check("peephole_lstm", "oracle")
def peephole_with_zero_peepholes_is_the_lstm_cell(m):
    """With w_ci = w_cf = w_co = 0 the peephole cell returns nn.LSTMCell's (h', c')."""
    I, H = 3, 4
    ref = reference(nn.LSTMCell, I, H, seed=30)
    state = {**state_of(ref), **{name: torch.zeros(H, dtype=DT) for name in PEEPHOLES}}
    cell = m.PeepholeLSTMCell(I, H)
    load(m, cell, state, "PeepholeLSTMCell")
    x, h, c = randn(1, 3, I), randn(2, 3, H), randn(3, 3, H)
    with torch.no_grad():
        want = ref(x, (h, c))
    got = structure(cell(x, (h, c)), "PeepholeLSTMCell(x, (h, c))", 2)
    for value, expected, name in zip(got, want, ("h'", "c'"), strict=True):
        assert_close(value, expected.numpy(), f"PeepholeLSTMCell with zero peepholes: {name}",
                     hint="Without peepholes this is exactly LSTMCell: gate order (i, f, g, o).")


@check("peephole_lstm", "oracle")
def peephole_matches_lstm_cell_with_peepholes_folded_into_the_biases(m):
    """With peepholes, (h', c') equal torch.lstm_cell with biases shifted by w⊙c (w_co⊙c')."""
    for k, (B, I, H) in enumerate([(3, 3, 4), (2, 5, 2)]):
        state = _peephole_state(I, H, seed=31 + k, scale=1.5)
        cell = m.PeepholeLSTMCell(I, H)
        load(m, cell, state, "PeepholeLSTMCell")
        x, h, c = randn(4 + k, B, I), randn(5 + k, B, H), randn(6 + k, B, H, scale=2.0)
        with torch.no_grad():
            want = _peephole_reference(x, h, c, state)
        got = structure(cell(x, (h, c)), "PeepholeLSTMCell(x, (h, c))", 2)
        for value, expected, name in zip(got, want, ("h'", "c'"), strict=True):
            assert_close(value, expected.numpy(), f"PeepholeLSTMCell({I}, {H}): {name}",
                         hint=PEEPHOLE_HINT)


@check("peephole_lstm", "gradient")
def peephole_gradients_match_the_folded_bias_reference(m):
    """Gradients for x, h, c and all seven parameters (peepholes too) equal the reference's."""
    I, H = 3, 4
    state = _peephole_state(I, H, seed=35, scale=1.5)
    cell = m.PeepholeLSTMCell(I, H)
    load(m, cell, state, "PeepholeLSTMCell")
    inputs = {"x": randn(1, 2, I), "h": randn(2, 2, H), "c": randn(3, 2, H)}
    leaves = {k: v.clone().requires_grad_(True) for k, v in {**inputs, **state}.items()}
    h_new, c_new = _peephole_reference(leaves["x"], leaves["h"], leaves["c"], leaves)
    v_h, v_c = randn(8, 2, H), randn(9, 2, H)
    ((h_new * v_h).sum() + (c_new * v_c).sum()).backward()
    got = run_probe(m, "phase1.vjp", cell, [inputs["x"], (inputs["h"], inputs["c"])], [v_h, v_c])
    for name, grad in zip(("x", "h", "c"), got["inputs"], strict=True):
        if grad is None:
            raise CheckFailed(f"no gradient reached the input {name}.")
        assert_close(grad, leaves[name].grad.numpy(), f"gradient with respect to {name}",
                     hint=PEEPHOLE_HINT)
    for name in state:
        grad = got["parameters"].get(name)
        if grad is None:
            raise CheckFailed(f"no gradient reached the parameter {name}: is it an nn.Parameter "
                              f"used in forward?", "self.weight_ci = nn.Parameter(torch.empty(H))")
        assert_close(grad, leaves[name].grad.numpy(), f"gradient with respect to {name}",
                     hint=PEEPHOLE_HINT)


@check("peephole_lstm", "oracle")
def peephole_parameters_are_registered_and_initialised(m):
    """The three peephole weights are (H,) nn.Parameters from U(−1/√H, 1/√H), beside LSTMCell's."""
    H, I = 200, 4
    check_uniform_init(m, "PeepholeLSTMCell", (I, H), H, {
        "weight_ih": (4 * H, I), "weight_hh": (4 * H, H), "bias_ih": (4 * H,), "bias_hh": (4 * H,),
        **{name: (H,) for name in PEEPHOLES}})


@fingerprint("peephole_lstm")
def peephole_outputs(m):
    state = _peephole_state(3, 4, seed=37, scale=1.5)
    cell = m.PeepholeLSTMCell(3, 4)
    run_probe(m, "phase1.load_weights", cell, state, False)
    h, c = cell(randn(1, 2, 3), (randn(2, 2, 4), randn(3, 2, 4, scale=2.0)))
    names = run_probe(m, "phase1.parameters", m.PeepholeLSTMCell(3, 4))
    return {"h": h, "c": c, "parameters": np.array(len(names))}
