"""Raises KeyboardInterrupt from graded functions (and BaseException subclasses)."""


def relu(x):
    raise KeyboardInterrupt


class Escape(BaseException):
    pass


def softmax(x, axis=-1):
    raise Escape("out of here")


def mse_loss(X, y, w, b):
    raise GeneratorExit
