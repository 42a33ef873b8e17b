"""The grader's own budget (issue 14): one memory budget split between judge and worker, reply
caps checked before a payload is read, a memory watchdog, and deadlines that end a check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader.registry import phase as phase_by_number
from grader.runner import grade
from grader.session import (
    DEFAULT_MEMORY,
    Budget,
    Limits,
    MiB,
    Session,
    StudentError,
    Submission,
    WorkerCrashed,
    jobs_for,
    parse_memory,
    reply_limit,
)
from grader.submission import prepare

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).parent / "hostile"
SOLUTION0 = ROOT / "solutions" / "phase0_foundations.py"


def test_the_default_budget_fits_gradescope_and_is_split_explicitly():
    budget = Budget()
    assert budget.total == DEFAULT_MEMORY == 768 * MiB
    assert budget.judge + budget.worker == budget.total
    assert budget.worker >= 300 * MiB  # a torch worker peaks at ~270 MiB on the references
    assert Limits().memory_bytes == budget.worker
    assert budget.limits().memory_bytes == budget.worker
    assert Limits().address_space_bytes > budget.worker  # RLIMIT_AS is only the backstop


@pytest.mark.parametrize(
    "text, expected",
    [
        ("768M", 768 * MiB),
        ("2G", 2 << 30),
        ("1.5g", 3 << 29),
        ("512MiB", 512 * MiB),
        ("4096", 4096),
    ],
)
def test_memory_sizes_parse(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "", "12X"])
def test_unreadable_memory_sizes_are_refused(text):
    with pytest.raises(ValueError, match="--memory"):
        parse_memory(text)


def test_a_budget_too_small_for_the_worker_says_what_to_give():
    with pytest.raises(ValueError, match="at least"):
        Budget(Budget().judge + 100 * MiB)  # less than the worker's minimum
    assert Budget(2 << 30).worker == (2 << 30) - Budget().judge


def test_jobs_follow_from_the_budget_memory_and_cpus():
    budget = Budget()
    assert jobs_for(budget, available=4 * budget.total, cpus=8) == 4
    assert jobs_for(budget, available=4 * budget.total, cpus=2) == 2
    assert jobs_for(budget, available=budget.total // 2, cpus=8) == 1  # always at least one
    assert jobs_for(Budget(2 << 30), available=5 << 30, cpus=8) == 2
    assert jobs_for(budget) >= 1


def test_the_cli_refuses_a_budget_it_cannot_split(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--phase", "0", "--memory", "300M"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "--memory" in done.stdout


# ---------------------------------------------------------------- reply caps


def _session(tmp_path, source: str, limits: Limits | None = None) -> Session:
    target = tmp_path / "phase0_foundations.py"
    target.write_text(textwrap.dedent(source))
    directory, _ = prepare(phase_by_number(0), target)
    return Session(Submission(directory, "phase0_foundations"), limits)


BIG = """
import numpy as np

def relu(x):
    return np.zeros((2000, 2000))  # 32 MB: twice the smallest cap

def small(x):
    return np.zeros((100, 100))  # 80 KB

def same(x):
    return x
"""

LYING_WORKER = """
import sys
import numpy as np

protocol = sys.modules["_gradschool_worker.protocol"]
honest = protocol.frame
protocol.frame = lambda header, buffers: (honest(header, buffers)[0], 0)  # "it is small"

def relu(x):
    return np.zeros((2000, 2000))
"""


def test_an_oversized_reply_fails_the_call_and_keeps_the_worker(tmp_path):
    with _session(tmp_path, BIG) as session:
        m = session.module()
        with pytest.raises(StudentError) as raised:
            m.relu(np.zeros((3, 4)))
        assert raised.value.oversized
        message = raised.value.message
        assert "your relu returned an array of shape (2000, 2000) float64" in message
        assert "(3, 4)" in message and "16 MiB" in message
        pid = session.process.pid
        assert np.array_equal(m.same(np.ones(3)), np.ones(3))  # the same worker answers on
        assert session.process.pid == pid


def test_a_worker_that_ignores_the_cap_is_refused_from_the_reply_sizes(tmp_path):
    with _session(tmp_path, LYING_WORKER) as session:
        m = session.module()
        with pytest.raises(StudentError) as raised:
            m.relu(np.zeros((3, 4)))
        assert raised.value.oversized
        assert "shape (2000, 2000)" in raised.value.message
        assert session.process is None  # killed with its payload unread; respawned on demand
        with pytest.raises(StudentError):
            m.relu(np.zeros((3, 4)))


def test_a_check_can_state_the_reply_it_expects(tmp_path):
    with _session(tmp_path, BIG) as session:
        m = session.module()
        assert m.small(np.zeros(2)).shape == (100, 100)  # within the derived cap
        with reply_limit(m, like=np.zeros((3, 4))):
            with pytest.raises(StudentError) as raised:
                m.small(np.zeros(2))
        assert "returned an array of shape (100, 100) float64" in raised.value.message
        assert "expected (3, 4)" in raised.value.message
        assert m.small(np.zeros(2)).shape == (100, 100)  # the limit ended with the block


def test_the_derived_cap_grows_with_the_inputs(tmp_path):
    with _session(tmp_path, BIG) as session:
        m = session.module()
        x = np.zeros((600, 1000))  # 4.8 MB in: 32 × that passes the ceiling (24 MiB)
        assert m.same(x).shape == x.shape


def test_an_oversized_reply_ends_its_check_and_nothing_else(tmp_path):
    """Every later call of the check would only ask again: it fails at once."""
    with _session(tmp_path, BIG) as session:
        m = session.module()
        session.begin_check(30)
        with pytest.raises(StudentError):
            m.relu(np.zeros(2))
        sent = session.calls
        with pytest.raises(StudentError):
            m.same(np.zeros(2))
        assert session.calls == sent  # refused in the judge, never sent
        session.end_check()
        assert np.array_equal(m.same(np.ones(2)), np.ones(2))


# ---------------------------------------------------------------- memory and time

GROWING = """
import time
import numpy as np

