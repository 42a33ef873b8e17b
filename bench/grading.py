"""Grading latency of phase 0, the cost of isolation and of the sandbox (SPEC §7, issue 9 §1).

Grades the reference solution of phase 0, interleaved: with the worker in the sandbox this
system offers (grader.sandbox), with the worker unsandboxed, and with an in-process stand-in
that runs the same checks and the same wire encoding but no subprocess and no pipes; prints
medians and their ratios (the sandbox's goal: ≤ 1.15× unsandboxed). One untimed run comes first
(the judge's own warm-up: lazy imports, fixtures) and the order rotates at every repetition, so
that no variant always runs first. Also prints what one worker start (spawn, import of the
submission) and one remote call cost, sandboxed and not: the parts of the difference.
Usage: python bench/grading.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import registry, sandbox  # noqa: E402
from grader.runner import grade  # noqa: E402
from grader.session import Session, Submission  # noqa: E402
from grader.submission import prepare  # noqa: E402
from grader.worker.main import Worker  # noqa: E402

SOLUTION = ROOT / "solutions" / "phase0_foundations.py"


class InProcessSession(Session):
    """The judge and the submission in one process: for measurement only, never for grading."""

    def _spawn(self) -> None:
        sys.path.insert(0, str(self.submission.directory))
        self.worker = Worker(str(self.submission.directory), "submission")
        self.process = object()
        self.generation += 1
        reply, _ = self.worker.handle(
            {"op": "import", "module": self.submission.module, "args": [], "kwargs": {"d": {}}}, []
        )
        self.module_handle = reply["value"]["h"]

    def _exchange(self, header, buffers, seconds, what):
        reply, out = self.worker.handle(header, [bytes(b) for b in buffers])
        self._buffers = [bytes(b) for b in out]
        return reply

    def close(self) -> None:
        self._kill()

    def _kill(self) -> None:
        self.process = None
        for name in [n for n in sys.modules if n == "submission" or n.startswith("submission.")]:
            del sys.modules[name]
        if str(self.submission.directory) in sys.path:
            sys.path.remove(str(self.submission.directory))


def with_isolation(method: str) -> type[Session]:
    """A Session class whose worker always runs in `method` (grader.sandbox.METHODS)."""

    class Isolated(Session):
        def __init__(self, submission, limits=None):
            super().__init__(submission, limits, sandbox.Isolation(method))

    Isolated.__name__ = f"Session[{method}]"
    return Isolated


def call_latency(session_class, calls: int = 2000) -> float:
    phase = registry.phase(0)
    directory, _ = prepare(phase, SOLUTION)
    x = np.random.default_rng(0).normal(size=(8, 8))
    with session_class(Submission(directory, phase.module)) as session:
        module = session.module()
        module.relu(x)
        started = time.perf_counter()
        for _ in range(calls):
            module.relu(x)
        return (time.perf_counter() - started) / calls


def start_latency(session_class, starts: int = 5) -> float:
    """Median seconds from a new session to the submission imported in its worker."""
    phase = registry.phase(0)
    directory, _ = prepare(phase, SOLUTION)
    times = []
    for _ in range(starts):
        started = time.perf_counter()
        with session_class(Submission(directory, phase.module)) as session:
            session.module()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def _seconds(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    phase = registry.phase(0)
    method = sandbox.choose().method
    sandboxed_class, plain_class = with_isolation(method), with_isolation("none")
    sandboxed, isolated, in_process, scores = [], [], [], set()
    runs = [(sandboxed_class, sandboxed), (plain_class, isolated), (InProcessSession, in_process)]
    grade(phase, SOLUTION, session_class=plain_class)  # warm-up, not timed
    for repetition in range(args.repeat):
        for session_class, times in runs[repetition % 3 :] + runs[: repetition % 3]:
            result = grade(phase, SOLUTION, session_class=session_class)
            times.append(result.seconds)
            scores.add((session_class.__name__, result.score, result.max_score))
    boxed = statistics.median(sandboxed)
    iso, local = statistics.median(isolated), statistics.median(in_process)
    print(f"phase 0 on the reference solution, {args.repeat} interleaved runs each")
    print(f"  sandboxed worker: median {boxed:6.2f} s  (runs: {_seconds(sandboxed)})  [{method}]")
    print(f"  plain worker    : median {iso:6.2f} s  (runs: {_seconds(isolated)})")
    print(f"  in-process      : median {local:6.2f} s  (runs: {_seconds(in_process)})")
    ratio = boxed / iso
    verdict = "met" if ratio <= 1.15 else "MISSED"
    print(f"  sandbox cost    : {ratio:.2f}× the unsandboxed time (goal ≤ 1.15: {verdict})")
    print(f"  isolation cost  : {iso / local:.2f}× the in-process time (+{iso - local:.2f} s)")
    print(f"  scores          : {sorted(scores)}")
    boxed_start, plain_start = start_latency(sandboxed_class), start_latency(plain_class)
    print(
        f"  one worker start: sandboxed {boxed_start * 1e3:.0f} ms, plain "
        f"{plain_start * 1e3:.0f} ms ({(boxed_start - plain_start) * 1e3:+.0f} ms)"
    )
    boxed_call = call_latency(sandboxed_class)
    remote, local_call = call_latency(plain_class), call_latency(InProcessSession)
    print(
        f"  one call relu(8×8): sandboxed {boxed_call * 1e6:.0f} µs, plain {remote * 1e6:.0f} µs,"
        f" in-process {local_call * 1e6:.0f} µs ({remote / local_call:.1f}× in-process)"
    )
    print(f"  goal: grading phase 0 ≤ 15 s — {'met' if boxed <= 15 else 'MISSED'}")
    print(f"  load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
