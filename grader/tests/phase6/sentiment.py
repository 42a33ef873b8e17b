"""6.11 the sentiment classifier: the logits against the head of its own hidden state at each
row's last real token, taken in the judge; invariance to the padding's length and content, the
gradients of the head (and none into padding), dropout in train mode only, init, and the dtype
contract."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks, seeded_module
from grader.checks.oracle import as_array, assert_close
from grader.session import fetch, operator_call, run_probe
from grader.tests.phase2._helpers import gradients, run
from grader.tests.phase6._helpers import randint, randn, safely

F64 = torch.float64
TIGHT = {"rtol": 1e-9, "atol": 1e-11}
VOCAB = 17
SIZES = {"vocab_size": VOCAB, "d_model": 8, "n_layer": 2, "num_classes": 3, "d_state": 4}
POOL_HINT = ("pooled_b = h_{b, lengths_b − 1}, h = norm_f(output of the layers): the state at "
             "row b's last real token — not at position T − 1 (padding for a short row), not "
             "a mean over positions — then head(dropout(pooled)).")
LENGTHS = torch.tensor([5, 1, 9, 3])


def classifier(m, seed: int = 0, **kwargs):
    """The student's SentimentClassifier(**SIZES | kwargs), seeded, float64, eval mode."""
    return seeded_module(m, m.SentimentClassifier, **{**SIZES, **kwargs}, seed=seed).double()


def padded(seed: int, lengths: torch.Tensor, width: int, pad_seed: int) -> torch.Tensor:
    """Token ids (B, width): the same real tokens for a seed, random padding after them."""
    real = randint(seed, VOCAB, len(lengths), int(lengths.max()))
    idx = randint(pad_seed, VOCAB, len(lengths), width)
    keep = torch.arange(width) < lengths[:, None]
    idx[:, :real.shape[1]] = torch.where(keep[:, :real.shape[1]], real, idx[:, :real.shape[1]])
    return idx


def hidden_states(m, model, idx) -> np.ndarray:
    """norm_f(layers(embedding(idx))), computed by calling the student's own modules."""
    x = run(m, model.embedding, idx)
    for k in range(operator_call(model.layers, "len", model.layers)):
        x = run(m, model.layers[k], torch.from_numpy(x))
    return run(m, model.norm_f, torch.from_numpy(x))


def last_real(h: np.ndarray, lengths: torch.Tensor) -> np.ndarray:
    """h (B, T, C) → (B, C): row b's state at position lengths_b − 1."""
    return h[np.arange(len(h)), lengths.numpy() - 1]


@check("sentiment_classifier", "oracle", weight=2)
def logits_are_the_head_of_the_last_real_state(m):
    """The logits equal head(norm_f's output at each row's position lengths_b − 1), the pooling
    and the head computed in the judge from your own hidden states and head weights
    (float64)."""
    model = classifier(m, 1)
    idx = padded(300, LENGTHS, 11, 301)
    pooled = last_real(hidden_states(m, model, idx), LENGTHS)
    weight = as_array(fetch(model.head.weight), "head.weight")
    bias = as_array(fetch(model.head.bias), "head.bias")
    assert_close(run(m, model, idx, LENGTHS), pooled @ weight.T + bias,
                 "the classifier's logits", hint=POOL_HINT, **TIGHT)


@check("sentiment_classifier", "invariant", weight=2)
def padding_changes_nothing(m):
    """The same sentences padded to 9, 12 and 20 positions, with different padding ids, give
    the same logits (float64, within 1e-9)."""
    model = classifier(m, 2)
    base = run(m, model, padded(310, LENGTHS, 9, 311), LENGTHS)
    for width, pad_seed in ((9, 312), (12, 313), (20, 314)):
        out = run(m, model, padded(310, LENGTHS, width, pad_seed), LENGTHS)
        assert_close(out, base, f"the logits with the batch padded to {width} positions "
                     "(other padding ids)", hint=POOL_HINT + " Padding sits after the real "
                     "tokens, so causal layers never mix it into them.", **TIGHT)


