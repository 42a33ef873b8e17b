"""Shared pieces of the phase-6 GPT checks: building the student's GPT with a torch GPT's
weights, seeded tensors, and fingerprint guards."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed
from grader.session import StudentError, run_probe
from grader.tests.phase6._reference import random_gpt

F64 = torch.float64
NAMES_HINT = ("Name the parameters as the docstrings say: wte, wpe, h (a ModuleList of Blocks "
              "with ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.linear1, mlp.linear2), ln_f, and "
              "lm_head whose weight IS wte.weight (tied, so it is not a parameter of its own).")
SIZES = {"vocab_size": 23, "block_size": 12, "n_layer": 2, "n_head": 2, "n_embd": 16}


def randint(seed: int, high: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def randn(seed: int, *shape: int, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def student_gpt(m, **config):
    """The student's GPT(GPTConfig(**SIZES | config))."""
    return m.GPT(m.GPTConfig(**{**SIZES, **config}))


def copy_weights(m, student, reference: torch.nn.Module) -> None:
    """Load the torch GPT's parameters into the student's by name, or explain what did not fit."""
    state = {name: p.detach().clone() for name, p in reference.named_parameters()}
    report = run_probe(m, "phase6.load_state", student, state)
    problems = []
    if report["missing"]:
        problems.append(f"it has no parameter named {', '.join(report['missing'][:6])}")
    for name, shape in report["wrong_shape"].items():
        problems.append(f"its {name} has shape {tuple(shape)}, expected {tuple(state[name].shape)}")
    if report["extra"]:
        problems.append(f"it has parameters the torch GPT does not: "
                        f"{', '.join(report['extra'][:6])}")
    if problems:
        raise CheckFailed("cannot copy the weights of a torch GPT into yours: "
                          + "; ".join(problems) + ".", NAMES_HINT)


def paired_gpts(m, seed: int, dtype: torch.dtype = F64, **config):
    """(torch GPT with random weights, the student's GPT holding the same weights)."""
    sizes = {**SIZES, **config}
    reference = random_gpt(seed, dtype=dtype, **sizes)
    student = student_gpt(m, **config)
    copy_weights(m, student, reference)
    return reference, student


def safely(compute) -> np.ndarray:
    """A fingerprint output that survives a submission raising: NaN stands for "it raised"."""
    try:
        value = compute()
        if isinstance(value, torch.Tensor):
            value = value.detach().numpy()
        return np.asarray(value, dtype=np.float64)
    except (StudentError, CheckFailed):
        return np.array([np.nan])
