"""Answers every call with a 14000×14000 float64 array (1.5 GiB): the judge must not take it in."""
import numpy as np


def relu(*args, **kwargs):
    return np.ones((14000, 14000))


softmax = log_softmax = sigmoid = tanh = gelu = silu = relu
