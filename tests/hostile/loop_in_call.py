"""Imports fine; relu never returns; everything else is unimplemented."""
import numpy as np


def relu(x):
    while True:
        x = np.maximum(x, 0)


def __getattr__(name):
    raise NotImplementedError(name)
