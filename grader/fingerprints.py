"""Golden outputs and mistake recognition.

`make fixtures` runs each exercise's @fingerprint function (fixed inputs, see the phase's tests)
on the reference solution and on every mutant, and stores the outputs in
grader/fixtures/phaseN/<exercise>.npz under the keys "reference/<name>" and "<mutant>/<name>".
A mutant's *signature* is the set of outputs where it differs from the reference; a failing
submission whose outputs equal a mutant's on its whole signature has made that mistake.

The same file records, under "checks/<mutant>", the visible checks the mutant fails when graded:
a recognised mistake is shown under those of the student's failing checks only — the failures
it explains —, not under every failing check of the exercise (a fixture recorded before this
falls back to all of them).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader import mutants as mutants_module
from grader.registry import ROOT, Phase
from grader.session import Session, Submission

FIXTURES_DIR = Path(__file__).parent / "fixtures"
MATCH = {"rtol": 1e-6, "atol": 1e-9}
CHECKS = "checks"  # the owner of the failing-check records, beside "reference" and mutant ids


@dataclass(frozen=True)
class Recognised:
    """A known mistake the student's outputs match: its explanation, and the names of the
    checks the mutant itself fails (None when the fixture does not record them)."""

    why: str
    checks: frozenset[str] | None = None

    def explains(self, check: str) -> bool:
        return self.checks is None or check in self.checks


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.shape == b.shape
        and a.dtype.kind == b.dtype.kind
        and bool(
            np.allclose(a, b, equal_nan=True, **MATCH)
            if a.dtype.kind in "fc"
            else np.array_equal(a, b)
        )
    )


def as_arrays(outputs: dict) -> dict[str, np.ndarray]:
    """A fingerprint's outputs as plain arrays (a non-numeric output is not a fingerprint)."""
    arrays = {}
    for name, value in outputs.items():
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"fingerprint output {name!r} is not numeric")
        arrays[name] = array
    return arrays


def path_for(phase: Phase, exercise: str) -> Path:
    return FIXTURES_DIR / f"phase{phase.number}" / f"{exercise}.npz"


def load(phase: Phase, exercise: str) -> dict[str, dict[str, np.ndarray]]:
    """{"reference": {...}, mutant id: {...}} as recorded, or {} when never recorded."""
    path = path_for(phase, exercise)
    if not path.exists():
        return {}
    grouped: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            owner, name = key.split("/", 1)
            grouped.setdefault(owner, {})[name] = data[key]
    return grouped


def signature(reference: dict, mutant: dict) -> list[str]:
    names = set(reference) | set(mutant)
    return sorted(
        n
        for n in names
        if n not in reference or n not in mutant or not _same(reference[n], mutant[n])
    )


def recognise(session: Session, module, phase: Phase, exercise: str, function) -> list[Recognised]:
    """The known mistakes the student's outputs match, most specific first.

    A mutant matches when the student's outputs equal its own on its whole signature. A match
    whose signature lies inside another match's is that one's shadow and is dropped; what
    remains are distinct mistakes (a wrong relu and a wrong tanh), all named. Calls that hung
    earlier are not made again (the session refuses them), so a hang is never re-run here.
    """
    recorded = load(phase, exercise)
    if not recorded:
        return []
    session.begin_check()
    try:
        outputs = as_arrays(function(module))
    except Exception:  # noqa: BLE001 - a failing submission may fail here too: then no match
        return []
    finally:
        session.end_check()
    explanations = {m.id: m.why for m in mutants_module.load(phase)}
    failing = recorded.get(CHECKS, {})
    matches: list[tuple[frozenset, Recognised]] = []
    for owner, values in recorded.items():
        if owner == "reference" or owner not in explanations:
            continue
        keys = frozenset(signature(recorded["reference"], values))
        if keys and all(
            k in outputs and k in values and _same(outputs[k], values[k]) for k in keys
        ):
            checks = frozenset(map(str, failing[owner])) if owner in failing else None
            matches.append((keys, Recognised(explanations[owner], checks)))
    matches.sort(key=lambda match: -len(match[0]))
    kept: list[tuple[frozenset, Recognised]] = []
    for keys, found in matches:
        if not any(keys <= other for other, _ in kept) and found.why not in (
            k.why for _, k in kept
        ):
            kept.append((keys, found))
    return [found for _, found in kept]


def run_fingerprint(phase: Phase, source: str, function) -> dict[str, np.ndarray]:
    """Run one fingerprint on a solution-like source in a worker."""
    return run_fingerprints(phase, source, {"_": function})["_"]


def run_fingerprints(phase: Phase, source: str, functions: dict) -> dict[str, dict]:
    """Run several fingerprints ({exercise: function}) on one source, in one worker."""
    directory = Path(tempfile.mkdtemp(prefix="gradschool-fixture-"))
    try:
        package = directory / "submission"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for other in (ROOT / "solutions").glob("phase*.py"):
            shutil.copyfile(other, package / other.name)
        (package / phase.filename).write_text(source)
        submission = Submission(
            directory, phase.module, preload=[] if phase.numpy_only else ["torch"]
        )
        with Session(submission) as session:
            module = session.module()
            return {name: as_arrays(function(module)) for name, function in functions.items()}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def compute(phase: Phase, exercise: str, function) -> dict[str, np.ndarray]:
    """The flat {key: array} a fixture file holds for `exercise`, computed afresh: the
    fingerprints of the reference and of each mutant, and the checks each mutant fails."""
    source = (ROOT / "solutions" / phase.filename).read_text()
    flat = {f"reference/{k}": v for k, v in run_fingerprint(phase, source, function).items()}
    for mutant in mutants_module.load(phase):
        if mutant.exercise == exercise:
            try:
                outputs = run_fingerprint(phase, mutant.apply(source), function)
            except Exception as exc:  # noqa: BLE001 - recorded as "no fingerprint"
                raise RuntimeError(
                    f"mutant {mutant.id}: its fingerprint run failed: {exc}"
                ) from exc
            flat.update({f"{mutant.id}/{k}": v for k, v in outputs.items()})
            names = failing_checks(phase, exercise, mutant.apply(source))
            flat[f"{CHECKS}/{mutant.id}"] = np.array(names, dtype=str)
    return flat


def failing_checks(phase: Phase, exercise: str, source: str) -> list[str]:
    """The visible checks of `exercise` that a solution-like source fails (hidden ones are not
    named: fixtures ship with the student release)."""
    from grader.runner import grade  # the runner uses this module

    directory = Path(tempfile.mkdtemp(prefix="gradschool-fixture-"))
    try:
        for other in (ROOT / "solutions").glob("phase*.py"):
            shutil.copyfile(other, directory / other.name)
        (directory / phase.filename).write_text(source)
        result = grade(
            phase,
            directory / phase.filename,
            exercises=[exercise],
            recognise=False,
            prerequisites=False,
        )
        return sorted(c.spec.name for e in result.exercises for c in e.failures)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def write(phase: Phase, exercise: str, flat: dict[str, np.ndarray]) -> Path:
    path = path_for(phase, exercise)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez_compressed(temporary, **flat)
    temporary.replace(path)  # atomic: an interrupted run leaves the old fixture intact
    return path
