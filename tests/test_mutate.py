"""Mutation analysis (grader/mutation): generated mutants, cached reports, reviewed survivors."""

from __future__ import annotations

import copy

import pytest

from grader.mutation import record
from grader.mutation.analyse import stale
from grader.mutation.generate import OPERATORS, generate
from grader.registry import Exercise, Phase

TOY = '''\
import torch


def helper(x):
    return x + 1


def scale(x: torch.Tensor, factor: float = 2.0, dim: int = -1) -> torch.Tensor:
    """Scale x and normalise it over `dim`."""
    # BEGIN SOLUTION
    if factor <= 0 and dim is not None:
        raise ValueError("factor must be positive")
    y = x * factor
    x = x - x.mean(dim=dim, keepdim=True)
    z = y[1:dim].sum(-1)
    return (x / y.abs().max()).clamp(min=-1.0)
    # END SOLUTION
'''


def toy_phase(numpy_only: bool = False) -> Phase:
    exercise = Exercise("toy_scale", "Scale", 1, ("scale",), (), "0.0", 99)
    return Phase(99, "phase99_toy", "Toy", (), (), numpy_only, (exercise,))


def test_every_operator_is_generated_inside_solution_regions_only():
    mutants = generate(toy_phase(), TOY)
    assert {m.operator for m in mutants} == set(OPERATORS)
    region = range(TOY.index("# BEGIN SOLUTION"), TOY.index("# END SOLUTION"))
    assert all(m.start in region and m.end in region for m in mutants)
    assert all(m.exercise == "toy_scale" and m.function == "scale" for m in mutants)
    assert len({m.apply(TOY) for m in mutants}) == len(mutants), "duplicates must be dropped"
    for mutant in mutants:
        compile(mutant.apply(TOY), "mutant", "exec")


@pytest.mark.parametrize(
    "operator, before, after",
    [
        ("arith", "y = x * factor", "y = x / factor"),
        ("compare", "factor <= 0", "factor < 0"),
        ("compare", "dim is not None", "dim is None"),
        ("logic", "factor <= 0 and dim", "factor <= 0 or dim"),
        ("constant", "clamp(min=-1.0)", "clamp(min=-2.0)"),
        ("axis", "].sum(-1)", "].sum(-2)"),
        ("slice", "y[1:dim]", "y[1:(dim + 1)]"),
        ("kwarg", "x.mean(dim=dim, keepdim=True)", "x.mean(dim=dim)"),
        ("inplace", "y = x * factor", "x *= factor; y = x"),
        ("inplace", ".clamp(min", ".clamp_(min"),
        ("delete", '        raise ValueError("factor must be positive")', "        pass"),
        ("cast", "return (x / y.abs().max()).clamp(min=-1.0)",
         "return ((x / y.abs().max()).clamp(min=-1.0)).double()"),
    ],
)  # fmt: skip
def test_operators_make_the_documented_change(operator, before, after):
    mutated = [m.apply(TOY) for m in generate(toy_phase(), TOY) if m.operator == operator]
    assert TOY.replace(before, after, 1) in mutated


def test_numpy_phases_cast_with_astype_and_have_no_torch_inplace_methods():
    mutants = generate(toy_phase(numpy_only=True), TOY)
    casts = [m.text for m in mutants if m.operator == "cast"]
    assert casts and all(".astype(" in text for text in casts)
    assert not any(m.text == "clamp_" for m in mutants)


def test_the_final_return_and_docstrings_are_never_deleted():
    deleted = [m for m in generate(toy_phase(), TOY) if m.operator == "delete"]
    assert not any("return" in TOY[m.start : m.end] for m in deleted)
    assert len(deleted) == 5  # the if, the raise, and the assignments to y, x and z


def test_ids_survive_edits_elsewhere_in_the_file():
    before = {m.id: m.apply(TOY) for m in generate(toy_phase(), TOY)}
    edited = TOY.replace("return x + 1", "return x + 2  # a change outside the exercise")
    after = {m.id for m in generate(toy_phase(), edited)}
    assert set(before) == after
    changed = TOY.replace("y = x * factor", "y = factor * x")
    assert set(before) != {m.id for m in generate(toy_phase(), changed)}


