"""Fashion-MNIST through datasets.download: from the mirror into a private cache, from the cache
alone, a fake network, corrupt files, and offline — never the real network."""

from __future__ import annotations

import gzip
import io
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from datasets import download
from datasets.fashion_mnist import FILES, FOLDER, load_fashion_mnist, parse_idx
from tests.conftest import MIRROR

MIRRORED = MIRROR / FOLDER
needs_mirror = pytest.mark.skipif(not (MIRRORED / "SHA256SUMS").exists(),
                                  reason=f"no Fashion-MNIST mirror at {MIRRORED}")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache, the shared mirror, and a network that fails the test if touched."""
    monkeypatch.setenv("GRADSCHOOL_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(MIRROR))

    def no_network(*args, **kwargs):
        raise AssertionError("the test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path / "cache" / FOLDER


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@needs_mirror
def test_the_checksums_in_the_code_are_the_mirrors():
    sums = dict(reversed(line.split()) for line in
                (MIRRORED / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert {f.name: f.sha256 for f in FILES} == sums


@needs_mirror
def test_both_splits_load_from_the_mirror_with_the_documented_contents(cache):
    images, labels = load_fashion_mnist("train", progress=False)
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60_000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [6000] * 10
    images, labels = load_fashion_mnist("test", progress=False)
    assert images.shape == (10_000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10
    assert 0 < images.mean() < 255
    assert _leftovers(cache) == sorted(f.name for f in FILES)


@needs_mirror
def test_a_cached_copy_is_used_without_the_mirror(cache, monkeypatch, tmp_path):
    first = load_fashion_mnist("test", progress=False)
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(tmp_path / "empty"))
    again = load_fashion_mnist("test", progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


@needs_mirror
def test_a_corrupt_cached_file_is_replaced(cache):
    load_fashion_mnist("test", progress=False)
    damaged = cache / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(b"not the labels")
    _, labels = load_fashion_mnist("test", progress=False)
    assert labels.shape == (10_000,)
    assert download.sha256_of(damaged) == next(f.sha256 for f in FILES if f.name == damaged.name)


@needs_mirror
def test_a_corrupt_mirror_file_is_refused_and_nothing_is_kept(cache, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRRORED, mirror / FOLDER)
    (mirror / FOLDER / "t10k-labels-idx1-ubyte.gz").chmod(0o644)
    with open(mirror / FOLDER / "t10k-labels-idx1-ubyte.gz", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(mirror))
    with pytest.raises(download.DatasetError, match="SHA-256") as error:
        load_fashion_mnist("test", progress=False)
    assert "GRADSCHOOL_MIRROR" in str(error.value)
    assert "t10k-labels-idx1-ubyte.gz" not in _leftovers(cache)
    assert not [name for name in _leftovers(cache) if name.endswith(".part")]


def test_offline_without_a_mirror_says_what_to_do(cache, monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(tmp_path / "empty"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(download.DatasetError) as error:
        load_fashion_mnist("test", progress=False)
    message = str(error.value)
    assert "offline" in message and "GRADSCHOOL_MIRROR" in message and "name resolution" in message
    assert _leftovers(cache) == []


class _Response(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def _blob(shape: tuple[int, ...], type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, len(shape)]) + np.array(shape, dtype=">i4").tobytes()
    return header + np.arange(int(np.prod(shape)), dtype=np.uint8).tobytes()


def test_a_download_is_verified_then_renamed_into_place(cache, monkeypatch, tmp_path):
    payload = gzip.compress(_blob((3, 2)))
    good = download.RemoteFile("tiny.gz", ("http://unreachable.invalid/a",
                                           "http://example.invalid/tiny.gz"),
                               download.hashlib.sha256(payload).hexdigest())
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(tmp_path / "empty"))
    calls = []

    def fake(request, timeout):
        calls.append(request.full_url)
        if "unreachable" in request.full_url:
            raise urllib.error.URLError("refused")
        return _Response(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    path = download.fetch("toy", [good], progress=False)["tiny.gz"]
    assert calls == list(good.urls)
    assert path.read_bytes() == payload and _leftovers(path.parent) == ["tiny.gz"]
    bad = download.RemoteFile("other.gz", ("http://example.invalid/other.gz",), "0" * 64)
    with pytest.raises(download.DatasetError, match="SHA-256"):
        download.fetch("toy", [bad], progress=False)
    assert _leftovers(path.parent) == ["tiny.gz"]


def test_parse_idx_reads_shapes_and_refuses_garbage():
    assert parse_idx(_blob((2, 3, 4))).shape == (2, 3, 4)
    assert parse_idx(_blob((5,))).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x1f\x8b\x08\x00")
    with pytest.raises(ValueError, match="should hold"):
        parse_idx(_blob((2, 3))[:-1])
