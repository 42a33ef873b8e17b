"""6.8 decoding and BLEU: greedy decoding and beam search against the nn.Transformer model with
the same weights (greedy step by step, exhaustive search on a tiny vocabulary, beam search by
its definition, log-probabilities by teacher forcing), eos handling, the length penalty, the
copy/reverse e2e; corpus BLEU against sacrebleu and closed forms."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import Numeric, contract_checks, raises, seeded_module
from grader.checks.oracle import as_array, assert_close, assert_scalar
from grader.checks.properties import property_holds
from grader.session import RemoteRef, StudentError, fetch, operator_call, run_probe
from grader.tests.phase2._helpers import run
from grader.tests.phase6._helpers import randint, safely
from grader.tests.phase6._seq2seq import (
    SIZES,
    ReferenceSeq2Seq,
    copy_into,
    gnmt_penalty,
    sequence_log_probs,
    student_model,
)

BOS, EOS = 0, 1
LOG_PROB = {"rtol": 1e-7, "atol": 1e-9}
GREEDY_HINT = ("Encode the source once; at every step decode the whole prefix, take the argmax "
               "of the LAST position's logits and append it. A row that has produced eos gets "
               "eos from then on; stop when every row has, or after max_len tokens.")
BEAM_HINT = ("Each step: candidates = running log-probability + log_softmax(last logits) for "
             "every (hypothesis, token) pair; keep the beam_width best; move those ending in eos "
             "to the finished list. Rank finished + live once at the end by "
             "log p / ((5 + |Y|)/6)^α.")
LOG_PROB_HINT = ("The returned log-probability is the SUM over the appended tokens of log "
                 "softmax(logits)[token] (eos included, bos not): accumulate it step by step, "
                 "do not keep only the last step's.")


def _source(seed: int, length: int = 5) -> torch.Tensor:
    return randint(seed, SIZES["src_vocab_size"], length)


def decoding_reference(seed: int, eos_bias: float = 0.0, **config) -> ReferenceSeq2Seq:
    """A pre-norm reference initialised as the model's docstring says (Xavier), its head
    sharpened ×3 and favouring eos by eos_bias, so that greedy rows differ and end at varied
    lengths (random norm weights make an untrained model repeat one token); in eval mode."""
    torch.manual_seed(seed)
    reference = ReferenceSeq2Seq(**{**SIZES, "norm_first": True, **config}).double().eval()
    with torch.no_grad():
        for p in reference.parameters():
            if p.dim() > 1:
                torch.nn.init.xavier_uniform_(p)
        reference.head.weight *= 3.0
        reference.head.bias[EOS] += eos_bias
    return reference


def _models(m, seed: int, eos_bias: float = 0.0, **config):
    """(decoding_reference, the student's model with the same weights in eval mode)."""
    reference = decoding_reference(seed, eos_bias, **config)
    student = student_model(m, norm_first=True, **config)
    copy_into(m, student, reference)
    student.eval()
    return reference, student


def _greedy_by_the_model(reference, src: torch.Tensor, max_len: int) -> list[int]:
    """The argmax token after every prefix, until eos or max_len tokens (bos not included)."""
    tokens: list[int] = []
    with torch.no_grad():
        while len(tokens) < max_len and (not tokens or tokens[-1] != EOS):
            logits = reference(src[None], torch.tensor([[BOS, *tokens]]))[0, -1]
            tokens.append(int(logits.argmax()))
    return tokens


def _hypotheses(value, what: str) -> list[tuple[list[int], float]]:
    """beam_search's list of (tokens, log_prob) as plain Python lists and floats."""
    if not isinstance(value, (list, tuple)):
        raise CheckFailed(f"{what} should return a list of (tokens, log_prob) pairs, got "
                          f"{type(value).__name__}.", BEAM_HINT)
    pairs = []
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise CheckFailed(f"{what} should return (tokens, log_prob) pairs; one item is "
                              f"{type(item).__name__}.", BEAM_HINT)
        tokens = as_array(item[0], "the tokens of a hypothesis")
        if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
            raise CheckFailed(f"the tokens of a hypothesis should be a 1-d int64 tensor, got "
                              f"shape {tokens.shape} and dtype {tokens.dtype}.", BEAM_HINT)
        pairs.append((tokens.tolist(), assert_scalar(item[1], "a hypothesis's log_prob")))
    return pairs


def _beam(m, student, src, width, max_len, alpha, what):
    return _hypotheses(m.beam_search(student, src, width, max_len, BOS, EOS, alpha), what)


def _ranked(reference, src, sequences: list[list[int]], alpha: float) -> list[tuple]:
    """(tokens with bos, log p) of every sequence, best score log p / lp(|Y|) first."""
    scores = sequence_log_probs(reference, src, sequences, BOS)
    pairs = [([BOS, *y], s) for y, s in zip(sequences, scores, strict=True)]
    return sorted(pairs, key=lambda p: p[1] / gnmt_penalty(len(p[0]) - 1, alpha), reverse=True)


def _compare(got: list[tuple], expected: list[tuple], what: str) -> None:
    got_tokens, expected_tokens = [g[0] for g in got], [e[0] for e in expected]
    if got_tokens != expected_tokens:
        first = next((i for i, (a, b) in enumerate(zip(got_tokens, expected_tokens, strict=False))
                      if a != b), min(len(got_tokens), len(expected_tokens)))
        raise CheckFailed(
            f"{what}: {len(got_tokens)} hypotheses returned, {len(expected_tokens)} expected; "
            f"the first difference is at rank {first}: got "
            f"{got_tokens[first] if first < len(got_tokens) else 'nothing'}, expected "
            f"{expected_tokens[first] if first < len(expected_tokens) else 'nothing'}.",
            BEAM_HINT)
    assert_close(np.array([g[1] for g in got]), np.array([e[1] for e in expected]),
                 f"{what}: the log-probabilities", hint=LOG_PROB_HINT, **LOG_PROB)


# ------------------------------------------------------------------ 6.8.1 greedy decoding


def _padded_sources() -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Three sources of 6, 4 and 5 tokens; padded to (3, 6) with token 3; their padding mask."""
    lengths = (6, 4, 5)
    sources = [_source(305 + k, n) for k, n in enumerate(lengths)]
    src = torch.stack([torch.cat((s, torch.full((6 - len(s),), 3))) for s in sources])
    return sources, src, torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]


@check("seq2seq_decoding", "oracle", weight=2)
def greedy_decode_takes_the_models_argmax_until_eos(m):
    """greedy_decode on a batch of padded sources equals the model's argmax token after every
    prefix, row by row (nn.Transformer model, same weights), rows that ended filled with eos,
    stopping when every row has ended or after max_len tokens."""
    sources, src, keep = _padded_sources()
    # eos bias 0: rows end after 4 and 5 tokens, one never; bias 2: all end, after 3, 4 and 5
    for eos_bias, max_len in ((0.0, 2), (0.0, 7), (2.0, 7)):
        reference, student = _models(m, 304, eos_bias=eos_bias)
        rows = [_greedy_by_the_model(reference, s, max_len) for s in sources]
        width = max(map(len, rows))
        expected = np.array([[BOS, *r] + [EOS] * (width - len(r)) for r in rows])
        got = m.greedy_decode(student, src, max_len, BOS, EOS, keep)
        assert_close(got, expected, f"greedy_decode(max_len={max_len}) on 3 padded sources "
                     f"(rows ending after {[len(r) if r[-1] == EOS else None for r in rows]} "
                     "tokens)", hint=GREEDY_HINT)


# ------------------------------------------------------------------ 6.8.2 beam search


@check("seq2seq_decoding", "oracle")
def length_penalty_factor_is_gnmts(m):
    """length_penalty_factor(|Y|, α) = ((5 + |Y|) / 6)^α for |Y| = 1 … 9, α = 0, 0.6, 1, 2."""
    for alpha in (0.0, 0.6, 1.0, 2.0):
        got = np.array([assert_scalar(m.length_penalty_factor(n, alpha), "length_penalty_factor")
                        for n in range(1, 10)])
        expected = np.array([gnmt_penalty(n, alpha) for n in range(1, 10)])
        assert_close(got, expected, f"length_penalty_factor(1 … 9, α = {alpha})",
                     hint="GNMT (Wu et al. 2016): lp(|Y|) = ((5 + |Y|) / 6)^α, so lp(1) = 1.",
                     rtol=1e-12, atol=1e-12)


@check("seq2seq_decoding", "invariant")
def beam_search_of_width_one_is_greedy(m):
    """beam_search with beam_width 1 returns one hypothesis: the greedy tokens, with their
    log-probability under the model."""
    reference, student = _models(m, 210, eos_bias=1.0)
    for k in range(3):
        src = _source(211 + k)
        tokens = _greedy_by_the_model(reference, src, 6)
        expected = [([BOS, *tokens], sequence_log_probs(reference, src, [tokens], BOS)[0])]
        _compare(_beam(m, student, src, 1, 6, 0.0, "beam_search(beam_width=1)"), expected,
                 f"beam_search(beam_width=1) on source {k}")


@check("seq2seq_decoding", "oracle", weight=2)
def beam_search_wide_enough_is_exhaustive_search(m):
    """With a 3-token vocabulary, max_len 3 and beam_width 27 = 3³, beam search returns every
    possible hypothesis (the 7 that end in eos and the 8 of length 3), ranked as exhaustive
    search ranks them in the judge: α = 0 and α = 1.5."""
    reference, student = _models(m, 220, tgt_vocab_size=3)
    src = _source(221)
    sequences = [list(y) for n in (1, 2, 3) for y in itertools.product((0, 2), repeat=n - 1)]
    sequences = [y + [EOS] for y in sequences]  # eos-terminated, eos only at the end
    sequences += [list(y) for y in itertools.product((0, 2), repeat=3)]  # unfinished at max_len
    for alpha in (0.0, 1.5):
        expected = _ranked(reference, src, sequences, alpha)
        got = _beam(m, student, src, 27, 3, alpha, "beam_search")
        _compare(got, expected, f"beam_search(beam_width=27, max_len=3, length_penalty={alpha})")


def _beam_by_definition(reference, src, width: int, max_len: int, alpha: float) -> list[tuple]:
    """Beam search as its docstring defines it, with every hypothesis scored by teacher forcing
    from scratch: keep the `width` best extensions by log p; those ending in eos are finished."""
    vocab = reference.head.out_features
    live: list[list[int]] = [[]]
    finished: list[list[int]] = []
    for _ in range(max_len):
        candidates = [y + [token] for y in live for token in range(vocab)]
        scores = sequence_log_probs(reference, src, candidates, BOS)
        order = sorted(range(len(candidates)), key=scores.__getitem__, reverse=True)
        kept = [candidates[i] for i in order[:width]]
        finished += [y for y in kept if y[-1] == EOS]
        live = [y for y in kept if y[-1] != EOS]
        if not live:
            break
    return _ranked(reference, src, finished + live, alpha)[:width]


@check("seq2seq_decoding", "oracle", weight=2)
def beam_search_keeps_the_best_extensions(m):
    """beam_search(beam_width 3, max_len 4) on a 5-token vocabulary equals beam search by its
    definition computed in the judge — every candidate scored by teacher forcing — with
    α = 0 and α = 2 (the length penalty ranks whole hypotheses once, at the end)."""
    reference, student = _models(m, 230, eos_bias=0.8, tgt_vocab_size=5)
    for k, alpha in enumerate((0.0, 2.0)):
        src = _source(231 + k)
        expected = _beam_by_definition(reference, src, 3, 4, alpha)
        _compare(_beam(m, student, src, 3, 4, alpha, "beam_search"), expected,
                 f"beam_search(beam_width=3, max_len=4, length_penalty={alpha})")


@check("seq2seq_decoding", "oracle")
def beam_search_log_probs_are_the_models(m):
    """Every hypothesis beam_search returns (beam_width 4, max_len 5, vocabulary 9) comes with
    log p(Y | src), the sum of the model's token log-probabilities by teacher forcing."""
    reference, student = _models(m, 240, eos_bias=1.0)
    src = _source(241)
    got = _beam(m, student, src, 4, 5, 0.6, "beam_search")
    expected = sequence_log_probs(reference, src, [tokens[1:] for tokens, _ in got], BOS)
    assert_close(np.array([g[1] for g in got]), np.array(expected),
                 "the log-probabilities beam_search returned against teacher forcing",
                 hint=LOG_PROB_HINT, **LOG_PROB)


@check("seq2seq_decoding", "stability")
def decoding_stops_at_eos_and_keeps_its_contract(m):
    """Hypotheses start with bos, hold eos only at the end, never grow past max_len and come
    best score first, at most beam_width of them; beam_width 0 raises ValueError; greedy and
    beam search decode in eval mode (dropout off) and give the model back in training mode."""
    reference, student = _models(m, 250, eos_bias=1.0)
    src = _source(251)
    for alpha in (0.0, 1.0):
        got = _beam(m, student, src, 5, 4, alpha, "beam_search")
        if not 1 <= len(got) <= 5:
            raise CheckFailed(f"beam_search(beam_width=5) returned {len(got)} hypotheses.",
                              "Return the beam_width best of the finished and live ones.")
        for tokens, _ in got:
            if tokens[0] != BOS or EOS in tokens[1:-1] or len(tokens) > 5 or (
                    tokens[-1] != EOS and len(tokens) != 5):
                raise CheckFailed(
                    f"beam_search(max_len=4) returned the hypothesis {tokens}: a hypothesis "
                    "starts with bos, stops growing at its first eos, and one without eos has "
                    "exactly max_len tokens after bos.",
                    "Take a hypothesis out of the beam as soon as it ends in eos.")
        scores = [lp / gnmt_penalty(len(t) - 1, alpha) for t, lp in got]
        if any(a < b - 1e-12 for a, b in itertools.pairwise(scores)):
            raise CheckFailed(f"beam_search(length_penalty={alpha}) returned hypotheses whose "
                              f"scores log p / lp(|Y|) are not in decreasing order: {scores}.",
                              "Sort finished + live by log p / ((5 + |Y|)/6)^α, best first.")
    raises(lambda: m.beam_search(student, src, 0, 4, BOS, EOS), "ValueError",
           "beam_search(beam_width=0)", "Refuse a beam_width below 1 with ValueError.")
    noisy = student_model(m, dropout=0.5).double()
    noisy.train()
    greedy_train = as_array(m.greedy_decode(noisy, src[None], 6, BOS, EOS), "greedy tokens")
    beam_train = _beam(m, noisy, src, 2, 6, 0.0, "beam_search")
    if not fetch(noisy.training):
        raise CheckFailed("after greedy_decode / beam_search the model is no longer in "
                          "training mode.", "Remember model.training, call model.eval(), and "
                          "restore it with model.train(was_training) at the end.")
    noisy.eval()
    assert_close(greedy_train, as_array(m.greedy_decode(noisy, src[None], 6, BOS, EOS),
                                        "greedy tokens"),
                 "greedy_decode from training mode against eval mode (dropout 0.5)",
                 hint="Decode in eval mode: dropout would make the argmax random.")
    _compare(beam_train, _beam(m, noisy, src, 2, 6, 0.0, "beam_search"),
             "beam_search from training mode against eval mode (dropout 0.5)")


def _declared_greedy(m, dt):
    model = seeded_module(m, m.Seq2SeqTransformer, m.Seq2SeqConfig(**SIZES)).to(dt)
    return m.greedy_decode, [model, randint(260, 11, 2, 5), 4, BOS, EOS], {}


globals().update(contract_checks(__name__, "seq2seq_decoding", [
    Numeric("greedy_decode", _declared_greedy, outputs="int"),
], torch_phase=True))


# ------------------------------------------------------------------ e2e: copy and reverse

COPY, REVERSE, FIRST_DIGIT, DIGITS = 2, 3, 4, 6


def _task_data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources [task, d₁ … d₆] and targets [bos, answer, eos]: the digits copied or reversed."""
    generator = torch.Generator().manual_seed(seed)
    digits = torch.randint(FIRST_DIGIT, FIRST_DIGIT + 10, (n, DIGITS), generator=generator)
    reverse = torch.randint(0, 2, (n,), generator=generator).bool()
    answer = torch.where(reverse[:, None], digits.flip(1), digits)
    src = torch.cat((torch.where(reverse, REVERSE, COPY)[:, None], digits), dim=1)
    tgt = torch.cat((torch.full((n, 1), BOS), answer, torch.full((n, 1), EOS)), dim=1)
    return src, tgt


@check("seq2seq_decoding", "e2e", full=True, seconds=300)
def seq2seq_learns_copy_and_reverse(m):
    """Trained by teacher forcing with your AdamW (lr 3e-3, 300 steps of 64 pairs), your
    Seq2SeqTransformer (d_model 32, 1 + 1 layers) greedy-decodes ≥ 99% of 500 unseen copy and
    reverse tasks (6 digits) exactly."""
    src, tgt = _task_data(0, 4096)
    test_src, test_tgt = _task_data(1, 500)
    config = {"src_vocab_size": 14, "tgt_vocab_size": 14, "d_model": 32, "nhead": 4,
              "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 64,
              "dropout": 0.0, "max_len": 16}
    out = run_probe(m, "phase6.seq2seq_train", m, config, src, tgt, 300, 64, 3e-3, 0, test_src,
                    DIGITS + 1, BOS, EOS)
    tokens = as_array(out["tokens"], "the decoded tokens")
    if tokens.shape != tuple(test_tgt.shape):
        raise CheckFailed(f"the decoded tokens have shape {tokens.shape}, expected "
                          f"{tuple(test_tgt.shape)} (bos, 6 digits, eos).", GREEDY_HINT)
    accuracy = float((tokens == test_tgt.numpy()).all(axis=1).mean())
    losses = out["losses"]
    if accuracy < 0.99:
        raise CheckFailed(f"after 300 steps {accuracy:.1%} of the unseen tasks were decoded "
                          f"exactly (the loss went {losses[0]:.3f} → {losses[-1]:.3f}); "
                          f"expected ≥ 99%.",
                          "If the loss fell but decoding fails, look at greedy_decode; if the "
                          "loss stayed high, at the masks (causal decoder) and the embedding "
                          "scale.")


# ------------------------------------------------------------------ 6.8.3 corpus BLEU

BLEU_HINT = ("BLEU = 100·BP·exp((1/N) Σ log p_n) with p_n the CLIPPED n-gram matches summed "
             "over the corpus divided by the hypothesis n-grams summed over the corpus, and "
             "BP = exp(1 − r/c) only when c < r.")
WORDS = ["a", "b", "c", "d"]


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise CheckFailed("the grader cannot run this check: the package sacrebleu is not "
                          "installed next to the grader (pip install sacrebleu). This is not "
                          "your mistake; tell your instructor.") from None
    return sacrebleu


def _sacre_score(hypotheses, references, max_order: int, smooth: str) -> float:
    bleu = _sacrebleu().metrics.BLEU(tokenize="none", smooth_method=smooth,
                                     max_ngram_order=max_order)
    return bleu.corpus_score([" ".join(h) for h in hypotheses],
                             [[" ".join(r) for r in references]]).score


def _bleu(m, hypotheses, references, **kwargs) -> float:
    return assert_scalar(m.corpus_bleu(hypotheses, references, **kwargs), "corpus_bleu")


NGRAM_HINT = ("ngram_counts(tokens, n) is a Counter whose keys are the tuples tokens[i:i + n] "
              "for every start i = 0 … len(tokens) − n (the last n-gram included) and whose "
              "values say how often each occurs; fewer than n tokens give an empty Counter.")


def _windows(tokens: list[str], n: int) -> Counter:
    """The n-grams of tokens counted by sliding a window of n over them (the judge's own)."""
    counts = Counter()
    for start in range(len(tokens)):
        window = tuple(tokens[start:start + n])
        if len(window) == n:
            counts[window] += 1
    return counts


def _ngram_items(m, tokens: list[str], n: int, what: str) -> dict:
    """{n-gram: count} of the student's ngram_counts(tokens, n), after checking it is a
    Counter; zero counts are dropped (a Counter treats them as absent)."""
    counts = m.ngram_counts(tokens, n)
    if not isinstance(counts, RemoteRef) or not operator_call(counts, "isinstance_of", counts,
                                                              "Counter"):
        kind = (operator_call(counts, "type_name", counts) if isinstance(counts, RemoteRef)
                else type(counts).__name__)
        raise CheckFailed(f"{what} returned a {kind}, not a collections.Counter.", NGRAM_HINT)
    items = operator_call(counts, "list", counts.items())
    try:
        return {key: value for key, value in items if not (type(value) is int and value == 0)}
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} returned a Counter whose items are not (n-gram, count) "
                          "pairs.", NGRAM_HINT) from None


