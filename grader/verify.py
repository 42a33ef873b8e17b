"""`make verify`: the course is sound (SPEC §1).

For each phase: the committed stub equals a fresh `make stubs`, every level generates valid
Python; the solution scores 100%; the stub of every level (guided, standard and hard) scores 0
with every check failing cleanly; every
exercise has ≥ 3 mutants and each loses points and is recognised by name (which also
proves its recorded fixture current); the recorded reference outputs equal fresh ones; no check
ever hit a grader error; the mutation report (`make mutate`) is current and every generated
mutant that survives is reviewed (grader/mutation/record.py). Each phase's verdict is recorded
with a key over what it depends on (grader/verify_record.py), so the project's tests re-verify
only the phases whose files changed.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader import fingerprints, mutants, stubgen, verify_record
from grader.mutation import analyse as mutation
from grader.registry import ROOT, Phase, phases
from grader.registry import phase as phase_by_number
from grader.runner import collect, grade

MIN_MUTANTS = 3
CLEAN_STUB_KINDS = {"not_implemented"}


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _grade_summary(phase_number: int, target: str, exercises: list[str] | None) -> dict:
    result = grade(
        phase_by_number(phase_number),
        Path(target),
        exercises=exercises,
        prerequisites=False,
        hidden=True,  # the course is sound only if its hidden checks are too
    )
    return {
        "score": result.score,
        "max": result.max_score,
        "kinds": sorted({c.kind for e in result.exercises for c in e.checks}),
        "internal": [
            f"{e.exercise.id}/{c.spec.name}: {c.message[:400]}"
            for e in result.exercises
            for c in e.checks
            if c.kind == "internal"
        ],
        "failing": [
            f"{e.exercise.id}: {c.spec.name}: {c.message[:300]}"
            for e in result.exercises
            for c in e.failures
        ],
        "mistakes": {e.exercise.id: e.mistake for e in result.exercises},
        "seconds": result.seconds,
    }


def _grade_beside(
    phase_number: int, text: str, siblings: Path, exercises: list[str] | None
) -> dict:
    """Grade `text` as the phase's file, in a scratch folder beside copies of the phase files
    in `siblings` (its relative imports of earlier phases find them)."""
    phase = phase_by_number(phase_number)
    folder = Path(tempfile.mkdtemp(prefix="gradschool-verify-"))
    try:
        for other in siblings.glob("phase*.py"):
            shutil.copyfile(other, folder / other.name)
        (folder / phase.filename).write_text(text)
        return _grade_summary(phase_number, str(folder / phase.filename), exercises)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _mutant_task(phase_number: int, mutant: mutants.Mutant) -> tuple[str, dict]:
    source = (ROOT / "solutions" / phase_by_number(phase_number).filename).read_text()
    mutated = mutant.apply(source)
    return mutant.id, _grade_beside(phase_number, mutated, ROOT / "solutions", [mutant.exercise])


def _level_stub_task(phase_number: int, level: str) -> dict:
    """Grade the `level` stub of a phase as a student would first run it: beside the
    committed standard stubs of the other phases."""
    stub = stubgen.stub_for(phase_by_number(phase_number), level)
    return _grade_beside(phase_number, stub, ROOT / "exercises", None)


def stub_problems(level: str, summary: dict) -> list[str]:
    """Why a stub of this level does not fail cleanly: a point scored, or a failure that is
    not "not implemented" (a crash of the given code, a check the stub passes by accident)."""
    problems = []
    if summary["score"] != 0:
        problems.append(f"the {level} stub scores {summary['score']:g}, not 0")
    unclean = set(summary["kinds"]) - CLEAN_STUB_KINDS
    if unclean:
        problems.append(
            f"the {level} stub does not fail cleanly ({sorted(unclean)}): "
            + "; ".join(f for f in summary["failing"] if "not implemented" not in f)[:600]
        )
    return problems


def _reference_fixture_task(phase_number: int) -> list[str]:
    """Problems with the recorded reference fingerprints: all exercises in one worker.

    The mutants' recorded outputs are checked by recognition: a mutant whose fixture is stale
    is not recognised, and verify says so."""
    import numpy as np

    phase = phase_by_number(phase_number)
    _, prints = collect(phase)
    source = (ROOT / "solutions" / phase.filename).read_text()
    fresh = fingerprints.run_fingerprints(phase, source, prints)
    problems = []
    for exercise, outputs in fresh.items():
        path = fingerprints.path_for(phase, exercise)
        if not path.exists():
            problems.append(f"{path.relative_to(ROOT)} is missing: run `make fixtures`")
            continue
        with np.load(path, allow_pickle=False) as data:
            stored = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("reference/")}
        stale = set(stored) ^ set(outputs)
        stale |= {
            k for k in set(stored) & set(outputs) if not fingerprints._same(stored[k], outputs[k])
        }
        if stale:
            problems.append(
                f"{path.relative_to(ROOT)} is out of date ({len(stale)} reference "
                f"outputs differ, e.g. {sorted(stale)[0]}): run `make fixtures`"
            )
    return problems


def mutant_problem(mutant: mutants.Mutant, summary: dict) -> str | None:
    """Why a graded mutant makes the course unsound, or None when it is caught and named."""
    recognised = summary["mistakes"].get(mutant.exercise)
    if summary["score"] >= summary["max"]:
        return (
            f"mutant {mutant.id} ({mutant.exercise}) scores full marks: no check catches "
            f"“{mutant.why}”"
        )
    if recognised != mutant.why:
        return f"mutant {mutant.id} loses points but is recognised as {recognised!r}"
    return None


def verify_phase(phase: Phase, jobs: int = 2, log=print) -> Verdict:
    verdict = Verdict()
    solution = ROOT / "solutions" / phase.filename
    stub = ROOT / "exercises" / phase.filename
    for level in stubgen.LEVELS:
        try:
            text = stubgen.stub_for(phase, level)
        except stubgen.StubError as exc:
            verdict.problems.append(f"stub generation failed at level {level}: {exc}")
            continue
        if level == "standard" and (not stub.exists() or stub.read_text() != text):
            verdict.problems.append(
                f"exercises/{phase.filename} is not the current standard stub: run `make stubs`"
            )
    checks, prints = collect(phase)
    all_mutants = mutants.load(phase)
    for exercise in phase.exercises:
        if not checks[exercise.id]:
            verdict.problems.append(f"{exercise.id}: has no checks")
        count = sum(m.exercise == exercise.id for m in all_mutants)
        if count < MIN_MUTANTS:
            verdict.problems.append(f"{exercise.id}: {count} mutants (at least {MIN_MUTANTS})")
        if exercise.id not in prints:
            verdict.problems.append(f"{exercise.id}: has no @fingerprint")

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        solution_future = pool.submit(_grade_summary, phase.number, str(solution), None)
        stub_futures = {
            level: pool.submit(_level_stub_task, phase.number, level)
            for level in stubgen.LEVELS
            if level != "standard"
        }
        if stub.exists():
            stub_futures["standard"] = pool.submit(_grade_summary, phase.number, str(stub), None)
        mutant_futures = [pool.submit(_mutant_task, phase.number, m) for m in all_mutants]
        fixture_future = pool.submit(_reference_fixture_task, phase.number)

        ref = solution_future.result()
        log(f"  solution: {ref['score']:g} / {ref['max']:g} in {ref['seconds']:.1f} s")
        if ref["score"] != ref["max"]:
            verdict.problems.append(
                "the solution does not score 100%: " + "; ".join(ref["failing"][:5])
            )
        verdict.problems += [f"grader error on the solution: {e}" for e in ref["internal"]]
        for level, future in stub_futures.items():
            st = future.result()
            outcomes = ", ".join(st["kinds"])
            log(f"  {level} stub: {st['score']:g} / {st['max']:g}, outcomes {outcomes}")
            verdict.problems += stub_problems(level, st)
        by_id = {m.id: m for m in all_mutants}
        caught = 0
        for future in mutant_futures:
            try:
                mutant_id, res = future.result()
            except ValueError as exc:  # its `old` text is no longer in the solution
                verdict.problems.append(str(exc))
                continue
            problem = mutant_problem(by_id[mutant_id], res)
            if problem:
                verdict.problems.append(problem)
            else:
                caught += 1
            verdict.problems += [
                f"grader error on mutant {mutant_id}: {e}" for e in res["internal"]
            ]
        log(f"  mutants: {caught} / {len(all_mutants)} caught and recognised")
        verdict.problems += fixture_future.result()
    problems, warnings = mutation.report_problems(phase, checks)
    log(f"  mutation report: {'current' if not problems else f'{len(problems)} problem(s)'}")
    verdict.problems += problems
    for warning in warnings:
        log(f"  ! {warning}")
    return verdict


def verify(numbers: list[int] | None = None, jobs: int = 2, log=print) -> bool:
    ok = True
    for number in numbers or list(phases()):
        phase = phase_by_number(number)
        if not (ROOT / "solutions" / phase.filename).exists():
            log(f"phase {number}: no solution yet — skipped")
            continue
        log(f"phase {number} — {phase.title}")
        key, started = verify_record.parts(phase), time.monotonic()  # the files verified
        verdict = verify_phase(phase, jobs, log)
        for problem in verdict.problems:
            log(f"  ✗ {problem}")
        log("  ✓ sound" if verdict.ok else f"  {len(verdict.problems)} problem(s)")
        record = verify_record.write(phase, key, verdict.problems, time.monotonic() - started)
        log(f"  recorded in {verify_record.shown(record)}")
        ok = ok and verdict.ok
    return ok
