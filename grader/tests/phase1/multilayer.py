"""1.5 MultiLayerRNN against nn.RNN / nn.LSTM / nn.GRU with copied state dicts: outputs, final
states, gradients, dropout between layers, the symmetry of a bidirectional layer, continuing
from h_0, and 1000-step sequences."""

from __future__ import annotations

import torch
from torch import nn

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import assert_close
from grader.checks.stability import assert_finite
from grader.session import run_probe
from grader.tests.phase1._helpers import compare, compare_vjp, load, randn, reference, state_of

TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
OUTPUT_HINT = ("output holds the last layer's states [forward, backward] at every step; the "
               "backward direction reads x.flip(1), so flip its outputs back before concatenating.")
H_N_HINT = ("h_n is (num_layers·num_directions, B, H), layer-major: [l0 forward, l0 backward, "
            "l1 forward, …]; the backward direction's final state is the one after reading x_0.")


def _pair(cell_type: str, I: int, H: int, seed: int, **options):
    """(torch reference, the student's MultiLayerRNN with its weights) for the same options."""
    options.setdefault("batch_first", True)
    ref = reference(TORCH[cell_type], I, H, seed=seed, **options)
    return ref, options


def _student(m, cell_type: str, I: int, H: int, ref, options: dict):
    model = m.MultiLayerRNN(I, H, cell_type=cell_type, **options)
    load(m, model, state_of(ref), f"MultiLayerRNN(cell_type={cell_type!r}, {_describe(options)})")
    return model


def _describe(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items())


def _initial_state(cell_type: str, layers: int, B: int, H: int, seed: int):
    h0 = randn(seed, layers, B, H)
    return (h0, randn(seed + 1, layers, B, H)) if cell_type == "lstm" else h0


def _names(cell_type: str) -> list[str]:
    return ["output", "h_n", "c_n"] if cell_type == "lstm" else ["output", "h_n"]


def _flat(value, what: str, cell_type: str) -> list:
    """(output, h_n) or (output, (h_n, c_n)) as a flat list, or a message saying what came back."""
    if isinstance(value, tuple) and len(value) == 2:
        output, final = value
        if cell_type != "lstm" and isinstance(final, torch.Tensor):
            return [output, final]
        if cell_type == "lstm" and isinstance(final, tuple) and len(final) == 2:
            return [output, *final]
    shape = "(output, (h_n, c_n))" if cell_type == "lstm" else "(output, h_n)"
    raise CheckFailed(f"{what} should return {shape}, but returned {type(value).__name__}.")


CONFIGS = [
    ("rnn", dict(num_layers=1)),
    ("lstm", dict(num_layers=2, bidirectional=True)),
    ("gru", dict(num_layers=2, bidirectional=True)),
    ("gru", dict(num_layers=1, batch_first=False)),
    ("lstm", dict(num_layers=1, bias=False, bidirectional=True)),
    ("rnn", dict(num_layers=3)),
]


@check("multilayer_rnn", "oracle", weight=2)
def multilayer_rnn_matches_torch(m):
    """(output, h_n) equal torch's RNN/LSTM/GRU: 1–3 layers, bidirectional, bias-free, with h_0.

    Also time-first (batch_first=False) and with h_0=None.
    """
    B, T, I, H = 2, 5, 3, 4
    for k, (cell_type, options) in enumerate(CONFIGS):
        ref, options = _pair(cell_type, I, H, seed=40 + k, **options)
        model = _student(m, cell_type, I, H, ref, options)
        layers = options["num_layers"] * (2 if options.get("bidirectional") else 1)
        x = randn(50 + k, B, T, I) if options["batch_first"] else randn(50 + k, T, B, I)
        what = f"MultiLayerRNN(cell_type={cell_type!r}, {_describe(options)})"
        for h_0 in (None, _initial_state(cell_type, layers, B, H, seed=60 + k)):
            with torch.no_grad():
                want = _flat(ref(x, h_0), "torch", cell_type)
            got = _flat(model(x, h_0), what, cell_type)
            given = "with h_0" if h_0 is not None else "with h_0=None"
            compare(got[:1], want[:1], ["output"], f"{what} {given}", OUTPUT_HINT)
            compare(got[1:], want[1:], _names(cell_type)[1:], f"{what} {given}", H_N_HINT)


