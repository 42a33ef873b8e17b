"""gradschool datasets: seeded synthetic generators (numpy only) and, later, cached loaders.

Plotting lives in ``datasets.plots`` (it imports matplotlib, so it is not imported here).
"""

from .synthetic import (
    GENERATORS,
    circle,
    eight_gaussians,
    make_classification_split,
    moons,
    spirals,
    square,
    swiss_roll,
    triangle,
)

__all__ = [
    "GENERATORS",
    "circle",
    "eight_gaussians",
    "make_classification_split",
    "moons",
    "spirals",
    "square",
    "swiss_roll",
    "triangle",
]
