"""Tries to allocate far more memory than the grader allows (8 TiB in one go)."""
import numpy as np


def relu(x):
    return np.ones((1 << 20, 1 << 20))


softmax = sigmoid = relu
