"""Feedback that points at the actual mistake (issue 8): each rule shown on a broken input or a
broken submission — hints belong to the failing assertion, values print plainly, the failing
input element is named, a hang costs only its own function, several known mistakes are named
together and each is shown under the failing checks it explains only, and cross-phase
prerequisites reach the terminal table."""

from __future__ import annotations

import inspect
import io

import numpy as np
import pytest
from rich.console import Console

from grader import fingerprints, mutants, registry
from grader.checks import CheckFailed, CheckSpec
from grader.checks.oracle import assert_close, plain
from grader.checks.stability import assert_finite, assert_quiet
from grader.report import gradescope, reason, render_terminal
from grader.runner import CheckResult, ExerciseResult, PhaseResult, _attach_mistakes, grade
from grader.session import Limits
from tests.conftest import SOLUTION0

SOURCE0 = SOLUTION0.read_text()


def _failure(call) -> CheckFailed:
    with pytest.raises(CheckFailed) as caught:
        call()
    return caught.value


def test_stability_helpers_demand_a_hint_of_their_own():
    for helper in (assert_finite, assert_quiet):
        assert inspect.signature(helper).parameters["hint"].default is inspect.Parameter.empty
    failure = _failure(lambda: assert_finite(np.array([1.0, np.inf]), "∂L/∂h", "BPTT hint"))
    assert failure.hint == "BPTT hint" and "(inf)" in str(failure)


def test_values_print_plainly():
    assert plain(np.float64(0.0)) == "0.0"
    assert plain(np.float32(1.5)) == "1.5"
    assert plain(np.int64(3)) == "3"
    failure = _failure(lambda: assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.5]), "y"))
    assert "np.float64" not in str(failure) and "got 2.0, expected 2.5" in str(failure)


def test_relative_error_against_an_expected_zero_is_not_huge():
    failure = _failure(lambda: assert_close(np.array([0.5, 1.0]), np.array([0.0, 1.0]), "y"))
    assert "expected 0 there" in str(failure) and "e+" not in str(failure).split("\n")[0]


def test_the_failing_input_element_is_shown():
    x = np.array([-1.0, 0.0, 2.0])
    failure = _failure(
        lambda: assert_close(
            np.array([0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0]), "relu_backward", inputs={"x": x}
        )
    )
    assert "index (1,) (x[1] = 0.0)" in str(failure)


def test_the_hint_shown_is_the_failing_assertions():
    def two_assertions():
        assert_close(np.ones(2), np.ones(2), "first", hint="first hint")
        assert_close(np.zeros(2), np.ones(2), "second", hint="second hint")

    assert _failure(two_assertions).hint == "second hint"


def test_a_hang_in_relu_costs_relu_only(tmp_path):
    path = tmp_path / "phase0_foundations.py"
    old = '    """ReLU(x) = max(x, 0), elementwise. Any shape."""\n'
    path.write_text(SOURCE0.replace(old, old + "    while True:\n        pass\n"))
    result = grade(
        registry.phase(0),
        path,
        exercises=["activations"],
        limits=Limits(call_seconds=1.5, check_seconds=10),
        prerequisites=False,
    )
    checks = {c.spec.name: c for c in result.exercises[0].checks}
    assert checks["relu_matches_torch"].kind == "timeout"
    assert checks["relu_is_stable_at_1e4"].kind == "timeout"
    assert "not run again" in checks["relu_is_stable_at_1e4"].message
    for name in (
        "tanh_matches_torch",
        "sigmoid_backward_matches_torch_autograd",
        "gelu_tanh_is_stable_at_1e4",
    ):
        assert checks[name].passed, (name, checks[name].message)
    # relu hung once: every later call of it is refused at once, recognition included
    hung = [c for c in checks.values() if c.kind == "timeout" and "not run" not in c.message]
    assert len(hung) == 1
    assert sum(c.seconds for c in checks.values() if c.kind == "timeout") < 5


def test_several_known_mistakes_are_named_together(tmp_path):
    known = {m.id: m for m in mutants.load(registry.phase(0))}
    first, second = known["relu_backward_passes_at_zero"], known["tanh_backward_uses_input"]
    path = tmp_path / "phase0_foundations.py"
    path.write_text(second.apply(first.apply(SOURCE0)))
    result = grade(registry.phase(0), path, exercises=["activations"], prerequisites=False)
    exercise = result.exercises[0]
    assert set(exercise.mistakes) == {first.why, second.why}
    assert first.why in exercise.mistake and second.why in exercise.mistake


