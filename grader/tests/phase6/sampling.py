"""6.3 sampling: top-k and top-p filters against their definitions computed in the judge,
temperature 0 as greedy, reproducible generators, and a χ² test of the sampled frequencies
against the filtered softmax (generate is graded with the KV cache, kv_cache.py)."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.session import run_probe
from grader.tests.phase6._helpers import randn, safely

# A correct sampler fails a χ² goodness-of-fit test at this level once in a million runs per
# configuration (the draws are seeded, so a given submission always gets the same verdict).
FALSE_ALARM = 1e-6
DRAWS = 20_000
TOP_P_HINT = ("Sort the probabilities in decreasing order and keep token i while the mass of "
              "the tokens before it is < p: the smallest set whose mass reaches p, so the most "
              "likely token always stays.")
TEMPERATURE_HINT = ("Divide the logits by the temperature before the softmax (and before the "
                    "filters); dividing the probabilities changes nothing after renormalising.")


def _filtered(m, logits, **kwargs) -> np.ndarray:
    out = run_probe(m, "phase6.filtered", m, logits, kwargs)
    if not out["unchanged"]:
        raise CheckFailed(f"filter_logits({', '.join(f'{k}={v}' for k, v in kwargs.items())}) "
                          "changed its input in place.",
                          "Use masked_fill (a new tensor), not masked_fill_ on the input.")
    return as_array(out["logits"], "the filtered logits")


def _top_k_keep(logits: torch.Tensor, k: int) -> np.ndarray:
    keep = torch.zeros_like(logits, dtype=torch.bool)
    keep.scatter_(-1, torch.topk(logits, min(k, logits.shape[-1])).indices, True)
    return keep.numpy()


def _top_p_keep(logits: np.ndarray, p: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """The definition: the smallest set of most likely tokens whose probability reaches p."""
    allowed = np.ones_like(logits, dtype=bool) if allowed is None else allowed
    keep = np.zeros_like(allowed)
    for row in range(logits.shape[0]):
        z = np.where(allowed[row], logits[row].astype(np.float64), -np.inf)
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")
        size = int(np.searchsorted(np.cumsum(probs[order]), p) + 1)
        keep[row, order[:min(size, allowed[row].sum())]] = True
    return keep


def _assert_kept(got: np.ndarray, logits: np.ndarray, keep: np.ndarray, what: str,
                 hint: str) -> None:
    kept = np.isfinite(got)
    if not np.array_equal(kept, keep):
        row = int(np.argwhere((kept != keep).any(axis=1))[0, 0])
        raise CheckFailed(f"{what}: row {row} keeps {int(kept[row].sum())} tokens "
                          f"{np.flatnonzero(kept[row]).tolist()}, expected "
                          f"{int(keep[row].sum())}: {np.flatnonzero(keep[row]).tolist()}.", hint)
    if np.any(got[~keep] != -np.inf):
        raise CheckFailed(f"{what}: removed tokens should have logit −inf.", hint)
    assert_close(got[keep], logits[keep], f"{what}: the kept logits",
                 hint="Keep the surviving logits exactly as they were.")


@check("gpt_sampling", "oracle")
def top_k_keeps_exactly_the_k_largest(m):
    """filter_logits(top_k=k) keeps exactly the k largest logits of each row (k = 1, 3, V−1, V
    and k > V), sets the rest to −inf, keeps the dtype and leaves its input alone."""
    for dtype in (torch.float64, torch.float32):
        logits = randn(1, 4, 20, dtype=dtype)
        for k in (1, 3, 19, 20, 50):
            got = _filtered(m, logits, top_k=k)
            if got.dtype != logits.numpy().dtype:
                raise CheckFailed(f"filter_logits turned {dtype} logits into {got.dtype}.",
                                  "Do not cast.")
            _assert_kept(got, logits.numpy(), _top_k_keep(logits, k), f"top_k={k}",
                         "torch.topk(logits, k).indices are the tokens to keep.")


@check("gpt_sampling", "oracle")
def top_p_keeps_the_smallest_set_with_mass_at_least_p(m):
    """filter_logits(top_p=p) keeps the smallest set of most likely tokens whose softmax mass
    is ≥ p (p = 0.05 … 0.999), and with top_k as well, top-k first and then top-p."""
    logits = randn(2, 6, 16) * 2
    for p in (0.05, 0.3, 0.75, 0.95, 0.999):
        _assert_kept(_filtered(m, logits, top_p=p), logits.numpy(),
                     _top_p_keep(logits.numpy(), p), f"top_p={p}", TOP_P_HINT)
    allowed = _top_k_keep(logits, 5)
    _assert_kept(_filtered(m, logits, top_k=5, top_p=0.6), logits.numpy(),
                 _top_p_keep(logits.numpy(), 0.6, allowed), "top_k=5 with top_p=0.6",
                 "Apply top-k first; top-p then works on the softmax of what is left.")


@check("gpt_sampling", "oracle")
def top_p_stops_where_the_mass_reaches_p_exactly(m):
    """When the mass of the first tokens equals p exactly (4 equally likely tokens, p = 0.25,
    0.5, 0.75), top-p keeps those tokens and no more: the smallest set with mass ≥ p."""
    logits = torch.zeros(3, 4, dtype=torch.float64)
    for p in (0.25, 0.5, 0.75):
        kept = np.isfinite(_filtered(m, logits, top_p=p)).sum(axis=1)
        if not np.array_equal(kept, [round(4 * p)] * 3):
            raise CheckFailed(f"top_p={p} over 4 equally likely tokens keeps {kept.tolist()} "
                              f"tokens per row, expected {round(4 * p)}: their mass is exactly "
                              f"{p}, which reaches p.",
                              TOP_P_HINT + " Drop token i when the mass before it is ≥ p.")


def _sample(m, logits, seed=0, **kwargs) -> np.ndarray:
    out = run_probe(m, "phase6.sample", m, logits, kwargs, seed)
    if not out["unchanged"]:
        raise CheckFailed("sample_next changed the logits it was given.",
                          "Work on new tensors: logits / temperature, masked_fill.")
    tokens = as_array(out["tokens"], "the sampled tokens")
    if tokens.shape != (logits.shape[0], 1) or tokens.dtype != np.int64:
        raise CheckFailed(f"sample_next returned {tokens.dtype} of shape {tokens.shape}, "
                          f"expected int64 of shape ({logits.shape[0]}, 1).",
                          "torch.multinomial(probs, 1) and argmax(dim=-1, keepdim=True) both "
                          "give (B, 1) int64.")
    return tokens[:, 0]


@check("gpt_sampling", "invariant")
def temperature_zero_is_greedy(m):
    """temperature = 0 returns the argmax of every row, and temperature = 1e-3 does too when
    the logits are at least 0.5 apart."""
    logits = randn(3, 64, 11)
    assert_close(_sample(m, logits, temperature=0.0), logits.argmax(-1).numpy(),
                 "the tokens at temperature 0", hint="temperature 0 means greedy: argmax.")
    spaced = torch.stack([torch.randperm(11, generator=torch.Generator().manual_seed(r))
                          for r in range(64)]).double() * 0.5
    assert_close(_sample(m, spaced, temperature=1e-3), spaced.argmax(-1).numpy(),
                 "the tokens at temperature 1e-3", hint=TEMPERATURE_HINT)


@check("gpt_sampling", "invariant")
def the_same_generator_seed_gives_the_same_tokens(m):
    """Two calls with generators seeded alike return the same tokens; another seed, others."""
    logits = randn(4, 200, 10)
    first, again = _sample(m, logits, seed=5), _sample(m, logits, seed=5)
    assert_close(again, first, "the tokens of two draws with generator seed 5",
                 hint="Pass generator=generator to torch.multinomial.")
    if np.array_equal(_sample(m, logits, seed=6), first):
        raise CheckFailed("generators with seeds 5 and 6 gave the same 200 tokens.",
                          "Draw with torch.multinomial(probs, 1, generator=generator).")


def _expected_probabilities(logits: np.ndarray, temperature: float, top_k, top_p) -> np.ndarray:
    z = logits / temperature
    allowed = np.ones_like(z, dtype=bool)
    if top_k is not None:
        allowed &= _top_k_keep(torch.from_numpy(z), top_k)
    if top_p is not None:
        allowed &= _top_p_keep(z, top_p, allowed)
    z = np.where(allowed, z, -np.inf)
    probs = np.exp(z - z.max())
    return probs / probs.sum()


SAMPLING_CASES = [  # (temperature, top_k, top_p)
    (1.0, None, None), (0.7, 5, None), (1.5, None, 0.8), (0.5, 6, 0.9),
]


@check("gpt_sampling", "invariant", weight=2)
def sampled_frequencies_match_the_filtered_softmax(m):
    """20,000 draws follow softmax(filter(logits / T)): never a filtered token, and a χ²
    goodness-of-fit test at level 1e-6 for T = 1, 0.7 with top-k 5, 1.5 with top-p 0.8, and 0.5
    with top-k 6 and top-p 0.9."""
    base = np.array([2.0, 1.5, 1.2, 0.9, 0.5, 0.1, -0.4, -1.0])
    for k, (temperature, top_k, top_p) in enumerate(SAMPLING_CASES):
        logits = torch.from_numpy(np.tile(base, (DRAWS, 1)))
        tokens = _sample(m, logits, seed=100 + k, temperature=temperature, top_k=top_k,
                         top_p=top_p)
        counts = np.bincount(tokens, minlength=len(base))[:len(base)]
        expected = _expected_probabilities(base[None, :], temperature, top_k, top_p)[0]
        what = f"temperature={temperature}, top_k={top_k}, top_p={top_p}"
        if counts[expected == 0].sum() or (tokens < 0).any() or (tokens >= len(base)).any():
            raise CheckFailed(f"with {what}, tokens that should have been filtered out were "
                              f"drawn: counts {counts.tolist()} for probabilities "
                              f"{np.round(expected, 4).tolist()}.", TOP_P_HINT)
        kept = expected > 0
        mean = DRAWS * expected[kept]
        statistic = float(((counts[kept] - mean) ** 2 / mean).sum())
        dof = int(kept.sum()) - 1
        p_value = 1.0 if dof == 0 else float(torch.special.gammaincc(
            torch.tensor(dof / 2, dtype=torch.float64),
            torch.tensor(statistic / 2, dtype=torch.float64)))
        if p_value < FALSE_ALARM:
            raise CheckFailed(
                f"with {what}, the frequencies of {DRAWS} draws "
                f"{np.round(counts / DRAWS, 4).tolist()} do not follow the filtered softmax "
                f"{np.round(expected, 4).tolist()} (χ² = {statistic:.1f} with {dof} degrees of "
                f"freedom, p = {p_value:.1e} < {FALSE_ALARM:g}).", TEMPERATURE_HINT)


@fingerprint("gpt_sampling")
def sampling_outputs(m):
    logits = randn(300, 3, 9) * 2
    outputs = {
        "top_k": safely(lambda: np.isfinite(_filtered(m, logits, top_k=3))),
        "top_p": safely(lambda: np.isfinite(_filtered(m, logits, top_p=0.7))),
    }
    base = torch.tensor([[1.0, 0.5, 0.0, -0.5]]).repeat(4000, 1)
    outputs["frequencies"] = safely(lambda: np.round(np.bincount(
        _sample(m, base, seed=1, temperature=0.5), minlength=4)[:4] / 4000, 1))

    return outputs
