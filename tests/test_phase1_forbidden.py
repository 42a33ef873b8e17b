"""Phase 1 forbids torch's recurrent modules and fused kernels: the static scan finds them under
any alias, and the worker's guard stops a call the scan cannot see, while torch itself (and
Tensor.split, which goes through torch._VF) keeps working."""

from __future__ import annotations

import pytest

from grader import registry
from grader.forbidden import scan
from grader.runner import grade
from tests.conftest import ROOT

SOLUTION = ROOT / "solutions" / "phase1_rnn.py"
FORWARD = "    def forward(self, x: Tensor, h_0=None):\n"


@pytest.fixture(scope="module")
def phase1() -> registry.Phase:
    return registry.phase(1)


@pytest.mark.parametrize("code, reached", [
    ("from torch import nn\nnn.LSTM(3, 4)", "torch.nn.LSTM"),
    ("import torch.nn as tnn\ntnn.modules.rnn.GRU", "torch.nn.modules.rnn"),
    ("import torch\ntorch._VF.lstm", "torch._VF"),
    ("from torch import _VF\n_VF.gru_cell", "torch._VF"),
    ("import torch\ntorch.ops.aten.lstm", "torch.ops"),
    ("import torch\ntorch.lstm_cell", "torch.lstm_cell"),
    ("import torch\ngetattr(torch, 'gru')", "getattr(…, 'gru')"),
    ("import torch\ntorch.autograd.grad", "torch.autograd.grad"),
])
def test_the_static_scan_finds_recurrent_shortcuts(phase1, code, reached):
    source = "def helper():\n" + "\n".join(f"    {line}" for line in code.splitlines()) + "\n"
    names = [v.name for v in scan(source, phase1)]
    assert names and all(name.startswith(reached) for name in names), names


def test_the_reference_solution_uses_nothing_forbidden(phase1):
    assert scan(SOLUTION.read_text(), phase1) == []


def test_a_hidden_nn_lstm_is_stopped_at_run_time(phase1, tmp_path):
    source = SOLUTION.read_text()
    assert source.count(FORWARD) == 1
    sneaky = source.replace(FORWARD, FORWARD + "        vars(nn)['LS' + 'TM'](1, 1)\n")
    path = tmp_path / "phase1_rnn.py"
    path.write_text(sneaky)
    result = grade(phase1, path, exercises=["multilayer_rnn", "rnn_cell"], recognise=False)
    by_id = {e.exercise.id: e for e in result.exercises}
    assert by_id["rnn_cell"].score == by_id["rnn_cell"].max_score  # torch still works elsewhere
    kinds = {c.kind for c in by_id["multilayer_rnn"].checks}
    assert kinds <= {"forbidden", "passed"} and "forbidden" in kinds
    assert by_id["multilayer_rnn"].score < by_id["multilayer_rnn"].max_score