@check("bleu", "oracle")
def ngram_counts_counts_every_run_of_n_tokens(m):
    """ngram_counts(tokens, n) is a Counter of the tuples tokens[i:i + n] equal to the judge's
    sliding-window count on random sentences over 4 words of length 0–9, n = 1 … 5 (n larger
    than the length too: an empty Counter), and on the empty list."""
    sentence = st.lists(st.sampled_from(WORDS), min_size=0, max_size=9)

    def agrees(tokens, n):
        what = f"ngram_counts({tokens}, {n})"
        got, expected = _ngram_items(m, tokens, n, what), dict(_windows(tokens, n))
        if got != expected:
            wrong = sorted(set(got) ^ set(expected) | {k for k in got if got.get(k) !=
                                                       expected.get(k)}, key=repr)[:3]
            details = "; ".join(f"{k!r}: {got.get(k, 0)} instead of {expected.get(k, 0)}"
                                for k in wrong)
            raise CheckFailed(f"{what} counts {details}.", NGRAM_HINT)

    for n in (1, 2, 4):
        agrees([], n)
    agrees(["a", "b", "a", "b", "a"], 2)
    property_holds(agrees, sentence, st.integers(1, 5), examples=40)


@check("bleu", "oracle", weight=3)
def corpus_bleu_matches_sacrebleu(m):
    """corpus_bleu equals sacrebleu's corpus BLEU (tokenize="none") on random corpora of 1–4
    sentence pairs over 4 words, lengths 0–8: max_order 1–4, smooth "exp" and "none"."""
    sentence = st.lists(st.sampled_from(WORDS), min_size=0, max_size=8)
    corpus = st.lists(st.tuples(sentence, sentence), min_size=1, max_size=4)

    def agrees(pairs, max_order, smooth):
        hypotheses, references = [list(h) for h, _ in pairs], [list(r) for _, r in pairs]
        expected = _sacre_score(hypotheses, references, max_order, smooth)
        got = _bleu(m, hypotheses, references, max_order=max_order, smooth=smooth)
        assert_close(np.float64(got), np.float64(expected),
                     f"corpus_bleu(max_order={max_order}, smooth={smooth!r})", hint=BLEU_HINT,
                     rtol=1e-9, atol=1e-9)

    property_holds(agrees, corpus, st.integers(1, 4), st.sampled_from(["exp", "none"]),
                   examples=60)


