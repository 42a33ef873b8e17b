"""Benchmark: the reference GPT (phase 6) against the same GPT assembled from torch built-ins,
and KV-cached against uncached generation.

1. Training throughput, tokens/s: the reference GPT (your phase-2 attention, phase-4 LayerNorm
   with its hand-written backward, phase-4 tanh GELU as x·σ(2u), phase-3 cross-entropy) against
   grader/tests/phase6/_reference.py's TorchGPT (F.scaled_dot_product_attention, nn.LayerNorm,
   F.gelu, F.cross_entropy), both the capstone's model (4 layers, 4 heads, 128 embedding,
   block 64, vocabulary 65) at batch 32, same weights, float32, forward + backward + an AdamW
   step. Goal: ratio ≥ 0.8.
2. Generation of 256 new tokens from a 1-token prompt (greedy, batch 1) with the KV cache
   against without it, for nanoGPT's Shakespeare-character model (6 layers, 6 heads, 384
   embedding, block 256: the model nanoGPT trains on this text, and the smallest whose 256-token
   context a user generates from; the cache is rebuilt once, for the 257th position). Goal:
   ≥ 5×. Also the capstone's width (4 × 4 × 128, block 320 so that 257 positions fit), whose
   cached step is mostly per-operation overhead, for comparison.

Time: the CPU time of this process (one thread), not the wall time: other jobs on a shared
machine take the CPU away between our instructions, which a wall clock counts and a CPU clock
does not (the wall-clock ratio is printed too). Repetitions alternate between the two sides so
that drift hits both alike; the ratio of the medians is reported, measured in this one run.

    python bench/gpt.py [--reps 5] [--threads 1] [--only training|generation]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before torch loads its thread pools

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from grader.tests.phase6._reference import TorchGPT  # noqa: E402
from solutions import phase6_models as course  # noqa: E402

SIZE = {"vocab_size": 65, "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}
NANOGPT_CHAR = {"vocab_size": 65, "block_size": 256, "n_layer": 6, "n_head": 6, "n_embd": 384}
BATCH, STEPS_PER_REP = 32, 3
NEW_TOKENS = 256
GOAL_THROUGHPUT, GOAL_CACHE = 0.8, 5.0


class Clocks:
    """CPU time of this process and wall time, read together."""

    def __enter__(self) -> "Clocks":
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *_) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def paired_models(size: dict) -> tuple[course.GPT, TorchGPT]:
    torch.manual_seed(0)
    ours = course.GPT(course.GPTConfig(**size))
    theirs = TorchGPT(**size)
    theirs.load_state_dict(ours.state_dict(), strict=False)
    theirs.lm_head.weight = theirs.wte.weight
    return ours, theirs


def training_steps(model, loss_of, batches) -> Clocks:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with Clocks() as clocks:
        for inputs, targets in batches:
            loss = loss_of(model, inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return clocks


def ours_loss(model, inputs, targets):
    return model(inputs, targets)[1]


def theirs_loss(model, inputs, targets):
    logits = model(inputs)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def throughput(reps: int) -> float:
    ours, theirs = paired_models(SIZE)
    generator = torch.Generator().manual_seed(1)
    data = torch.randint(0, SIZE["vocab_size"], (STEPS_PER_REP, BATCH, SIZE["block_size"] + 1),
                         generator=generator)
    batches = [(row[:, :-1], row[:, 1:]) for row in data]
    with torch.no_grad():  # the two models compute the same logits
        torch.testing.assert_close(ours(batches[0][0])[0], theirs(batches[0][0]),
                                   rtol=1e-4, atol=1e-4)
    training_steps(ours, ours_loss, batches[:1])  # warm up both
    training_steps(theirs, theirs_loss, batches[:1])
    runs = {"ours": [], "torch": []}
    for _ in range(reps):
        runs["ours"].append(training_steps(ours, ours_loss, batches))
        runs["torch"].append(training_steps(theirs, theirs_loss, batches))
    tokens = STEPS_PER_REP * BATCH * SIZE["block_size"]
    rate = {side: tokens / statistics.median(c.cpu for c in clocks)
            for side, clocks in runs.items()}
    wall = {side: statistics.median(c.wall for c in clocks) for side, clocks in runs.items()}
    ratio = rate["ours"] / rate["torch"]
    print(f"training throughput (the capstone's model, batch {BATCH} × {SIZE['block_size']} "
          f"tokens, forward + backward + AdamW): reference GPT {rate['ours']:,.0f} tokens per "
          f"CPU second, torch built-ins {rate['torch']:,.0f} — ratio {ratio:.2f} (goal ≥ "
          f"{GOAL_THROUGHPUT}; by wall clock {wall['torch'] / wall['ours']:.2f})")
    return ratio


def generation(reps: int, name: str, size: dict) -> float:
    model, _ = paired_models(size)
    model.eval()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    runs = {True: [], False: []}
    tokens = {}
    for _ in range(reps):
        for cache in (True, False):
            with Clocks() as clocks:
                tokens[cache] = model.generate(prompt, NEW_TOKENS, temperature=0.0,
                                               use_cache=cache)
            runs[cache].append(clocks)
    assert torch.equal(tokens[True], tokens[False]), "cached and uncached tokens differ"
    cached, uncached = (statistics.median(c.cpu for c in runs[k]) for k in (True, False))
    walls = [statistics.median(c.wall for c in runs[k]) for k in (True, False)]
    speedup = uncached / cached
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"generation of {NEW_TOKENS} tokens (greedy, batch 1), {name} ({size['n_layer']} × "
          f"{size['n_head']} × {size['n_embd']}, block {size['block_size']}, "
          f"{parameters:.1f}M parameters): KV cache {cached:.2f} CPU s, no cache "
          f"{uncached:.2f} CPU s — {speedup:.1f}× faster (by wall clock "
          f"{walls[1] / walls[0]:.1f}×)")
    return speedup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", choices=("training", "generation"),
                        help="one of the two measurements (a loaded machine makes both slow)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f}")
    ratio = speedup = 1.0
    if args.only != "generation":
        ratio = throughput(args.reps)
    if args.only != "training":
        reps = max(1, args.reps // 3)
        speedup = generation(reps, "nanoGPT's Shakespeare-character model", NANOGPT_CHAR)
        print(f"  goal ≥ {GOAL_CACHE}× for this model")
        generation(reps, "the capstone's width", {**SIZE, "block_size": NEW_TOKENS + 64})
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if ratio > 0 and speedup > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
