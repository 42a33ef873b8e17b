"""Trusted code run in the worker next to the student's phase-4 blocks (the general torch
probes — load_state, run, vjp — are phase 2's). Returns tensors and dicts of them only."""

from __future__ import annotations


def parameters(module) -> dict:
    """{name: detached copy} of module.named_parameters() (None-valued ones are absent)."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}
