"""Grade generated mutants, each against its own exercise, reusing one worker per batch.

A batch is some of one exercise's mutants. Its worker imports the reference solution once
(torch included) and grades it: every check must pass, and its times set each check's budget
for the mutants (10× the reference's, at least 5 s), so that a mutant caught in a loop costs
seconds, not the minute a student's check is allowed. Then, for every mutant, the worker
replaces the module by the mutated source (the `reload` operation) and the checks run fastest
first until one fails: the first failing check is the killer, and a survivor runs them all.
A mutant that times out or crashes the worker is killed; the next one gets a fresh worker.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

from grader.checks import CheckSpec
from grader.mutation.generate import Mutant, generate
from grader.registry import ROOT, Phase
from grader.registry import phase as phase_by_number
from grader.runner import collect, run_check
from grader.session import RemoteRef, Session, StudentError, Submission, WorkerFault

BUDGET_FACTOR, MIN_BUDGET = 10.0, 5.0


class ReferenceFails(RuntimeError):
    """The unmutated solution fails a check in the mutation harness: no verdict can be trusted."""


def _package(phase: Phase) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="gradschool-mutate-"))
    package = directory / "submission"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for solution in (ROOT / "solutions").glob("phase*.py"):
        shutil.copyfile(solution, package / solution.name)
    return directory


def _load(session: Session, phase: Phase, source: str) -> None:
    """Make `source` the graded module in the session's worker."""
    module = session.request(
        {"op": "reload", "module": phase.module, "h": 0, "values": ([source], {})},
        "loading a mutant",
    )
    assert isinstance(module, RemoteRef)
    session.module_handle = module._id


def _first_failure(session: Session, module: RemoteRef, specs: list[CheckSpec]) -> str | None:
    for spec in specs:
        result = run_check(session, module, spec)
        if not result.passed:
            return f"{spec.name} ({result.kind})"
    return None


def grade_batch(phase_number: int, exercise: str, ids: list[str]) -> dict:
    """{"verdicts": {mutant id: killing check or None}, "seconds": wall time of the batch}."""
    started = time.monotonic()
    phase = phase_by_number(phase_number)
    source = (ROOT / "solutions" / phase.filename).read_text()
    wanted = set(ids)
    mutants: list[Mutant] = [m for m in generate(phase, source) if m.id in wanted]
    checks, _ = collect(phase)
    specs = [s for s in checks[exercise] if not s.full_only]
    directory = _package(phase)
    submission = Submission(
        directory,
        phase.module,
        forbidden_modules=list(phase.forbidden_modules),
        forbidden_attributes=list(phase.forbidden_apis),
        preload=[] if phase.numpy_only else ["torch"],
    )
    verdicts: dict[str, str | None] = {}
    try:
        with Session(submission) as session:
            module = session.module()
            reference = [run_check(session, module, spec) for spec in specs]
            failing = [r for r in reference if not r.passed]
            if failing:
                raise ReferenceFails(
                    f"phase {phase.number} {exercise}: the solution fails "
                    f"{failing[0].spec.name}: {failing[0].message[:300]}"
                )
            budgets = {r.spec.name: max(MIN_BUDGET, BUDGET_FACTOR * r.seconds) for r in reference}
            session.limits = dataclasses.replace(
                session.limits, call_seconds=max(budgets.values(), default=MIN_BUDGET)
            )
            fastest_first = [
                dataclasses.replace(r.spec, seconds=budgets[r.spec.name])
                for r in sorted(reference, key=lambda r: r.seconds)
            ]
            for mutant in mutants:
                try:
                    _load(session, phase, mutant.apply(source))
                except StudentError as error:
                    verdicts[mutant.id] = f"import ({error.type})"
                    continue
                except WorkerFault:
                    verdicts[mutant.id] = "import (crash)"
                    continue
                verdicts[mutant.id] = _first_failure(session, module, fastest_first)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"verdicts": verdicts, "seconds": time.monotonic() - started}
