"""`make progress`: points per phase, grading only the phases whose files changed.

A phase's row is cached in .gradschool/progress.json (a folder the student owns, ignored by git),
keyed by the grader's version (a hash of grader/) and the bytes of the files its grade reads:
its module and the earlier phases' modules it may import. Unchanged, progress answers from the
cache without starting a worker; a cache that cannot be read is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from grader import registry
from grader.registry import ROOT
from grader.submission import EXERCISES, SubmissionError

CACHE = ROOT / ".gradschool" / "progress.json"
GRADER = ROOT / "grader"
PHASE_PART = re.compile(r"(?:^|/)phase(\d+)(?:/|\.\w+$)")  # tests/phase3/…, registry/phase3.toml


@dataclass(frozen=True)
class Row:
    score: float
    max_score: float
    hint: str  # the first unfinished exercise and why, or "done"
    next_step: str | None  # the command to run next, or None when the phase is done


def grader_versions(numbers: list[int]) -> dict[int, str]:
    """Per phase, a hash of the grader files its grade may read: the shared core and the checks,
    fixtures, probes and registry of this phase and every earlier one (later phases' checks
    reuse earlier phases' helpers, never the reverse). Mutants do not change a grade."""
    files = []  # (owning phase or -1 for the core, name and content digest)
    for path in sorted(GRADER.rglob("*")):
        if not path.is_file() or {"__pycache__", "mutants"} & set(path.parts):
            continue
        relative = str(path.relative_to(GRADER))
        owner = PHASE_PART.search(relative)
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        files.append((int(owner.group(1)) if owner else -1, f"{relative}\0{content}\n"))
    return {
        number: hashlib.sha256(
            "".join(line for owner, line in files if owner <= number).encode()
        ).hexdigest()[:16]
        for number in numbers
    }


def phase_files(number: int, notebook: Path | None = None) -> list[Path]:
    """What phase `number`'s grade reads: its module (or `notebook`) and every earlier one."""
    files = []
    for phase in registry.phases().values():
        if phase.number <= number:
            own = notebook if notebook and notebook.stem == phase.module else None
            files.append(own or EXERCISES / phase.filename)
    return files


def files_key(version: str, files: list[Path]) -> str:
    digest = hashlib.sha256(version.encode())
    for path in files:
        data = path.read_bytes() if path.is_file() else b"<missing>"
        digest.update(f"{path}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def load_cache(path: Path = CACHE) -> dict[str, dict]:
    """{phase number: {"key", "row"}}; anything unreadable or malformed is an empty cache."""
    try:
        data = json.loads(path.read_text())
        rows = {str(n): e for n, e in data["phases"].items() if isinstance(e["key"], str)}
        for entry in rows.values():
            Row(**entry["row"])
        return rows
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save_cache(rows: dict[str, dict], path: Path = CACHE) -> None:
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"phases": rows}, indent=1, sort_keys=True))
    temporary.replace(path)  # atomic: a progress interrupted mid-write leaves the old cache


def _save_quietly(rows: dict[str, dict], path: Path) -> None:
    try:
        save_cache(rows, path)
    except OSError:
        pass  # a read-only checkout still gets its table


def grade_row(phase: registry.Phase, target: Path | None) -> Row:
    from grader.report import reason
    from grader.runner import grade

    result = grade(phase, target, recognise=False)
    todo = next((e for e in result.exercises if e.status != "passed"), None)
    hint = f"{todo.exercise.id}: {reason(todo)}" if todo else "done"
    where = f" FILE={target}" if target else ""
    step = todo and f"make grade PHASE={phase.number} EX={todo.exercise.id}{where}"
    return Row(result.score, result.max_score, hint, step)


def progress(console: Console, notebook: Path | None = None, cache: Path = CACHE) -> int:
    """Print the progress table; `notebook` stands in for its phase's module in exercises/."""
    if notebook is not None:
        if notebook.suffix not in (".ipynb", ".py") or not notebook.is_file():
            raise SubmissionError(f"{notebook}: give an existing .ipynb notebook or .py module")
        if notebook.stem not in {p.module for p in registry.phases().values()}:
            raise SubmissionError(
                f"{notebook}: the name must be a phase module's, e.g. "
                "notebooks/phase0_foundations.ipynb"
            )
    cached = load_cache(cache)
    versions = grader_versions(list(registry.phases()))
    table = Table(header_style="bold", title="Your progress")
    for column in ("phase", "title", "points", "next"):
        table.add_column(column)
    earned = possible = 0.0
    next_step = None
    for number, phase in registry.phases().items():
        own = notebook if notebook and notebook.stem == phase.module else None
        if own is None and not (EXERCISES / phase.filename).exists():
            table.add_row(str(number), phase.title, f"– / {phase.max_points}", "not released yet")
            possible += phase.max_points
            continue
        key = files_key(versions[number], phase_files(number, notebook))
        entry = cached.get(str(number))
        row = Row(**entry["row"]) if entry and entry["key"] == key else grade_row(phase, own)
        if str(number) not in cached or cached[str(number)]["key"] != key:
            cached[str(number)] = {"key": key, "row": asdict(row)}
            _save_quietly(cached, cache)  # now: a later phase that crashes keeps this one
        earned, possible = earned + row.score, possible + row.max_score
        next_step = next_step or row.next_step
        table.add_row(str(number), phase.title, f"{row.score:g} / {row.max_score:g}", row.hint)
    console.print(table)
    console.print(f"[bold]Total: {earned:g} / {possible:g}[/bold]")
    if next_step:
        console.print(f"Next: {next_step}")
    return 0
