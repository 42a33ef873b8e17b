"""`python -m grader verify --mutate`: generate, grade (or reuse), record, and judge the survivors.

An exercise is graded again only when its key (keys.py) or its set of generated mutants changed
since the committed report, or with `fresh=True`; otherwise its verdicts are reused, which makes
a rerun after editing one phase's checks cost that phase's changed exercises only.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from grader.checks import CheckSpec
from grader.mutation import record
from grader.mutation.generate import Mutant, generate
from grader.mutation.keys import exercise_key
from grader.mutation.run import grade_batch
from grader.registry import ROOT, Phase
from grader.registry import phase as phase_by_number
from grader.registry import phases as all_phases
from grader.runner import collect

BATCH = 60  # mutants per worker: large exercises are split so that two jobs stay busy


@dataclass
class PhaseState:
    phase: Phase
    source: str
    mutants: dict[str, list[Mutant]]  # by exercise
    keys: dict[str, str]


def current(phase: Phase, checks: dict[str, list[CheckSpec]] | None = None) -> PhaseState:
    """The mutants and keys the phase's report must hold now (cheap: no grading)."""
    if checks is None:
        checks, _ = collect(phase)
    source = (ROOT / "solutions" / phase.filename).read_text()
    mutants: dict[str, list[Mutant]] = {}
    for mutant in generate(phase, source):
        mutants.setdefault(mutant.exercise, []).append(mutant)
    keys = {
        e.id: exercise_key(phase, e, source, checks[e.id])
        for e in phase.exercises
        if e.id in mutants
    }
    return PhaseState(phase, source, mutants, keys)


def stale(state: PhaseState, report: dict | None) -> list[str]:
    """Exercises whose recorded verdicts do not belong to the current code."""
    recorded = (report or {}).get("exercises", {})
    out = []
    for exercise, mutants in state.mutants.items():
        entry = recorded.get(exercise)
        if (
            entry is None
            or entry["key"] != state.keys[exercise]
            or set(entry["mutants"]) != {m.id for m in mutants}
        ):
            out.append(exercise)
    return out


def report_problems(
    phase: Phase, checks: dict[str, list[CheckSpec]] | None = None
) -> tuple[list[str], list[str]]:
    """What `make verify` says about the phase's mutation report: (problems, warnings)."""
    state = current(phase, checks)
    if not state.mutants:
        return [], []
    report = record.load_report(phase)
    command = f"make mutate PHASE={phase.number}"
    if report is None:
        return [f"grader/mutants/phase{phase.number}/{record.REPORT} is missing: run {command}"], []
    outdated = stale(state, report)
    if outdated:
        return [f"the mutation report is out of date for {', '.join(outdated)}: run {command}"], []
    equivalent = record.load_reviewed(phase, record.EQUIVALENT)
    open_ = record.load_reviewed(phase, record.OPEN)
    problems, warnings = record.review_problems(phase, report, equivalent, open_)
    totals = record.Counts()
    for entry in report["exercises"].values():
        totals.add(record.count(entry, equivalent, open_))
    if totals.open:
        warnings.append(f"{totals.open} known open survivor(s) in {record.OPEN} (not killed yet)")
    if totals.rate < record.GOAL:
        warnings.append(
            f"mutation kill rate {totals.rate:.1%} is below the goal of {record.GOAL:.0%}"
        )
    return problems, warnings


def _batches(state: PhaseState, exercises: list[str]) -> list[tuple[int, str, list[str]]]:
    out = []
    for exercise in exercises:
        ids = [m.id for m in state.mutants[exercise]]
        size = math.ceil(len(ids) / math.ceil(len(ids) / BATCH))  # equal, at most BATCH
        out += [(state.phase.number, exercise, ids[i : i + size]) for i in range(0, len(ids), size)]
    return sorted(out, key=lambda b: -len(b[2]))


