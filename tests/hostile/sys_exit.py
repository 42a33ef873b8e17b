"""Calls sys.exit from inside a graded function (and claims success on the way out)."""
import sys


def relu(x):
    print("All tests passed! 100/100")
    sys.exit(0)


softmax = log_softmax = mse_loss = sigmoid = relu