@check("bleu", "oracle")
def corpus_bleu_brevity_penalty_and_clipping_closed_forms(m):
    """Closed forms: a hypothesis equal to its reference scores 100; the first half of an
    8-token reference 100/e (brevity penalty exp(1 − r/c)); a longer hypothesis is not
    penalised; clipping is per sentence ("a a" vs "a b" and "b b" vs "a a": p₁ = 1/4)."""
    ref = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"]
    cases = [
        ("a hypothesis equal to its reference", [ref], [ref], {}, 100.0),
        ("the first 4 tokens of an 8-token reference (c < r)", [ref[:4]], [ref], {},
         100 / math.e),
        ("the reference plus 2 new tokens (c > r: no penalty)", [ref + ["x", "y"]], [ref], {},
         100 * math.exp(sum(math.log((9 - n) / (11 - n)) for n in range(1, 5)) / 4)),
        ('"the the the the" against "the cat", unigrams', [["the"] * 4], [["the", "cat"]],
         {"max_order": 1}, 25.0),
        ("clipping per sentence, unigrams", [["a", "a"], ["b", "b"]], [["a", "b"], ["a", "a"]],
         {"max_order": 1}, 25.0),
    ]
    for what, hypotheses, references, kwargs, expected in cases:
        assert_close(np.float64(_bleu(m, hypotheses, references, **kwargs)),
                     np.float64(expected), f"corpus_bleu for {what}", hint=BLEU_HINT,
                     rtol=1e-12, atol=1e-12)


