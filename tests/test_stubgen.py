"""Stub generation (SPEC §3): deterministic, idempotent, importable at every level, no leaks."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from grader import registry, stubgen
from tests.conftest import ROOT

PHASES = [p for p in registry.phases().values() if (stubgen.SOLUTIONS / p.filename).exists()]
TRIVIAL = {
    "",
    "return",
    "pass",
    ")",
    "]",
    "}",
    "else:",
    "try:",
    "return self",
    "return []",
    "# END SOLUTION",
}


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
@pytest.mark.parametrize("level", stubgen.LEVELS)
def test_stub_is_deterministic_and_imports(phase, level, tmp_path):
    first, second = stubgen.stub_for(phase, level), stubgen.stub_for(phase, level)
    assert first == second
    path = tmp_path / phase.filename
    path.write_text(first)
    package = tmp_path / "pkg"
    package.mkdir()
    for other in stubgen.SOLUTIONS.glob("phase*.py"):
        (package / other.name).write_text(other.read_text())
    (package / "__init__.py").write_text("")
    (package / phase.filename).write_text(first)
    run = subprocess.run(
        [sys.executable, "-c", f"import pkg.{phase.module}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
def test_committed_stub_is_current(phase):
    assert (ROOT / "exercises" / phase.filename).read_text() == stubgen.stub_for(phase)


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.module)
def test_no_solution_line_leaks_into_the_standard_stub(phase):
    source = (stubgen.SOLUTIONS / phase.filename).read_text()
    lines = source.splitlines()
    hidden = set()
    for region in stubgen.find_regions(lines):
        if "standard" in stubgen.BLANKED_AT[region.kind]:
            hidden |= {
                ln.strip()
                for ln in lines[region.begin + 1 : region.end]
                if not stubgen.HINT.match(ln)
            }
    shown = {ln.strip() for ln in stubgen.stub_for(phase).splitlines()}
    visible_elsewhere = {ln.strip() for ln in _shown_at_standard(lines)}
    leaked = sorted((hidden & shown) - visible_elsewhere - TRIVIAL)
    assert leaked == []


def _shown_at_standard(lines):
    """Lines outside every region or inside regions the standard level keeps."""
    hidden = set()
    for region in stubgen.find_regions(lines):
        if "standard" in stubgen.BLANKED_AT[region.kind]:
            hidden |= set(range(region.begin, region.end + 1))
    return [ln for i, ln in enumerate(lines) if i not in hidden]


# Phases whose hard stub may still show code (strict: a listed phase that passes fails). None:
# level hard now blanks every function body, given helpers included (issue 13).
HARD_LEVEL_GAPS: set[str] = set()


@pytest.mark.parametrize(
    "phase",
    [
        pytest.param(
            p,
            marks=pytest.mark.xfail(
                strict=True, reason="given helpers not yet blanked at level hard (issue 13)"
            ),
        )
        if p.module in HARD_LEVEL_GAPS
        else p
        for p in PHASES
    ],
    ids=lambda p: p.module,
)
def test_hard_stub_is_interface_only(phase):
    """At level hard every function body is its docstring plus a raise."""
    tree = ast.parse(stubgen.stub_for(phase, "hard"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            body = [
                s
                for s in node.body
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
            ]
            assert len(body) == 1 and isinstance(body[0], ast.Raise), node.name


def test_markers_are_validated(phase0):
    with pytest.raises(stubgen.StubError, match="never closed"):
        stubgen.generate("def f():\n    # BEGIN SOLUTION\n    return 1\n", phase0)
    with pytest.raises(stubgen.StubError, match="without a BEGIN"):
        stubgen.generate("def f():\n    return 1\n    # END SOLUTION\n", phase0)
    with pytest.raises(stubgen.StubError, match="inside a function"):
        stubgen.generate("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", phase0)


def test_levels_blank_what_they_promise(phase0):
    source = (
        "def relu(x):\n"
        '    """ReLU."""\n'
        "    # BEGIN SOLUTION hard\n    scaffold = 1\n    # END SOLUTION\n"
        "    # BEGIN SOLUTION guided-keep\n    guided = 2\n    # END SOLUTION\n"
        "    # BEGIN SOLUTION\n    # HINT: max(x, 0)\n    secret = 3\n    # END SOLUTION\n"
    )
    guided, standard, hard = (stubgen.generate(source, phase0, lvl) for lvl in stubgen.LEVELS)
    assert "scaffold" in guided and "guided" in guided and "secret" not in guided
    assert "scaffold" in standard and "guided = 2" not in standard and "secret" not in standard
    assert "scaffold" not in hard and "HINT" not in hard  # interface only
    assert 'raise NotImplementedError("activations: relu: ReLU.")' in standard
    assert stubgen.generate(source, phase0) == standard  # default level is standard


def test_guided_keeps_structure_and_blanks_the_formula(phase0):
    source = (
        "def total(xs):\n"
        '    """Sum."""\n'
        "    # BEGIN SOLUTION\n"
        "    # KEEP guided\n    acc = 0\n    for x in xs:\n    # END KEEP\n"
        "        # HINT: add x\n        acc = acc + x\n"
        "    # KEEP guided\n    checked = acc\n    # END KEEP\n"
        "    return checked\n"
        "    # END SOLUTION\n"
    )
    guided = stubgen.generate(source, phase0, "guided")
    raise_ = 'raise NotImplementedError("helper: total: Sum.")'
    assert (
        f"    for x in xs:\n        # HINT: add x\n        {raise_}\n    checked = acc\n" in guided
    )
    assert guided.endswith(f"    {raise_}\n") and "acc + x" not in guided
    assert "KEEP" not in guided and "return checked" not in guided
    standard = stubgen.generate(source, phase0)
    assert "acc = 0" not in standard and "KEEP" not in standard and standard.count(raise_) == 1
    assert stubgen.without_level_markers(source).count("\n") == source.count("\n") - 4


def test_keep_markers_are_validated(phase0):
    def region(body: str) -> str:
        return f'def f():\n    """F."""\n    # BEGIN SOLUTION\n{body}    # END SOLUTION\n'

    with pytest.raises(stubgen.StubError, match="never closed"):
        stubgen.generate(region("    # KEEP guided\n    x = 1\n    return x\n"), phase0)
    with pytest.raises(stubgen.StubError, match="without a KEEP"):
        stubgen.generate(region("    x = 1\n    # END KEEP\n    return x\n"), phase0)
    with pytest.raises(stubgen.StubError, match="belong in"):
        stubgen.generate("def f():\n    # KEEP guided\n    # END KEEP\n    return 1\n", phase0)
    only_nested = region(
        "    # KEEP guided\n    for i in range(3):\n    # END KEEP\n        print(i)\n"
        "    # KEEP guided\n    return 1\n    # END KEEP\n"
    )
    with pytest.raises(stubgen.StubError, match="its own indent"):
        stubgen.generate(only_nested, phase0, "guided")
