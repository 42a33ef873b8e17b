"""What a mutant's verdict depends on, hashed: an exercise's results are reused while it holds.

An exercise's key covers
- the generator (GENERATOR_VERSION: bump it when an operator changes),
- the solution code the exercise runs: its own symbols, those of the exercises it requires in
  the same phase (transitively), the module code no exercise owns (imports, helpers), and the
  whole solution file of every earlier phase it requires,
- its registry entry and the phase's forbidden APIs,
- the checking code, as syntax trees (formatting and comments do not count): the files that
  define its checks (less the checks of other exercises), the helper modules (`_*.py`, the
  package's `__init__.py`) and probes of its phase and of every phase they name, and the
  checks library grader/checks.
Not covered: fixtures (mutation analysis never names mistakes, so they cannot change a verdict)
and the machinery every exercise shares (runner, session, worker): after changing how checks
run, refresh everything with `make mutate FRESH=1`.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import sys
from pathlib import Path

from grader.checks import CheckSpec
from grader.registry import ROOT, Exercise, Phase, exercise_by_id
from grader.registry import phase as phase_by_number
from grader.stubgen import without_level_markers

GENERATOR_VERSION = "1"
PHASE_REFERENCE = re.compile(r"grader\.tests\.phase(\d+)|[\"']phase(\d+)\.\w+[\"']")
GRADER = ROOT / "grader"


def _checking_files(phase: Phase, specs: list[CheckSpec]) -> list[Path]:
    """The files an exercise's checks run: their own modules, the helpers and probes of this
    phase and of every phase they name (`grader.tests.phaseK…`, `"phaseK.probe"`), and the
    checks library."""
    own = {Path(inspect.getsourcefile(spec.function)).resolve() for spec in specs}
    # a generated check (contract_checks) lives in the library but is declared in a test module
    own |= {Path(sys.modules[spec.function.__module__].__file__).resolve() for spec in specs}
    numbers, todo = {phase.number}, [*own, *_helpers(phase.number)]
    while todo:
        for found in PHASE_REFERENCE.findall(todo.pop().read_text()):
            number = int(found[0] or found[1])
            if number not in numbers:
                numbers.add(number)
                todo += _helpers(number)
    files = own | set((GRADER / "checks").rglob("*.py")) | {GRADER / "probes" / "__init__.py"}
    for number in numbers:
        files |= set(_helpers(number)) | {GRADER / "probes" / f"phase{number}.py"}
    return sorted(p.resolve() for p in files if p.exists())


def _helpers(number: int) -> list[Path]:
    folder = GRADER / "tests" / f"phase{number}"
    return sorted(p for p in folder.glob("_*.py")) if folder.is_dir() else []


def _requirements(phase: Phase, exercise: Exercise) -> tuple[set[str], set[int]]:
    """Exercise ids of this phase reached through `requires`, and earlier phases reached."""
    own, earlier, todo = set(), set(), [exercise.id]
    while todo:
        current = exercise_by_id(todo.pop())
        if current.phase != phase.number:
            earlier.add(current.phase)
            continue
        if current.id not in own:
            own.add(current.id)
            todo.extend(current.requires)
    return own, earlier


def solution_context(phase: Phase, exercise: Exercise, source: str) -> str:
    """The parts of the solution module an exercise's verdicts can depend on."""
    own, _ = _requirements(phase, exercise)
    symbols = {s for e in phase.exercises if e.id in own for s in e.symbols}
    owned = {s for e in phase.exercises for s in e.symbols}
    lines = source.splitlines(keepends=True)
    parts = []
    for node in ast.parse(source).body:
        name = getattr(node, "name", None)
        if name is None and isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = getattr(node.targets[0], "id", None)
        if name in symbols or name not in owned:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            parts.append("".join(lines[first - 1 : node.end_lineno]))
    return "".join(parts)


def exercise_key(phase: Phase, exercise: Exercise, source: str, specs: list[CheckSpec]) -> str:
    digest = hashlib.sha256()

    def add(label: str, data: str | bytes) -> None:
        data = data.encode() if isinstance(data, str) else data
        digest.update(f"{label}\0{len(data)}\0".encode() + data)

    add("generator", GENERATOR_VERSION)
    # stub-level markers (KEEP guided) only shape stubs: they are not code a verdict depends on
    add("solution", solution_context(phase, exercise, without_level_markers(source)))
    _, earlier = _requirements(phase, exercise)
    for number in sorted(earlier):
        path = ROOT / "solutions" / phase_by_number(number).filename
        add(f"phase{number}", without_level_markers(path.read_text()).encode())
    add("registry", repr(exercise) + repr(phase.forbidden))
    for spec in specs:
        add("check", f"{spec.name} {spec.category} {spec.weight} {spec.full_only} {spec.seconds}")
    for path in _checking_files(phase, specs):
        add(
            str(path.relative_to(ROOT)), _code(_without_other_checks(path.read_text(), exercise.id))
        )
    return digest.hexdigest()[:16]


def _code(source: str) -> str:
    """The syntax tree of a module as text: reformatting or re-commenting it changes nothing."""
    try:
        return ast.dump(ast.parse(source))
    except SyntaxError:
        return source


def _without_other_checks(source: str, exercise: str) -> str:
    """A check file less the checks of other exercises (a check runs for its own exercise
    only), so that editing one exercise's checks leaves its neighbours' verdicts cached."""
    lines = source.splitlines(keepends=True)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    for node in reversed(tree.body):
        owner = _checked_exercise(node)
        if owner is not None and owner != exercise:
            first = min(d.lineno for d in node.decorator_list)
            del lines[first - 1 : node.end_lineno]
    return "".join(lines)


def _checked_exercise(node: ast.stmt) -> str | None:
    """The exercise of an `@check("id", …)` function, else None."""
    for decorator in getattr(node, "decorator_list", []):
        if (
            isinstance(decorator, ast.Call)
            and getattr(decorator.func, "id", None) == "check"
            and decorator.args
            and isinstance(decorator.args[0], ast.Constant)
        ):
            return decorator.args[0].value
    return None