@check("bleu", "stability")
def corpus_bleu_smoothing_and_errors(m):
    """smooth="none" gives 0 when an order has no match; smooth="exp" gives that order
    1/(2·#n-grams); no match at all or empty hypotheses give 0; lists of different lengths and
    an unknown smooth raise ValueError."""
    hypothesis, reference = ["a", "b", "c", "d", "x"], ["a", "b", "c", "y", "d"]
    # matches 4/5, 2/4, 1/3 and none of the 2 four-grams: the exp smoothing makes it 1/(2·2)
    expected = 100 * math.exp((math.log(4 / 5) + math.log(2 / 4) + math.log(1 / 3)
                               + math.log(1 / 4)) / 4)
    cases = [("smooth='none' with no matching 4-gram", {"smooth": "none"}, 0.0),
             ("smooth='exp' with no matching 4-gram", {"smooth": "exp"}, expected)]
    for what, kwargs, value in cases:
        assert_close(np.float64(_bleu(m, [hypothesis], [reference], **kwargs)),
                     np.float64(value), f"corpus_bleu with {what}",
                     hint="exp smoothing: the k-th order without a match gets p_n = "
                          "1/(2^k · #n-grams); without smoothing its log is −∞: BLEU 0.",
                     rtol=1e-12, atol=1e-12)
    for what, hyps, refs in (("no word in common", [["a", "b"]], [["c", "d"]]),
                             ("empty hypotheses", [[], []], [["a"], ["b"]])):
        assert_close(np.float64(_bleu(m, hyps, refs)), np.float64(0.0),
                     f"corpus_bleu with {what}",
                     hint="No match of any order, or c = 0, gives BLEU 0 (not an error).")
    raises(lambda: m.corpus_bleu([["a"]], [["a"], ["b"]]), "ValueError",
           "corpus_bleu with 1 hypothesis and 2 references",
           "Refuse lists of different lengths: zip would silently drop sentences.")
    raises(lambda: m.corpus_bleu([["a"]], [["a"]], smooth="add-one"), "ValueError",
           "corpus_bleu(smooth='add-one')", "Only 'exp' and 'none' are documented.")


