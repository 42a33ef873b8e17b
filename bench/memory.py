"""Peak memory of judge and worker, and grading time on one CPU, per phase (issue 14, 9 §4).

Gradescope gives half a vCPU and 768 MB. Each phase is graded in a fresh judge process pinned
to one CPU (os.sched_setaffinity), on its reference solution and on a hostile submission whose
every exercise returns a 14000×14000 float64 array (1.5 GiB) from every call. The judge's peak
is its own ru_maxrss; the worker's is what its session measured (the VmHWM of the worker
and the sandbox around it). Their sum must stay within the budget.
Usage: python bench/memory.py [--phase N ...] [--memory 768M]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import registry  # noqa: E402
from grader.session import Budget, MiB, parse_memory  # noqa: E402

GRADE_ONE = """
import json, os, resource, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from pathlib import Path
from grader import registry
from grader.runner import grade
from grader.session import Session
peaks = [0]  # the worker tree's peak resident set, as each session measured it at close
close = Session.close
def recording_close(self):
    close(self)
    peaks.append(self.peak_memory)
Session.close = recording_close
from grader.session import Budget
started = time.monotonic()
result = grade(registry.phase(int(sys.argv[1])), Path(sys.argv[2]),
               limits=Budget(int(sys.argv[3])).limits())
print(json.dumps({
    "score": result.score, "max": result.max_score, "seconds": time.monotonic() - started,
    "judge": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "worker": max(peaks),
    "isolation": result.isolation,
}))
"""


def big_replies(phase: registry.Phase, folder: Path) -> Path:
    """A submission of `phase` answering every call with 1.5 GiB."""
    symbols = sorted({s for e in phase.exercises for s in e.symbols})
    lines = ["import numpy as np", "", "", "def big(*args, **kwargs):"]
    lines += ["    return np.ones((14000, 14000))", ""]
    lines += [f"{symbol} = big" for symbol in symbols]
    path = folder / phase.filename
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(phase: registry.Phase, target: Path, budget: Budget) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", GRADE_ONE, str(phase.number), str(target), str(budget.total)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", type=int, action="append")
    parser.add_argument("--memory", default="768M")
    args = parser.parse_args()
    budget = Budget(parse_memory(args.memory))
    numbers = args.phase or [
        n for n, p in registry.phases().items() if (ROOT / "solutions" / p.filename).exists()
    ]
    print(f"budget {budget.describe()}; one CPU per run; load {os.getloadavg()[0]:.1f}")
    header = f"{'phase':>5} {'case':<12} {'score':>11} {'time':>7} {'judge':>8} {'worker':>8}"
    print(header + f" {'total':>8}  within budget")
    worst = 0
    with tempfile.TemporaryDirectory() as tmp:
        for number in numbers:
            phase = registry.phase(number)
            cases = {
                "reference": ROOT / "solutions" / phase.filename,
                "big replies": big_replies(phase, Path(tmp)),
            }
            for case, target in cases.items():
                m = measure(phase, target, budget)
                total = m["judge"] + m["worker"]
                worst = max(worst, total)
                print(
                    f"{number:>5} {case:<12} {m['score']:>5g}/{m['max']:<5g} "
                    f"{m['seconds']:>6.1f}s {m['judge'] / MiB:>6.0f}Mi {m['worker'] / MiB:>6.0f}Mi "
                    f"{total / MiB:>6.0f}Mi  {'yes' if total <= budget.total else 'NO'}"
                    f"   ({m['isolation']})"
                )
    print(f"largest total peak {worst / MiB:.0f} MiB of the {budget.total / MiB:.0f} MiB budget")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
