"""Ignores SIGTERM and SIGINT, then hangs: only SIGKILL stops it."""
import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)


def relu(x):
    while True:
        pass


def __getattr__(name):
    raise NotImplementedError(name)
