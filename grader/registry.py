"""The course registry: phases, exercises, points, prerequisites, forbidden APIs.

One TOML table per phase in grader/registry/ is the single place where an exercise is declared;
the stub generator, the grader, the reports and `verify` all read it from here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REGISTRY_DIR = Path(__file__).parent / "registry"
ROOT = Path(__file__).resolve().parent.parent
ALWAYS_FORBIDDEN = ("solutions", "grader", "_gradschool_worker", "exercises")


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    points: int
    symbols: tuple[str, ...]
    requires: tuple[str, ...]
    anchor: str
    phase: int
    # calls documented to write into their arguments ("sgd_step", "Linear.backward"): exempt
    # from the worker's in-place watch (grader/worker/watch.py)
    in_place: tuple[str, ...] = ()
    # calls documented to return an argument or a view of it ("Dropout.forward" in eval)
    may_alias: tuple[str, ...] = ()

    @property
    def reading(self) -> str:
        return f"curriculum.md §{self.anchor}"


@dataclass(frozen=True)
class Phase:
    number: int
    module: str
    title: str
    forbidden_modules: tuple[str, ...]  # blocked at import, e.g. "torch" in NumPy phases
    forbidden_apis: tuple[str, ...]  # dotted attributes, e.g. "torch.nn.MultiheadAttention"
    numpy_only: bool
    exercises: tuple[Exercise, ...]
    # outputs sharing memory with inputs are the phase's convention (views, `unbroadcast`
    # returning its argument): only in-place changes are watched, not aliasing
    outputs_may_alias: bool = False

    @property
    def forbidden(self) -> tuple[str, ...]:
        return self.forbidden_modules + self.forbidden_apis

    @property
    def filename(self) -> str:
        return f"{self.module}.py"

    @property
    def in_place(self) -> frozenset[str]:
        """Every call of the phase documented to change its arguments in place."""
        return frozenset(name for e in self.exercises for name in e.in_place)

    @property
    def may_alias(self) -> frozenset[str]:
        return frozenset(name for e in self.exercises for name in e.may_alias)

    @property
    def max_points(self) -> int:
        return sum(e.points for e in self.exercises)

    def exercise(self, id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == id:
                return exercise
        known = ", ".join(e.id for e in self.exercises)
        raise KeyError(f"phase {self.number} has no exercise {id!r}; its exercises: {known}")

    def owner_of(self, symbol: str) -> Exercise | None:
        for exercise in self.exercises:
            if symbol in exercise.symbols:
                return exercise
        return None


def _load(path: Path) -> Phase:
    data = tomllib.loads(path.read_text())
    exercises = tuple(
        Exercise(
            id=e["id"],
            title=e["title"],
            points=int(e["points"]),
            symbols=tuple(e["symbols"]),
            requires=tuple(e.get("requires", ())),
            anchor=e["anchor"],
            phase=int(data["number"]),
            in_place=tuple(e.get("in_place", ())),
            may_alias=tuple(e.get("may_alias", ())),
        )
        for e in data.get("exercise", [])
    )
    return Phase(
        number=int(data["number"]),
        module=data["module"],
        title=data["title"],
        forbidden_modules=tuple(data.get("forbidden_modules", ())),
        forbidden_apis=tuple(data.get("forbidden_apis", ())),
        numpy_only=bool(data.get("numpy_only")),
        exercises=exercises,
        outputs_may_alias=bool(data.get("outputs_may_alias", not data.get("numpy_only"))),
    )


@cache
def phases() -> dict[int, Phase]:
    """Every declared phase by number; checks that ids are unique and prerequisites exist."""
    found = {p.number: p for p in map(_load, sorted(REGISTRY_DIR.glob("phase*.toml")))}
    ids = [e.id for p in found.values() for e in p.exercises]
    duplicated = {i for i in ids if ids.count(i) > 1}
    if duplicated:
        raise ValueError(f"exercise ids used twice in grader/registry: {sorted(duplicated)}")
    for phase in found.values():
        for exercise in phase.exercises:
            missing = set(exercise.requires) - set(ids)
            if missing:
                raise ValueError(f"{exercise.id} requires unknown exercises {sorted(missing)}")
    return dict(sorted(found.items()))


def phase(number: int) -> Phase:
    try:
        return phases()[number]
    except KeyError:
        known = ", ".join(map(str, phases())) or "none"
        raise KeyError(f"there is no phase {number}; phases in this course: {known}") from None


def exercise_by_id(id: str) -> Exercise:
    for p in phases().values():
        for exercise in p.exercises:
            if exercise.id == id:
                return exercise
    raise KeyError(id)