@fingerprint("seq2seq_decoding")
def decoding_outputs(m):
    _, src, keep = _padded_sources()

    def greedy(eos_bias):
        _, student = _models(m, 304, eos_bias=eos_bias)
        return as_array(m.greedy_decode(student, src, 7, BOS, EOS, keep), "tokens")

    def greedy_from_training_mode():
        config = m.Seq2SeqConfig(**{**SIZES, "dropout": 0.5})
        noisy = seeded_module(m, m.Seq2SeqTransformer, config).double()
        noisy.train()
        return run(m, m.greedy_decode, noisy, src, 7, BOS, EOS, keep, train=None, seed=5)

    def beam(alpha):
        _, student = _models(m, 272, eos_bias=0.8, tgt_vocab_size=5)
        got = _beam(m, student, _source(273), 3, 4, alpha, "beam_search")
        return [round(lp, 6) for _, lp in got]

    return {"greedy": safely(lambda: greedy(0.0)), "greedy_all_end": safely(lambda: greedy(2.0)),
            "greedy_training": safely(greedy_from_training_mode),
            "beam": safely(lambda: beam(0.0)), "beam_penalised": safely(lambda: beam(2.0))}


@fingerprint("bleu")
def bleu_outputs(m):
    hypotheses = [["a", "b", "c", "d", "x"], ["a", "a", "a"], ["b", "c"]]
    references = [["a", "b", "c", "y", "d"], ["a", "b"], ["b", "c", "d", "a"]]

    def score(**kwargs):
        try:
            return [round(_bleu(m, hypotheses, references, **kwargs), 6)]
        except StudentError:
            return [np.nan]

    def single(hypothesis, reference):
        try:
            return [round(_bleu(m, [hypothesis], [reference]), 6)]
        except StudentError:
            return [np.nan]

    def ngrams():
        tokens = ["a", "b", "a", "b", "c"]
        counts = [_ngram_items(m, tokens, n, "") for n in (1, 2, 3, 6)]
        return [counts[0].get(("a",), 0), counts[1].get(("a", "b"), 0),
                counts[1].get(("b", "c"), 0), counts[2].get(("b", "a", "b"), 0),
                *map(len, counts)]

    return {"exp": safely(score), "none": safely(lambda: score(smooth="none")),
            "ngrams": safely(ngrams),
            "unigram": safely(lambda: score(max_order=1)),
            "longer": safely(lambda: single(list("abcdxy"), list("abcd"))),  # c > r
            "two_orders_unmatched": safely(lambda: single(list("abxcdy"), list("abcd")))}
