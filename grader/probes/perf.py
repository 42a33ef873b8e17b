"""Trusted timing in the worker for grader/perf.py: the student's call without the IPC."""

from __future__ import annotations

import time
import tracemalloc


def time_call(function, args: list, kwargs: dict, repeat: int) -> dict:
    """Best wall time of `repeat` calls after one warm-up, and the peak of memory traced
    (Python objects and NumPy arrays; torch's allocator is invisible to tracemalloc) during
    one further call."""
    function(*args, **kwargs)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    try:
        function(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"seconds": best, "peak": peak}
