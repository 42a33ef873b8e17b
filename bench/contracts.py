"""What the argument watch costs per call (grader/worker/watch.py, issue 8).

Runs the worker in-process on phase 0's reference solution. For a small and a large argument
and for a method whose object holds arrays it times, in one run, the watch alone (fingerprints
before, comparison and aliasing after) and one whole in-process call with the watch on and
with it replaced by a no-op, interleaved; each figure is the fastest of several repeats (the
least disturbed on a busy machine), and the ratios are the result.
Usage: python bench/contracts.py [--calls N] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.worker import main as worker_main  # noqa: E402
from grader.worker import protocol, watch  # noqa: E402


class NoWatch:
    """The watch switched off: what a call cost before issue 8."""

    def __init__(self, fn, args, kwargs):
        pass

    def report(self, result) -> dict:
        return {}


def _worker() -> tuple[worker_main.Worker, int]:
    sys.path.insert(0, str(ROOT))
    worker = worker_main.Worker(str(ROOT), "solutions")
    reply, _ = worker.handle({"op": "import", "module": "phase0_foundations"}, [])
    return worker, reply["value"]["h"]


def _call(worker, handle: int, path: list[str], args: list) -> None:
    tree, buffers = protocol.encode(args, lambda obj: obj)
    reply, _ = worker.handle(
        {"op": "call", "h": handle, "p": path, "args": tree, "kwargs": {"d": {}}},
        [bytes(b) for b in buffers],
    )
    if not reply.get("ok"):
        raise RuntimeError(reply)


def fastest(run, calls: int, repeat: int) -> float:
    """Seconds per call of run(), the fastest of `repeat` blocks of `calls`."""
    return min(timeit.repeat(run, number=calls, repeat=repeat)) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    worker, module = _worker()
    reply, _ = worker.handle(
        {"op": "call", "h": module, "p": ["Linear"], "args": [64, 32], "kwargs": {"d": {}}}, []
    )
    layer = reply["value"]["h"]
    cases = {
        "relu on (8, 8)": (module, ["relu"], [np.ones((8, 8))]),
        "relu on (512, 512)": (module, ["relu"], [np.ones((512, 512))]),
        "Linear.forward on (128, 64)": (layer, ["forward"], [np.ones((128, 64))]),
    }
    for name, (handle, path, args) in cases.items():
        alone, off, on = measure(worker, handle, path, args, options.calls, options.repeat)
        print(
            f"{name:28s} watch {alone * 1e6:7.1f} µs = {alone / off:5.1%} of a call "
            f"({off * 1e6:.0f} µs); whole call on/off {on / off:.2f}"
        )


def measure(worker, handle: int, path: list[str], args: list, calls: int, repeat: int):
    """(the watch alone, a whole call without it, with it), in seconds per call."""
    function = worker.from_handle(handle, tuple(path), "")
    real = watch.Watch
    alone = fastest(lambda: real(function, args, {}).report(function(*args)), calls, repeat)
    alone -= fastest(lambda: function(*args), calls, repeat)
    whole = {}
    for state, implementation in (("off", NoWatch), ("on", real)) * 2:
        watch.Watch = implementation
        took = fastest(lambda: _call(worker, handle, path, args), calls, repeat)
        whole[state] = min(whole.get(state, took), took)
    watch.Watch = real
    return alone, whole["off"], whole["on"]


if __name__ == "__main__":
    main()
