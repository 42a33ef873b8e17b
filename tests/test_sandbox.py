"""The worker sees only its submission (issue 9 §1): what a sandboxed worker can read, write
and reach, for every isolation method that works on this machine; and how the choice is made
and reported."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader import sandbox
from grader.registry import phase as phase_by_number
from grader.runner import grade
from grader.session import Session, Submission
from grader.submission import prepare

ROOT = Path(__file__).resolve().parent.parent
SOLUTION0 = ROOT / "solutions" / "phase0_foundations.py"
WORKING = [m for m in ("bwrap", "unshare", "uid") if sandbox.works(m)]

PROBE = """
import os
import socket


def can_read(path):
    try:
        with open(path, "rb") as fh:
            fh.read(1)
        return True
    except OSError:
        return False


def can_list(path):
    try:
        os.listdir(path)
        return True
    except OSError:
        return False


def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def can_write(path):
    try:
        with open(path, "a"):
            pass
        return True
    except OSError:
        return False


def can_connect(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def relu(x):
    return x
"""


@pytest.fixture(scope="module", params=WORKING or ["skip"])
def worker(request, tmp_path_factory):
    if request.param == "skip":
        pytest.skip("no isolation method works on this system")
    folder = tmp_path_factory.mktemp(f"probe-{request.param}")
    (folder / "phase0_foundations.py").write_text(PROBE)
    directory, _ = prepare(phase_by_number(0), folder / "phase0_foundations.py")
    session = Session(
        Submission(directory, "phase0_foundations"), None, sandbox.Isolation(request.param)
    )
    module = session.module()
    yield request.param, session, module
    session.close()


def _numpy_init() -> str:
    import numpy

    return numpy.__file__


def test_the_worker_cannot_read_the_course(worker):
    method, session, m = worker
    for secret in (
        SOLUTION0,
        ROOT / "grader" / "tests" / "phase0" / "__init__.py",
        ROOT / "grader" / "mutants" / "phase0" / "mutants.toml",
        ROOT / "tests" / "conftest.py",
    ):
        assert m.can_read(str(secret)) is False, f"{method}: {secret} is readable"
    assert m.can_list(str(ROOT / "solutions")) is False


def test_the_worker_cannot_read_home_or_other_submissions(worker, tmp_path):
    method, session, m = worker
    other = tmp_path / "other_submission.py"
    other.write_text("answer = 42\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(other, 0o644)
    assert m.can_read(str(other)) is False  # world-readable, outside the sandbox
    home = Path.home()
    for entry in m.listing(str(home)):  # only the way to the Python installation, if it is there
        assert any(p.startswith(str(home / entry)) for p in sandbox.readable()), entry


def test_the_worker_can_read_python_and_its_own_directory(worker):
    method, session, m = worker
    assert m.can_read(_numpy_init()) is True
    assert m.can_read(str(session.workdir / "submission" / "phase0_foundations.py")) is True
    assert np.array_equal(m.relu(np.arange(3.0)), np.arange(3.0))


def test_the_worker_writes_only_its_own_directory(worker):
    method, session, m = worker
    assert m.can_write(str(session.workdir / "scratch.txt")) is True
    assert m.can_write(_numpy_init()) is False
    assert m.can_write(str(Path(_numpy_init()).parent.parent / "zz.pth")) is False
    assert m.can_write(str(ROOT / "grader" / "runner.py")) is False
    assert m.can_write(str(ROOT / "new_file.py")) is False
    assert not (ROOT / "new_file.py").exists()


def test_the_worker_has_no_network_except_under_the_uid_fallback(worker):
    """The namespaced methods cut the worker off the network; the uid fallback does not, as
    grader/sandbox.py documents (it shares the host's network): this holds both statements."""
    method, session, m = worker
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        if method == "uid":
            assert m.can_connect("127.0.0.1", port) is True
            listener.accept()[0].close()  # the worker's connection reached the host's loopback
            return
        assert m.can_connect("127.0.0.1", port) is False
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing from the worker arrived at the host's loopback
    finally:
        listener.close()


def test_the_worker_cannot_see_the_judge(worker):
    method, session, m = worker
    # under uid the pid namespace is shared, but another uid may not follow a root process's
    # /proc links or read its environment
    assert m.can_read(f"/proc/{os.getpid()}/cwd/grader/runner.py") is False
    assert m.can_read(f"/proc/{os.getpid()}/environ") is False


# ---------------------------------------------------------------- choosing and reporting


def test_methods_are_tried_strongest_first(monkeypatch):
    monkeypatch.delenv("GRADSCHOOL_SANDBOX", raising=False)
    chosen = sandbox.choose()
    assert chosen.method == next(m for m in sandbox.METHODS if sandbox.works(m))
    if sys.platform == "linux" and sandbox.works("unshare"):
        assert chosen.sandboxed


def test_an_unknown_forced_method_is_an_error(monkeypatch):
    monkeypatch.setenv("GRADSCHOOL_SANDBOX", "chroot")
    with pytest.raises(ValueError, match="GRADSCHOOL_SANDBOX"):
        sandbox.choose()


def test_require_sandbox_refuses_to_grade_unsandboxed(monkeypatch):
    monkeypatch.setenv("GRADSCHOOL_SANDBOX", "none")
    with pytest.raises(sandbox.SandboxUnavailable):
        sandbox.choose(require=True)
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--phase", "0", "--require-sandbox"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "GRADSCHOOL_SANDBOX": "none"},
    )
    assert done.returncode == 2 and "--require-sandbox" in done.stdout


def test_without_a_sandbox_one_warning_is_printed(monkeypatch, capsys):
    monkeypatch.delenv("GRADSCHOOL_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox, "_WARNED", False)
    monkeypatch.setattr(sandbox, "works", lambda method: method == "none")
    assert sandbox.choose().method == "none"
    assert sandbox.choose().method == "none"
    assert capsys.readouterr().err.count("warning: the grader's worker is not sandboxed") == 1


@pytest.mark.parametrize("method", [*WORKING, "none"])
def test_the_report_says_which_isolation_was_used(method, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADSCHOOL_SANDBOX", method)
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--phase", "0", "--file", str(SOLUTION0)]
        + ["--exercise", "activations", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "GRADSCHOOL_SANDBOX": method},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    label = sandbox.LABELS[method]
    assert f"worker isolation: {label}" in " ".join(done.stdout.split())
    results = json.loads(out.read_text())
    assert results["extra_data"]["isolation"] == label
    assert results["score"] == results["max_score"]  # the reference keeps full marks in it


def test_the_sandbox_command_hides_the_project_and_home():
    if not sandbox.works("unshare"):
        pytest.skip("unshare namespaces do not work here")
    readable = sandbox.readable()
    assert not any(str(ROOT) == p or str(ROOT).startswith(p + "/") for p in readable if p != "/")
    assert str(Path.home()) not in readable
    assert os.path.realpath(sys.prefix) in readable or any(
        os.path.realpath(sys.prefix).startswith(p + "/") for p in readable
    )


def test_enter_is_a_no_op_without_a_spec():
    code = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(ROOT / "grader")!r})
        import sandbox; sandbox.enter("not json"); sandbox.enter("[]"); print("still here")
        """
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "still here", done.stderr


def test_every_phase_module_grades_the_same_sandboxed_and_not(monkeypatch):
    """The sandbox changes what the worker can reach, never a score."""
    phase = phase_by_number(0)
    scores = {}
    for method in ("none", *WORKING[:1]):
        monkeypatch.setenv("GRADSCHOOL_SANDBOX", method)
        result = grade(phase, SOLUTION0, exercises=["softmax", "layernorm"])
        scores[method] = [(e.exercise.id, e.score) for e in result.exercises]
    assert len(set(map(tuple, scores.values()))) == 1, scores


# ---------------------------------------------------------------- the uid fallback's Python


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid fallback runs only as root")
def test_the_uid_fallback_grades_with_a_python_it_can_reach(monkeypatch, phase0):
    python, _ = sandbox.shadow_python()
    if sandbox.reachable(sys.base_prefix):
        assert python == sys.executable
    else:  # e.g. pyenv under /root (mode 700): a shadow outside it, and /root stays closed
        assert not python.startswith(str(Path.home()) + "/")
        assert sandbox.reachable(python)
        assert not Path.home().stat().st_mode & 0o001
    monkeypatch.setenv("GRADSCHOOL_SANDBOX", "uid")
    result = grade(phase0, SOLUTION0, exercises=["softmax"])
    assert result.isolation == sandbox.LABELS["uid"]
    assert result.score == result.max_score


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder away")
def test_a_shadow_python_is_never_built_where_another_user_could_write(tmp_path):
    planted = tmp_path / "planted"
    planted.mkdir()
    os.chown(planted, sandbox.UNPRIVILEGED, sandbox.UNPRIVILEGED)
    with pytest.raises(OSError, match="not root's alone"):
        sandbox._root_folder(planted / "shadows")
