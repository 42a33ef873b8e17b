"""The wire format between the judge and the worker: JSON headers plus raw array bytes.

Nothing here unpickles or evaluates: a message decodes to plain Python values (None, bool, int,
float, str, list, tuple, dict with str keys, slice, Ellipsis), NumPy arrays of numeric dtypes,
torch tensors rebuilt from bytes, and handle references. A malformed message raises
ProtocolError, never anything worse, so a hostile worker can only send wrong values.

This file is copied into the worker's private directory, so it imports nothing from the grader.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from typing import Any

import numpy as np

MAGIC = b"GS1"
MAX_HEADER = 64 << 20  # bytes of JSON in one message
MAX_PAYLOAD = 2 << 30  # bytes of array data in one message
MAX_BUFFERS = 100_000

# dtype names that may cross; anything else (object, void, strings) stays in the worker as a handle
NUMPY_DTYPES = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
}
TORCH_ONLY_DTYPES = {"bfloat16"}
DTYPE_NAMES = {np.dtype(name): name for name in NUMPY_DTYPES}  # dtype.name is slow to compute


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class Handle:
    """A reference to an object that lives in the worker (id, attribute path, type name)."""

    __slots__ = ("id", "path", "type_name")

    def __init__(self, id: int, path: tuple[str, ...] = (), type_name: str = "object"):
        self.id, self.path, self.type_name = id, tuple(path), type_name


# ---------------------------------------------------------------- encoding


def encode(value: Any, to_handle) -> tuple[Any, list[bytes | memoryview]]:
    """Turn `value` into (JSON-able tree, buffers). `to_handle(obj)` names what cannot cross."""
    buffers: list[bytes | memoryview] = []

    def array(kind: str, arr: np.ndarray, extra: dict) -> dict:
        shape = list(arr.shape)  # before ascontiguousarray, which turns a 0-d array into 1-d
        arr = np.ascontiguousarray(arr)
        buffers.append(memoryview(arr).cast("B") if arr.size else b"")
        return {kind: len(buffers) - 1, "dt": DTYPE_NAMES[arr.dtype], "sh": shape, **extra}

    def walk(v: Any, depth: int) -> Any:
        if depth > 64:
            raise ProtocolError("value nested more than 64 levels deep")
        t = type(v)
        if v is None or t in (bool, str):
            return v
        if t is int:
            return v if -(2**63) <= v < 2**63 else float(v)
        if t is float:
            return {"f": repr(v)} if v != v or v in (float("inf"), float("-inf")) else v
        if isinstance(v, np.ndarray) and v.dtype in DTYPE_NAMES:
            return array("a", np.asarray(v), {})
        if isinstance(v, np.generic) and v.dtype in DTYPE_NAMES:
            return {"n": walk(v.item(), depth + 1), "dt": DTYPE_NAMES[v.dtype]}
        if t is list:
            return [walk(x, depth + 1) for x in v]
        if t is tuple:
            return {"t": [walk(x, depth + 1) for x in v]}
        if t is dict and all(type(k) is str for k in v):
            return {"d": {k: walk(x, depth + 1) for k, x in v.items()}}
        if t is slice:
            return {
                "s": [walk(v.start, depth + 1), walk(v.stop, depth + 1), walk(v.step, depth + 1)]
            }
        if v is Ellipsis:
            return {"e": 1}
        if isinstance(v, Handle):
            return {"h": v.id, "p": list(v.path)}
        if _is_torch_tensor(v):
            return _encode_tensor(v, array)
        if _is_torch_dtype(v):  # torch.float64 and friends cross by name
            return {"td": str(v).removeprefix("torch.")}
        handle = to_handle(v)
        if isinstance(handle, Handle):  # the judge sends back a reference it holds
            return {"h": handle.id, "p": list(handle.path)}
        return {"h": handle, "p": [], "ty": type(v).__name__[:80]}

    return walk(value, 0), buffers


def _is_torch_tensor(v: Any) -> bool:
    torch = _torch_if_loaded()
    return torch is not None and isinstance(v, torch.Tensor)


def _is_torch_dtype(v: Any) -> bool:
    torch = _torch_if_loaded()
    return torch is not None and isinstance(v, torch.dtype)


def _torch_if_loaded():
    import sys

    return sys.modules.get("torch")


def _encode_tensor(t, array) -> dict:
    torch = _torch_if_loaded()
    t = t.detach().cpu().contiguous()
    extra = {"rg": bool(t.requires_grad)}
    if t.dtype == torch.bfloat16:
        return array("T", t.view(torch.int16).numpy(), {**extra, "bf16": 1})
    return array("T", t.numpy(), extra)


# ---------------------------------------------------------------- decoding


def decode(tree: Any, buffers: list[bytes], from_handle) -> Any:
    """Rebuild plain values from (tree, buffers); `from_handle(id, path, type)` maps handles."""

    def array(spec: dict, key: str) -> np.ndarray:
        index, dtype, shape = spec[key], spec.get("dt"), spec.get("sh")
        if type(index) is not int or not 0 <= index < len(buffers):
            raise ProtocolError("array refers to a missing buffer")
        if dtype not in NUMPY_DTYPES or type(shape) is not list:
            raise ProtocolError(f"array of unsupported dtype {dtype!r}")
        if any(type(n) is not int or n < 0 for n in shape):
            raise ProtocolError("array with a malformed shape")
        buf = buffers[index]
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if expected != len(buf):
            raise ProtocolError(f"array of shape {shape} has {len(buf)} bytes, not {expected}")
        return np.frombuffer(bytearray(buf), dtype=dtype).reshape(shape)

    def walk(v: Any, depth: int) -> Any:
        if depth > 64:
            raise ProtocolError("value nested too deeply")
        t = type(v)
        if v is None or t in (bool, int, float, str):
            return v
        if t is list:
            return [walk(x, depth + 1) for x in v]
        if t is not dict or len(v) == 0:
            raise ProtocolError(f"unexpected value of type {t.__name__}")
        if "a" in v:
            return array(v, "a")
        if "T" in v:
            return _decode_tensor(v, array)
        if "td" in v:
            return _decode_torch_dtype(v["td"])
        if "f" in v:
            if v["f"] not in ("nan", "inf", "-inf"):
                raise ProtocolError("malformed float")
            return float(v["f"])
        if "n" in v:
            return walk(v["n"], depth + 1)
        if "t" in v and type(v["t"]) is list:
            return tuple(walk(x, depth + 1) for x in v["t"])
        if "d" in v and type(v["d"]) is dict:
            return {str(k): walk(x, depth + 1) for k, x in v["d"].items()}
        if "s" in v and type(v["s"]) is list and len(v["s"]) == 3:
            parts = [walk(x, depth + 1) for x in v["s"]]
            if not all(p is None or type(p) is int for p in parts):
                raise ProtocolError("malformed slice")
            return slice(*parts)
        if "e" in v:
            return Ellipsis
        if "h" in v and type(v["h"]) is int:
            path = v.get("p", [])
            if type(path) is not list or not all(type(p) is str for p in path):
                raise ProtocolError("malformed handle path")
            return from_handle(v["h"], tuple(path), str(v.get("ty", "object"))[:80])
        raise ProtocolError("unknown value tag")

    return walk(tree, 0)


def _decode_torch_dtype(name: Any) -> Any:
    if type(name) is not str or name not in NUMPY_DTYPES | TORCH_ONLY_DTYPES:
        raise ProtocolError(f"unknown torch dtype {str(name)[:40]!r}")
    import torch

    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ProtocolError(f"unknown torch dtype {name!r}")
    return dtype


def _decode_tensor(spec: dict, array) -> Any:
    import torch

    if spec.get("bf16"):
        spec = {**spec, "dt": "int16"}
        return torch.from_numpy(array(spec, "T")).view(torch.bfloat16).requires_grad_(False)
    tensor = torch.from_numpy(array(spec, "T"))
    if spec.get("rg") and tensor.is_floating_point():
        tensor.requires_grad_(True)
    return tensor


# ---------------------------------------------------------------- framing


def send(fd: int, header: Any, buffers: list[bytes | memoryview]) -> None:
    """Write one message (magic, header length, JSON header, buffer count, buffers) in one go."""
    body = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    parts = [MAGIC, struct.pack("<II", len(body), len(buffers)), body]
    for buf in buffers:
        parts.append(struct.pack("<Q", len(buf)))
        parts.append(buf)
    view = memoryview(b"".join(parts))
    while view:
        view = view[os.write(fd, view) :]


class Reader:
    """Buffered reads from a pipe with an optional deadline (few syscalls per message)."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, bytearray()

    def read(self, n: int, deadline: float | None) -> bytes:
        while len(self.buffer) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                    raise TimeoutError
            chunk = os.read(self.fd, max(n - len(self.buffer), 1 << 16))
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def receive(self, deadline: float | None = None) -> tuple[Any, list[bytes]]:
        """Read one message; TimeoutError past `deadline` (time.monotonic), EOFError on EOF."""
        if self.read(3, deadline) != MAGIC:
            raise ProtocolError("message does not start with the protocol's magic bytes")
        header_len, count = struct.unpack("<II", self.read(8, deadline))
        if header_len > MAX_HEADER or count > MAX_BUFFERS:
            raise ProtocolError("message larger than the protocol allows")
        try:
            header = json.loads(self.read(header_len, deadline))
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"header is not JSON: {exc}") from None
        buffers, total = [], 0
        for _ in range(count):
            (size,) = struct.unpack("<Q", self.read(8, deadline))
            total += size
            if total > MAX_PAYLOAD:
                raise ProtocolError("message payload larger than the protocol allows")
            buffers.append(self.read(size, deadline))
        return header, buffers
