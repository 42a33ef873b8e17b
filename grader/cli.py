"""`python -m grader` — the one CLI behind every Makefile target (SPEC §1).

Exit codes: 0 whenever the command completed (for `grade`, whatever the score); 1 when
`verify` finds the course unsound; 2 when the grader itself could not run (bad arguments,
unknown phase or exercise, a missing or unreadable file); `train` exits 1 when the student's
code cannot train yet (unfinished, or raising: its traceback is shown) and 2 when the task's data
set cannot be had (offline, no mirror).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

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
    g.add_argument("--html", type=Path, help="write a self-contained HTML report here")
    g.add_argument("--quiet", action="store_true", help="the table only, no failure details")
    g.add_argument("--hidden", action="store_true", help="add the hidden checks (instructors)")
    g.add_argument(
        "--memory", default="768M", help="memory of the whole run, judge + worker (default 768M)"
    )
    g.add_argument(
        "--require-sandbox", action="store_true", help="refuse to grade without a sandbox"
    )
    v = sub.add_parser("verify", help="check that the course is sound")
    v.add_argument("--phase", type=int, action="append")
    v.add_argument("--jobs", type=int, default=2)
    v.add_argument(
        "--mutate", action="store_true", help="mutation analysis: refresh the mutation reports"
    )
    v.add_argument("--fresh", action="store_true", help="with --mutate: regrade every mutant")
    pr = sub.add_parser("progress", help="points per phase and what to do next")
    pr.add_argument("--file", type=Path, help="a phase's notebook (or .py) instead of exercises/")
    s = sub.add_parser("stubs", help="regenerate exercises/ from solutions/")
    s.add_argument("--level", choices=["guided", "standard", "hard"], default="standard")
    s.add_argument("--out", type=Path, help="write here instead of exercises/")
    s.add_argument("--phase", type=int, action="append", help="only this phase (repeatable)")
    s.add_argument("--force", action="store_true", help="overwrite stubs that were edited")
    n = sub.add_parser("notebooks", help="write notebooks/ from exercises/")
    n.add_argument("--force", action="store_true", help="overwrite notebooks that were edited")
    f = sub.add_parser("fixtures", help="record golden and mutant outputs")
    f.add_argument("--phase", type=int, action="append")
    t = sub.add_parser("train", help="run a capstone on your own code (plots, summary.json)")
    t.add_argument("--task", required=True, help="e.g. fashion-rnn")
    t.add_argument("--solution", action="store_true", help="use solutions/ (the reference run)")
    t.add_argument("--epochs", type=int, help="override the task's number of epochs")
    t.add_argument("--out", type=Path, help="write here instead of runs/<task>-<time>/")
    t.add_argument("--file", type=Path, help="train on this notebook (or .py) of its phase")
    b = sub.add_parser("batch", help="grade a folder of submissions into a gradebook CSV")
    b.add_argument("directory", type=Path, help="one .py, .ipynb, folder or .zip per submission")
    b.add_argument("--phase", type=int, required=True)
    b.add_argument("--jobs", type=int, help="gradings at once (default: what memory allows)")
    b.add_argument("--out", type=Path, help="default grades/phase<n>/")
    b.add_argument("--shard", help="K/N: grade only the K-th of N deterministic shares")
    mg = sub.add_parser("merge", help="join shard gradebooks into gradebook.csv")
    mg.add_argument("paths", type=Path, nargs="+", help="shard gradebooks, or folders of them")
    mg.add_argument("--out", type=Path, help="default: gradebook.csv next to the first shard")
    r = sub.add_parser("release", help="write the student bundle (no solutions, no hidden checks)")
    r.add_argument("--out", type=Path, required=True, help="a new folder (a git repository)")
    r.add_argument("--phases", help="only these phases, e.g. 0-3 or 0,1,2 (default: all)")
    gs = sub.add_parser("gradescope", help="build the Gradescope autograder zip of a phase")
    gs.add_argument("--phase", type=int, required=True)
    gs.add_argument("--out", type=Path, help="default build/gradescope-phase<n>.zip")
    gs.add_argument(
        "--run",
        type=Path,
        metavar="ROOT",
        help="inside Gradescope: grade ROOT/submission into ROOT/results/results.json",
    )
    return parser


# commands that need what only the course repository has (solutions/, mutants, hidden checks)
INSTRUCTOR_ONLY = ("verify", "stubs", "fixtures", "batch", "merge", "release", "gradescope")


def _needs_course(args) -> bool:
    """Instructor commands need the course repository; grading inside Gradescope does not."""
    return args.command in INSTRUCTOR_ONLY and not (args.command == "gradescope" and args.run)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(highlight=False)
    if _needs_course(args) and not (registry.ROOT / "solutions").is_dir():
        console.print(
            f"`{args.command}` is an instructor command: it needs the course repository "
            "(solutions/), which a student release does not include.",
            markup=False,
        )
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args, console)
    except (KeyError, ValueError) as error:  # unknown phase/exercise, unreadable submission
        message = error.args[0] if error.args else str(error)
        console.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)  # whole paths
        return EXIT_USAGE


def _grade(args, console: Console) -> int:
    from grader.html_report import write_html
    from grader.report import render_terminal, write_json, write_junit, write_markdown
    from grader.runner import grade
    from grader.session import Budget, parse_memory

    phase = registry.phase(args.phase)
    if args.exercise:
        for id in args.exercise:
            phase.exercise(id)
    limits = Budget(parse_memory(args.memory)).limits(require_sandbox=args.require_sandbox)
    result = grade(
        phase,
        args.file,
        exercises=args.exercise,
        full=args.full,
        hidden=args.hidden,
        limits=limits,
    )
    render_terminal(result, console, details=not args.quiet)
    for path, write in (
        (args.json, write_json),
        (args.junit, write_junit),
        (args.markdown, write_markdown),
        (args.html, write_html),
    ):
        if path:
            write(result, path)
            console.print(f"wrote {path}")
    return EXIT_OK


def _verify(args, console: Console) -> int:
    from grader.verify import verify

    log = lambda m: console.print(m, markup=False)  # noqa: E731
    if args.mutate:
        from grader.mutation.analyse import analyse

        wide = lambda m: console.print(m, markup=False, soft_wrap=True)  # noqa: E731 - diffs
        return EXIT_OK if analyse(args.phase, args.jobs, args.fresh, log=wide) else EXIT_UNSOUND
    return EXIT_OK if verify(args.phase, args.jobs, log=log) else EXIT_UNSOUND


def _progress(args, console: Console) -> int:
    from grader.progress import progress

    return progress(console, args.file)


def _stubs(args, console: Console) -> int:
    from grader.stubgen import EXERCISES, write_stubs

    for path in write_stubs(args.level, args.out or EXERCISES, args.phase, args.force):
        console.print(f"wrote {path} ({args.level})")
    return EXIT_OK


def _notebooks(args, console: Console) -> int:
    from grader.notebooks import write_notebooks

    for path in write_notebooks(force=args.force):
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
    from grader.train import train

    return train(console, args.task, args.solution, args.epochs, args.out, args.file)


def _batch(args, console: Console) -> int:
    from grader import batch

    phase = registry.phase(args.phase)
    path = batch.run(
        args.directory, phase, args.out, jobs=args.jobs, shard=batch.parse_shard(args.shard)
    )
    _, rows = batch.read_gradebook(path)
    statuses = {s: sum(r["status"] == s for r in rows) for s in batch.STATUSES}
    console.print(
        f"wrote {path}: " + ", ".join(f"{n} {s}" for s, n in statuses.items() if n), markup=False
    )
    return EXIT_OK


def _merge(args, console: Console) -> int:
    from grader import batch

    console.print(f"wrote {batch.merge(args.paths, args.out)}", markup=False)
    return EXIT_OK


def _release(args, console: Console) -> int:
    from grader import release

    path = release.build(args.out, phases=release.parse_phases(args.phases))
    console.print(f"wrote the student release {path}", markup=False)
    return EXIT_OK


def _gradescope(args, console: Console) -> int:
    from grader import gradescope

    phase = registry.phase(args.phase)
    if args.run:
        gradescope.autograde(phase, args.run, console)
        return EXIT_OK
    console.print(f"wrote {gradescope.build(phase, args.out)}", markup=False)
    return EXIT_OK


COMMANDS = {
    "grade": _grade,
    "batch": _batch,
    "merge": _merge,
    "release": _release,
    "gradescope": _gradescope,
    "verify": _verify,
    "progress": _progress,
    "stubs": _stubs,
    "notebooks": _notebooks,
    "fixtures": _fixtures,
    "train": _train,
}

if __name__ == "__main__":
    sys.exit(main())
