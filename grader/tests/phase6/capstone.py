"""FULL=1 only: a short version of the char-GPT capstone on the student's own tokenizer, GPT,
AdamW, schedule and Trainer, judged against a closed-form baseline computed here."""

from __future__ import annotations

import math
from collections import Counter

from grader.checks import CheckFailed, check
from grader.session import run_probe

TRAIN_CHARS, VAL_CHARS, STEPS = 200_000, 20_000, 300
MARGIN = 0.05  # nats per character below the bigram model


def _bigram_val_loss(train: str, val: str) -> float:
    """Cross-entropy on val of the add-one-smoothed bigram model counted on train."""
    vocab = len(set(train + val))
    pairs, firsts = Counter(zip(train, train[1:], strict=False)), Counter(train[:-1])
    total = sum(math.log((pairs[(a, b)] + 1) / (firsts[a] + vocab))
                for a, b in zip(val, val[1:], strict=False))
    return -total / (len(val) - 1)


@check("trainer", "e2e", full=True, seconds=900)
def a_short_char_gpt_run_beats_the_bigram_model(m):
    """300 steps of a 2-layer char-GPT on 200k characters of Tiny Shakespeare (your tokenizer,
    GPT, AdamW, WarmupCosine and Trainer) reach a validation loss 0.05 nats below the smoothed
    bigram model's."""
    try:
        from datasets.tinyshakespeare import load_tiny_shakespeare

        train = load_tiny_shakespeare("train", progress=False)[:TRAIN_CHARS]
        val = load_tiny_shakespeare("val", progress=False)[:VAL_CHARS]
    except Exception as error:  # noqa: BLE001 - the data could not be fetched: say so
        raise CheckFailed(f"Tiny Shakespeare could not be loaded ({error}).",
                          "Run `make train TASK=char-gpt` once (it downloads the text), or "
                          "set GRADSCHOOL_MIRROR.") from None
    baseline = _bigram_val_loss(train, val)
    out = run_probe(m, "phase6.char_gpt_short", m, train, val, STEPS)
    val_loss = float(out["val_loss"])
    if not val_loss <= baseline - MARGIN:
        raise CheckFailed(
            f"after {STEPS} steps your char-GPT's validation loss is {val_loss:.3f}, not below "
            f"{baseline - MARGIN:.3f} (the bigram model's {baseline:.3f} − {MARGIN}). "
            f"Sample: {out['sample'][:80]!r}",
            "Every graded exercise of phases 2–6 passing is the first step; then look at the "
            "loss curve of `make train TASK=char-gpt`.")
