"""SST-2 through datasets.download: the mirror's checksums are the code's, both splits load with
the documented counts and labels, a damaged mirror file is refused, and offline without a
mirror says what to do — never the real network."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from datasets import download
from datasets.sst2 import FILES, FOLDER, load_sst2
from tests.conftest import MIRROR

MIRRORED = MIRROR / FOLDER
needs_mirror = pytest.mark.skipif(
    not (MIRRORED / "SHA256SUMS").exists(), reason=f"no SST-2 mirror at {MIRRORED}"
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


@needs_mirror
def test_the_checksums_in_the_code_are_the_mirrors():
    sums = dict(reversed(line.split())
                for line in (MIRRORED / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert sums == {f.name: f.sha256 for f in FILES.values()}


@needs_mirror
def test_both_splits_load_with_the_documented_counts(cache):
    sentences, labels = load_sst2("train", progress=False)
    assert len(sentences) == len(labels) == 67_349 and sum(labels) == 37_569
    assert sentences[0] == "hide new secretions from the parental units" and labels[0] == 0
    dev, dev_labels = load_sst2("dev", progress=False)
    assert len(dev) == 872 and sum(dev_labels) == 444 and set(dev_labels) == {0, 1}
    assert dev[0] == "it 's a charming and often affecting journey ."
    assert all(s == s.strip() and "\t" not in s for s in dev)
    assert sorted(p.name for p in cache.iterdir()) == ["dev.tsv", "train.tsv"]
    with pytest.raises(ValueError, match="split must be one of"):
        load_sst2("test", progress=False)


@needs_mirror
def test_a_damaged_mirror_file_is_refused(cache, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRRORED, mirror / FOLDER)
    damaged = mirror / FOLDER / "dev.tsv"
    damaged.chmod(0o644)
    damaged.write_text(damaged.read_text().replace("charming", "charmless", 1))
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(mirror))
    with pytest.raises(download.DatasetError, match="SHA-256"):
        load_sst2("dev", progress=False)
    assert not (cache / "dev.tsv").exists()


def test_offline_without_a_mirror_says_what_to_do(cache, monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("GRADSCHOOL_MIRROR", str(tmp_path / "empty"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(download.DatasetError) as error:
        load_sst2("dev", progress=False)
    assert "GRADSCHOOL_MIRROR" in str(error.value) and FILES["dev"].sha256 in str(error.value)