def test_a_single_mutant_is_still_named_alone(tmp_path):
    mutant = {m.id: m for m in mutants.load(registry.phase(0))}["softmax_ignores_axis"]
    path = tmp_path / "phase0_foundations.py"
    path.write_text(mutant.apply(SOURCE0))
    result = grade(registry.phase(0), path, exercises=["softmax"], prerequisites=False)
    assert result.exercises[0].mistakes == [mutant.why]


def test_cross_phase_prerequisites_reach_the_terminal_table():
    phase = registry.phase(4)
    exercise = next(e for e in phase.exercises if e.requires)
    result = ExerciseResult(exercise, [], blocked_by=["attn_mha (phase 2)"])
    assert reason(result).startswith("fix first: attn_mha (phase 2)")
    console = Console(file=io.StringIO(), width=200, highlight=False)
    render_terminal(PhaseResult(phase, "x", [result], 0.0), console, details=False)
    assert "fix first: attn_mha (phase 2)" in console.file.getvalue()


def test_a_reductions_bug_found_by_an_engine_check_also_costs_reductions(tmp_path):
    source = (SOLUTION0.parent / "phase5_autograd.py").read_text()
    old = "        return (np.broadcast_to(g, self.x_shape),)\n"
    assert source.count(old) == 1
    path = tmp_path / "phase5_autograd.py"
    path.write_text(source.replace(old, "        return (2 * np.broadcast_to(g, self.x_shape),)\n"))
    for other in SOLUTION0.parent.glob("phase[0-4]*.py"):
        (tmp_path / other.name).write_text(other.read_text())
    result = grade(
        registry.phase(5),
        path,
        exercises=["ag_reductions", "ag_engine"],
        recognise=False,
        prerequisites=False,
    )
    reductions = next(e for e in result.exercises if e.exercise.id == "ag_reductions")
    charged = [c for c in reductions.checks if c.message.startswith("found by ag_engine's")]
    assert charged and "sum is wrong too" in charged[0].message


def _result(name: str, kind: str) -> CheckResult:
    def function(m):
        pass

    function.__name__ = name
    return CheckResult(CheckSpec("activations", "oracle", 1.0, False, None, function), kind, "x")


def test_a_mistake_is_shown_under_the_checks_it_explains_only():
    relu, tanh, gelu = (_result(n, "wrong") for n in ("relu_ok", "tanh_ok", "gelu_ok"))
    checks = [relu, tanh, gelu, _result("silu_ok", "passed")]
    exercise = ExerciseResult(registry.phase(0).exercise("activations"), checks)
    _attach_mistakes(
        exercise,
        [
            fingerprints.Recognised("RELU.", frozenset({"relu_ok", "silu_ok"})),
            fingerprints.Recognised("TANH.", frozenset({"tanh_ok", "gelu_ok"})),
            fingerprints.Recognised("UNPLACED.", frozenset({"renamed_check"})),
        ],
    )
    assert exercise.mistakes == ["RELU.", "TANH.", "UNPLACED."]  # the exercise names all
    assert relu.mistakes == ["RELU.", "UNPLACED."]
    assert tanh.mistakes == gelu.mistakes == ["TANH.", "UNPLACED."]
    assert checks[3].mistakes == []  # a passing check explains nothing
    tests = {
        t["name"].split(": ")[1]: t["output"]
        for t in gradescope(PhaseResult(registry.phase(0), "x", [exercise], 0.0))["tests"]
    }
    assert "RELU." in tests["relu ok"] and "RELU." not in tests["tanh ok"]
    console = Console(file=io.StringIO(), width=200, highlight=False)
    render_terminal(PhaseResult(registry.phase(0), "x", [exercise], 0.0), console)
    shown = console.file.getvalue()
    assert shown.count("RELU.") == 2 and shown.count("TANH.") == 3  # the table names all once


def test_two_recognised_mistakes_are_each_shown_under_their_own_failures(tmp_path):
    phase = registry.phase(0)
    known = {m.id: m for m in mutants.load(phase)}
    pair = known["relu_backward_passes_at_zero"], known["tanh_backward_uses_input"]
    path = tmp_path / "phase0_foundations.py"
    path.write_text(pair[1].apply(pair[0].apply(SOURCE0)))
    result = grade(phase, path, exercises=["activations"], prerequisites=False)
    failing = result.exercises[0].failures
    recorded = fingerprints.load(phase, "activations")[fingerprints.CHECKS]
    shown = []
    for mutant in pair:
        under = {c.spec.name for c in failing if mutant.why in c.mistakes}
        assert under == {c.spec.name for c in failing} & set(map(str, recorded[mutant.id]))
        shown.append(under)
    assert shown[0] and shown[1] and not shown[0] & shown[1]  # relu's checks, tanh's checks
