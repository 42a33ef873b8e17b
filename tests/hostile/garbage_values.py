"""Returns NaN, wrong shapes, wrong dtypes, strings, None and huge arrays."""
import numpy as np


def relu(x):
    return np.full_like(x, np.nan)


def relu_backward(x, dout):
    return np.zeros(np.shape(x) + (1,))


def sigmoid(x):
    return np.asarray(x).astype(np.float16)


def softmax(x, axis=-1):
    return "softmax"


def log_softmax(x, axis=-1):
    return None


def mse_loss(X, y, w, b):
    return np.array([object()]), None


def tanh(x):
    return np.zeros((4_000, 4_000))


class Linear:
    def __init__(self, *a, **k):
        self.weight = {1, 2, 3}
