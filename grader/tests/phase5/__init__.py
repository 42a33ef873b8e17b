"""Phase 5 — an autograd engine in NumPy: the graded checks.

Ops are graded alone through their Function classes (_helpers.py), then the engine on random
expression graphs against torch autograd, then the nn pieces and two trainings (held-out labels
stay in the judge; training runs in the worker through grader/probes/phase5.py).
"""
