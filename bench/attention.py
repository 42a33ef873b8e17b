"""Benchmark: banded sliding-window attention against dense masked attention (phase 2).

Both are the reference solutions: banded_attention(q, k, v, w) and
scaled_dot_product_attention(q, k, v, sliding_window_mask(T, w)), which compute the same thing
(checked below). B = 1, H = 4, d = 64, w = 128, float32, inference (no_grad), CPU with one
thread. T ∈ {512, 1024, 2048, 4096}.

Time: repetitions alternate between the two so that drift in the machine's speed hits both
alike; the ratio of the medians is reported. The dense mask is built once outside the timing
(which favours the dense side).

Memory: torch's CPU allocations are invisible to tracemalloc, so each (method, T) runs in a
fresh subprocess that reads its peak resident set size (VmHWM, reset to the current RSS just
before) before and after the call, with the inputs (and the mask) already allocated: the
difference is the peak of the call's own intermediates (median of 3 processes). The analytic
size of the largest intermediate is printed beside it: the (B, H, T, T) scores for dense, the
(B, H, T/w, w, 2w) block scores for banded.

Goal: banded ≥ 4× faster than dense at T = 4096, and banded memory linear in T.

    python bench/attention.py [--reps 9] [--threads 1]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before torch loads its thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from solutions import phase2_attention as attention  # noqa: E402

LENGTHS = (512, 1024, 2048, 4096)
B, H, D, WINDOW = 1, 4, 64, 128
BYTES = 4  # float32
GOAL_SPEEDUP = 4.0


def inputs(T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(T)
    return tuple(torch.randn(B, H, T, D, generator=generator) for _ in range(3))


def dense(q, k, v, mask):
    return attention.scaled_dot_product_attention(q, k, v, mask)[0]


def banded(q, k, v, mask=None):
    return attention.banded_attention(q, k, v, WINDOW)


METHODS = {"dense": dense, "banded": banded}


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes.

    Not getrusage's ru_maxrss: Linux carries that over fork + exec, so a child starts with its
    parent's peak (here: the parent's dense T = 4096 run) and shows no growth at all.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: best effort


def reset_peak_rss() -> None:
    """Lower the peak-RSS mark to the current RSS (Linux ≥ 4.0), if the kernel lets us."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def child(method: str, T: int) -> None:
    """One call in this fresh process; print the growth of the peak RSS it caused."""
    q, k, v = inputs(T)
    mask = attention.sliding_window_mask(T, WINDOW) if method == "dense" else None
    with torch.no_grad():
        METHODS[method](q[..., :8, :], k[..., :8, :], v[..., :8, :],
                        None if mask is None else mask[:8, :8])  # load kernels, small
        reset_peak_rss()
        before = peak_rss_bytes()
        out = METHODS[method](q, k, v, mask)
        after = peak_rss_bytes()
    del out
    print(json.dumps({"peak_bytes": after - before}))


def measure_memory(method: str, T: int, threads: int, runs: int = 3) -> int:
    """Median over `runs` fresh processes (the peak moves by one intermediate from run to run,
    depending on when the allocator hands pages back)."""
    peaks = []
    for _ in range(runs):
        run = subprocess.run([sys.executable, __file__, "--child", method, str(T),
                              "--threads", str(threads)], capture_output=True, text=True,
                             check=True)
        peaks.append(json.loads(run.stdout.strip().splitlines()[-1])["peak_bytes"])
    return int(statistics.median(peaks))


def measure_time(T: int, reps: int) -> tuple[float, float, float]:
    """(median dense seconds, median banded seconds, max |dense − banded|)."""
    q, k, v = inputs(T)
    mask = attention.sliding_window_mask(T, WINDOW)
    times = {"dense": [], "banded": []}
    with torch.no_grad():
        error = float((dense(q, k, v, mask) - banded(q, k, v)).abs().max())
        banded(q, k, v)  # warm-up
        for _ in range(reps):
            for name in ("dense", "banded"):
                start = time.perf_counter()
                METHODS[name](q, k, v, mask)
                times[name].append(time.perf_counter() - start)
    return statistics.median(times["dense"]), statistics.median(times["banded"]), error


def slope(xs, ys) -> float:
    """Least-squares slope of log y against log x: 1 is linear, 2 quadratic."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1)) for y in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / \
        sum((a - mx) ** 2 for a in lx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return

    print(f"banded vs dense masked attention: B={B}, H={H}, d={D}, w={WINDOW}, float32, "
          f"{args.threads} thread(s), median of {args.reps} interleaved repetitions")
    header = (f"{'T':>5} | {'dense ms':>9} {'banded ms':>9} {'speedup':>8} | "
              f"{'dense MB':>9} {'banded MB':>9} {'ratio':>6} | "
              f"{'scores MB (analytic)':>21} | {'max |Δ|':>8}")
    print(header)
    print("-" * len(header))
    rows = []
    for T in LENGTHS:
        dense_s, banded_s, error = measure_time(T, args.reps)
        dense_mem = measure_memory("dense", T, args.threads)
        banded_mem = measure_memory("banded", T, args.threads)
        analytic_dense = B * H * T * T * BYTES
        analytic_banded = B * H * math.ceil(T / WINDOW) * WINDOW * 2 * WINDOW * BYTES
        rows.append((T, dense_s, banded_s, dense_mem, banded_mem))
        print(f"{T:>5} | {dense_s * 1e3:>9.2f} {banded_s * 1e3:>9.2f} "
              f"{dense_s / banded_s:>7.1f}× | "
              f"{dense_mem / 2**20:>9.1f} {banded_mem / 2**20:>9.1f} "
              f"{dense_mem / max(banded_mem, 1):>5.1f}× | "
              f"{analytic_dense / 2**20:>9.1f} / {analytic_banded / 2**20:>9.1f} | "
              f"{error:>8.1e}")

    lengths = [r[0] for r in rows]
    speedup = rows[-1][1] / rows[-1][2]
    banded_slope, dense_slope = slope(lengths, [r[4] for r in rows]), \
        slope(lengths, [r[3] for r in rows])
    fast = speedup >= GOAL_SPEEDUP
    linear = banded_slope < 1.3
    print(f"\nspeedup at T = {lengths[-1]}: {speedup:.1f}× (goal ≥ {GOAL_SPEEDUP:g}×) — "
          f"{'met' if fast else 'NOT met'}")
    print(f"peak memory grows like T^{banded_slope:.2f} for banded and T^{dense_slope:.2f} for "
          f"dense (log-log slope over T = {lengths[0]} … {lengths[-1]}) — banded is "
          f"{'linear' if linear else 'NOT linear'}")
    print("verdict:", "PASS" if fast and linear else "FAIL")
    sys.exit(0 if fast and linear else 1)


if __name__ == "__main__":
    main()
