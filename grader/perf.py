"""The perf category: how the student's code spends time and memory, measured in the same run.

A perf check times one representative call of the student's function (in the worker, by the
probe perf.time_call: the IPC is not counted; the best of a few runs after a warm-up) against
a torch built-in doing the same work on the same input, timed in the judge.

Why a torch built-in in the judge and not a fixture of the reference solution's time: a ratio
is only meaningful when both sides run on the same machine under the same load, and this
machine is shared and noisy (a recorded time comes from another machine class and another
moment). Both sides run single-threaded (the worker has OMP_NUM_THREADS=1; the judge sets
torch.set_num_threads(1) while it times). The reference solution's own ratio to the built-in
is printed by bench/perf.py beside each entry's `allowed` ratio, which stays several times
above it (softmax 2.3× for 8×, attention 2.3× for 6×, Conv2d 1.0× for 10×, on a loaded
machine): a student slower than `allowed` × torch is doing something the reference does not.

Peak memory is traced with tracemalloc in the worker: NumPy reports its allocations to it, and
it is compared with the output's size (the memory any implementation must hand back); torch's
CPU allocator is invisible to tracemalloc, so torch phases report time only.

Informational by default: the check passes, weighs nothing, and its note says what it saw.
A course makes perf scored with GRADSCHOOL_PERF=scored in the environment of the grading run:
the checks then weigh 1 and fail above `allowed`. Ratios only, never absolute thresholds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from grader.checks import CheckFailed
from grader.evidence import attach
from grader.session import fetch, run_probe

SCORED = os.environ.get("GRADSCHOOL_PERF", "").lower() == "scored"
WEIGHT = 1.0 if SCORED else 0.0  # @check(..., "perf", weight=perf.WEIGHT)
REPEAT = 5


def best_time(call: Callable[[], object], repeat: int = REPEAT) -> float:
    """The best of `repeat` timed calls after one warm-up, single-threaded torch."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        call()
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - started)
        return best
    finally:
        torch.set_num_threads(threads)


def compare(
    m,
    what: str,
    function,
    args: list,
    reference: Callable[[], object],
    *,
    allowed: float,
    slow_hint: str,
    output_bytes: int | None = None,
    kwargs: dict | None = None,
) -> float:
    """Time the student's `function(*args, **kwargs)` against `reference()`; attach the
    measurement; in scored mode fail above `allowed` × the reference's time. Returns the ratio.

    Only a correct call is timed: the student's output must match `reference()`'s (its arrays,
    in order) first, because the speed of a wrong answer says nothing."""
    _require_same_output(what, fetch(function(*args, **(kwargs or {}))), reference())
    measured = run_probe(m, "perf.time_call", function, args, kwargs or {}, REPEAT)
    try:
        seconds, peak = float(measured["seconds"]), int(measured["peak"])
    except (TypeError, KeyError, ValueError):
        raise CheckFailed(f"the timing of {what} returned {measured!r}.") from None
    theirs = best_time(reference)
    ratio = seconds / max(theirs, 1e-9)
    note = f"{what}: {ratio:.1f}× torch's time"
    if output_bytes and peak:
        note += f"; peak memory {peak / output_bytes:.1f}× the output's size"
    verdict = "" if ratio <= allowed else f" — slower than the {allowed:g}× expected: {slow_hint}"
    attach(f"perf of {what}", "note", note + verdict, seconds=np.array([seconds, theirs]))
    if SCORED and ratio > allowed:
        raise CheckFailed(
            f"your {what} takes {ratio:.1f}× the time of torch's built-in on the same input "
            f"(the reference solution stays within {allowed:g}×).",
            slow_hint,
        )
    return ratio


def _arrays(value) -> list[np.ndarray]:
    items = value if isinstance(value, (tuple, list)) else [value]
    return [np.asarray(v.detach() if hasattr(v, "detach") else v, dtype=np.float64) for v in items]


def _require_same_output(what: str, theirs, expected) -> None:
    want = _arrays(expected)
    try:  # the student's output may be anything: a string, None, objects
        got = _arrays(theirs)
        same = len(got) >= len(want) and all(
            g.shape == w.shape and np.allclose(g, w, rtol=1e-3, atol=1e-5)
            for g, w in zip(got, want, strict=False)
        )
    except (TypeError, ValueError):
        same = False
    if not same:
        raise CheckFailed(
            f"{what} was not timed: its output on this input differs from torch's.",
            "Make the checks above pass first; the speed of a wrong answer means nothing.",
        )
