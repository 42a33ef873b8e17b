"""`make release OUT=dir`: the student bundle — what a student needs, nothing they must not see.

The bundle is a git repository (one commit) holding the stubs, the curriculum, the datasets'
loaders and the grader with its visible checks and fixtures. It leaves out:
- solutions/ and every instructor command that needs them (verify, fixtures, stubs, mutate,
  release, batch, merge, gradescope: their modules are not copied and the CLI refuses them);
- the mutants' `old → new` text, which is solution text: grader/mutants/phaseN/mutants.toml
  keeps each mistake's id, exercise and `why` (recognition needs them), and the fixtures keep
  the mistakes' recorded outputs;
- the hidden checks (grader/tests/phaseN/hidden*.py): tests/phaseN/hidden.toml only counts them.

Before committing, the bundle is searched for every line of every region the stubs blank; a
single hit stops the release (see `leaks`, and `secret_lines` for which lines count).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from grader import manifest, mutants, registry
from grader.registry import ROOT
from grader.runner import HIDDEN_PREFIX, collect
from grader.stubgen import BLANKED_AT, HINT, SOLUTIONS, find_regions

TEMPLATES = Path(__file__).parent / "release_files"
# grader modules and folders that exist for instructors only (they read solutions/ or mutants)
INSTRUCTOR_ONLY = {
    "verify.py",
    "stubgen.py",
    "mutate.py",
    "mutation",
    "release.py",
    "release_files",
    "batch.py",
    "gradescope.py",
    "gradescope_files",
}
AUTOGRADER_NEEDS = {"gradescope.py"}  # what `gradescope --run` imports inside Gradescope
COPIED = ("curriculum.md", "pyproject.toml", "datasets", "docs/img", "exercises")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".json", ".txt", ".ipynb", ".cfg", ".sh", ""}
SHIPPED_LEVEL = "standard"
# A line computes when, outside its string literals, it has an arithmetic or bitwise operator or
# a subscript: that is where a solution's content is. Other lines only call, loop, branch or
# return names — `loss.backward()`, `with torch.no_grad():`, `for p in params:` — idioms that
# every training loop of the grader repeats and that give away nothing a docstring does not.
COMPUTES = re.compile(r"[-+*/%@&|^~]|[\w)\]]\[")
STRING = re.compile(r"\"[^\"]*\"|'[^']*'")


def build(
    out: Path, *, phases: list[int] | None = None, hidden: bool = False, git: bool = True
) -> Path:
    """Write the student bundle of `phases` (default: every phase with a solution) into `out`,
    which must be absent or empty, and commit it.

    `hidden=True` keeps the hidden checks and the module that grades inside Gradescope: the
    autograder is built this way."""
    out = Path(out)
    released = sorted(phases if phases is not None else default_phases())
    unknown = set(released) - set(registry.phases())
    if unknown:
        raise ValueError(f"no phase {sorted(unknown)} in this course")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: a release is written into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        _copy(ROOT / name, out / name)
    _keep_exercises(out / "exercises", released)
    _copy_grader(out / "grader", released, hidden)
    for template in sorted(TEMPLATES.rglob("*")):
        if template.is_file():
            target = out / template.relative_to(TEMPLATES)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, target)
    found = leaks(out)
    if found:
        shutil.rmtree(out)
        raise ValueError("the release would leak solution lines:\n  " + "\n  ".join(found[:10]))
    if git:
        _commit(out)
    return out


def default_phases() -> list[int]:
    return [n for n, p in registry.phases().items() if (SOLUTIONS / p.filename).exists()]


def parse_phases(text: str | None) -> list[int] | None:
    """ "0-5" or "0,1,3" → phase numbers; None → None (every phase)."""
    if not text:
        return None
    numbers: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"PHASES={text!r}: expected numbers and ranges such as 0-3,5")
        numbers |= set(range(int(low), int(high or low) + 1))
    return sorted(numbers)


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    elif source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _keep_exercises(folder: Path, released: list[int]) -> None:
    """Only the released phases' stubs, and only their hashes in the stub manifest."""
    names = {registry.phase(n).filename for n in released} | {"__init__.py"}
    for path in folder.glob("phase*.py"):
        if path.name not in names:
            path.unlink()
    kept = {k: v for k, v in manifest.recorded(folder).items() if k in names}
    if kept:
        manifest.save(folder, kept)


