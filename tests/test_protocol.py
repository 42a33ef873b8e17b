"""The wire format: values round-trip; garbage raises ProtocolError and nothing else."""

from __future__ import annotations

import json
import os
import struct

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
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return protocol.Reader(read)


@pytest.mark.parametrize(
    "data, error",
    [
        (b"XXX", protocol.ProtocolError),
        (protocol.MAGIC + struct.pack("<II", 1 << 30, 0), protocol.ProtocolError),
        (protocol.MAGIC + struct.pack("<II", 3, 0) + b"{{{", protocol.ProtocolError),
        (protocol.MAGIC + struct.pack("<II", 10, 0) + b"{}", EOFError),
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
