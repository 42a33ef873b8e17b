"""Contracts declared once and enforced by the grader, not re-asserted by hand in every check.

- Arguments: every call into the worker is watched (grader/worker/watch.py); a check whose calls
  changed an argument in place, or returned an argument's memory, fails — unless the registry
  declares the call `in_place` or `may_alias` (grader/registry/phaseN.toml). `argument_breach`
  is how the runner turns the worker's observations into that verdict.
- dtypes and repeated calls: a phase declares, per exercise, how to call each numeric function
  (`Numeric`); `contract_checks` turns the declarations into one graded check per exercise that
  runs each call in float32 and float64 and twice with the same input.
- Helpers for stateful objects and documented errors, used by the phases' own checks:
  `same_twice`, `seeded`, `raises`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.checks import CheckFailed, check
from grader.checks.oracle import as_array, assert_close, plain
from grader.session import StudentError

IN_PLACE_HINT = (
    "Compute into a new array: `x = x - m`, `np.maximum(x, 0)` or `x * mask` make one, while "
    "`x -= m`, `x[...] = …`, `x *= …` and `out=x` write into the caller's array (and a layer "
    "that cached it). Only calls documented as in place may do that."
)
ALIAS_HINT = (
    "Return a new array: a caller that changes your result would otherwise change its own "
    "input (or the other output) too. `x.copy()` or any expression makes one."
)


# ------------------------------------------------------------------ arguments (worker-observed)


def argument_breach(observed: list[dict], exercise_id: str) -> CheckFailed | None:
    """The verdict on what the worker saw the calls of one check do to their arguments:
    None when everything was allowed, else a CheckFailed naming the call and the argument."""
    if not observed:
        return None
    from grader.registry import exercise_by_id, phase

    current = phase(exercise_by_id(exercise_id).phase)
    changed, aliased = [], []
    for entry in observed:
        call = entry["call"]
        if entry["what"] == "changed" and call not in current.in_place:
            changed.append(f"your {call} changed its input `{entry['arg']}` in place")
        elif (
            entry["what"] == "aliased"
            and not current.outputs_may_alias
            and call not in current.may_alias
        ):
            target = (
                f"its {entry['arg']}"
                if entry["arg"].startswith("output")
                else f"its input `{entry['arg']}`"
            )
            aliased.append(
                f"your {call} returns, as {entry['output']}, the same memory as {target}"
            )
    found = list(dict.fromkeys(changed + aliased))
    if not found:
        return None
    return CheckFailed("; ".join(found[:3]) + ".", IN_PLACE_HINT if changed else ALIAS_HINT)


# ------------------------------------------------------------------ failures charged elsewhere


class Charged(CheckFailed):
    """A failure that also costs other exercises: this check revealed a bug in their functions
    (a graph check localised to one op). The runner adds a failing check with this message to
    each exercise in `charges` that is graded in the same run."""

    def __init__(self, message: str, hint: str | None, charges: tuple[str, ...]):
        super().__init__(message, hint)
        self.charges = tuple(charges)


# ------------------------------------------------------------------ declared numeric calls


Build = Callable[[Any, Any], tuple]  # (m, dtype) -> (function, args, kwargs)


@dataclass(frozen=True)
class Numeric:
    """How to call one numeric function of an exercise with inputs of a given float dtype.

    `build(m, dtype)` returns (the remote callable, positional args, keyword args); the inputs
    it makes must be of `dtype` (np.float32 / np.float64, or torch's for torch phases).
    `outputs` says what each output must be, in order ("float": an array of the input dtype,
    "floats": a list of such arrays, "int": an integer array, "scalar": a number, None:
    anything), or one string for a single output. `deterministic=False` skips the call-twice
    comparison (random by contract).
    """

    name: str
    build: Build
    outputs: str | tuple[str | None, ...] = "float"
    deterministic: bool = True
    dtypes: tuple[str, ...] = ("float32", "float64")
    hint: str = ""


def _dtype(name: str, torch_phase: bool):
    if torch_phase:
        import torch

        return getattr(torch, name)
    return np.dtype(name)


def _is_torch(value: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _outputs(value: Any, expected: str | tuple) -> list[tuple[str, Any, str | None]]:
    if isinstance(expected, str):
        return [("the output", value, expected)]
    if not isinstance(value, (tuple, list)) or len(value) != len(expected):
        count = len(value) if isinstance(value, (tuple, list)) else 1
        raise CheckFailed(f"should return {len(expected)} values, but returned {count}.")
    return [
        (f"output {i}", v, kind) for i, (v, kind) in enumerate(zip(value, expected, strict=True))
    ]


def _dtype_name(value: Any) -> str:
    if _is_torch(value):
        return str(value.dtype).removeprefix("torch.")
    return str(np.asarray(value).dtype)


def _check_kind(
    label: str, value: Any, kind: str | None, dtype_name: str, what: str, hint: str
) -> None:
    if kind is None:
        return
    if kind == "floats":  # a list of arrays, each of the input dtype (l2_penalty's gradients)
        if not isinstance(value, (list, tuple)):
            raise CheckFailed(f"{what}: {label} should be a list of arrays.", hint or None)
        for index, item in enumerate(value):
            _check_kind(f"{label}[{index}]", item, "float", dtype_name, what, hint)
        return
    if kind == "scalar":
        array = as_array(value, f"{what}: {label}")
        if array.size != 1:
            raise CheckFailed(
                f"{what}: {label} should be a number, got shape {array.shape}.", hint or None
            )
        return
    got = _dtype_name(value)
    as_array(value, f"{what}: {label}")
    if kind == "float" and got != dtype_name:
        raise CheckFailed(
            f"{what}: {label} has dtype {got} for {dtype_name} inputs: the result keeps the "
            f"input's precision.",
            hint
            or "Build new arrays from the input (np.zeros_like(x), x.dtype) instead of "
            "np.zeros(shape) or float64 constants arrays, which are float64 whatever x is.",
        )
    if kind == "int" and not (got.startswith("int") or got.startswith("uint")):
        raise CheckFailed(
            f"{what}: {label} should be an integer array, got dtype {got}.",
            hint or "Indices and counts are integers: argmax gives them.",
        )


def _same(first: Any, second: Any) -> bool:
    if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)):
        return len(first) == len(second) and all(map(_same, first, second))
    try:
        a, b = as_array(first, "value"), as_array(second, "value")
    except CheckFailed:
        return True  # a non-numeric output is not compared
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def enforce(m, declaration: Numeric, torch_phase: bool) -> None:
    """Run one declared call in each dtype (and twice in float64) and judge the outputs."""
    what = declaration.name
    results = {}
    for name in declaration.dtypes:
        function, args, kwargs = declaration.build(m, _dtype(name, torch_phase))
        value = function(*args, **kwargs)
        for label, output, kind in _outputs(value, declaration.outputs):
            _check_kind(label, output, kind, name, f"{what} with {name} inputs", declaration.hint)
        results[name] = value
        if declaration.deterministic and name == declaration.dtypes[-1]:
            again = function(*args, **kwargs)
            if not _same(value, again):
                raise CheckFailed(
                    f"{what} returned a different result the second time it was called with "
                    f"the same input.",
                    declaration.hint
                    or "Keep no state between calls of a function: nothing "
                    "cached on a module-level variable, no unseeded randomness.",
                )
    if set(results) == {"float32", "float64"}:
        _agree(results["float32"], results["float64"], declaration, what)


def _agree(low: Any, high: Any, declaration: Numeric, what: str) -> None:
    """float32 results agree with float64 ones to float32 accuracy (no float16 detour)."""
    for (label, a, kind), (_, b, _) in zip(
        _outputs(low, declaration.outputs), _outputs(high, declaration.outputs), strict=True
    ):
        if kind == "floats":
            a, b = (
                np.concatenate([np.ravel(as_array(v, label)) for v in a] or [np.zeros(0)]),
                np.concatenate([np.ravel(as_array(v, label)) for v in b] or [np.zeros(0)]),
            )
        elif kind not in ("float", "scalar"):
            continue
        a64, b64 = as_array(a, label).astype(np.float64), as_array(b, label).astype(np.float64)
        scale = max(1.0, float(np.max(np.abs(b64), initial=0.0)))
        assert_close(
            a64,
            b64,
            f"{what}: {label} computed in float32 vs in float64",
            rtol=1e-3,
            atol=1e-4 * scale,
            hint=declaration.hint
            or "Compute in the input's precision, not in a lower one (float16).",
        )


def seeded_module(m, constructor, *args, seed: int = 0, **kwargs):
    """A student torch module built right after torch.manual_seed(seed) in the worker, in eval
    mode: the float32 and float64 copies of a declaration then start from the same weights."""
    from grader.session import run_probe

    module = run_probe(m, "phase2.run", constructor, list(args), kwargs, seed=seed)
    module.eval()
    return module


def contract_checks(
    module: str, exercise: str, declarations: list[Numeric], torch_phase: bool = False
) -> dict[str, Callable]:
    """One graded check for `exercise` enforcing its declared calls; put the result into the
    declaring module's globals (`globals().update(contract_checks(__name__, …))`)."""
    names = ", ".join(d.name for d in declarations)

    def contract(m):
        for declaration in declarations:
            enforce(m, declaration, torch_phase)

    contract.__name__ = f"{exercise}_keeps_dtypes_and_repeats"
    contract.__qualname__ = contract.__name__
    contract.__module__ = module
    contract.__doc__ = (
        f"{names}: float32 in → float32 out and float64 → float64, the same "
        f"result when called twice, inputs left unchanged."
    )
    return {contract.__name__: check(exercise, "invariant")(contract)}


# ------------------------------------------------------------------ helpers for stateful checks


@dataclass
class Twice:
    """The two results of `same_twice`, for checks that compare more."""

    first: Any
    second: Any
    extra: dict = field(default_factory=dict)


def same_twice(call: Callable[[], Any], what: str, hint: str) -> Twice:
    """Call `call()` twice; fail unless both results are equal (a second forward on the same
    input, a second backward with the same upstream gradient)."""
    first, second = call(), call()
    if not _same(first, second):
        raise CheckFailed(f"{what}: the second call gave a different result from the first.", hint)
    return Twice(first, second)


def seeded(run: Callable[[int], Any], what: str, hint: str, seeds: tuple = (3, 4)) -> Any:
    """run(seed) twice with one seed gives the same result, and another seed a different one."""
    first, again, other = run(seeds[0]), run(seeds[0]), run(seeds[1])
    if not _same(first, again):
        raise CheckFailed(f"{what} with the same seed twice gave different results.", hint)
    if _same(first, other):
        raise CheckFailed(
            f"{what} with seeds {seeds[0]} and {seeds[1]} gave the same result: "
            f"the seed is ignored.",
            hint,
        )
    return first


def raises(call: Callable[[], Any], error: str, what: str, hint: str) -> None:
    """The documented error: `call()` must raise the exception type named `error`."""
    try:
        value = call()
    except StudentError as raised:
        if raised.not_implemented:
            raise
        if raised.type != error:
            raise CheckFailed(
                f"{what} should raise {error}, but raised {raised.type}: {raised.message}", hint
            ) from None
        return
    raise CheckFailed(f"{what} should raise {error}, but returned {plain(value)}.", hint)
