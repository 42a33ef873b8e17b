"""What a call did to its arguments: trusted worker code, run around every call the judge makes.

Arrays cross to the worker by value, so the judge cannot see a submission write into the
arrays it was given (`x -= x.max()`, `dout[x <= 0] = 0`) or return one of them. A `Watch`
fingerprints every array and tensor argument before the call — inside lists, tuples and dicts,
and the array attributes of objects passed in, one level down — and afterwards reports which
changed and which outputs share memory with an argument or with another output. The judge
decides what is allowed (grader/registry: `in_place`, `may_alias`); this file only observes.

Copied into the worker's private directory: it imports nothing from the grader.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np

MAX_ARRAYS = 64  # watched per call: a list of 10⁴ arrays is not fingerprinted element by element
MAX_BYTES = 64 << 20  # copied per call for the comparison


def _torch():
    return sys.modules.get("torch")


def _is_tensor(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or _is_tensor(value)


def snapshot(value: Any) -> tuple | None:
    """(shape, dtype, bytes) of an array or tensor; None if it cannot be read."""
    try:
        if isinstance(value, np.ndarray):
            return value.shape, value.dtype.str, value.tobytes()
        if _is_tensor(value):
            torch = _torch()
            data = value.detach().cpu().contiguous().reshape(-1)
            return tuple(value.shape), str(value.dtype), data.view(torch.uint8).numpy().tobytes()
    except Exception:  # noqa: BLE001 - a sparse, meta or subclassed tensor is not watched
        return None
    return None


def _instance_arrays(obj: Any) -> dict:
    """The array and tensor attributes of a student object, read without running its code."""
    if isinstance(obj, (type, types.ModuleType, types.FunctionType, types.MethodType)):
        return {}
    try:
        attributes = object.__getattribute__(obj, "__dict__")
    except Exception:  # noqa: BLE001 - no __dict__ (slots, builtins)
        return {}
    if type(attributes) is not dict:
        return {}
    return {k: v for k, v in list(attributes.items()) if type(k) is str and _is_array(v)}


def parameter_names(fn: Any) -> tuple[str, ...]:
    """The positional parameter names of a plain function, method, class or callable object."""
    try:
        skip = 0
        if isinstance(fn, types.MethodType):
            fn, skip = fn.__func__, 1
        elif isinstance(fn, type):
            fn = next(
                k.__dict__["__init__"]
                for k in type.__getattribute__(fn, "__mro__")
                if "__init__" in k.__dict__
            )
            skip = 1
        elif not isinstance(fn, types.FunctionType):
            fn = next(k.__dict__["__call__"] for k in type(fn).__mro__ if "__call__" in k.__dict__)
            skip = 1
        if isinstance(fn, types.FunctionType):
            code = fn.__code__
            return tuple(code.co_varnames[skip : code.co_argcount])
    except Exception:  # noqa: BLE001 - a hostile class: the arguments get numbers, not names
        pass
    return ()


def call_name(fn: Any) -> str:
    """How the report names a call: relu, Linear, Linear.forward, Sequential.__call__."""
    try:
        if isinstance(fn, types.MethodType):
            return f"{type(fn.__self__).__name__}.{fn.__func__.__name__}"[:120]
        if isinstance(fn, (type, types.FunctionType, types.BuiltinFunctionType)):
            return str(fn.__name__)[:120]
        return f"{type(fn).__name__}.__call__"[:120]
    except Exception:  # noqa: BLE001
        return "your function"


class Watch:
    """Fingerprints of a call's arguments, taken before it runs."""

    def __init__(self, fn: Any, args: list, kwargs: dict):
        self.name = call_name(fn)
        names = parameter_names(fn)
        labelled = [
            (names[i] if i < len(names) else f"argument {i + 1}", a) for i, a in enumerate(args)
        ] + list(kwargs.items())
        self.watched: list[tuple[str, Any, Any, tuple]] = []  # (label, owner, key, snapshot)
        self.budget = MAX_BYTES
        for label, value in labelled:
            self._add(label, value, depth=0)

    def _add(self, label: str, value: Any, depth: int) -> None:
        if len(self.watched) >= MAX_ARRAYS:
            return
        if _is_array(value):
            self._remember(label, None, None, value)
        elif type(value) in (list, tuple) and depth == 0:
            for index, item in enumerate(value[:MAX_ARRAYS]):
                self._add(f"{label}[{index}]", item, depth + 1)
        elif type(value) is dict and depth == 0:
            for key, item in list(value.items())[:MAX_ARRAYS]:
                if type(key) is str:
                    self._add(f"{label}[{key!r}]", item, depth + 1)
        elif not isinstance(value, (int, float, complex, str, bytes, bool, type(None))):
            arrays = _instance_arrays(value)
            if arrays:
                attributes = object.__getattribute__(value, "__dict__")
                for key, item in arrays.items():
                    self._remember(f"{label}.{key}", attributes, key, item)

    def _remember(self, label: str, owner: dict | None, key: str | None, value: Any) -> None:
        if len(self.watched) >= MAX_ARRAYS:
            return
        fingerprint = snapshot(value)
        if fingerprint is None or len(fingerprint[2]) > self.budget:
            return
        self.budget -= len(fingerprint[2])
        self.watched.append((label, owner if owner is not None else value, key, fingerprint))

    def changed(self) -> list[str]:
        """Labels of the watched arrays whose shape, dtype or contents differ now (an object's
        attribute is read again, so rebinding `x.data` to different values counts too)."""
        found = []
        for label, holder, key, before in self.watched:
            now = holder.get(key) if key is not None else holder
            if snapshot(now) != before:
                found.append(label)
        return found

    def aliased(self, result: Any) -> list[tuple[str, str]]:
        """(output, argument or other output) pairs that share memory, NumPy arrays only."""
        outputs = [("the output", result)] if isinstance(result, np.ndarray) else []
        if type(result) in (tuple, list):
            outputs = [
                (f"output {i}", v)
                for i, v in enumerate(result[:MAX_ARRAYS])
                if isinstance(v, np.ndarray)
            ]
        inputs = [
            (label, holder.get(key) if key is not None else holder)
            for label, holder, key, _ in self.watched
        ]
        pairs = []
        for index, (name, out) in enumerate(outputs):
            if out.size == 0:
                continue
            for label, value in inputs:
                if isinstance(value, np.ndarray) and np.may_share_memory(out, value):
                    pairs.append((name, label))
            for other, earlier in outputs[:index]:
                if earlier.size and np.may_share_memory(out, earlier):
                    pairs.append((name, other))
        return pairs

    def report(self, result: Any) -> dict:
        """The reply fields: {"changed": [...], "aliased": [...]}, each absent when empty."""
        fields = {}
        changed = self.changed()
        if changed:
            fields["changed"] = [{"call": self.name, "arg": label} for label in changed[:8]]
        aliased = self.aliased(result)
        if aliased:
            fields["aliased"] = [
                {"call": self.name, "output": out, "arg": label} for out, label in aliased[:8]
            ]
        return fields
