"""Dereferences a null pointer through ctypes: a real segmentation fault."""
import ctypes


def relu(x):
    return ctypes.string_at(0)


softmax = sigmoid = relu