def analyse(
    numbers: list[int] | None = None, jobs: int = 2, fresh: bool = False, log=print
) -> bool:
    """Refresh the reports of `numbers` (default: every phase with a solution); True when no
    phase has an unreviewed survivor or a contradictory review entry."""
    started = time.monotonic()
    states, reports, todo = {}, {}, []
    for number in numbers or list(all_phases()):
        phase = phase_by_number(number)
        if not (ROOT / "solutions" / phase.filename).exists():
            continue
        state = current(phase)
        report = record.load_report(phase)
        rerun = list(state.mutants) if fresh else stale(state, report)
        states[number], reports[number] = state, report
        todo += _batches(state, rerun)
        reused = len(state.mutants) - len(rerun)
        log(
            f"phase {number}: {sum(map(len, state.mutants.values()))} mutants in "
            f"{len(state.mutants)} exercises; grading {len(rerun)}, reusing {reused}"
        )
    results: dict[tuple[int, str], dict] = {}
    failed: set[tuple[int, str]] = set()
    waiting = {n: sum(b[0] == n for b in todo) for n in states}
    pending = {(b[0], b[1]): sum(c[:2] == b[:2] for c in todo) for b in todo}
    ok = True

    def finish(number: int) -> None:  # a phase is recorded as soon as its batches are in
        nonlocal ok
        for key in [k for k in failed if k[0] == number]:
            results.pop(key, None)
        ok &= _record_phase(states[number], reports[number], results, log)

    for number in [n for n, count in waiting.items() if count == 0]:
        finish(number)
    if todo:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(grade_batch, *batch): batch for batch in todo}
            done, total = 0, sum(len(batch[2]) for batch in todo)
            for future in as_completed(futures):
                number, exercise, ids = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - one broken batch must not stop all
                    failed.add((number, exercise))
                    ok = False
                    log(f"  ✗ phase {number} {exercise}: {error}"[:600])
                    outcome = {"verdicts": {}, "seconds": 0.0}
                done += len(ids)
                log(
                    f"  phase {number} {exercise}: {len(outcome['verdicts'])} graded in "
                    f"{outcome['seconds']:.0f} s ({done}/{total}, "
                    f"{time.monotonic() - started:.0f} s)"
                )
                merged = results.setdefault((number, exercise), {"verdicts": {}, "seconds": 0.0})
                merged["verdicts"].update(outcome["verdicts"])
                merged["seconds"] += outcome["seconds"]
                waiting[number] -= 1
                pending[(number, exercise)] -= 1
                if waiting[number] == 0:
                    finish(number)
                elif pending[(number, exercise)] == 0:  # an interrupted run keeps what is done
                    complete = {
                        k: v
                        for k, v in results.items()
                        if k not in failed and k[0] == number and pending.get(k) == 0
                    }
                    record.write_report(
                        states[number].phase, _entries(states[number], reports[number], complete)
                    )
    log(f"mutation analysis: {time.monotonic() - started:.0f} s wall time ({jobs} jobs)")
    return ok


def _entries(state: PhaseState, report: dict | None, results: dict) -> dict:
    """The report's entries: fresh results where graded, the previous entry where it still
    holds, and the previous (stale) entry where grading failed or has not finished."""
    previous = (report or {}).get("exercises", {})
    stale_ones = stale(state, report)
    entries = {}
    for exercise, mutants in state.mutants.items():
        if (state.phase.number, exercise) in results:
            outcome = results[(state.phase.number, exercise)]
            verdicts, seconds = outcome["verdicts"], outcome["seconds"]
        elif exercise in previous and exercise not in stale_ones:
            verdicts, seconds = previous[exercise]["mutants"], previous[exercise]["seconds"]
        else:  # its batch failed: keep the old entry, which verify reports as stale
            if exercise in previous:
                entries[exercise] = previous[exercise]
            continue
        entries[exercise] = {
            "key": state.keys[exercise],
            "seconds": seconds,
            "mutants": verdicts,
            "survivors": {m.id: m.diff(state.source) for m in mutants if verdicts[m.id] is None},
        }
    return entries


def _record_phase(state: PhaseState, report: dict | None, results: dict, log) -> bool:
    phase = state.phase
    entries = _entries(state, report, results)
    record.write_report(phase, entries)
    equivalent = record.load_reviewed(phase, record.EQUIVALENT)
    open_ = record.load_reviewed(phase, record.OPEN)
    fresh_report = record.load_report(phase)
    problems, warnings = record.review_problems(phase, fresh_report, equivalent, open_)
    log(f"phase {phase.number} — {phase.title}")
    log(f"  {'exercise':<24}{'mutants':>8}{'killed':>8}{'equiv':>7}{'open':>6}{'new':>5}"
        f"{'rate':>8}")  # fmt: skip
    totals = record.Counts()
    for exercise, entry in entries.items():
        counts = record.count(entry, equivalent, open_)
        totals.add(counts)
        log(_row(exercise, counts))
    log(_row("phase total", totals))
    for mutant in totals.unreviewed:
        survivor = next(m for ms in state.mutants.values() for m in ms if m.id == mutant)
        log(f"  survivor {mutant} ({survivor.exercise}):\n{_indent(survivor.diff(state.source))}")
    for warning in warnings:
        log(f"  ! {warning}")
    for problem in problems:
        if not problem.startswith("unreviewed survivor"):
            log(f"  ✗ {problem}")
    return not problems


def _row(name: str, c: record.Counts) -> str:
    return (
        f"  {name:<24}{c.generated:>8}{c.killed:>8}{c.equivalent:>7}{c.open:>6}"
        f"{len(c.unreviewed):>5}{c.rate:>8.1%}"
    )


def _indent(text: str) -> str:
    return "".join(f"      {line}\n" for line in text.splitlines()).rstrip("\n")
