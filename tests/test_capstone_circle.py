"""`make train TASK=circle`: the phase-0 capstone writes its plots and summary and learns."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_circle_capstone_on_the_reference(tmp_path):
    run = subprocess.run([sys.executable, "-m", "grader", "train", "--task", "circle",
                          "--solution", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["reached_target"] and summary["test_accuracy"] >= 0.93
    for name in ("boundary.png", "loss.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_circle_capstone_on_the_stub_says_what_is_missing(tmp_path):
    run = subprocess.run([sys.executable, "-m", "grader", "train", "--task", "circle",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1
    assert "not finished" in run.stdout and "Traceback" not in run.stdout + run.stderr
