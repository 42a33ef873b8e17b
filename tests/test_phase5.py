"""Phase 5's oracles judged in-process against the reference engine, many more times than grading
draws them: a correct engine must never fail a random graph or a drawn op input (ties, kinks,
domains), and the 10⁴-op chain must fit under the worker's recursion limit."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings

from grader.checks.properties import SETTINGS
from grader.probes import phase5 as probes
from grader.session import Limits
from grader.tests.phase5 import arithmetic, elementwise, reductions, shape_ops, softmax
from grader.tests.phase5._helpers import assert_op_matches_torch
from grader.tests.phase5.engine import CHAIN, _chain_expected, compare_with_torch
from grader.tests.phase5.graphs import programs
from solutions import phase5_autograd as reference

SPECS = [spec for module in (arithmetic, reductions, shape_ops, elementwise, softmax)
         for spec in module.OPS]


@pytest.mark.slow
@settings(max_examples=150, **SETTINGS)
@given(programs())
def test_random_graphs_never_fail_the_reference(program):
    compare_with_torch(reference, program)  # fetch() passes plain objects through


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_drawn_op_inputs_never_fail_the_reference(spec):
    @settings(max_examples=50, **SETTINGS)
    @given(spec.cases)
    def holds(drawn):
        params, arrays = drawn
        assert_op_matches_torch(reference, spec, params, arrays)

    holds()


def test_the_deep_chain_fits_under_the_worker_recursion_limit():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(Limits().recursion_limit)
    try:
        x = np.array([0.5, -1.5, 3.0])
        y, grad = probes.deep_chain(reference, x, **CHAIN)
    finally:
        sys.setrecursionlimit(limit)
    expected_y, expected_grad = _chain_expected(x, **CHAIN)
    np.testing.assert_allclose(y, expected_y, rtol=1e-9)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9)
