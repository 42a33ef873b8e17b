"""Benchmark: byte-level BPE training on Tiny Shakespeare to a 1,024-token vocabulary (phase 6).

Three trainers on the same text, in one run:
- the reference, solutions.phase6_models.train_bpe: each distinct pre-token piece once with its
  frequency, pair counts built once, and after each merge only the pieces that held the pair
  are recounted; a heap finds the next pair;
- naive, written here: the same pieces and frequencies, the same tie-break, but every pair of
  the corpus recounted before every merge and every piece rewritten after it — O(merges ×
  corpus), the algorithm the exercise rules out. Both must learn the same 768 merges (checked);
- Hugging Face `tokenizers` (Rust) with a ByteLevel pre-tokenizer, as a speed reference only,
  when it is installed (`pip install tokenizers`, in the dev extra), on one thread. Its
  pre-tokenizer and tie-break differ, so its merges are not compared.

The reference and HF are timed `--reps` times (median); naive once, as it takes about a minute.
The figure to read is the ratio naive / reference measured in this run (goal: ≥ 10×).

    python bench/bpe.py [--vocab 1024] [--reps 3]
"""

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # HF tokenizers: one thread, like ours

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from itertools import pairwise  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from datasets.tinyshakespeare import load_tiny_shakespeare  # noqa: E402
from solutions.phase6_models import PRETOKENIZE, merge_pair, train_bpe  # noqa: E402

GOAL = 10.0


def naive_train(text: str, vocab_size: int) -> list[tuple[int, int]]:
    """The same merges as train_bpe, by recounting every pair of the corpus before each merge."""
    frequency = Counter(piece.encode("utf-8") for piece in PRETOKENIZE.findall(text))
    words = [(list(piece), n) for piece, n in frequency.items()]
    merges: list[tuple[int, int]] = []
    while len(merges) < vocab_size - 256:
        counts: Counter[tuple[int, int]] = Counter()
        for ids, n in words:
            for pair in pairwise(ids):
                counts[pair] += n
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        words = [(merge_pair(ids, pair, 256 + len(merges)), n) for ids, n in words]
        merges.append(pair)
    return merges


def hf_train(text: str, vocab_size: int):
    """HF tokenizers' BPE trainer with a byte-level pre-tokenizer, or None when not installed."""
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    except ImportError:
        return None
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    text = load_tiny_shakespeare(progress=False)
    print(
        f"Tiny Shakespeare: {len(text):,} characters, vocab_size {args.vocab} "
        f"({args.vocab - 256} merges), one thread"
    )

    reference_times, hf_times, merges, hf = [], [], None, None
    for _ in range(args.reps):
        seconds, merges = timed(train_bpe, text, args.vocab)
        reference_times.append(seconds)
        seconds, hf = timed(hf_train, text, args.vocab)
        hf_times.append(seconds)
    naive_seconds, naive_merges = timed(naive_train, text, args.vocab)
    reference = statistics.median(reference_times)

    print(f"  reference train_bpe  {reference:8.2f} s   (median of {args.reps})")
    print(
        f"  naive recount        {naive_seconds:8.2f} s   "
        f"same merges: {'yes' if naive_merges == merges else 'NO'}"
    )
    if hf is not None:
        hf_seconds = statistics.median(hf_times)
        print(
            f"  HF tokenizers (Rust) {hf_seconds:8.2f} s   "
            f"vocab {hf.get_vocab_size()}, its own pre-tokenizer and tie-break"
        )
    else:
        print("  HF tokenizers        not installed (pip install tokenizers)")
    ratio = naive_seconds / reference
    print(
        f"naive / reference = {ratio:.1f}×  (goal ≥ {GOAL:.0f}×: "
        f"{'met' if ratio >= GOAL else 'NOT met'})"
    )
    if hf is not None:
        print(f"reference / HF tokenizers = {reference / hf_seconds:.1f}×")
    if naive_merges != merges:
        sys.exit("the naive trainer and train_bpe learned different merges")


if __name__ == "__main__":
    main()