def test_diff_and_change_show_the_mutated_line():
    mutant = next(m for m in generate(toy_phase(), TOY) if m.text == "/" and m.operator == "arith")
    diff = mutant.diff(TOY)
    assert "-    y = x * factor" in diff and "+    y = x / factor" in diff
    assert mutant.change(TOY) == "line 13: y = x * factor → y = x / factor"


# ---- reports and reviewed lists


def _report(verdicts: dict) -> dict:
    return {
        "phase": 99,
        "exercises": {
            "toy_scale": {
                "key": "k",
                "seconds": 1.0,
                "mutants": verdicts,
                "survivors": {m: f"-a\n+{m}" for m, v in verdicts.items() if v is None},
            }
        },
    }


def test_an_unreviewed_survivor_is_a_problem_and_open_ones_a_warning():
    report = _report({"a": "check_x (wrong)", "b": None, "c": None, "d": None})
    problems, warnings = record.review_problems(toy_phase(), report, {"b": "x*2 is x+x"}, {"c": ""})
    assert len(problems) == 1 and "unreviewed survivor d" in problems[0] and "+d" in problems[0]
    assert warnings == []
    counts = record.count(report["exercises"]["toy_scale"], {"b": "why"}, {"c": ""})
    assert (counts.generated, counts.killed, counts.equivalent, counts.open) == (4, 1, 1, 1)
    assert counts.unreviewed == ["d"]
    assert counts.rate == pytest.approx(1 / 3)


def test_a_killed_mutant_listed_as_equivalent_is_a_problem():
    report = _report({"a": "check_x (wrong)"})
    problems, _ = record.review_problems(toy_phase(), report, {"a": "claimed equivalent"}, {})
    assert problems and "killed by check_x" in problems[0]
    _, warnings = record.review_problems(toy_phase(), report, {}, {"a": "", "gone": ""})
    assert any("a is killed" in w for w in warnings)
    assert any("gone is no longer generated" in w for w in warnings)


def test_a_report_is_stale_when_the_key_or_the_mutants_change():
    from grader.mutation.analyse import PhaseState

    mutants = generate(toy_phase(), TOY)
    state = PhaseState(toy_phase(), TOY, {"toy_scale": mutants}, {"toy_scale": "k"})
    report = _report({m.id: "c" for m in mutants})
    assert stale(state, report) == []
    changed_key = copy.deepcopy(state)
    changed_key.keys["toy_scale"] = "other"
    assert stale(changed_key, report) == ["toy_scale"]
    fewer = copy.deepcopy(state)
    fewer.mutants["toy_scale"] = mutants[1:]
    assert stale(fewer, report) == ["toy_scale"]
    assert stale(state, None) == ["toy_scale"]


# ---- grading: one worker, the module swapped per mutant


def test_one_worker_grades_many_mutants_and_a_broken_one_is_killed():
    from grader.mutation.run import grade_batch
    from grader.registry import ROOT
    from grader.registry import phase as phase_by_number

    phase = phase_by_number(0)
    source = (ROOT / "solutions" / phase.filename).read_text()
    mutants = [m for m in generate(phase, source) if m.exercise == "softmax"]
    deleted = [m for m in mutants if m.operator == "delete"][:3]
    outcome = grade_batch(0, "softmax", [m.id for m in deleted])
    assert set(outcome["verdicts"]) == {m.id for m in deleted}
    assert all(killer is not None for killer in outcome["verdicts"].values())


def test_an_exercise_key_ignores_the_checks_of_other_exercises():
    from grader.mutation.keys import _without_other_checks

    source = (
        "from grader.checks import check\n\nLIMIT = 3\n\n\n"
        '@check("a", "oracle")\ndef first(m):\n    return 1\n\n\n'
        '@check("b", "oracle")\ndef second(m):\n    return 2\n'
    )
    own = _without_other_checks(source, "a")
    assert "def first" in own and "LIMIT = 3" in own and "def second" not in own
    edited = source.replace("return 2", "return 20")
    assert _without_other_checks(edited, "a") == own
    assert _without_other_checks(edited, "b") != _without_other_checks(source, "b")
