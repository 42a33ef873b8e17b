"""What the reports say about a failing check: the student's printed output (its tail, and the
output limit named when it is hit), Markdown's got/expected table, and JUnit's failure, error
and skipped cases with their times."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from conftest import SOLUTION0
from rich.console import Console

from grader import registry
from grader.report import render_terminal, write_junit, write_markdown
from grader.runner import grade
from grader.session import Limits

EDITS = {  # relu prints and is wrong; relu_backward raises; tanh floods; softmax is a stub
    "    return np.maximum(x, 0)\n": "    for i in range(30):\n        print('relu line', i)\n"
    "    return np.maximum(x, 0.1)\n",
    "    return dout * (x > 0)\n": "    raise ValueError('boom')\n",
    "    return np.tanh(x)\n": "    while True:\n        print('flood' * 20)\n",
    "    e = np.exp(x - x.max(axis=axis, keepdims=True))\n": "    raise NotImplementedError\n",
}
OUTPUT_LIMIT = 1 << 20  # 1 MiB: a flood reaches it in a moment


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    source = SOLUTION0.read_text()
    for old, new in EDITS.items():
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    path = tmp_path_factory.mktemp("output") / "phase0_foundations.py"
    path.write_text(source)
    return grade(
        registry.phase(0), path, exercises=["activations", "softmax"],
        limits=Limits(output_bytes=OUTPUT_LIMIT),
    )  # fmt: skip


def _check(result, name):
    return next(c for e in result.exercises for c in e.checks if c.spec.name == name)


def _failing(result, function: str):
    return [c for e in result.exercises for c in e.failures if function in c.message]


def test_a_failing_check_shows_the_tail_of_what_the_code_printed(result):
    relu = [c for c in _failing(result, "relu(") if c.kind == "wrong"]
    assert relu
    lines = relu[0].output.splitlines()
    assert lines[-1] == "relu line 29" and len(lines) <= 20  # the tail, not all 30 lines
    assert all(not c.output for e in result.exercises for c in e.checks if c.passed)


def test_hitting_the_output_limit_names_it(result):
    flooded = [c for c in _failing(result, "tanh") if "limit" in c.message]
    assert flooded, [c.message for e in result.exercises for c in e.failures]
    message = flooded[0].message
    assert "1 MiB" in message and "File too large" not in message
    assert flooded[0].hint and "Print less" in flooded[0].hint


def test_the_terminal_report_shows_the_printed_tail(result):
    console = Console(record=True, width=120)
    render_terminal(result, console)
    text = console.export_text()
    assert "your code printed (the end):" in text and "| relu line 29" in text


def test_markdown_has_got_and_expected_and_the_output(result, tmp_path):
    path = tmp_path / "r.md"
    write_markdown(result, path)
    text = path.read_text()
    assert "| index | got | expected |" in text
    assert "| [0] | 0.1 | 0 |" in text  # relu(−7.5): got 0.1, expected 0
    assert "Your code printed (the end):" in text and "relu line 29" in text


def test_junit_tells_failures_errors_and_skipped_apart(result, tmp_path):
    path = tmp_path / "r.xml"
    write_junit(result, path)
    root = ET.parse(path).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    activations, softmax = suites["activations"], suites["softmax"]
    for suite in suites.values():
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        for kind in ("failures", "errors", "skipped"):
            tag = {"failures": "failure", "errors": "error", "skipped": "skipped"}[kind]
            assert int(suite.get(kind)) == sum(c.find(tag) is not None for c in cases)
        assert float(suite.get("time")) >= 0 and all(c.get("time") for c in cases)
    assert int(activations.get("failures")) > 0 and int(activations.get("errors")) > 0
    assert int(softmax.get("skipped")) >= 1  # softmax's checks: a stub is skipped, not failed
    error = activations.find("testcase/error")
    assert "ValueError" in error.text and error.get("type") == "error"
    out = [c.find("system-out") for c in activations.findall("testcase")]
    assert any(o is not None and "relu line 29" in o.text for o in out)
