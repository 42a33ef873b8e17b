"""Known mistakes: each mutant is a small textual change to a reference solution.

grader/mutants/phaseN/mutants.toml holds, per mutant, an id, the exercise it breaks, a one-line
explanation for the student (`why`), and the change: `old` text in the solution (it must occur
exactly once) and the `new` text that replaces it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader.registry import Phase

MUTANTS_DIR = Path(__file__).parent / "mutants"


@dataclass(frozen=True)
class Mutant:
    id: str
    exercise: str
    why: str
    old: str
    new: str

    def apply(self, source: str) -> str:
        count = source.count(self.old)
        if count != 1:
            raise ValueError(
                f"mutant {self.id}: its `old` text occurs {count} times in the "
                f"solution (it must occur exactly once)"
            )
        return source.replace(self.old, self.new)


def load(phase: Phase) -> list[Mutant]:
    path = MUTANTS_DIR / f"phase{phase.number}" / "mutants.toml"
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    mutants = [
        # a student release keeps id, exercise and why only (old → new is solution text)
        Mutant(m["id"], m["exercise"], m["why"], m.get("old", ""), m.get("new", ""))
        for m in data.get("mutant", [])
    ]
    ids = [m.id for m in mutants]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: mutant ids must be unique")
    known = {e.id for e in phase.exercises}
    for mutant in mutants:
        if mutant.exercise not in known:
            raise ValueError(f"{path}: mutant {mutant.id} names unknown exercise {mutant.exercise}")
    return mutants
