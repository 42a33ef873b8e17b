"""Reports of a graded phase: the terminal table, Gradescope's results.json, Markdown."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.evidence import worst
from grader.runner import KINDS, ExerciseResult, PhaseResult

STYLE = {
    "passed": "green",
    "partial": "yellow",
    "not implemented yet": "dim",
    "failed": "red",
    "forbidden API": "magenta",
    "does not import": "red",
}


def reason(result: ExerciseResult) -> str:
    """One line: why this exercise lost points (or what to do next)."""
    if result.status == "passed":
        return ""
    if result.violations:
        return result.violations[0].describe()
    if result.status == "not implemented yet":
        return (
            f"read {result.exercise.reading}, then fill in {', '.join(result.exercise.symbols[:3])}"
            + ("…" if len(result.exercise.symbols) > 3 else "")
        )
    if result.blocked_by:
        return f"fix first: {', '.join(result.blocked_by)} — this exercise builds on it"
    if result.mistake:
        return f"known mistake: {result.mistake}"
    first = result.failures[0]
    return f"{first.spec.description} — {KINDS[first.kind]}"


def render_terminal(
    result: PhaseResult, console: Console | None = None, details: bool = True
) -> None:
    console = console or Console(highlight=False)
    phase = result.phase
    console.print(f"\n[bold]Phase {phase.number} — {phase.title}[/bold]   ({result.target})")
    if result.import_error:
        console.print(f"[red]{result.import_error}[/red]")
    table = Table(show_lines=False, header_style="bold")
    table.add_column("exercise")
    table.add_column("points", justify="right")
    table.add_column("status")
    table.add_column("what next", overflow="fold", max_width=70)
    for ex in result.exercises:
        table.add_row(
            ex.exercise.id,
            f"{ex.score:g} / {ex.max_score:g}",
            Text(ex.status, style=STYLE.get(ex.status, "")),
            reason(ex),
        )
    console.print(table)
    console.print(
        f"[bold]Total: {result.score:g} / {result.max_score:g} points[/bold] "
        f"({result.seconds:.1f} s)"
    )
    if result.isolation:
        console.print(f"[dim]worker isolation: {result.isolation}[/dim]")
    if result.withheld:
        console.print(hidden_line(result), markup=False)
    for note in perf_notes(result):
        console.print(f"perf: {note}", markup=False, style="dim")
    todo = next((ex for ex in result.exercises if ex.status != "passed"), None)
    if todo is not None:
        console.print(
            f"Next: {todo.exercise.id} — {todo.exercise.title}. Read "
            f"{todo.exercise.reading}, then `make grade PHASE={phase.number} "
            f"EX={todo.exercise.id}`.",
            markup=False,
        )
    if details:
        _render_details(result, console)


def _render_details(result: PhaseResult, console: Console) -> None:
    failing = [
        e
        for e in result.exercises
        if e.status not in ("passed", "not implemented yet", "does not import")
    ]
    for ex in failing:
        console.print(
            f"\n[bold]{ex.exercise.id}[/bold] — {ex.exercise.title} ({ex.score:g}/{ex.max_score:g})"
        )
        if ex.blocked_by:
            console.print(
                f"  [yellow]Fix first: {', '.join(ex.blocked_by)} (this exercise "
                f"builds on it)[/yellow]"
            )
        for check in ex.failures[:4]:
            console.print(
                f"  ✗ {check.spec.description} [dim]({check.spec.category}, "
                f"{KINDS[check.kind]})[/dim]"
            )
            if check.mistake:  # shown under the failures it explains only
                console.print(f"      [magenta]Recognised mistake:[/magenta] {check.mistake}")
            for line in check.message.splitlines():
                console.print(f"      {line}", markup=False)
            if check.example:
                console.print(f"      smallest failing input: {check.example}", markup=False)
            if check.hint:
                console.print(f"      hint: {check.hint}", markup=False)
            if check.output:
                console.print("      your code printed (the end):", markup=False)
                for line in check.output.splitlines()[-TERMINAL_OUTPUT_LINES:]:
                    console.print(f"      | {line}", markup=False)
        if len(ex.failures) > 4:
            console.print(f"  … and {len(ex.failures) - 4} more failing checks")
        console.print(f"  Read: {ex.exercise.reading}")


TERMINAL_OUTPUT_LINES = 8


def perf_notes(result: PhaseResult) -> list[str]:
    """What the perf checks measured (grader/perf.py), one line each."""
    return [
        item.note
        for ex in result.exercises
        for check in ex.checks
        if check.spec.category == "perf"
        for item in check.evidence
        if item.kind == "note"
    ]


def hidden_line(result: PhaseResult) -> str:
    """What a student learns about the hidden checks a run did not grade: how many."""
    return (
        f"hidden checks: {result.withheld} (graded by your instructor after the deadline; "
        f"the points above are spread over the checks you can see)"
    )


def gradescope(result: PhaseResult) -> dict:
    """Gradescope's results.json: score, max_score, execution_time, output, tests, extra_data.

    Hidden checks carry `visibility: after_due_date`; the autograder's stdout stays hidden
    (every message a student should read is in a test's `output`)."""
    tests = []
    for ex in result.exercises:
        total = sum(c.spec.weight for c in ex.checks) or 1.0
        for check in ex.checks:
            share = ex.max_score * check.spec.weight / total
            earned = share if check.passed and not ex.violations else 0.0
            output = check.message if not check.passed else ""
            if check.example:
                output += f"\nSmallest failing input: {check.example}"
            if check.hint:
                output += f"\nHint: {check.hint}"
            if not check.passed and check.mistake:
                output += f"\nRecognised mistake: {check.mistake}"
            if check.output:
                output += f"\nYour code printed (the end):\n{check.output}"
            tests.append(
                {
                    "name": f"{ex.exercise.id}: {check.spec.description}",
                    "score": round(earned, 4),
                    "max_score": round(share, 4),
                    "status": "passed" if earned == share and check.passed else "failed",
                    "output": output.strip(),
                    "tags": [ex.exercise.id, check.spec.category],
                    "visibility": "after_due_date" if check.spec.hidden else "visible",
                }
            )
    return {
        "score": result.score,
        "max_score": result.max_score,
        "execution_time": round(result.seconds, 2),
        "output": f"Phase {result.phase.number} — {result.phase.title}: "
        f"{result.score:g} / {result.max_score:g}"
        + (f"\n{result.import_error}" if result.import_error else "")
        + (f"\n{hidden_line(result)}" if result.withheld else ""),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "phase": result.phase.number,
            "isolation": result.isolation,
            "exercises": {
                ex.exercise.id: {
                    "score": ex.score,
                    "max_score": ex.max_score,
                    "status": ex.status,
                    "mistake": ex.mistake,
                    "blocked_by": ex.blocked_by,
                    "forbidden": [v.describe() for v in ex.violations],
                }
                for ex in result.exercises
            },
        },
    }


