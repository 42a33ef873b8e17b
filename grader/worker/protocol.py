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

MAGIC = b"GS2"
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
#
# A message is: MAGIC, then (header length, buffer count, payload bytes) as <IIQ, then one <Q size
# per buffer, then the JSON header, then the buffers. Every size comes before any content, so a
# reader with a cap refuses an oversized message having read 19 + 8·count bytes of it.

PREFIX = struct.Struct("<IIQ")
PEEK_HEADER = 1 << 20  # an oversized reply's header is still read up to this size, to describe it


class ReplyTooLarge(Exception):
    """A message larger than the reader's cap; `header` is its JSON header when small enough."""

    def __init__(self, size: int, cap: int, header: Any = None):
        self.size, self.cap, self.header = size, cap, header
        super().__init__(f"a message of {size} bytes, more than the cap of {cap}")


def frame(header: Any, buffers: list[bytes | memoryview]) -> tuple[list, int]:
    """The parts of one message and its total size, without copying the buffers."""
    body = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    sizes = [len(buf) for buf in buffers]
    prefix = MAGIC + PREFIX.pack(len(body), len(buffers), sum(sizes))
    parts = [prefix, struct.pack(f"<{len(sizes)}Q", *sizes), body, *buffers]
    return parts, len(body) + sum(sizes)


def write(fd: int, parts: list) -> None:
    """Write the parts of a message: small parts joined into one write, large ones uncopied."""
    pending: list[bytes] = []
    for part in parts:
        if len(part) < 1 << 16:
            pending.append(bytes(part))
            continue
        if pending:
            _write_all(fd, b"".join(pending))
            pending = []
        _write_all(fd, part)
    if pending:
        _write_all(fd, b"".join(pending))


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data).cast("B") if len(data) else memoryview(b"")
    while view:
        view = view[os.write(fd, view) :]


def send(fd: int, header: Any, buffers: list[bytes | memoryview]) -> None:
    """Write one message in as few system calls as its size allows."""
    write(fd, frame(header, buffers)[0])


def value_size(buffers: list[bytes | memoryview]) -> int:
    return sum(len(buf) for buf in buffers)


def arrays_in(tree: Any, limit: int = 3) -> list[tuple[tuple[int, ...], str]]:
    """(shape, dtype) of the largest arrays named in an encoded tree (to describe a reply)."""
    found: list[tuple[int, tuple[int, ...], str]] = []
    stack = [tree]
    while stack and len(found) < 10_000:
        node = stack.pop()
        if type(node) is list:
            stack.extend(node)
        elif type(node) is dict:
            key = "a" if "a" in node else "T" if "T" in node else None
            shape = node.get("sh")
            if key and type(shape) is list and all(type(n) is int for n in shape):
                found.append((math.prod(shape), tuple(shape), str(node.get("dt"))[:20]))
            else:
                stack.extend(v for v in node.values() if type(v) in (list, dict))
    found.sort(key=lambda item: -item[0])
    return [(shape, dtype) for _, shape, dtype in found[:limit]]


class Reader:
    """Buffered reads from a pipe with an optional deadline (few syscalls per message).

    `poll` is called about every POLL_SECONDS while waiting for data (the judge's memory
    watchdog); it may raise to abandon the message.
    """

    POLL_SECONDS = 0.05

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, bytearray()

    def read(self, n: int, deadline: float | None, poll=None) -> bytes:
        while len(self.buffer) < n:
            if deadline is not None or poll is not None:
                self._wait(deadline, poll)
            chunk = os.read(self.fd, max(n - len(self.buffer), 1 << 16))
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _wait(self, deadline: float | None, poll) -> None:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError
            step = left if poll is None else min(left or self.POLL_SECONDS, self.POLL_SECONDS)
            if select.select([self.fd], [], [], step)[0]:
                return
            if poll is not None:
                poll()

    def receive(
        self, deadline: float | None = None, cap: int | None = None, poll=None
    ) -> tuple[Any, list[bytes]]:
        """Read one message; TimeoutError past `deadline` (time.monotonic), EOFError on EOF,
        ReplyTooLarge when its header and payload exceed `cap` bytes (its payload unread)."""
        if self.read(3, deadline, poll) != MAGIC:
            raise ProtocolError("message does not start with the protocol's magic bytes")
        header_len, count, payload = PREFIX.unpack(self.read(PREFIX.size, deadline, poll))
        if header_len > MAX_HEADER or count > MAX_BUFFERS or payload > MAX_PAYLOAD:
            raise ProtocolError("message larger than the protocol allows")
        sizes = struct.unpack(f"<{count}Q", self.read(8 * count, deadline, poll))
        if sum(sizes) != payload:
            raise ProtocolError("buffer sizes do not add up to the payload")
        if cap is not None and header_len + payload > cap:
            header = None
            if header_len <= PEEK_HEADER:
                try:
                    header = json.loads(self.read(header_len, deadline, poll))
                except (ValueError, RecursionError):
                    header = None
            raise ReplyTooLarge(header_len + payload, cap, header)
        try:
            header = json.loads(self.read(header_len, deadline, poll))
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"header is not JSON: {exc}") from None
        buffers = [self.read(size, deadline, poll) for size in sizes]
        return header, buffers
