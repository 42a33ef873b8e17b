"""`make train TASK=ddpm-2d` end to end, tiny: the reference solution trains on the three
datasets, writes its plots and summary.json with the energy-distance ratios; an unfinished stub
fails with a clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grader import cli
from grader.capstones import ddpm_2d


@pytest.fixture
def tiny(monkeypatch):
    for key, value in {"T": 60, "hidden_dim": 16, "num_layers": 1, "time_dim": 8, "steps": 40,
                       "batch_size": 64, "warmup_steps": 5, "n_train": 500, "n_eval": 200,
                       "ddim_steps": 6}.items():
        monkeypatch.setitem(ddpm_2d.CONFIG, key, value)
    monkeypatch.setattr(ddpm_2d, "FRAMES", (59, 30, 10))


def test_the_reference_run_writes_plots_and_a_summary(tiny, tmp_path):
    summary = ddpm_2d.run(solution=True, out=tmp_path)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert set(written["datasets"]) == {"swiss-roll", "moons", "eight-gaussians"}
    for name, result in written["datasets"].items():
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        distances = result["energy_distance"]
        assert distances["data"] > 0 and result["ratio_ddpm"] == pytest.approx(
            distances["ddpm"] / distances["data"])
        assert np.isfinite([distances["ddpm"], distances["ddim"]]).all()
    assert (tmp_path / "losses.png").stat().st_size > 0
    assert written["target_ratio"] == ddpm_2d.TARGET_RATIO
    assert written["reached_target"] == summary["reached_target"]


def test_energy_distance_is_zero_for_equal_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 2))
    assert ddpm_2d.energy_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    near, far = (ddpm_2d.energy_distance(a, a + shift) for shift in (0.1, 1.0))
    assert 0 < near < far
    # far apart, E² ≈ 2‖δ‖ − 2·E‖X − X'‖, and E‖X − X'‖ = √π for 2-D standard normals
    shift = 10 * np.sqrt(2)
    assert ddpm_2d.energy_distance(a, a + 10.0) == pytest.approx(2 * shift - 2 * np.sqrt(np.pi),
                                                                 rel=0.03)


def test_the_cli_explains_an_unfinished_exercise(tiny, tmp_path, capsys):
    code = cli.main(["train", "--task", "ddpm-2d", "--out", str(tmp_path)])
    assert code == 1
    assert "not finished" in capsys.readouterr().out
