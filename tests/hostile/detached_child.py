"""Leaves detached processes behind: a double-forked setsid() child and a new-session sleep."""
import os
import subprocess

PIDS = "/tmp/gradschool-hostile-pids"
os.makedirs(PIDS, exist_ok=True)

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(os.path.join(PIDS, str(os.getpid())), "w").close()
        while True:
            pass
    os._exit(0)

sleeper = subprocess.Popen(["sleep", "1000"], start_new_session=True)
open(os.path.join(PIDS, str(sleeper.pid)), "w").close()


def relu(x):
    raise NotImplementedError("relu")