@check("sentiment_classifier", "gradient")
def gradients_reach_the_head_and_never_the_padding(m):
    """∂/∂head.weight = upstreamᵀ·pooled and ∂/∂head.bias = Σ upstream, and an id that occurs
    only in padding gets no embedding gradient."""
    model = classifier(m, 3)
    idx = padded(320, LENGTHS, 10, 321)
    pad_only = VOCAB - 1
    real = torch.arange(10) < LENGTHS[:, None]
    idx = torch.where(real, torch.where(idx == pad_only, 0, idx), pad_only)
    upstream = randn(322, 4, 3)
    result = gradients(m, model, [idx, LENGTHS], upstream, "SentimentClassifier")
    pooled = last_real(hidden_states(m, model, idx), LENGTHS)
    params = result["params"]
    for name in ("head.weight", "head.bias", "embedding.weight"):
        if params.get(name) is None:
            raise CheckFailed(f"no gradient reaches {name}.", POOL_HINT)
    assert_close(params["head.weight"], upstream.numpy().T @ pooled, "∂/∂head.weight",
                 hint=POOL_HINT, **TIGHT)
    assert_close(params["head.bias"], upstream.numpy().sum(0), "∂/∂head.bias", hint=POOL_HINT,
                 **TIGHT)
    row = as_array(params["embedding.weight"], "∂/∂embedding.weight")[pad_only]
    if np.abs(row).max() > 1e-12:
        raise CheckFailed("the embedding of an id that occurs only in the padding gets a "
                          "gradient: the padding influences the logits.", POOL_HINT)


@check("sentiment_classifier", "invariant")
def dropout_acts_in_train_mode_only(m):
    """With dropout = 0.5, eval mode gives the logits of the same model without dropout, and
    train mode gives other logits that depend on the seed."""
    idx = padded(330, LENGTHS, 9, 331)
    plain = run(m, classifier(m, 4), idx, LENGTHS)
    model = classifier(m, 4, dropout=0.5)
    assert_close(run(m, model, idx, LENGTHS), plain, "the logits with dropout 0.5 in eval mode",
                 hint="Dropout is the identity in eval mode.", **TIGHT)
    trained = [run(m, model, idx, LENGTHS, train=True, seed=s) for s in (5, 5, 6)]
    if np.allclose(trained[0], plain):
        raise CheckFailed("dropout = 0.5 changes nothing in train mode.",
                          "Apply nn.Dropout(dropout) to the pooled vector before the head.")
    if not np.allclose(trained[0], trained[1]) or np.allclose(trained[0], trained[2]):
        raise CheckFailed("dropout in train mode does not follow torch's seed.",
                          "Use nn.Dropout (torch's global generator), not your own random "
                          "source.")


@check("sentiment_classifier", "invariant")
def classifier_is_built_as_documented(m):
    """Parameters embedding (V, d_model) ~ N(0, 0.02²), layers.k (MambaLayers), norm_f and
    head (num_classes, d_model) with a bias; one logit per class."""
    model = seeded_module(m, m.SentimentClassifier, 400, d_model=64, n_layer=1, num_classes=5)
    shapes = run_probe(m, "phase2.parameter_shapes", model)
    expected = {"embedding.weight": [400, 64], "norm_f.weight": [64], "head.weight": [5, 64],
                "head.bias": [5], "layers.0.mixer.A_log": [128, 16],
                "layers.0.norm.weight": [64]}
    wrong = {k: shapes.get(k) for k, v in expected.items() if shapes.get(k) != v}
    if wrong:
        raise CheckFailed(f"parameters {wrong} (name: shape), expected "
                          f"{ {k: expected[k] for k in wrong} }.",
                          "embedding, layers (a ModuleList of MambaLayer), norm_f, head, as "
                          "the docstring says; d_state defaults to 16.")
    embedding = as_array(fetch(model.embedding.weight), "embedding.weight")
    if abs(embedding.std() - 0.02) > 0.002:
        raise CheckFailed(f"the embedding starts with std {embedding.std():.4f}, expected 0.02.",
                          "nn.init.normal_(self.embedding.weight, std=0.02).")


DECLARED = [
    Numeric("SentimentClassifier.forward",
            lambda m, dt: (seeded_module(m, m.SentimentClassifier, **SIZES).to(dt),
                           [padded(340, LENGTHS, 9, 341), LENGTHS], {})),
]
globals().update(contract_checks(__name__, "sentiment_classifier", DECLARED, torch_phase=True))


@fingerprint("sentiment_classifier")
def classifier_outputs(m):
    def logits(width):
        return lambda: np.round(run(m, classifier(m, 7), padded(350, LENGTHS, width, 351),
                                    LENGTHS), 4)

    return {"short": safely(logits(9)), "long": safely(logits(14))}