KEPT = []

def relu(x):
    while True:  # 16 MiB more every few ms: the watchdog, not RLIMIT_AS, must stop it
        KEPT.append(np.ones(2 << 20))
        time.sleep(0.005)

def same(x):
    return x
"""


def test_the_watchdog_stops_a_worker_past_its_resident_limit(tmp_path):
    limits = Limits(memory_bytes=200 * MiB, call_seconds=60)
    with _session(tmp_path, GROWING, limits) as session:
        m = session.module()
        with pytest.raises(WorkerCrashed, match="of memory") as raised:
            m.relu(np.zeros(2))
        assert "200 MiB" in str(raised.value)
        assert 200 * MiB < session.peak_memory < 200 * MiB + 200 * MiB
        assert np.array_equal(m.same(np.ones(2)), np.ones(2))  # a fresh worker


SLOW_RELU = """
import time

def relu(x):
    time.sleep(1000)

def relu_backward(x, dout):
    time.sleep(1000)
"""


def test_a_slow_check_ends_at_its_deadline_and_the_phase_goes_on(tmp_path):
    target = tmp_path / "phase0_foundations.py"
    target.write_text(SOLUTION0.read_text() + textwrap.dedent(SLOW_RELU))
    limits = Limits(call_seconds=2, check_seconds=3)
    result = grade(phase_by_number(0), target, exercises=["activations", "softmax"], limits=limits)
    activations, softmax = result.exercises
    assert activations.score < activations.max_score
    assert {c.kind for c in activations.checks if not c.passed} == {"timeout"}
    assert softmax.status == "passed"


# ---------------------------------------------------------------- the hostile case of issue 14

MEASURE = """
import json, resource, sys, time
from pathlib import Path
from grader import registry
from grader.runner import grade
from grader.session import Session
peaks = [0]  # the worker tree's peak resident set, as each session measured it at close
close = Session.close
def recording_close(self):
    close(self)
    peaks.append(self.peak_memory)
Session.close = recording_close
started = time.monotonic()
result = grade(registry.phase(0), Path(sys.argv[1]))
print(json.dumps({
    "score": result.score,
    "seconds": time.monotonic() - started,
    "judge": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "worker": max(peaks),
    "messages": sorted({c.message for e in result.exercises for c in e.checks}),
}))
"""


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
def test_big_replies_grade_to_zero_within_the_budget_under_a_hard_limit(tmp_path):
    """Every process of the run is under a hard address-space limit (prlimit, inherited by the
    worker); the judge's and the worker's peak resident sets add up to less than the default
    budget. The time is printed, not asserted (issue 14: under 20 s on an idle machine)."""
    target = tmp_path / "phase0_foundations.py"
    shutil.copyfile(HOSTILE / "big_reply.py", target)
    hard = 1536 * MiB  # per process: the judge imports torch (VmPeak ≈ 950 MiB)
    done = subprocess.run(
        ["prlimit", f"--as={hard}", sys.executable, "-c", MEASURE, str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["score"] == 0
    assert any("1.46 GiB" in m or "(14000, 14000)" in m for m in measured["messages"])
    total = measured["judge"] + measured["worker"]
    print(
        f"\nbig replies: {measured['seconds']:.1f} s, judge {measured['judge'] / MiB:.0f} MiB + "
        f"worker {measured['worker'] / MiB:.0f} MiB = {total / MiB:.0f} MiB "
        f"(load {os.getloadavg()[0]:.1f})"
    )
    assert total <= Budget().total


def test_a_course_sets_its_own_budget_through_the_environment():
    code = "from grader.session import Budget, Limits; print(Budget().total, Limits().memory_bytes)"
    env = {**os.environ, "GRADSCHOOL_MEMORY": "1G"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    total, worker = map(int, out.stdout.split())
    assert total == 1 << 30
    assert worker == (1 << 30) - Budget().judge
