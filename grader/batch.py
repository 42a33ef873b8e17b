"""`python -m grader batch DIR --phase n`: grade a course's submissions into one gradebook.

Every entry of DIR (a .py, a .ipynb, a folder or a .zip; names starting with "." are skipped) is
one submission; its id is the entry's name without the extension. Each is staged into its own
private folder (grader/intake.py) and graded with the hidden checks by a pool of `jobs`
processes. OUT (default ./grades/phase<n>) receives
    gradebook.csv             one row per submission: id, total, the points of every exercise,
                              status (graded / rejected / grader error), isolation, sha256,
                              grader_version, detail (why it was rejected)
    results/<id>.json         Gradescope's results.json of that submission (grader.report)
    batch.log                 one line per submission: when, what, score, seconds
Re-running skips a submission already in a gradebook of OUT with the same SHA-256 and grader
version, so an interrupted or extended batch costs only what is new.

Shards. `--shard K/N` grades only the submissions whose id hashes to K (1 ≤ K ≤ N): the split
depends on the id alone, so it is the same on every machine and on every re-run, whatever else
DIR holds. A shard writes gradebook.shard-K-of-N.csv (and its log); `merge` joins the N of them
into gradebook.csv, identical to the one a single run writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import multiprocessing
import re
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grader import intake, registry
from grader.gradescope import write_rejection
from grader.registry import ROOT, Phase
from grader.submission import SubmissionError

STATUSES = ("graded", "rejected", "grader error")
FINAL = ("graded", "rejected")  # rows a re-run keeps; a grader error is retried
SHARD_FILE = re.compile(r"^gradebook\.shard-(\d+)-of-(\d+)\.csv$")
UNSAFE = re.compile(r"[^\w.@+-]")


@dataclass(frozen=True)
class Entry:
    """One submission found in the batch folder."""

    id: str
    path: Path


def columns(phase: Phase) -> list[str]:
    return [
        "id",
        "total",
        *(e.id for e in phase.exercises),
        "status",
        "isolation",
        "sha256",
        "grader_version",
        "detail",
    ]


def grader_version(phase: Phase) -> str:
    """The package version plus a digest of everything that can change a score on `phase`: the
    grader's modules, checks library, worker and probes, the registry, and this phase's checks,
    fixtures and mutants (not other phases', nor the capstones or instructor tools)."""
    package = ROOT / "grader"
    own = f"phase{phase.number}"
    judged = [
        *package.glob("*.py"),
        *(package / "checks").rglob("*.py"),
        *(package / "worker").rglob("*.py"),
        *(package / "probes").rglob("*.py"),
        *(package / "registry").glob("*.toml"),
        *(package / "tests").glob("*.py"),
        *(package / "tests" / own).rglob("*.py"),
        *(package / "tests" / own).rglob("*.toml"),
        *(package / "fixtures" / own).rglob("*.npz"),
        *(package / "mutants" / own).glob("mutants.toml"),
    ]
    digest = hashlib.sha256()
    for path in sorted(set(judged)):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return f"{_package_version()}+{digest.hexdigest()[:12]}"


def _package_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def discover(directory: Path) -> list[Entry]:
    """The submissions in `directory`, sorted by id; ids are names without the extension,
    made safe for file names (a clash keeps the full name)."""
    paths = sorted(p for p in Path(directory).iterdir() if not p.name.startswith("."))
    stems = [_safe(p.stem if p.is_file() or p.is_symlink() else p.name) for p in paths]
    entries = []
    for path, stem in zip(paths, stems, strict=True):
        id = stem if stems.count(stem) == 1 else _safe(path.name)
        entries.append(Entry(id, path))
    return sorted(entries, key=lambda e: e.id)


def _safe(name: str) -> str:
    """A name fit for a file name and a spreadsheet cell (no formula prefix)."""
    clean = UNSAFE.sub("_", name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    return clean.lstrip("=+-@") or "submission"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard {text!r}: expected K/N with 1 ≤ K ≤ N, e.g. 2/8")
    return int(match[1]), int(match[2])


def shard_of(id: str, count: int) -> int:
    """Which of `count` shards (1-based) grades submission `id`: a hash of the id alone."""
    return int(hashlib.sha256(id.encode()).hexdigest()[:12], 16) % count + 1


def gradebook_name(shard: tuple[int, int] | None, suffix: str = "csv") -> str:
    stem = "gradebook" if suffix == "csv" else "batch"
    return f"{stem}.shard-{shard[0]}-of-{shard[1]}.{suffix}" if shard else f"{stem}.{suffix}"


def run(
    directory: Path,
    phase: Phase,
    out: Path | None = None,
    *,
    jobs: int | None = None,
    shard: tuple[int, int] | None = None,
    limits=None,
    progress: bool = True,
) -> Path:
    """Grade the submissions of `directory` (or shard K/N of them); returns the gradebook."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a folder of submissions")
    out = Path(out or Path("grades") / f"phase{phase.number}")
    (out / "results").mkdir(parents=True, exist_ok=True)
    version = grader_version(phase)
    entries = [e for e in discover(directory) if not shard or shard_of(e.id, shard[1]) == shard[0]]
    known = previous_rows(out)
    rows: dict[str, dict] = {}
    todo: list[tuple[Entry, str]] = []
    for entry in entries:
        sha = _sha_or_empty(entry.path)
        old = known.get(entry.id)
        if (
            old
            and old["sha256"] == sha
            and old["grader_version"] == version
            and old["status"] in FINAL
            and (out / "results" / f"{entry.id}.json").exists()
        ):
            rows[entry.id] = old
        else:
            todo.append((entry, sha))
    log = open(out / gradebook_name(shard, "log"), "a", encoding="utf-8")
    log.write(
        f"{_now()} phase {phase.number}, grader {version}: {len(entries)} submissions, "
        f"{len(entries) - len(todo)} already graded\n"
    )
    path = out / gradebook_name(shard)
    try:
        for row in _grade_all(todo, phase, out, version, jobs, limits, progress, log):
            rows[row["id"]] = row
    finally:  # an interrupted batch keeps what it graded: the re-run skips it
        log.close()
        write_gradebook(path, phase, [rows[e.id] for e in entries if e.id in rows])
    return path


def _sha_or_empty(path: Path) -> str:
    try:
        return intake.sha256_of(path)
    except OSError:
        return ""


def _grade_all(todo, phase, out, version, jobs, limits, progress, log):
    """Yield one finished row per submission of `todo`, grading in a process pool."""
    if not todo:
        return
    jobs = jobs or default_jobs()
    bar = tqdm(
        total=len(todo),
        unit="submission",
        desc=f"phase {phase.number}",
        disable=not progress,
        dynamic_ncols=True,
    )
    attempts = {entry.id: 0 for entry, _ in todo}
    pending = list(todo)
    context = multiprocessing.get_context("spawn")  # the judge holds torch threads: never fork
    while pending:
        retry = []
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context) as pool:
            futures = {
                pool.submit(grade_one, phase.number, str(e.path), e.id, str(out), limits): (e, sha)
                for e, sha in pending
            }
            for future in as_completed(futures):
                entry, sha = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:  # one dead process takes every running task with it
                    attempts[entry.id] += 1
                    if attempts[entry.id] < 2:
                        retry.append((entry, sha))
                        continue
                    outcome = {"status": "grader error", "detail": "the grading process died"}
                except Exception as error:  # noqa: BLE001 - a grader bug costs one row, not all
                    outcome = {
                        "status": "grader error",
                        "detail": f"{type(error).__name__}: {error}",
                    }
                row = _row(phase, entry.id, sha, version, outcome)
                log.write(
                    f"{_now()} {entry.id}: {row['status']}, {row['total']}/{phase.max_points:g}, "
                    f"{outcome.get('seconds', 0):.1f} s {row['detail']}".rstrip()
                    + "\n"
                )
                log.flush()
                bar.update(1)
                yield row
        pending = retry
    bar.close()


def default_jobs() -> int:
    """As many gradings as memory and cores allow (grader.session.jobs_for), else 2."""
    try:
        from grader.session import Budget, jobs_for
    except ImportError:
        return 2
    return jobs_for(Budget())


def grade_one(phase_number: int, source: str, id: str, out: str, limits=None) -> dict:
    """In a pool process: stage one submission, grade it with the hidden checks, write its
    results.json; returns what its gradebook row needs."""
    from grader.report import write_json
    from grader.runner import grade

    phase = registry.phase(phase_number)
    results = Path(out) / "results" / f"{id}.json"
    scratch = Path(tempfile.mkdtemp(prefix="gradschool-batch-"))
    started = time.monotonic()
    try:
        folder = intake.stage(Path(source), phase, scratch / "submission")
        result = grade(phase, folder, hidden=True, limits=limits)
    except (intake.Rejected, SubmissionError) as error:
        message = str(error).replace(str(scratch), "…")
        write_rejection(phase, message, results)
        return {"status": "rejected", "detail": message, "seconds": time.monotonic() - started}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_json(result, results)
    internal = result.internal_errors
    return {
        "status": "grader error" if internal else "graded",
        "detail": f"{internal[0].spec.name}: {internal[0].message[:200]}" if internal else "",
        "total": result.score,
        "exercises": {e.exercise.id: e.score for e in result.exercises},
        "isolation": isolation_of(result),
        "seconds": result.seconds,
    }


def isolation_of(result) -> str:
    """The isolation the worker ran under, as the grading result reports it."""
    return str(getattr(result, "isolation", "") or "process")


def _row(phase: Phase, id: str, sha: str, version: str, outcome: dict) -> dict:
    points = outcome.get("exercises", {})
    row = {
        "id": id,
        "total": f"{outcome.get('total', 0.0):g}",
        **{e.id: f"{points.get(e.id, 0.0):g}" for e in phase.exercises},
        "status": outcome["status"],
        "isolation": outcome.get("isolation", ""),
        "sha256": sha,
        "grader_version": version,
        "detail": " ".join(str(outcome.get("detail", "")).split()),
    }
    return row


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def write_gradebook(path: Path, phase: Phase, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(phase), lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["id"]):
        writer.writerow(row)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    temporary.replace(path)


def read_gradebook(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def previous_rows(out: Path) -> dict[str, dict]:
    """Rows of every gradebook already in `out` (merged or shards), by id."""
    rows: dict[str, dict] = {}
    for path in sorted(Path(out).glob("gradebook*.csv")):
        try:
            _, found = read_gradebook(path)
        except (OSError, csv.Error, UnicodeDecodeError):
            continue
        rows.update({row["id"]: row for row in found if row.get("id")})
    return rows


def merge(paths: list[Path], out: Path | None = None) -> Path:
    """Join shard gradebooks (files, or folders holding gradebook.shard-K-of-N.csv) into one.

    Refuses a missing shard, a submission in two shards, different columns or grader versions."""
    files: list[Path] = []
    for path in map(Path, paths):
        found = (
            sorted(p for p in path.glob("gradebook.shard-*-of-*.csv")) if path.is_dir() else [path]
        )
        if not found:
            raise ValueError(f"{path} holds no gradebook.shard-K-of-N.csv")
        files += found
    shards = {(int(m[1]), int(m[2])) for p in files if (m := SHARD_FILE.match(p.name))}
    counts = {n for _, n in shards}
    if len(counts) > 1:
        raise ValueError(f"shard files of different splits: {sorted(shards)}")
    if counts:
        (count,) = counts
        missing = sorted(set(range(1, count + 1)) - {k for k, _ in shards})
        if missing:
            raise ValueError(f"missing shard(s) {', '.join(f'{k}/{count}' for k in missing)}")
    header, rows, seen, versions = None, [], {}, set()
    for path in files:
        fields, found = read_gradebook(path)
        if header is not None and fields != header:
            raise ValueError(f"{path} has different columns from {files[0]}")
        header = fields
        for row in found:
            if row["id"] in seen:
                raise ValueError(f"{row['id']} is in both {seen[row['id']]} and {path}")
            seen[row["id"]] = path
            versions.add(row["grader_version"])
            rows.append(row)
    if len(versions) > 1:
        raise ValueError(f"the shards were graded by different grader versions: {sorted(versions)}")
    target = Path(out) if out else files[0].parent / "gradebook.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header or [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["id"]))
    target.write_text(buffer.getvalue(), encoding="utf-8")
    return target
