"""The committed record of a phase's `make verify` verdict, and whether it still holds.

grader/mutants/phaseN/verify-record.json is written by `python -m grader verify` for every phase
it verifies: the verdict (its problems, empty when sound) and a key over everything the verdict
depends on, in parts, so that a stale record says what changed:

    phase        the phase's solution and standard stub; its registry entry, checks, helpers,
                 hidden checks, probes, fixtures, mutants and mutation report
    earlier      the same files of every earlier phase (solutions import them, checks share
                 helpers, the registry links exercises across phases)
    grader       the rest of the grader package and datasets/ (runner, session, worker,
                 sandbox, checks library, stub generator, mutation analysis …), less the
                 front ends verifying never runs (NOT_RUN_BY_VERIFY: cli, batch, release …)
    environment  Python, NumPy and torch versions, the machine, the sandbox method, the memory
                 budget and the dataset mirror's checksums

Python files count as syntax trees (reformatting or re-commenting them changes nothing); other
files as bytes. Files of later phases are left out: editing phase 6 keeps phase 0's record.
The project's tests trust a current record and verify live only what is missing or stale, and
fail when a committed record is stale: the fix is `make verify PHASE=n`, then commit the record.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path

from grader.registry import ROOT, Phase

RECORD = "verify-record.json"
VERSION = "1"  # bump when what a verdict covers changes (verify.py's list of checks)
PHASE_PART = re.compile(r"(?:^|/)phase(\d+)(?=[/._]|$)")
TRACKED = ("grader", "datasets")
# front ends that verifying never runs (tests/test_verify.py proves none is imported by it)
NOT_RUN_BY_VERIFY = (
    "grader/__main__.py",
    "grader/cli.py",
    "grader/batch.py",
    "grader/gradescope.py",
    "grader/gradescope_files",
    "grader/release.py",
    "grader/release_files",
    "grader/notebooks.py",
    "grader/progress.py",
    "grader/report.py",
    "grader/html_report.py",
    "grader/capstones",
    "grader/README.md",
)


def path_for(phase: Phase) -> Path:
    return ROOT / "grader" / "mutants" / f"phase{phase.number}" / RECORD


def shown(path: Path) -> str:
    """A path as the project's commands name it (relative to the project when inside it)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _phase_of(relative: str) -> int | None:
    found = PHASE_PART.search(relative)
    return int(found.group(1)) if found else None


def _tracked_files() -> list[Path]:
    files = []
    for top in TRACKED:
        for path in (ROOT / top).rglob("*"):
            relative = str(path.relative_to(ROOT))
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and path.name != RECORD
                and not any(
                    relative == n or relative.startswith(n + "/") for n in NOT_RUN_BY_VERIFY
                )
            ):
                files.append(path)
    return sorted(files)


_PARSED: dict[tuple[Path, int, int], bytes] = {}  # (path, mtime, size) → what it counts as


def _content(path: Path) -> bytes:
    stat = path.stat()
    stamp = (path, stat.st_mtime_ns, stat.st_size)
    if stamp not in _PARSED:
        _PARSED[stamp] = _parsed(path.read_bytes(), path.suffix)
    return _PARSED[stamp]


def _parsed(data: bytes, suffix: str) -> bytes:
    if suffix == ".py":
        try:
            return ast.dump(ast.parse(data)).encode()
        except (SyntaxError, ValueError):
            return data
    return data


def _environment() -> str:
    from grader import sandbox

    versions = {name: _version(name) for name in ("numpy", "torch")}
    mirror = Path(os.environ.get("GRADSCHOOL_MIRROR", ROOT.parent / "shared" / "datasets"))
    # one checksum list per data set folder (and perhaps one at the top)
    sums = {str(f.relative_to(mirror)): f.read_text() for f in sorted(mirror.rglob("SHA256SUMS"))}
    return json.dumps(
        {
            "python": platform.python_version(),
            **versions,
            "machine": platform.machine(),
            "sandbox": sandbox.choose().method,
            "memory": os.environ.get("GRADSCHOOL_MEMORY", ""),
            "mirror": sums or "absent",
        },
        sort_keys=True,
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def parts(phase: Phase) -> dict[str, str]:
    """The key of the phase's verdict, in parts (each a short SHA-256)."""
    digests = {name: hashlib.sha256(VERSION.encode()) for name in ("phase", "earlier", "grader")}
    own = [ROOT / "solutions" / phase.filename, ROOT / "exercises" / phase.filename]
    earlier = sorted((ROOT / "solutions").glob("phase*.py"))
    files = [(p, "phase") for p in own]
    files += [(p, "earlier") for p in earlier if _phase_of(p.name) < phase.number]
    for path in _tracked_files():
        number = _phase_of(str(path.relative_to(ROOT)))
        if number is None:
            files.append((path, "grader"))
        elif number <= phase.number:
            files.append((path, "phase" if number == phase.number else "earlier"))
    for path, part in files:
        data = _content(path) if path.exists() else b"\0missing"
        name = str(path.relative_to(ROOT)).encode()
        digests[part].update(b"%s\0%d\0" % (name, len(data)) + data)
    found = {name: digest.hexdigest()[:16] for name, digest in digests.items()}
    found["environment"] = hashlib.sha256(_environment().encode()).hexdigest()[:16]
    return found


def write(phase: Phase, key: dict[str, str], problems: list[str], seconds: float) -> Path:
    """Record a verdict reached with the files of `key` (computed before verifying)."""
    path = path_for(phase)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"phase": phase.number, "key": key, "problems": problems, "seconds": round(seconds)}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load(phase: Phase) -> dict | None:
    try:
        record = json.loads(path_for(phase).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def staleness(phase: Phase) -> str | None:
    """Why the committed record does not hold for the current files, or None when it does."""
    relative = shown(path_for(phase))
    fix = f"run `make verify PHASE={phase.number}` and commit {relative}"
    record = load(phase)
    if record is None:
        return f"{relative} is missing: {fix}"
    recorded = record.get("key") if isinstance(record.get("key"), dict) else {}
    changed = [name for name, value in parts(phase).items() if recorded.get(name) != value]
    if changed:
        return f"{relative} is stale ({', '.join(changed)} changed since): {fix}"
    return None