@check("multilayer_rnn", "gradient")
def multilayer_rnn_gradients_match_torch(m):
    """Gradients for x, h_0 and all parameters of 2-layer bidirectional LSTM/GRU equal torch's."""
    B, T, I, H = 2, 4, 3, 3
    for k, cell_type in enumerate(("lstm", "gru")):
        ref, options = _pair(cell_type, I, H, seed=70 + k, num_layers=2, bidirectional=True)
        model = _student(m, cell_type, I, H, ref, options)
        h_0 = _initial_state(cell_type, 4, B, H, seed=80 + k)
        input_names = ["x", "h_0", "c_0"] if cell_type == "lstm" else ["x", "h_0"]
        compare_vjp(m, model, ref, [randn(90 + k, B, T, I), h_0], input_names,
                    _names(cell_type), f"2-layer bidirectional {cell_type.upper()}", OUTPUT_HINT)


@check("multilayer_rnn", "oracle")
def multilayer_rnn_applies_dropout_between_layers_in_training_only(m):
    """Dropout acts between layers, in training only, never on the top layer's output.

    With p = 1 the outputs equal torch's in both modes; with p = 0.5 output[:, -1] = h_n[-1].
    """
    B, T, I, H = 3, 4, 3, 4
    x = randn(100, B, T, I)
    ref, options = _pair("gru", I, H, seed=101, num_layers=3, dropout=1.0)
    model = _student(m, "gru", I, H, ref, options)
    hint = ("Drop the input of layers 1, 2, … in training mode (F.dropout(…, training=self."
            "training)); never the first layer's input or the last layer's output.")
    for train in (True, False):
        ref.train(train)
        with torch.no_grad():
            want = _flat(ref(x), "torch", "gru")
        got = _flat(run_probe(m, "phase1.forward", model, [x], train), "MultiLayerRNN", "gru")
        mode = "training" if train else "eval"
        compare(got, want, ["output", "h_n"], f"3-layer GRU with dropout=1.0 in {mode} mode",
                hint)
    ref, options = _pair("lstm", I, H, seed=102, num_layers=2, dropout=0.5)
    model = _student(m, "lstm", I, H, ref, options)
    run_probe(m, "phase1.seed", 0)
    output, h_n, _ = _flat(run_probe(m, "phase1.forward", model, [x], True), "MultiLayerRNN",
                           "lstm")
    assert_close(output[:, -1], h_n[-1].numpy(), "2-layer LSTM with dropout=0.5 in training "
                 "mode: output[:, -1] against the top layer's h_n", hint=hint)


def _swap_directions(state: dict) -> dict:
    partner = {name: name[:-len("_reverse")] if name.endswith("_reverse") else name + "_reverse"
               for name in state}
    return {name: state[partner[name]] for name in state}


@check("multilayer_rnn", "invariant")
def bidirectional_layer_on_the_reversed_sequence_swaps_its_directions(m):
    """Directions' weights swapped + reversed input = time-reversed output, halves swapped."""
    B, T, I, H = 2, 6, 3, 4
    for k, cell_type in enumerate(("gru", "lstm")):
        ref, options = _pair(cell_type, I, H, seed=110 + k, bidirectional=True)
        model = _student(m, cell_type, I, H, ref, options)
        swapped = m.MultiLayerRNN(I, H, cell_type=cell_type, **options)
        load(m, swapped, _swap_directions(state_of(ref)), "MultiLayerRNN")
        x = randn(120 + k, B, T, I)
        output, h_n = _flat(model(x), "MultiLayerRNN", cell_type)[:2]
        output_r, h_n_r = _flat(swapped(x.flip(1)), "MultiLayerRNN", cell_type)[:2]
        what = f"bidirectional {cell_type.upper()} on the reversed sequence"
        expected = torch.cat([output[..., H:], output[..., :H]], dim=-1).flip(1)
        assert_close(output_r, expected.numpy(), f"{what}: output", hint=OUTPUT_HINT)
        assert_close(h_n_r, h_n.flip(0).numpy(), f"{what}: h_n (directions swapped)",
                     hint=H_N_HINT)


