"""Benchmark: the phase-5 reference engine against torch eager on one MLP training step.

One step = forward + cross-entropy + backward + SGD update of a 784-256-256-10 ReLU MLP on a
batch of 128, float32, on the CPU with one thread for both (BLAS threads pinned through the
environment before NumPy is imported; torch.set_num_threads(1)). Repetitions alternate between
the two so that drift in the machine's speed hits both alike; the ratio of the medians is
reported. Goal: engine/torch ≤ 2.0.

    python bench/autograd.py [--reps 200] [--profile]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # must happen before numpy (and its BLAS) is loaded

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from solutions import phase5_autograd as ag  # noqa: E402

SIZES = (784, 256, 256, 10)
BATCH, LR = 128, 0.01


def engine_model(rng: np.random.Generator) -> ag.Sequential:
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        layers += [ag.Linear(fan_in, fan_out, rng, dtype=np.float32), ag.ReLULayer()]
    return ag.Sequential(*layers[:-1])  # no ReLU after the last layer


def torch_model(engine: ag.Sequential) -> torch.nn.Sequential:
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    with torch.no_grad():  # the same weights, so both do exactly the same work
        for p, q in zip(model.parameters(), engine.parameters(), strict=True):
            p.copy_(torch.from_numpy(q.data))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="cProfile the engine's steps")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    model = engine_model(rng)
    optimizer = ag.SGD(model.parameters(), lr=LR)
    tmodel = torch_model(model)
    toptimizer = torch.optim.SGD(tmodel.parameters(), lr=LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def engine_step() -> float:
        optimizer.zero_grad()
        loss = ag.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    def torch_step() -> float:
        toptimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
        loss.backward()
        toptimizer.step()
        return loss.item()

    first = engine_step(), torch_step()  # also the warm-up
    assert abs(first[0] - first[1]) < 1e-4, f"the two models disagree: {first}"
    for _ in range(10):
        engine_step(), torch_step()

    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [engine_step() for _ in range(args.reps)])
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)

    times = {"engine": [], "torch": []}
    for _ in range(args.reps):
        for name, step in (("engine", engine_step), ("torch", torch_step)):
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    engine_ms, torch_ms = (1e3 * float(np.median(times[k])) for k in ("engine", "torch"))
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, 1 thread, {args.reps} reps")
    print(f"engine: {engine_ms:.2f} ms/step   torch eager: {torch_ms:.2f} ms/step (medians)")
    print(f"engine/torch ratio: {engine_ms / torch_ms:.2f} (goal ≤ 2.0)")


if __name__ == "__main__":
    main()
