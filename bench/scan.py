"""Benchmark: the parallel selective scan against the sequential one, and Mamba's recurrent step
against recomputing the full forward for every generated token (phase 6).

Scan: the reference solutions selective_scan_parallel and selective_scan_sequential on the
same inputs (checked equal below), forward + backward of Σ y, batch 8, 64 channels, 16 states,
float32, CPU, L ∈ {1024, 4096}; beside them the loop as students often first write it,
indexing x[:, t] at every step (defined below, not a course function): its backward writes a
whole-tensor gradient per index, O(L²), which is the slowness the parallel scan is usually
credited with beating. Generation: a reference MambaLM (d_model 64, 2 layers, vocab
65, float32, no_grad) greedy-generates 256 tokens after a 1-token prompt, once through
MambaLM.step (O(1) per token) and once by running forward on the whole sequence so far for
every token (O(t) per token); both must produce the same tokens.

Repetitions alternate between the two sides so that drift in the machine's speed hits both
alike; the ratio of the medians is reported, measured in this one run. Goal: parallel ≥ 5×
faster than sequential at L = 1024 (mamba.py reads ≈10× at 512 on an A100; no CPU figure is
published).

    python bench/scan.py [--reps 3] [--threads 1] [--lengths 1024 4096]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before torch loads its thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from solutions import phase6_models as course  # noqa: E402

BATCH, CHANNELS, STATES = 8, 64, 16
GOAL_SPEEDUP = 5.0
NEW_TOKENS = 256


def scan_inputs(length: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(length)
    x = torch.randn(BATCH, length, CHANNELS, generator=generator)
    delta = torch.nn.functional.softplus(torch.randn(BATCH, length, CHANNELS,
                                                     generator=generator)) * 0.1
    A = -torch.arange(1.0, STATES + 1).repeat(CHANNELS, 1)
    B, C = (torch.randn(BATCH, length, STATES, generator=generator) for _ in range(2))
    return [x, delta, A, B, C]


def indexing_loop(x, delta, A, B, C):
    """The sequential scan with x[:, t] indexed inside the loop (the O(L²)-backward habit)."""
    h = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])
    ys = []
    for t in range(x.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + \
            (delta[:, t] * x[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    return torch.stack(ys, dim=1)


SCANS = {"sequential": course.selective_scan_sequential,
         "parallel": course.selective_scan_parallel, "indexing_loop": indexing_loop}


def forward_backward(scan, inputs: list[torch.Tensor]) -> float:
    leaves = [t.clone().requires_grad_() for t in inputs]
    started = time.perf_counter()
    scan(*leaves).sum().backward()
    return time.perf_counter() - started


def scan_ratio(length: int, reps: int) -> dict:
    inputs = scan_inputs(length)
    with torch.no_grad():
        outputs = [scan(*inputs) for scan in SCANS.values()]
    error = max(float((y - outputs[0]).abs().max()) for y in outputs[1:])
    times = {name: [] for name in SCANS}
    for _ in range(reps):
        for name, scan in SCANS.items():
            times[name].append(forward_backward(scan, inputs))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"L": length, **{f"{name}_s": round(m, 3) for name, m in medians.items()},
            "speedup": round(medians["sequential"] / medians["parallel"], 2),
            "speedup_over_indexing_loop": round(medians["indexing_loop"] / medians["parallel"], 2),
            "max_abs_difference": error}


@torch.no_grad()
def generate_stepping(model, prompt: torch.Tensor) -> torch.Tensor:
    tokens, states = prompt, None
    logits, states = model.step(prompt[:, 0], states)
    for _ in range(NEW_TOKENS):
        nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
        tokens = torch.cat((tokens, nxt), 1)
        logits, states = model.step(nxt[:, 0], states)
    return tokens


@torch.no_grad()
def generate_recomputing(model, prompt: torch.Tensor) -> torch.Tensor:
    tokens = prompt
    for _ in range(NEW_TOKENS):
        nxt = model(tokens)[:, -1].argmax(-1, keepdim=True)  # the whole sequence again
        tokens = torch.cat((tokens, nxt), 1)
    return tokens


def generation_ratio(reps: int) -> dict:
    torch.manual_seed(0)
    model = course.MambaLM(course.MambaConfig(vocab_size=65, d_model=64, n_layer=2)).eval()
    prompt = torch.tensor([[1]])
    same = torch.equal(generate_stepping(model, prompt), generate_recomputing(model, prompt))
    times = {"step": [], "recompute": []}
    for _ in range(reps):
        for name, generate in (("step", generate_stepping), ("recompute", generate_recomputing)):
            started = time.perf_counter()
            generate(model, prompt)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"tokens": NEW_TOKENS, "step_s": round(medians["step"], 3),
            "recompute_s": round(medians["recompute"], 3),
            "speedup": round(medians["recompute"] / medians["step"], 2), "same_tokens": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.reps}")
    rows = []
    for length in args.lengths:
        row = scan_ratio(length, args.reps)
        rows.append(row)
        verdict = "" if row["L"] != 1024 else \
            f"  (goal ≥ {GOAL_SPEEDUP}×: {'met' if row['speedup'] >= GOAL_SPEEDUP else 'NOT met'})"
        print(f"scan L = {row['L']:5d}: sequential {row['sequential_s']:.3f} s, parallel "
              f"{row['parallel_s']:.3f} s → {row['speedup']:.2f}×{verdict}; indexing loop "
              f"{row['indexing_loop_s']:.3f} s → parallel {row['speedup_over_indexing_loop']:.2f}× "
              f"faster; max |Δy| {row['max_abs_difference']:.1e}", flush=True)
    generation = generation_ratio(args.reps)
    print(f"generation of {NEW_TOKENS} tokens: step {generation['step_s']:.3f} s, recompute "
          f"{generation['recompute_s']:.3f} s → {generation['speedup']:.2f}×; same tokens: "
          f"{generation['same_tokens']}")
    print(json.dumps({"scan": rows, "generation": generation}))


if __name__ == "__main__":
    main()
