"""The wire format: values round-trip; garbage raises ProtocolError and nothing else."""

from __future__ import annotations

import json
import os
import struct
import threading

import numpy as np
import pytest
import torch

from grader.worker import protocol


def _roundtrip(value):
    tree, buffers = protocol.encode(value, lambda obj: 7)
    tree = json.loads(json.dumps(tree))
    return protocol.decode(tree, [bytes(b) for b in buffers], lambda i, p, t: ("handle", i, t))


def test_values_round_trip():
    value = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": (1, 2.5, None, "s", True),
        "c": [slice(1, None, 2), Ellipsis],
        "d": float("nan"),
        "e": np.float64(3.0),
        "t": torch.arange(4, dtype=torch.float64),
        "bf": torch.ones(2, dtype=torch.bfloat16),
    }
    back = _roundtrip(value)
    assert np.array_equal(back["a"], value["a"]) and back["a"].dtype == np.float32
    assert back["b"] == value["b"] and back["c"] == value["c"]
    assert np.isnan(back["d"]) and back["e"] == 3.0
    assert torch.equal(back["t"], value["t"]) and back["bf"].dtype == torch.bfloat16
    assert back["a"].flags.writeable


def test_zero_dimensional_arrays_keep_their_shape():
    back = _roundtrip({"a": np.asarray(2.5), "t": torch.tensor(1.5, dtype=torch.float64)})
    assert back["a"].shape == () and back["a"] == 2.5
    assert back["t"].shape == () and float(back["t"]) == 1.5


def test_torch_dtypes_cross_by_name():
    back = _roundtrip({"f": torch.float64, "b": torch.bool, "bf": torch.bfloat16})
    assert back == {"f": torch.float64, "b": torch.bool, "bf": torch.bfloat16}


def test_unknown_objects_become_handles():
    assert _roundtrip(object())[:2] == ("handle", 7)
    assert _roundtrip(np.array([object()]))[:2] == ("handle", 7)


@pytest.mark.parametrize(
    "tree, buffers",
    [
        ({"a": 0, "dt": "object", "sh": [1]}, [b"x" * 8]),
        ({"a": 0, "dt": "float64", "sh": [2]}, [b"x" * 8]),
        ({"a": 5, "dt": "float64", "sh": [1]}, []),
        ({"a": 0, "dt": "float64", "sh": [-1]}, [b""]),
        ({"zz": 1}, []),
        ({"f": "1e308"}, []),
        ({"s": [1, "a", None]}, []),
        ({"h": 1, "p": [3]}, []),
        ({"td": "Tensor"}, []),
        ({"td": ["float64"]}, []),
    ],
)
def test_malformed_values_raise_protocol_error(tree, buffers):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(tree, buffers, lambda i, p, t: None)


def test_deep_nesting_is_refused():
    tree = []
    for _ in range(200):
        tree = [tree]
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(tree, [], lambda i, p, t: None)


def _pipe_with(data: bytes) -> protocol.Reader:
    """A Reader on a pipe fed `data` by a thread (a pipe holds only 64 KiB unread)."""
    read, write = os.pipe()

    def feed() -> None:
        try:
            protocol.write(write, [data])
        except OSError:  # the reader stopped early and closed its end
            pass
        os.close(write)

    threading.Thread(target=feed, daemon=True).start()
    return protocol.Reader(read)


def _prefix(header_len: int, sizes: list[int], payload: int | None = None) -> bytes:
    payload = sum(sizes) if payload is None else payload
    return (
        protocol.MAGIC
        + protocol.PREFIX.pack(header_len, len(sizes), payload)
        + struct.pack(f"<{len(sizes)}Q", *sizes)
    )


@pytest.mark.parametrize(
    "data, error",
    [
        (b"XXX", protocol.ProtocolError),
        (_prefix(1 << 30, []), protocol.ProtocolError),
        (_prefix(3, []) + b"{{{", protocol.ProtocolError),
        (_prefix(10, []) + b"{}", EOFError),
        (_prefix(2, [4], payload=5) + b"{}abcd", protocol.ProtocolError),
        (_prefix(2, [], payload=3 << 30), protocol.ProtocolError),
        (b"", EOFError),
    ],
)
def test_garbage_on_the_wire(data, error):
    with pytest.raises(error):
        _pipe_with(data).receive(deadline=None)


def test_a_silent_peer_times_out():
    import time

    read, write = os.pipe()
    with pytest.raises(TimeoutError):
        protocol.Reader(read).receive(deadline=time.monotonic() + 0.2)
    os.close(write)


def _message(value) -> bytes:
    tree, buffers = protocol.encode(value, lambda obj: 7)
    parts, _ = protocol.frame({"ok": True, "value": tree}, buffers)
    return b"".join(bytes(p) for p in parts)


def test_a_message_within_its_cap_is_read_whole():
    data = _message(np.arange(12.0).reshape(3, 4))
    header, buffers = _pipe_with(data).receive(cap=len(data))
    assert protocol.decode(header["value"], buffers, None).shape == (3, 4)


def test_an_oversized_reply_is_refused_before_its_payload_is_read():
    big = np.zeros((300, 400))  # 960 000 bytes of payload
    data = _message(big)
    reader = _pipe_with(data)
    with pytest.raises(protocol.ReplyTooLarge) as refused:
        reader.receive(cap=10_000)
    assert refused.value.size > 960_000 and refused.value.cap == 10_000
    assert protocol.arrays_in(refused.value.header["value"]) == [((300, 400), "float64")]
    # only the prefix, the sizes and the small header were taken from the pipe
    assert len(reader.buffer) < 1 << 16


def test_the_cap_counts_the_json_header_too():
    data = _message(list(range(5000)))  # no buffers, a large header
    with pytest.raises(protocol.ReplyTooLarge):
        _pipe_with(data).receive(cap=1000)


def test_arrays_in_names_the_largest_arrays_first():
    tree, _ = protocol.encode(
        {"small": np.zeros(3), "big": [torch.zeros(5, 6)], "mid": np.zeros((2, 4), np.int32)},
        lambda obj: 7,
    )
    assert protocol.arrays_in(tree) == [((5, 6), "float32"), ((2, 4), "int32"), ((3,), "float64")]


def test_poll_runs_while_waiting_and_may_abandon_the_message():
    import time

    read, write = os.pipe()
    calls = []

    def poll():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("watchdog")

    with pytest.raises(RuntimeError, match="watchdog"):
        protocol.Reader(read).receive(deadline=time.monotonic() + 5, poll=poll)
    assert len(calls) == 3
    os.close(write)
    os.close(read)


def test_large_buffers_are_written_without_joining(monkeypatch):
    writes = []
    monkeypatch.setattr(
        protocol.os, "write", lambda fd, view: writes.append(len(view)) or len(view)
    )
    big = np.zeros(1 << 17)  # 1 MiB
    tree, buffers = protocol.encode([big, np.zeros(2)], lambda obj: 7)
    protocol.send(99, {"value": tree}, buffers)
    assert (1 << 20) in writes  # the big buffer went out as it is, not copied into one string