def write_json(result: PhaseResult, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gradescope(result), indent=2, ensure_ascii=False))


def write_junit(result: PhaseResult, path: Path) -> None:
    """JUnit XML: one testsuite per exercise, one testcase per check (for CI dashboards)."""
    suites = ET.Element(
        "testsuites", name=f"phase{result.phase.number}", time=f"{result.seconds:.3f}"
    )
    for ex in result.exercises:
        errors = [c for c in ex.failures if c.kind in JUNIT_ERRORS]
        skipped = [c for c in ex.failures if c.kind in JUNIT_SKIPPED]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=ex.exercise.id,
            tests=str(len(ex.checks)),
            failures=str(len(ex.failures) - len(errors) - len(skipped)),
            errors=str(len(errors)),
            skipped=str(len(skipped)),
            time=f"{sum(c.seconds for c in ex.checks):.3f}",
        )
        for check in ex.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=ex.exercise.id,
                name=check.spec.name,
                time=f"{check.seconds:.3f}",
            )
            if not check.passed:
                tag = (
                    "error"
                    if check.kind in JUNIT_ERRORS
                    else "skipped"
                    if check.kind in JUNIT_SKIPPED
                    else "failure"
                )
                failure = ET.SubElement(case, tag, type=check.kind, message=check.spec.description)
                failure.text = _failure_text(ex, check)
            if check.output:
                ET.SubElement(case, "system-out").text = check.output
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


# JUnit's three ways not to pass: an assertion (failure), an exception (error), not run
# (skipped: an unfinished stub is not a failure a CI dashboard should shout about)
JUNIT_ERRORS = ("error", "timeout", "crash", "import", "internal")
JUNIT_SKIPPED = ("not_implemented",)


def _failure_text(ex: ExerciseResult, check) -> str:
    parts = [check.message]
    if check.example:
        parts.append(f"Smallest failing input: {check.example}")
    if check.hint:
        parts.append(f"Hint: {check.hint}")
    if check.mistake:
        parts.append(f"Recognised mistake: {check.mistake}")
    parts.append(f"Read: {ex.exercise.reading}")
    return "\n".join(parts)


def write_markdown(result: PhaseResult, path: Path) -> None:
    """A Markdown report: the points table, then every failing check with its diagnosis."""
    phase = result.phase
    lines = [
        f"# Phase {phase.number} — {phase.title}",
        "",
        f"**{result.score:g} / {result.max_score:g} points** for `{result.target}` "
        f"({result.seconds:.1f} s)",
        *(["", hidden_line(result)] if result.withheld else []),
        *(["", *(f"- perf: {note}" for note in perf_notes(result))] if perf_notes(result) else []),
        "",
        "| exercise | points | status | what next |",
        "|---|---|---|---|",
    ]
    for ex in result.exercises:
        next_step = reason(ex).replace("|", "\\|")
        lines.append(
            f"| {ex.exercise.id} | {ex.score:g} / {ex.max_score:g} | {ex.status} | {next_step} |"
        )
    for ex in result.exercises:
        if ex.status in ("passed", "not implemented yet"):
            continue
        lines += ["", f"## {ex.exercise.id} — {ex.exercise.title}", ""]
        for check in ex.failures:
            lines += [
                f"- **{check.spec.description}** ({check.spec.category}, {KINDS[check.kind]})",
                "",
                "  ```",
                *(f"  {line}" for line in _failure_text(ex, check).splitlines()),
                "  ```",
            ]
            for item in check.evidence:
                rows = worst(item)
                if rows:
                    lines += [
                        "",
                        f"  {item.title}, the largest differences:",
                        "",
                        "  | index | got | expected |",
                        "  |---|---|---|",
                        *(f"  | {list(i)} | {g:.6g} | {e:.6g} |" for i, g, e in rows),
                    ]
            if check.output:
                lines += ["", "  Your code printed (the end):", "", "  ```"]
                lines += [f"  {line}" for line in check.output.splitlines()] + ["  ```"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
