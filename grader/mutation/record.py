"""The committed record of a phase's mutation analysis and the reviewed lists of its survivors.

grader/mutants/phaseN/
    mutation-report.json  written by `make mutate`, never by hand: per exercise its key (see
                          keys.py), and per generated mutant the check that killed it, or null
                          for a survivor, whose diff is kept under "survivors"
    equivalent.toml       reviewed: survivors that no documented behaviour can tell from the
                          solution, each with a one-line reason
    open-survivors.toml   known open survivors: not equivalent, not killed yet; they count as
                          not killed and verify prints them as a warning
Both lists hold [[mutant]] tables with `id`, `change` (for the reader; the id is what counts)
and `reason`. Verify fails on a stale report, on a survivor in neither list, and on an
"equivalent" mutant that a check kills.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from grader.mutants import MUTANTS_DIR
from grader.registry import Phase

GOAL = 0.95
REPORT = "mutation-report.json"
EQUIVALENT = "equivalent.toml"
OPEN = "open-survivors.toml"


def folder(phase: Phase) -> Path:
    return MUTANTS_DIR / f"phase{phase.number}"


def load_report(phase: Phase) -> dict | None:
    path = folder(phase) / REPORT
    return json.loads(path.read_text()) if path.exists() else None


def write_report(phase: Phase, exercises: dict[str, dict]) -> Path:
    """Write the report with one line per mutant, so that a rerun's git diff is readable."""
    path = folder(phase) / REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ["{", f'  "phase": {phase.number},', '  "exercises": {']
    for n, (exercise, entry) in enumerate(sorted(exercises.items())):
        out.append(f"    {json.dumps(exercise)}: {{")
        out.append(f'      "key": {json.dumps(entry["key"])},')
        out.append(f'      "seconds": {entry["seconds"]:.1f},')
        out.append('      "mutants": {')
        items = sorted(entry["mutants"].items())
        out += [
            f"        {json.dumps(k)}: {json.dumps(v)}" + ("," if i < len(items) - 1 else "")
            for i, (k, v) in enumerate(items)
        ]
        out.append("      },")
        out.append('      "survivors": {')
        items = sorted(entry["survivors"].items())
        out += [
            f"        {json.dumps(k)}: {json.dumps(v)}" + ("," if i < len(items) - 1 else "")
            for i, (k, v) in enumerate(items)
        ]
        out.append("      }")
        out.append("    }" + ("," if n < len(exercises) - 1 else ""))
    out += ["  }", "}"]
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(out) + "\n")
    temporary.replace(path)
    return path


def load_reviewed(phase: Phase, name: str) -> dict[str, str]:
    """{mutant id: reason} from equivalent.toml or open-survivors.toml."""
    path = folder(phase) / name
    if not path.exists():
        return {}
    entries = tomllib.loads(path.read_text()).get("mutant", [])
    reviewed = {}
    for entry in entries:
        if not entry.get("id") or (name == EQUIVALENT and not entry.get("reason")):
            raise ValueError(f"{path}: every [[mutant]] needs an id and a reason")
        reviewed[entry["id"]] = entry.get("reason", "")
    return reviewed


@dataclass
class Counts:
    generated: int = 0
    killed: int = 0
    equivalent: int = 0
    open: int = 0
    unreviewed: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Killed among the non-equivalent mutants (open survivors count as not killed)."""
        relevant = self.generated - self.equivalent
        return self.killed / relevant if relevant else 1.0

    def add(self, other: Counts) -> None:
        self.generated += other.generated
        self.killed += other.killed
        self.equivalent += other.equivalent
        self.open += other.open
        self.unreviewed += other.unreviewed


def count(entry: dict, equivalent: dict[str, str], open_: dict[str, str]) -> Counts:
    counts = Counts(generated=len(entry["mutants"]))
    for mutant, killer in entry["mutants"].items():
        if killer is not None:
            counts.killed += 1
        elif mutant in equivalent:
            counts.equivalent += 1
        elif mutant in open_:
            counts.open += 1
        else:
            counts.unreviewed.append(mutant)
    return counts


def review_problems(
    phase: Phase, report: dict, equivalent: dict[str, str], open_: dict[str, str]
) -> tuple[list[str], list[str]]:
    """(problems, warnings) about the reviewed lists against a current report."""
    problems, warnings = [], []
    verdicts = {m: k for e in report["exercises"].values() for m, k in e["mutants"].items()}
    survivors = {m: d for e in report["exercises"].values() for m, d in e["survivors"].items()}
    where = f"grader/mutants/phase{phase.number}"
    for mutant in sorted(set(equivalent) | set(open_)):
        listed = EQUIVALENT if mutant in equivalent else OPEN
        if mutant in equivalent and mutant in open_:
            problems.append(f"mutant {mutant} is in both {EQUIVALENT} and {OPEN}")
        if mutant not in verdicts:
            warnings.append(f"{where}/{listed}: {mutant} is no longer generated: remove it")
        elif verdicts[mutant] is not None:
            message = f"{where}/{listed}: {mutant} is killed by {verdicts[mutant]}: remove it"
            (problems if listed == EQUIVALENT else warnings).append(message)
    for mutant, killer in sorted(verdicts.items()):
        if killer is None and mutant not in equivalent and mutant not in open_:
            problems.append(
                f"unreviewed survivor {mutant}: add a check that kills it, or record it in "
                f"{where}/{EQUIVALENT} with a reason\n{_indent(survivors.get(mutant, ''))}"
            )
    return problems, warnings


def _indent(text: str) -> str:
    return "".join(f"      {line}\n" for line in text.splitlines()).rstrip("\n")
