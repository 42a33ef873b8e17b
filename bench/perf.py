"""The reference solution's perf ratios: what each perf check's `allowed` is set against.

Grades the reference solution's perf checks (grader/tests/phaseN/perf.py) and prints, per
entry, the ratio its note reports (the student's call timed in the worker against a torch
built-in timed in the judge, both single-threaded, in one run) beside the entry's allowed
ratio: `allowed` should stay several times above the reference's ratio. Usage:
python bench/perf.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import registry  # noqa: E402
from grader.runner import collect, grade  # noqa: E402

ALLOWED = re.compile(r"allowed=([0-9.]+)")


def main() -> None:
    for number in registry.phases():
        phase = registry.phase(number)
        checks, _ = collect(phase)
        perf = {id: [s for s in specs if s.category == "perf"] for id, specs in checks.items()}
        perf = {id: specs for id, specs in perf.items() if specs}
        if not perf:
            continue
        result = grade(phase, ROOT / "solutions" / phase.filename, exercises=list(perf),
                       recognise=False, prerequisites=False)  # fmt: skip
        for ex in result.exercises:
            for check in ex.checks:
                if check.spec.category != "perf":
                    continue
                source = Path(sys.modules[check.spec.function.__module__].__file__).read_text()
                allowed = ALLOWED.search(source)
                notes = [e.note for e in check.evidence if e.kind == "note"] or [check.message]
                print(f"phase {number} {ex.exercise.id}: {notes[0]} "
                      f"(allowed {allowed.group(1) if allowed else '?'}×)")  # fmt: skip


if __name__ == "__main__":
    main()
