"""Run a phase's graded checks against a submission and turn outcomes into scores.

Everything here runs in the judge: the submission is reached only through grader.session.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import shutil
import time
import tomllib
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader import evidence, fingerprints
from grader.checks import CheckFailed, CheckSpec, contracts
from grader.evidence import Evidence
from grader.forbidden import Violation, scan
from grader.registry import Exercise, Phase, exercise_by_id
from grader.registry import phase as phase_by_number
from grader.session import (
    ImportFailed,
    Limits,
    Session,
    StudentError,
    Submission,
    WorkerCrashed,
    WorkerTimeout,
    output_limit_message,
)
from grader.submission import EXERCISES, nothing_defined, prepare

# how a check ended, beyond passing: each kind has a short label in the report
KINDS = {
    "passed": "passed",
    "wrong": "wrong result",
    "not_implemented": "not implemented yet",
    "error": "raised an exception",
    "timeout": "timed out",
    "crash": "crashed",
    "forbidden": "forbidden API",
    "import": "module does not import",
    "internal": "grader error",
}


@dataclass
class CheckResult:
    spec: CheckSpec
    kind: str  # a key of KINDS
    message: str = ""
    hint: str | None = None
    example: str | None = None
    seconds: float = 0.0
    charges: tuple[str, ...] = ()  # other exercises whose functions this failure convicts
    evidence: list[Evidence] = field(default_factory=list)  # for the reports (grader.evidence)
    mistakes: list[str] = field(default_factory=list)  # recognised mistakes this failure shows
    output: str = ""  # the tail of what the submission printed during a failing check

    @property
    def passed(self) -> bool:
        return self.kind == "passed"

    @property
    def mistake(self) -> str | None:
        """The recognised mistakes that explain this failure, in one sentence."""
        return one_sentence(self.mistakes)


def one_sentence(mistakes: list[str]) -> str | None:
    """Recognised mistakes named together: "A. Also: B."."""
    return " Also: ".join(mistakes) if mistakes else None


@dataclass
class ExerciseResult:
    exercise: Exercise
    checks: list[CheckResult]
    violations: list[Violation] = field(default_factory=list)
    # recognised known mistakes (mutant explanations), the most specific first
    mistakes: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)  # failing prerequisites

    @property
    def max_score(self) -> float:
        return float(self.exercise.points)

    @property
    def mistake(self) -> str | None:
        """The recognised mistakes in one sentence (several are named together)."""
        return one_sentence(self.mistakes)

    @property
    def score(self) -> float:
        total = sum(c.spec.weight for c in self.checks)
        if self.violations or total == 0:
            return 0.0
        passed = sum(c.spec.weight for c in self.checks if c.passed)
        return round(self.exercise.points * passed / total, 2)

    @property
    def status(self) -> str:
        if self.violations:
            return "forbidden API"
        if self.checks and all(c.passed for c in self.checks):
            return "passed"
        if self.checks and all(c.kind == "not_implemented" for c in self.checks):
            return "not implemented yet"
        if any(c.kind == "import" for c in self.checks):
            return "does not import"
        return "partial" if self.score > 0 else "failed"

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]


@dataclass
class PhaseResult:
    phase: Phase
    target: str
    exercises: list[ExerciseResult]
    seconds: float
    import_error: str | None = None
    withheld: int = 0  # hidden checks of the graded exercises that this run did not grade
    isolation: str = ""  # how the worker was sandboxed (grader.sandbox.LABELS)

    @property
    def score(self) -> float:
        return round(sum(e.score for e in self.exercises), 2)

    @property
    def max_score(self) -> float:
        return float(sum(e.max_score for e in self.exercises))

    @property
    def internal_errors(self) -> list[CheckResult]:
        return [c for e in self.exercises for c in e.checks if c.kind == "internal"]


def collect(phase: Phase) -> tuple[dict[str, list[CheckSpec]], dict[str, object]]:
    """The phase's checks by exercise (in file order, hidden ones included) and its
    fingerprint functions."""
    package = importlib.import_module(f"grader.tests.phase{phase.number}")
    checks: dict[str, list[CheckSpec]] = {e.id: [] for e in phase.exercises}
    prints: dict[str, object] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            spec = getattr(value, "__check__", None)
            if spec is not None and getattr(value, "__module__", None) == module.__name__:
                if spec.exercise not in checks:
                    raise ValueError(
                        f"{module.__name__}.{spec.name}: unknown exercise {spec.exercise!r}"
                    )
                if spec.hidden != info.name.startswith(HIDDEN_PREFIX):
                    # make release drops hidden*.py whole: a hidden check elsewhere would ship
                    raise ValueError(
                        f"{module.__name__}.{spec.name}: hidden checks live in "
                        f"{HIDDEN_PREFIX}*.py modules, and only hidden checks do"
                    )
                checks[spec.exercise].append(spec)
            if getattr(value, "__fingerprint__", None) and value.__module__ == module.__name__:
                prints[value.__fingerprint__] = value
    return checks, prints


HIDDEN_PREFIX = "hidden"


def hidden_counts(phase: Phase, checks: dict[str, list[CheckSpec]]) -> dict[str, int]:
    """Hidden checks per exercise: those declared here, or in a student release (which ships
    no hidden module) the counts `make release` wrote to tests/phaseN/hidden.toml."""
    counts = {id: sum(s.hidden for s in specs) for id, specs in checks.items()}
    released = Path(__file__).parent / "tests" / f"phase{phase.number}" / "hidden.toml"
    if not any(counts.values()) and released.exists():
        counts.update(tomllib.loads(released.read_text()).get("hidden", {}))
    return counts


def _attach_mistakes(result: ExerciseResult, found: list[fingerprints.Recognised]) -> None:
    """Name the recognised mistakes on the exercise, and each under the failing checks it
    explains: those its mutant fails too. A mistake whose recorded checks are none of the
    failing ones (or not recorded) is shown under every failing check, as it cannot be placed."""
    result.mistakes = [m.why for m in found]
    failing = result.failures
    for mistake in found:
        placed = [c for c in failing if mistake.explains(c.spec.name)] or failing
        for check in placed:
            check.mistakes.append(mistake.why)


def run_check(session: Session, module, spec: CheckSpec) -> CheckResult:
    """Run one check; every way it can end becomes a CheckResult, never an exception."""
    started = time.monotonic()
    printed = session.output_mark()
    session.begin_check(spec.seconds, long_calls=spec.full_only)
    try:
        with evidence.collecting() as attached:
            spec.function(module)
        result = CheckResult(spec, "passed", evidence=attached)
    except CheckFailed as failure:
        result = CheckResult(spec, "wrong", str(failure), failure.hint, failure.example)
        result.charges = tuple(getattr(failure, "charges", ()))
        result.evidence = attached + evidence.from_failure(failure)
    except StudentError as error:
        result = _student_error(spec, error, session.limits.output_bytes)
    except WorkerTimeout as fault:
        result = CheckResult(spec, "timeout", f"{fault}: an infinite loop, or far too slow?")
    except WorkerCrashed as fault:
        result = CheckResult(spec, "crash", str(fault))
    except ImportFailed as failure:
        result = CheckResult(spec, "import", str(failure))
    except Exception as error:  # noqa: BLE001 - a bug in a check must not stop grading
        result = _internal(spec, error)
    finally:
        session.end_check()
    if result.kind in ("passed", "wrong"):
        broken = contracts.argument_breach(session.observed, spec.exercise)
        if broken is not None:  # the worker saw an argument changed in place or aliased
            result = CheckResult(spec, "wrong", str(broken), broken.hint)
    if session.violations and result.kind not in ("import",):
        result = CheckResult(
            spec,
            "forbidden",
            "your code called a forbidden API: " + "; ".join(session.violations[:3]),
        )
    result.seconds = time.monotonic() - started
    if not result.passed:
        result.output = session.output_since(printed)
    return result


def _student_error(spec: CheckSpec, error: StudentError, output_bytes: int) -> CheckResult:
    if error.output_full:  # EFBIG from RLIMIT_FSIZE: say which limit, not "File too large"
        return CheckResult(
            spec,
            "error",
            f"your code printed or wrote more than the grader allows (while {error.what}): "
            f"{output_limit_message(output_bytes)}",
            "Print less: no print inside a loop over elements or steps.",
        )
    if error.not_implemented:
        return CheckResult(spec, "not_implemented", error.message or "not implemented yet")
    if error.forbidden:
        return CheckResult(spec, "forbidden", error.message)
    if error.oversized:  # refused unread by the judge (grader.session, "Replies")
        return CheckResult(spec, "wrong", error.message)
    where = f"\n    at {error.where[-1]}" if error.where else ""
    message = f"your code raised {error.type}: {error.message} (while {error.what}){where}"
    example = getattr(error, "example", None)
    hint = (
        "RecursionError: use an explicit stack instead of recursion."
        if error.type == "RecursionError"
        else None
    )
    if error.type == "MemoryError":
        hint = "Your code allocated more memory than the grader allows."
    return CheckResult(spec, "error", message, hint, example)


def _internal(spec: CheckSpec, error: Exception) -> CheckResult:
    if type(error).__name__.startswith("Flaky"):
        return CheckResult(
            spec,
            "wrong",
            "your code gave different results for the same input "
            "(hidden global state or unseeded randomness?)",
        )
    trace = "".join(traceback.format_exception(error, limit=-3)).strip()
    return CheckResult(spec, "internal", f"grader error, not your fault: {trace}")


def grade(
    phase: Phase,
    target: Path | None = None,
    *,
    exercises: list[str] | None = None,
    full: bool = False,
    limits: Limits | None = None,
    recognise: bool = True,
    prerequisites: bool = True,
    hidden: bool = False,
    session_class: type[Session] = Session,
) -> PhaseResult:
    """Grade `target` (default exercises/) on `phase`; `exercises` restricts to some ids.

    `hidden` adds the hidden checks (batch, Gradescope and verify runs); without it they are
    only counted, in PhaseResult.withheld.

    `recognise` names known mistakes; `prerequisites` grades failing prerequisites from
    earlier phases to name them (verify turns both off where it does not need them).

    `session_class` exists for bench/grading.py, which measures isolation against an
    in-process stand-in; grading always uses the isolated Session."""
    started = time.monotonic()
    selected = [phase.exercise(i) for i in exercises] if exercises else list(phase.exercises)
    directory, source = prepare(phase, target)
    # The judge imports the checks (and with them torch: seconds) on a thread while the worker
    # starts and imports the submission: the two largest fixed costs of a run overlap.
    # Python 3.11's parser is not thread-safe: parse the submission before the collector
    # thread starts parsing check modules, and only after it has finished (nothing_defined).
    violations = scan(source, phase)
    collector = ThreadPoolExecutor(max_workers=1)
    collected = collector.submit(collect, phase)
    submission = Submission(
        directory,
        phase.module,
        forbidden_modules=list(phase.forbidden_modules),
        forbidden_attributes=list(phase.forbidden_apis),
        preload=[] if phase.numpy_only else ["torch"],
    )
    results: list[ExerciseResult] = []
    import_error = None
    withheld = 0
    isolation = ""
    try:
        with session_class(submission, limits) as session:
            isolation = session.isolation.label
            module = None
            try:
                module = session.module()
            except ImportFailed as failure:
                import_error = str(failure)
            checks, prints = collected.result()
            # an empty file: one line naming what is missing, not one line per check
            import_error = import_error or nothing_defined(source, phase)
            if not hidden:
                counts = hidden_counts(phase, checks)
                withheld = sum(counts.get(e.id, 0) for e in selected)
            for exercise in selected:
                found = [v for v in violations if v.exercise in (None, exercise.id)]
                specs = [
                    s
                    for s in checks[exercise.id]
                    if (full or not s.full_only) and (hidden or not s.hidden)
                ]
                if import_error:
                    outcome = [CheckResult(s, "import", import_error) for s in specs]
                elif found:
                    outcome = [CheckResult(s, "forbidden", found[0].describe()) for s in specs]
                else:
                    outcome = _run_exercise(session, module, specs)
                result = ExerciseResult(exercise, outcome, found)
                if (
                    recognise
                    and module is not None
                    and result.score < result.max_score
                    and exercise.id in prints
                    and result.status != "not implemented yet"
                ):
                    _attach_mistakes(
                        result,
                        fingerprints.recognise(
                            session, module, phase, exercise.id, prints[exercise.id]
                        ),
                    )
                results.append(result)
    finally:
        collector.shutdown()
        shutil.rmtree(directory, ignore_errors=True)
    earlier = (
        _failing_earlier_prerequisites(phase, target, results, limits) if prerequisites else set()
    )
    _charge(results)
    _mark_blocked(results, earlier)
    if target is not None and Path(target).suffix == ".ipynb":  # "cell 7, line 3", not line 412
        from grader.notebook import locate_results

        import_error = locate_results(results, import_error, Path(target))
    return PhaseResult(
        phase,
        str(target or "exercises/"),
        results,
        time.monotonic() - started,
        import_error,
        withheld,
        isolation,
    )


def _run_exercise(session: Session, module, specs: list[CheckSpec]) -> list[CheckResult]:
    """Run an exercise's checks. A call that hung or crashed is not made again (the session
    remembers it), so it costs the checks that need that function, not its neighbours'; after
    MAX_FAULTS distinct hangs in one exercise the rest are reported, not run (each would cost
    its time limit)."""
    outcome: list[CheckResult] = []
    known = len(session.faulted)
    for spec in specs:
        fatal = next((r for r in outcome if r.kind in ("timeout", "crash")), None)
        if fatal is not None and len(session.faulted) - known >= MAX_FAULTS:
            outcome.append(
                CheckResult(
                    spec,
                    fatal.kind,
                    f"not run: {MAX_FAULTS} functions of this exercise hung or crashed "
                    f"({fatal.message})",
                )
            )
        else:
            outcome.append(run_check(session, module, spec))
    return outcome


MAX_FAULTS = 3


def _failing_earlier_prerequisites(
    phase: Phase, target: Path | None, results: list[ExerciseResult], limits: Limits | None
) -> set[str]:
    """Prerequisites from earlier phases that fail, graded only when something here fails.

    They are graded on the student's module of that phase from the same folder as `target`
    (the files the worker imported), else from exercises/.
    """
    own = {e.id for e in phase.exercises}
    needed = {
        req
        for r in results
        if r.score < r.max_score
        for req in r.exercise.requires
        if req not in own
    }
    by_phase: dict[int, list[str]] = {}
    for req in sorted(needed):
        by_phase.setdefault(exercise_by_id(req).phase, []).append(req)
    folder = (Path(target) if Path(target).is_dir() else Path(target).parent) if target else None
    failing = set()
    for number, ids in by_phase.items():
        earlier = phase_by_number(number)
        module = folder / earlier.filename if folder else None
        if module is None or not module.exists():
            module = EXERCISES / earlier.filename
        result = grade(
            earlier, module, exercises=ids, limits=limits, recognise=False, prerequisites=False
        )
        failing |= {
            f"{r.exercise.id} (phase {number})" for r in result.exercises if r.score < r.max_score
        }
    return failing


def _charge(results: list[ExerciseResult]) -> None:
    """A failure that convicts another exercise's function (contracts.Charged: a reductions bug
    only an engine check revealed) also fails a check of that exercise, with its message."""
    by_id = {r.exercise.id: r for r in results}
    for result in results:
        for check in list(result.checks):
            for other in check.charges:
                if other in by_id and other != result.exercise.id:
                    by_id[other].checks.append(
                        CheckResult(
                            dataclasses.replace(check.spec, exercise=other),
                            "wrong",
                            f"found by {result.exercise.id}'s check “{check.spec.description}”: "
                            f"{check.message}",
                            check.hint,
                            check.example,
                        )
                    )


def _mark_blocked(results: list[ExerciseResult], earlier_failing: set[str]) -> None:
    """Name, on each exercise, the prerequisites that fail (this phase's and earlier ones')."""
    failing = {r.exercise.id for r in results if r.score < r.max_score}
    for result in results:
        result.blocked_by = [req for req in result.exercise.requires if req in failing]
        result.blocked_by += [
            name
            for name in sorted(earlier_failing)
            if name.split(" ")[0] in result.exercise.requires
        ]
