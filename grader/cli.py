"""`python -m grader` — the one CLI behind every Makefile target (SPEC §1).

Exit codes: 0 whenever the command completed (for `grade`, whatever the score); 1 when
`verify` finds the course unsound; 2 when the grader itself could not run (bad arguments,
unknown phase or exercise, a missing or unreadable file); `train` exits 1 when the student's
code cannot train yet (an unfinished exercise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from grader import registry

EXIT_OK, EXIT_UNSOUND, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a phase of exercises/ (or --file)")
    g.add_argument("--phase", type=int, required=True)
    g.add_argument("--exercise", action="append", help="only this exercise id (repeatable)")
    g.add_argument("--file", type=Path, help="a .py, a .ipynb, or a folder with the phase module")
    g.add_argument("--full", action="store_true", help="add the slow end-to-end tier")
    g.add_argument("--json", type=Path, help="write Gradescope results.json here")
    g.add_argument("--junit", type=Path, help="write JUnit XML here")
    g.add_argument("--markdown", type=Path, help="write a Markdown report here")
    g.add_argument("--quiet", action="store_true", help="the table only, no failure details")
    v = sub.add_parser("verify", help="check that the course is sound")
    v.add_argument("--phase", type=int, action="append")
    v.add_argument("--jobs", type=int, default=2)
    sub.add_parser("progress", help="points per phase and what to do next")
    s = sub.add_parser("stubs", help="regenerate exercises/ from solutions/")
    s.add_argument("--level", choices=["guided", "standard", "hard"], default="standard")
    s.add_argument("--out", type=Path, help="write here instead of exercises/")
    s.add_argument("--phase", type=int, action="append", help="only this phase (repeatable)")
    sub.add_parser("notebooks", help="write notebooks/ from exercises/")
    f = sub.add_parser("fixtures", help="record golden and mutant outputs")
    f.add_argument("--phase", type=int, action="append")
    t = sub.add_parser("train", help="run a capstone on your own code (plots, summary.json)")
    t.add_argument("--task", required=True, help="e.g. fashion-rnn")
    t.add_argument("--solution", action="store_true", help="use solutions/ (the reference run)")
    t.add_argument("--epochs", type=int, help="override the task's number of epochs")
    t.add_argument("--out", type=Path, help="write here instead of runs/<task>-<time>/")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(highlight=False)
    try:
        return COMMANDS[args.command](args, console)
    except (KeyError, ValueError) as error:  # unknown phase/exercise, unreadable submission
        message = error.args[0] if error.args else str(error)
        console.print(f"[red]error:[/red] {message}", markup=True)
        return EXIT_USAGE


def _grade(args, console: Console) -> int:
    from grader.report import render_terminal, write_json, write_junit, write_markdown
    from grader.runner import grade

    phase = registry.phase(args.phase)
    if args.exercise:
        for id in args.exercise:
            phase.exercise(id)
    result = grade(phase, args.file, exercises=args.exercise, full=args.full)
    render_terminal(result, console, details=not args.quiet)
    for path, write in (
        (args.json, write_json),
        (args.junit, write_junit),
        (args.markdown, write_markdown),
    ):
        if path:
            write(result, path)
            console.print(f"wrote {path}")
    return EXIT_OK


def _verify(args, console: Console) -> int:
    from grader.verify import verify

    return (
        EXIT_OK
        if verify(args.phase, args.jobs, log=lambda m: console.print(m, markup=False))
        else EXIT_UNSOUND
    )


def _progress(args, console: Console) -> int:
    from grader.report import reason
    from grader.runner import grade
    from grader.submission import EXERCISES

    table = Table(header_style="bold", title="Your progress")
    for column in ("phase", "title", "points", "next"):
        table.add_column(column)
    earned = possible = 0.0
    next_step = None
    for number, phase in registry.phases().items():
        if not (EXERCISES / phase.filename).exists():
            table.add_row(str(number), phase.title, f"– / {phase.max_points}", "not released yet")
            possible += phase.max_points
            continue
        result = grade(phase, None, recognise=False)
        earned, possible = earned + result.score, possible + result.max_score
        todo = next((e for e in result.exercises if e.status != "passed"), None)
        hint = f"{todo.exercise.id}: {reason(todo)}" if todo else "done"
        next_step = next_step or (todo and f"make grade PHASE={number} EX={todo.exercise.id}")
        table.add_row(str(number), phase.title, f"{result.score:g} / {result.max_score:g}", hint)
    console.print(table)
    console.print(f"[bold]Total: {earned:g} / {possible:g}[/bold]")
    if next_step:
        console.print(f"Next: {next_step}")
    return EXIT_OK


def _stubs(args, console: Console) -> int:
    from grader.stubgen import EXERCISES, write_stubs

    for path in write_stubs(args.level, args.out or EXERCISES, args.phase):
        console.print(f"wrote {path} ({args.level})")
    return EXIT_OK


def _notebooks(args, console: Console) -> int:
    from grader.notebooks import write_notebooks

    for path in write_notebooks():
        console.print(f"wrote {path}")
    return EXIT_OK


def _fixtures(args, console: Console) -> int:
    from grader import fingerprints
    from grader.runner import collect

    for number in args.phase or list(registry.phases()):
        phase = registry.phase(number)
        _, prints = collect(phase)
        for exercise, function in prints.items():
            path = fingerprints.write(
                phase, exercise, fingerprints.compute(phase, exercise, function)
            )
            console.print(f"wrote {path.relative_to(registry.ROOT)}")
    return EXIT_OK


def _train(args, console: Console) -> int:
    from grader.capstones import task

    capstone = task(args.task)
    try:
        capstone.run(solution=args.solution, epochs=args.epochs, out=args.out)
    except NotImplementedError as error:
        console.print(f"[red]your code is not finished:[/red] {error}\nGrade it with `make grade "
                      f"PHASE=n`, or watch the reference run with SOLUTION=1.", markup=True)
        return EXIT_UNSOUND
    return EXIT_OK


COMMANDS = {
    "grade": _grade,
    "verify": _verify,
    "progress": _progress,
    "stubs": _stubs,
    "notebooks": _notebooks,
    "fixtures": _fixtures,
    "train": _train,
}

if __name__ == "__main__":
    sys.exit(main())
