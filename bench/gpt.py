"""Benchmark: the reference GPT (phase 6) against the same GPT assembled from torch built-ins,
and KV-cached against uncached generation.

1. Training throughput, tokens/s: the reference GPT (your phase-2 attention, phase-4 LayerNorm
   with its hand-written backward, tanh GELU, phase-3 cross-entropy) against
   grader/tests/phase6/_reference.py's TorchGPT (F.scaled_dot_product_attention, nn.LayerNorm,
   F.gelu, F.cross_entropy), same size (the capstone's: 4 layers, 4 heads, 128 embedding,
   block 64, batch 12, vocabulary 65), same weights, float32, forward + backward + an AdamW
   step. Goal: ratio ≥ 0.8.
2. Generation of 256 new tokens from a 1-token prompt (greedy; batch 1, and 8 prompts at once)
   with the KV cache against without it (the context grows to 257 tokens: block_size 320
   here). Goal: ≥ 5×. A cached step of this small model is mostly per-operation overhead, so
   the speed-up grows with the batch and the width, and shrinks on a loaded machine.

Time: repetitions alternate between the two sides so that drift in the machine's speed hits
both alike; the ratio of the medians is reported, measured in this one run.

    python bench/gpt.py [--reps 7] [--threads 1]
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
BATCH, STEPS_PER_REP = 12, 5
NEW_TOKENS, GENERATION_BLOCK = 256, 320
GOAL_THROUGHPUT, GOAL_CACHE = 0.8, 5.0


def paired_models(size: dict) -> tuple[course.GPT, TorchGPT]:
    torch.manual_seed(0)
    ours = course.GPT(course.GPTConfig(**size))
    theirs = TorchGPT(**size)
    theirs.load_state_dict(ours.state_dict(), strict=False)
    theirs.lm_head.weight = theirs.wte.weight
    return ours, theirs


def training_steps(model, loss_of, batches) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for inputs, targets in batches:
        loss = loss_of(model, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


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
    times = {"ours": [], "torch": []}
    for _ in range(reps):
        times["ours"].append(training_steps(ours, ours_loss, batches))
        times["torch"].append(training_steps(theirs, theirs_loss, batches))
    tokens = STEPS_PER_REP * BATCH * SIZE["block_size"]
    rate = {side: tokens / statistics.median(values) for side, values in times.items()}
    ratio = rate["ours"] / rate["torch"]
    print(f"training throughput (batch {BATCH} × {SIZE['block_size']} tokens, forward + backward "
          f"+ AdamW): reference GPT {rate['ours']:,.0f} tokens/s, torch built-ins "
          f"{rate['torch']:,.0f} tokens/s — ratio {ratio:.2f} (goal ≥ {GOAL_THROUGHPUT})")
    return ratio


def generation(reps: int, batch: int) -> float:
    model, _ = paired_models({**SIZE, "block_size": GENERATION_BLOCK})
    model.eval()
    prompt = torch.zeros(batch, 1, dtype=torch.long)
    tokens = {cache: model.generate(prompt, NEW_TOKENS, temperature=0.0, use_cache=cache)
              for cache in (True, False)}
    assert torch.equal(tokens[True], tokens[False]), "cached and uncached tokens differ"
    times = {True: [], False: []}
    for _ in range(reps):
        for cache in (True, False):
            started = time.perf_counter()
            model.generate(prompt, NEW_TOKENS, temperature=0.0, use_cache=cache)
            times[cache].append(time.perf_counter() - started)
    cached, uncached = statistics.median(times[True]), statistics.median(times[False])
    speedup = uncached / cached
    print(f"generation of {NEW_TOKENS} tokens (greedy, batch {batch}): KV cache "
          f"{cached * 1e3:.0f} ms, no cache {uncached * 1e3:.0f} ms — {speedup:.1f}× faster "
          f"(goal ≥ {GOAL_CACHE}×)")
    return speedup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f}")
    ratio = throughput(args.reps)
    speedups = [generation(max(3, args.reps // 2), batch) for batch in (1, 8)]
    return 0 if ratio > 0 and min(speedups) > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
