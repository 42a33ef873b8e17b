"""6.7 the encoder–decoder Transformer: logits, memory and gradients against nn.Transformer
between embeddings and a head with the same weights (post- and pre-norm, float64 and float32,
with padding masks), causality of the decoder, padding that changes nothing, Xavier init and
the documented contract (dropout, max_len, dtypes)."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks, raises, seeded_module
from grader.checks.oracle import assert_close
from grader.session import run_probe
from grader.tests.phase2._helpers import gradients, run
from grader.tests.phase6._helpers import randint, randn, safely
from grader.tests.phase6._seq2seq import SIZES, paired_models, student_model, student_name

TIGHT = {"rtol": 1e-9, "atol": 1e-10}  # float64, the same formulas in another order
GELU_TOL = {"rtol": 1e-6, "atol": 1e-6}  # torch's exact GELU against yours through an erf
FLOAT32 = {"rtol": 1e-4, "atol": 1e-5}
B, S, T = 2, 7, 6
SRC_KEEP = torch.arange(S)[None, :] < torch.tensor([S, 4])[:, None]  # (B, S) True = real
TGT_KEEP = torch.arange(T)[None, :] < torch.tensor([T, 3])[:, None]  # (B, T)
ARCH_HINT = ("x = dropout(E[ids]·√d_model + PE[0 … T−1]); the encoder layers on the source; "
             "the decoder layers on the target with the memory; with norm_first, encoder_norm "
             "after the encoder and decoder_norm after the decoder (post-norm has neither); "
             "then head.")
MASK_HINT = ("src_padding_mask goes to every encoder layer as src_key_padding_mask AND to every "
             "decoder layer as memory_key_padding_mask (cross-attention must not read padded "
             "source positions); tgt_padding_mask is the decoder's tgt_key_padding_mask. True = "
             "a real token, as in phase 2.")
CONFIGS = [  # (description, config overrides, tolerance)
    ("post-norm, relu", {}, TIGHT),
    ("pre-norm, relu, 4 heads", {"norm_first": True, "nhead": 4}, TIGHT),
    ("pre-norm, gelu, 1 encoder and 3 decoder layers",
     {"norm_first": True, "activation": "gelu", "num_encoder_layers": 1,
      "num_decoder_layers": 3}, GELU_TOL),
]


def _ids(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return randint(seed, SIZES["src_vocab_size"], B, S), randint(seed + 1, SIZES["tgt_vocab_size"],
                                                                 B, T)


def _logits(m, student, src, tgt, src_keep=None, tgt_keep=None, train=False, seed=0):
    return run(m, student, src, tgt, src_keep, tgt_keep, train=train, seed=seed)


@check("seq2seq_model", "oracle", weight=3)
def seq2seq_matches_nn_transformer(m):
    """Seq2SeqTransformer's logits equal nn.Transformer's between embeddings scaled by
    √d_model plus the sinusoidal table and a linear head, with the same weights (float64, eval
    mode, dropout 0.1): post- and pre-norm, relu and gelu, without and with padding masks."""
    for k, (description, config, tolerance) in enumerate(CONFIGS):
        reference, student = paired_models(m, 10 + k, **config)
        src, tgt = _ids(20 + 2 * k)
        for masks, what in (((None, None), "no masks"), ((SRC_KEEP, TGT_KEEP), "padding masks")):
            with torch.no_grad():
                expected = reference(src, tgt, *masks).numpy()
            assert_close(_logits(m, student, src, tgt, *masks), expected,
                         f"the logits of your Seq2SeqTransformer ({description}, {what})",
                         hint=ARCH_HINT if masks[0] is None else MASK_HINT, **tolerance)


@check("seq2seq_model", "oracle")
def seq2seq_float32_matches_nn_transformer(m):
    """In float32 (the weights cast) the logits equal the float64 reference's to float32
    accuracy and are float32: post- and pre-norm, with padding masks."""
    for k, (description, config, _) in enumerate(CONFIGS[:2]):
        reference, student = paired_models(m, 30 + k, dtype=torch.float32, **config)
        src, tgt = _ids(40 + 2 * k)
        with torch.no_grad():
            expected = reference(src, tgt, SRC_KEEP, TGT_KEEP).float().numpy()
        assert_close(_logits(m, student, src, tgt, SRC_KEEP, TGT_KEEP), expected,
                     f"the float32 logits ({description}, padding masks)",
                     hint="Do not cast: the positional table follows x's dtype, everything "
                          "else the parameters'.", **FLOAT32)


@check("seq2seq_model", "oracle")
def seq2seq_encode_and_decode_compose_to_forward(m):
    """encode(src, src_padding_mask) equals nn.Transformer's encoder output (its final norm
    only with norm_first), and decode(tgt, memory, masks) on it equals forward."""
    for k, (description, config, tolerance) in enumerate(CONFIGS[:2]):
        reference, student = paired_models(m, 50 + k, **config)
        student.eval()
        src, tgt = _ids(60 + 2 * k)
        with torch.no_grad():
            hidden = ~SRC_KEEP[:, None, :].expand(B, S, S)
            heads = reference.nhead
            mask = hidden[:, None].expand(B, heads, S, S).reshape(B * heads, S, S)
            with torch.enable_grad():
                memory = reference.transformer.encoder(
                    reference._embed(src, reference.src_embed), mask=mask).detach()
            logits = reference(src, tgt, SRC_KEEP, TGT_KEEP)
        got = run(m, student.encode, src, SRC_KEEP)
        assert_close(got, memory.numpy(), f"encode(src, src_padding_mask) ({description})",
                     hint="encode = the encoder layers on the embedded source, then "
                          "encoder_norm with norm_first (post-norm layers end with a norm "
                          "already).", **tolerance)
        decoded = run(m, student.decode, tgt, torch.as_tensor(got), SRC_KEEP, TGT_KEEP)
        assert_close(decoded, logits.numpy(), f"decode(tgt, encode(src), masks) ({description})",
                     hint="decode embeds the target, runs the decoder layers on it with the "
                          "memory, applies decoder_norm with norm_first, then head.",
                     **tolerance)


@check("seq2seq_model", "gradient")
def seq2seq_gradients_reach_every_parameter_as_torchs(m):
    """The gradient of Σ u·logits with respect to every parameter equals torch autograd's
    through the nn.Transformer model (pre-norm, padding masks, float64)."""
    reference, student = paired_models(m, 70, norm_first=True)
    src, tgt = _ids(71)
    upstream = randn(72, B, T, SIZES["tgt_vocab_size"])
    got = gradients(m, student, [src, tgt, SRC_KEEP, TGT_KEEP], upstream,
                    "your Seq2SeqTransformer")
    reference.zero_grad()
    (reference(src, tgt, SRC_KEEP, TGT_KEEP) * upstream).sum().backward()
    for name, p in reference.named_parameters():
        ours = student_name(name)
        grad = got["params"].get(ours)
        if grad is None:
            raise CheckFailed(f"no gradient reaches the parameter {ours} of your model.",
                              "Use every submodule in forward, and no .detach() or "
                              "torch.no_grad() on the way.")
        assert_close(grad, p.grad.numpy(), f"∂/∂{ours}", hint=ARCH_HINT, rtol=1e-6, atol=1e-8)


@check("seq2seq_model", "oracle")
def seq2seq_embed_scales_adds_positions_and_drops_in_training(m):
    """embed(ids, table) = E[ids]·√d_model + PE[0 … T−1] in eval mode for both tables (float64,
    the reference's weights); in training mode, with dropout 0.5, every entry is either 0 or
    that value times 1/(1 − 0.5), about half of them are 0, and two seeds drop different ones."""
    hint = ("embed(ids, table) = dropout(table(ids)·√d_model + PE[0 … T−1]): scale by √d_model "
            "BEFORE adding the positional table, use the table given (src_embed or tgt_embed), "
            "and drop out once, with the model's own nn.Dropout (identity in eval mode).")
    reference, student = paired_models(m, 130, dropout=0.5)
    src, tgt = _ids(131)
    for ids, side in ((src, "src"), (tgt, "tgt")):
        table = getattr(student, f"{side}_embed")
        with torch.no_grad():
            expected = reference._embed(ids, getattr(reference, f"{side}_embed")).numpy()
        student.eval()
        assert_close(run(m, student.embed, ids, table), expected,
                     f"embed(ids, {side}_embed) in eval mode", hint=hint, **TIGHT)
        student.train()
        dropped = [run(m, student.embed, ids, table, seed=seed) for seed in (1, 2)]
        for seed, got in zip((1, 2), dropped, strict=True):
            kept = got != 0
            assert_close(got[kept], 2.0 * expected[kept],
                         f"the entries embed(ids, {side}_embed) keeps in training mode "
                         f"(dropout 0.5, seed {seed})", hint=hint, **TIGHT)
            if not 0.3 < 1.0 - kept.mean() < 0.7:
                raise CheckFailed(f"in training mode with dropout 0.5, embed(ids, {side}_embed) "
                                  f"set {1.0 - kept.mean():.0%} of its entries to 0.", hint)
        if np.array_equal(dropped[0], dropped[1]):
            raise CheckFailed(f"embed(ids, {side}_embed) in training mode drops the same "
                              "entries for two seeds.", hint)


@check("seq2seq_model", "invariant")
def seq2seq_decoder_ignores_future_targets(m):
    """Changing the target tokens from position t on leaves the logits of positions 0 … t−1
    unchanged (and changes those from t on): the decoder's self-attention is causal."""
    student = student_model(m).double()
    src, tgt = _ids(80)
    base = _logits(m, student, src, tgt)
    for t in (1, 3, 5):
        changed = tgt.clone()
        changed[:, t:] = (changed[:, t:] + 1) % SIZES["tgt_vocab_size"]
        logits = _logits(m, student, src, changed)
        assert_close(logits[:, :t], base[:, :t],
                     f"the logits of target positions 0 … {t - 1} after changing the targets "
                     f"from position {t} on",
                     hint="Every decoder layer's self-attention must be causal "
                          "(tgt_is_causal=True): position t sees target positions 0 … t.",
                     **TIGHT)
        if np.allclose(logits[:, t:], base[:, t:]):
            raise CheckFailed(f"changing the targets from position {t} on did not change the "
                              "logits there: the decoder ignores its input.", ARCH_HINT)


@check("seq2seq_model", "invariant")
def seq2seq_padding_changes_nothing_for_real_tokens(m):
    """A source padded (with any tokens) to a longer length under src_padding_mask, and a
    target padded under tgt_padding_mask, give the logits of the unpadded pair at every real
    target position — alone or batched with a longer sequence."""
    student = student_model(m).double()
    src, tgt = _ids(90)
    short_src, short_tgt = src[1:, :4], tgt[1:, :3]
    alone = _logits(m, student, short_src, short_tgt)
    for width, seed in ((S, 91), (S + 3, 92)):
        padded_src = torch.cat((short_src, randint(seed, SIZES["src_vocab_size"], 1, width - 4)),
                               1)
        padded_tgt = torch.cat((short_tgt, randint(seed + 1, SIZES["tgt_vocab_size"], 1, 2)), 1)
        src_keep = torch.arange(width)[None, :] < 4
        tgt_keep = torch.arange(5)[None, :] < 3
        got = _logits(m, student, padded_src, padded_tgt, src_keep, tgt_keep)
        assert_close(got[:, :3], alone, f"the logits of a source padded to {width} tokens "
                     "(and a target padded to 5), at the real target positions",
                     hint=MASK_HINT, **TIGHT)
    other = torch.cat((src[:1], randint(93, SIZES["src_vocab_size"], 1, 3)), 1)  # (1, S + 3)
    batch_src = torch.cat((other, torch.cat((short_src, torch.zeros(1, S - 1,
                                                                    dtype=torch.long)), 1)))
    batch_tgt = torch.cat((tgt[:1, :5], torch.cat((short_tgt, torch.zeros(1, 2,
                                                                        dtype=torch.long)), 1)))
    src_keep = torch.arange(S + 3)[None, :] < torch.tensor([S + 3, 4])[:, None]
    tgt_keep = torch.arange(5)[None, :] < torch.tensor([5, 3])[:, None]
    got = _logits(m, student, batch_src, batch_tgt, src_keep, tgt_keep)
    assert_close(got[1:, :3], alone, "the logits of the short pair batched with a longer one",
                 hint=MASK_HINT, **TIGHT)


@check("seq2seq_model", "invariant")
def seq2seq_initialisation_is_xavier_uniform(m):
    """At init every parameter with more than one dimension (embeddings included) is
    Xavier-uniform: mean 0 and std √(2/(fan_in + fan_out)) within 10% (d_model 64)."""
    model = student_model(m, src_vocab_size=97, tgt_vocab_size=89, d_model=64, nhead=4,
                          dim_feedforward=128)
    stats = run_probe(m, "phase6.parameter_statistics", model)
    shapes = run_probe(m, "phase2.parameter_shapes", model)
    for name, (mean, std, _) in stats.items():
        shape = shapes[name]
        if len(shape) < 2:
            continue
        expected = (2 / (shape[0] + shape[1])) ** 0.5
        if abs(std - expected) > 0.1 * expected or abs(mean) > 0.15 * expected:
            raise CheckFailed(
                f"{name} {tuple(shape)} starts with mean {mean:.3g} and std {std:.4g}, expected "
                f"mean 0 and std √(2/(fan_in + fan_out)) = {expected:.4g}.",
                "reset_parameters: nn.init.xavier_uniform_ on every parameter with p.dim() > "
                "1, the embeddings too (then E·√d_model has entries of order 1).")


@check("seq2seq_model", "stability")
def seq2seq_keeps_its_contract(m):
    """Dropout (after the embeddings and in every layer, at config.dropout) acts in training
    mode only; a source or target longer than max_len raises ValueError; the config's sizes
    give the documented parameter shapes."""
    student = student_model(m, dropout=0.5).double()
    src, tgt = _ids(100)
    evals = [_logits(m, student, src, tgt, seed=s) for s in (1, 2)]
    trains = [_logits(m, student, src, tgt, train=True, seed=s) for s in (1, 2)]
    assert_close(evals[1], evals[0], "two eval-mode calls with dropout = 0.5",
                 hint="nn.Dropout is the identity in eval mode.")
    if np.allclose(trains[0], trains[1]) or np.allclose(trains[0], evals[0]):
        raise CheckFailed("with dropout = 0.5 the training-mode output is not random.",
                          "Apply config.dropout after the embeddings (and in the layers: pass "
                          "dropout to them).")
    bare = student_model(m, dropout=0.5, num_encoder_layers=0, num_decoder_layers=0).double()
    if np.allclose(_logits(m, bare, src, tgt, train=True, seed=3), _logits(m, bare, src, tgt)):
        raise CheckFailed("with no layers and dropout = 0.5, training mode gives the eval "
                          "output: the embeddings are not dropped out.",
                          "embed = dropout(E[ids]·√d_model + PE): the model's own nn.Dropout "
                          "after the positional encoding.")
    exact = student_model(m, dropout=0.0).double()
    assert_close(_logits(m, exact, src, tgt, train=True, seed=4), _logits(m, exact, src, tgt),
                 "training mode against eval mode with dropout = 0",
                 hint="config.dropout is the rate of every dropout in the model: pass it to "
                      "nn.Dropout and to every layer (their own default is 0.1).", **TIGHT)
    short = student_model(m, max_len=6).double()
    long_src = randint(101, SIZES["src_vocab_size"], 1, 7)
    hint = "The positional table has max_len rows: your phase-2 encoding raises ValueError."
    raises(lambda: run(m, short, long_src, tgt[:1, :3]), "ValueError",
           "a 7-token source with max_len 6", hint)
    raises(lambda: run(m, short, long_src[:, :3], randint(102, 9, 1, 7)), "ValueError",
           "a 7-token target with max_len 6", hint)
    shapes = run_probe(m, "phase2.parameter_shapes",
                       student_model(m, d_model=24, dim_feedforward=40, num_encoder_layers=1,
                                     num_decoder_layers=3))
    expected = {"src_embed.weight": [11, 24], "tgt_embed.weight": [9, 24],
                "head.weight": [9, 24], "encoder_layers.0.linear1.weight": [40, 24],
                "decoder_layers.2.linear2.weight": [24, 40]}
    for name, shape in expected.items():
        if shapes.get(name) != shape:
            raise CheckFailed(f"{name} has shape {shapes.get(name)}, expected {shape} (d_model "
                              "24, dim_feedforward 40, 1 encoder and 3 decoder layers).",
                              "Build every part from the config's sizes.")
    if "encoder_layers.1.linear1.weight" in shapes or "decoder_layers.3.norm1.weight" in shapes:
        raise CheckFailed("your model has more layers than num_encoder_layers / "
                          "num_decoder_layers say.", "One layer per count in the config.")


def _declared(m, dt):
    model = seeded_module(m, m.Seq2SeqTransformer, m.Seq2SeqConfig(**SIZES)).to(dt)
    src, tgt = _ids(110)
    return model, [src, tgt, SRC_KEEP, TGT_KEEP], {}


globals().update(contract_checks(__name__, "seq2seq_model", [
    Numeric("Seq2SeqTransformer(src, tgt, masks)", _declared),
], torch_phase=True))


@fingerprint("seq2seq_model")
def seq2seq_outputs(m):
    src, tgt = _ids(120)

    def logits(config):
        _, student = paired_models(m, 121, **config)
        return _logits(m, student, src, tgt, SRC_KEEP, TGT_KEEP)[:, :, :4]

    def init():
        stats = run_probe(m, "phase6.parameter_statistics", student_model(m))
        return [round(stats[name][1], 2) for name in ("src_embed.weight", "head.weight")]

    def embedded():
        _, student = paired_models(m, 121)
        student.eval()
        return run(m, student.embed, src, student.src_embed)[:, :, :4]

    def dropped_share():  # the share of entries training-mode dropout 0.5 zeroes, seed 1
        _, student = paired_models(m, 121, dropout=0.5)
        student.train()
        return round(float((run(m, student.embed, src, student.src_embed, seed=1) == 0).mean()), 1)

    return {"post_norm": safely(lambda: logits({})),
            "embed": safely(embedded),
            "embed_dropped_share": safely(dropped_share),
            "pre_norm": safely(lambda: logits({"norm_first": True})),
            "init": safely(init)}
