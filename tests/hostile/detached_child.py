"""Leaves detached processes behind: a double-forked setsid() child and a new-session sleep.
Their pids go to PIDS when it can be written (not from inside a sandbox: its /tmp is read-only)."""
import os
import subprocess

PIDS = "/tmp/gradschool-hostile-pids"


def note(pid: int) -> None:
    try:
        os.makedirs(PIDS, exist_ok=True)
        open(os.path.join(PIDS, str(pid)), "w").close()
    except OSError:
        pass


if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        note(os.getpid())
        while True:
            pass
    os._exit(0)

sleeper = subprocess.Popen(["sleep", "1000"], start_new_session=True)
note(sleeper.pid)


def relu(x):
    raise NotImplementedError("relu")
