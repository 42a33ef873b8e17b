"""Tiny Shakespeare through datasets.download: from the mirror into a private cache, the splits,
the cache alone, a damaged mirror, and offline — never the real network."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from datasets import download
from datasets.tinyshakespeare import FILE, FOLDER, load_tiny_shakespeare
from tests.conftest import MIRROR

MIRRORED = MIRROR / FOLDER
needs_mirror = pytest.mark.skipif(
    not (MIRRORED / "SHA256SUMS").exists(), reason=f"no Tiny Shakespeare mirror at {MIRRORED}"
)


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
def test_the_checksum_in_the_code_is_the_mirrors():
    sums = dict(
        reversed(line.split())
        for line in (MIRRORED / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    assert sums == {FILE.name: FILE.sha256}


@needs_mirror
def test_the_text_loads_from_the_mirror_with_the_documented_contents(cache):
    text = load_tiny_shakespeare(progress=False)
    assert len(text) == 1_115_394 and len(set(text)) == 65 and text.isascii()
    assert text.count("\n") == 40_000 and text.startswith("First Citizen:\n")
    assert _leftovers(cache) == [FILE.name]


@needs_mirror
def test_train_and_val_are_the_first_90_percent_and_the_rest(cache):
    text = load_tiny_shakespeare(progress=False)
    train, val = load_tiny_shakespeare("train", False), load_tiny_shakespeare("val", False)
    assert train + val == text and len(train) == int(0.9 * len(text))
    with pytest.raises(ValueError, match="split must be one of"):
        load_tiny_shakespeare("test", progress=False)


@needs_mirror
def test_a_cached_copy_is_used_without_the_mirror(cache, monkeypatch, tmp_path):
    first = load_tiny_shakespeare(progress=False)
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(tmp_path / "empty"))
    assert load_tiny_shakespeare(progress=False) == first


@needs_mirror
def test_a_damaged_mirror_file_is_refused_and_nothing_is_kept(cache, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRRORED, mirror / FOLDER)
    damaged = mirror / FOLDER / FILE.name
    damaged.chmod(0o644)
    damaged.write_text(damaged.read_text().replace("Citizen", "Citizens", 1))
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(mirror))
    with pytest.raises(download.DatasetError, match="SHA-256") as error:
        load_tiny_shakespeare(progress=False)
    assert "GRADSCHOOL_MIRROR" in str(error.value)
    assert _leftovers(cache) == []


def test_offline_without_a_mirror_says_what_to_do(cache, monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(tmp_path / "empty"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(download.DatasetError) as error:
        load_tiny_shakespeare(progress=False)
    message = str(error.value)
    assert "offline" in message and "GRADSCHOOL_MIRROR" in message and FILE.sha256 in message
    assert _leftovers(cache) == []