@check("multilayer_rnn", "invariant")
def multilayer_rnn_continues_from_its_final_state(m):
    """Running x[:, :3] and then x[:, 3:] from the first part's h_n equals running all of x."""
    B, T, I, H = 2, 7, 3, 4
    for k, cell_type in enumerate(("lstm", "gru")):
        ref, options = _pair(cell_type, I, H, seed=130 + k, num_layers=2)
        model = _student(m, cell_type, I, H, ref, options)
        x = randn(140 + k, B, T, I)
        whole = _flat(model(x), "MultiLayerRNN", cell_type)
        first = _flat(model(x[:, :3]), "MultiLayerRNN", cell_type)
        h_0 = (first[1], first[2]) if cell_type == "lstm" else first[1]
        rest = _flat(model(x[:, 3:], h_0), "MultiLayerRNN", cell_type)
        what = f"2-layer {cell_type.upper()} run in two pieces"
        assert_close(rest[0], whole[0][:, 3:].numpy(), f"{what}: output of the second piece",
                     hint="Start every layer from its own slice of h_0 (index layer·D + d).")
        compare(rest[1:], whole[1:], _names(cell_type)[1:], what, H_N_HINT)


@check("multilayer_rnn", "stability")
def multilayer_rnn_is_stable_over_1000_steps(m):
    """On a 1000-step sequence an LSTM's outputs and gradients stay finite and equal torch's."""
    B, T, I, H = 2, 1000, 3, 5
    ref, options = _pair("lstm", I, H, seed=150)
    model = _student(m, "lstm", I, H, ref, options)
    got = compare_vjp(m, model, ref, [randn(151, B, T, I, scale=2.0)], ["x"], _names("lstm"),
                      "LSTM over 1000 steps", "Work step by step; no state should grow "
                      "without bound through an LSTM.", rtol=1e-8, atol=1e-10)
    for name, grad in got["parameters"].items():
        assert_finite(grad, f"the gradient of {name} over 1000 steps",
                      "The LSTM's cell path is additive and its gates saturate: a nan here "
                      "means a state or gradient that grows without bound over the steps.")


@fingerprint("multilayer_rnn")
def multilayer_rnn_outputs(m):
    B, T, I, H = 2, 4, 3, 3
    outputs = {}
    for k, cell_type in enumerate(("lstm", "gru")):
        ref, options = _pair(cell_type, I, H, seed=160 + k, num_layers=2, bidirectional=True)
        model = m.MultiLayerRNN(I, H, cell_type=cell_type, **options)
        run_probe(m, "phase1.load_weights", model, state_of(ref), False)
        h_0 = _initial_state(cell_type, 4, B, H, seed=170 + k)
        for name, value in zip(_names(cell_type), _flat(model(randn(180 + k, B, T, I), h_0),
                                                         "", cell_type), strict=True):
            outputs[f"{cell_type}_{name}"] = value
    ref, options = _pair("gru", I, H, seed=190, num_layers=3, dropout=1.0)
    model = m.MultiLayerRNN(I, H, cell_type="gru", **options)
    run_probe(m, "phase1.load_weights", model, state_of(ref), False)
    for train in (True, False):
        output = run_probe(m, "phase1.forward", model, [randn(191, B, T, I)], train)[0]
        outputs[f"dropout_{'train' if train else 'eval'}"] = output
    return outputs