def _copy_grader(target: Path, released: list[int], hidden: bool) -> None:
    source = ROOT / "grader"
    others = {f"phase{n}" for n in registry.phases()} - {f"phase{n}" for n in released}

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
        skipped |= {n for n in names if n.split(".")[0] in others}  # unreleased phases
        if here == source:
            skipped |= (INSTRUCTOR_ONLY - (AUTOGRADER_NEEDS if hidden else set())) & set(names)
        if here.parent == source / "tests" and not hidden:
            skipped |= {n for n in names if n.startswith(HIDDEN_PREFIX)}
        if here.parent == source / "mutants":
            skipped |= set(names)  # rewritten below without the old → new text
        return skipped

    shutil.copytree(source, target, ignore=ignore)
    for number in released:
        phase = registry.phase(number)
        kept = [{"id": m.id, "exercise": m.exercise, "why": m.why} for m in mutants.load(phase)]
        if kept:
            path = target / "mutants" / f"phase{number}" / "mutants.toml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_mutants_toml(kept), encoding="utf-8")
        if not hidden:
            counts = _hidden_counts(phase)
            if counts:
                path = target / "tests" / f"phase{number}" / "hidden.toml"
                path.write_text(_counts_toml(counts), encoding="utf-8")


def _hidden_counts(phase: registry.Phase) -> dict[str, int]:
    if not (ROOT / "grader" / "tests" / f"phase{phase.number}" / "__init__.py").exists():
        return {}  # a phase still being written: no checks yet
    checks, _ = collect(phase)
    return {id: n for id, specs in checks.items() if (n := sum(s.hidden for s in specs))}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mutants_toml(kept: list[dict]) -> str:
    lines = [
        "# Known mistakes of this phase: the report names one when your outputs match its",
        "# recorded outputs (grader/fixtures). The changes themselves are not part of a release.",
    ]
    for mutant in kept:
        lines += ["", "[[mutant]]"] + [f"{k} = {_quote(v)}" for k, v in mutant.items()]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what we wrote must read back
    return text


def _counts_toml(counts: dict[str, int]) -> str:
    body = "\n".join(f"{id} = {n}" for id, n in counts.items())
    return (
        "# How many hidden checks each exercise has: they are graded by your instructor after\n"
        "# the deadline (batch or Gradescope), and are not part of this release.\n"
        f"[hidden]\n{body}\n"
    )


def _commit(out: Path) -> None:
    git = ["git", "-c", "user.name=gradschool", "-c", "user.email=release@gradschool.invalid"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "gradschool release"]):
        subprocess.run([*git, *command], cwd=out, check=True, capture_output=True)


def normalise(line: str) -> str:
    """A line as compared for leaks: no indentation, no trailing comment, single spaces."""
    code = line.strip()
    if "#" in code and not any(q in code for q in "'\""):
        code = code.split("#", 1)[0].rstrip()
    return " ".join(code.split())


def secret_lines(level: str = SHIPPED_LEVEL) -> dict[str, str]:
    """{normalised line: where} for the lines a stub at `level` blanks.

    Not counted: blank lines and comments (a region's `# HINT:` lines are published in the stub
    on purpose), lines that also occur outside the blanked regions of a solution (the stub shows
    them anyway), and lines that do not compute (see COMPUTES)."""
    secret: dict[str, str] = {}
    public: set[str] = set()
    for path in sorted(SOLUTIONS.glob("phase*.py")):
        lines = path.read_text().splitlines()
        blanked: set[int] = set()
        for region in find_regions(lines, path.name):
            if level in BLANKED_AT[region.kind]:
                blanked |= set(range(region.begin, region.end + 1))
                for index in range(region.begin + 1, region.end):
                    raw = lines[index]
                    if HINT.match(raw) or raw.strip().startswith("#"):
                        continue
                    line = normalise(raw)
                    if COMPUTES.search(STRING.sub("''", line)):
                        secret.setdefault(line, f"{path.name}:{index + 1}")
        public |= {normalise(ln) for i, ln in enumerate(lines) if i not in blanked}
    return {line: where for line, where in secret.items() if line not in public}


def leaks(bundle: Path, level: str = SHIPPED_LEVEL) -> list[str]:
    """Every place in `bundle` where a secret line occurs, as "file:line = solution:line"."""
    secret = secret_lines(level)
    found = []
    for path in sorted(bundle.rglob("*")):
        if not path.is_file() or ".git" in path.relative_to(bundle).parts:
            continue
        if path.suffix not in TEXT_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            where = secret.get(normalise(line))
            if where:
                found.append(f"{path.relative_to(bundle)}:{number} = {where}")
    return found
