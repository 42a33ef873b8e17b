"""The three stub levels differ, measurably, in every phase (issue 13).

guided   formula-level blanks: keeps more of the solution's code than standard, never all of it;
standard algorithm-level blanks (the committed stubs);
hard     interface only: every function body is its docstring plus a raise, no hints.
The floors below are what the marked solutions give today less a margin: a phase that loses its
KEEP spans, or a generator change that lets the levels collapse, fails here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import pytest

from grader import registry, stubgen

PHASES = [p for p in registry.phases().values() if (stubgen.SOLUTIONS / p.filename).exists()]
# guided keeps at least this many more code lines in function bodies than standard, per phase
# (measured: 0: +24, 1: +46, 2: +25, 3: +63, 4: +14, 5: +41, 6: +235, 7: +44, 8: +18).
GUIDED_EXTRA_LINES = {0: 20, 1: 35, 2: 20, 3: 50, 4: 10, 5: 30, 6: 200, 7: 35, 8: 15}


@dataclass(frozen=True)
class Measure:
    code: int  # code lines inside function bodies, less docstrings and the raises
    hints: int  # `# HINT:` lines
    blanks: int  # raise NotImplementedError statements


def measure(stub: str) -> Measure:
    lines = stub.splitlines()
    tree = ast.parse(stub)
    body_lines: set[int] = set()
    blanks = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and "NotImplementedError" in ast.unparse(node):
            blanks += 1
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for statement in node.body:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                continue  # the docstring
            if isinstance(statement, ast.Raise) and "NotImplementedError" in ast.unparse(statement):
                continue
            body_lines |= set(range(statement.lineno, (statement.end_lineno or 0) + 1))
    code = sum(
        1
        for number in body_lines
        if lines[number - 1].strip()
        and not lines[number - 1].strip().startswith("#")
        and "NotImplementedError" not in lines[number - 1]
    )
    hints = sum(1 for line in lines if stubgen.HINT.match(line))
    return Measure(code, hints, blanks)


def measures(phase: registry.Phase) -> dict[str, Measure]:
    return {level: measure(stubgen.stub_for(phase, level)) for level in stubgen.LEVELS}


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
def test_guided_keeps_structure_standard_does_not(phase):
    levels = measures(phase)
    guided, standard = levels["guided"], levels["standard"]
    extra = GUIDED_EXTRA_LINES[phase.number]
    assert guided.code >= standard.code + extra, (guided, standard)
    assert guided.hints >= standard.hints  # guided hides no hint standard gives


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
def test_hard_is_interface_only(phase):
    hard, standard = measures(phase)["hard"], measures(phase)["standard"]
    assert hard.code == 0 and hard.hints == 0, hard
    assert standard.code > 0 and standard.hints > 0, standard


def table() -> str:
    """The levels in numbers, per phase (`python -m tests.test_stub_levels` prints it)."""
    rows = ["phase  code lines g/s/h   hints g/s/h   blanks g/s/h"]
    for phase in PHASES:
        m = measures(phase)
        g, s, h = m["guided"], m["standard"], m["hard"]
        rows.append(
            f"{phase.number:5}  {g.code:4}/{s.code:4}/{h.code:2}   "
            f"{g.hints:3}/{s.hints:3}/{h.hints}   {g.blanks:3}/{s.blanks:3}/{h.blanks}"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
