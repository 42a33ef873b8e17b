"""Unbounded recursion, once with the default limit and once with the limit lifted."""
import sys


def relu(x):
    return relu(x)


def softmax(x, axis=-1):
    sys.setrecursionlimit(10**8)
    return softmax(x, axis)
