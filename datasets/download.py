"""Fetch dataset files into a local cache, verified by SHA-256, from a mirror or the network.

    files = fetch("fashion-mnist", FASHION_MNIST_FILES)   # {name: Path in the cache}

Where a file comes from, first hit wins:
1. the cache, ``$GRADSCHOOL_DATA/<folder>/<name>`` (default ``~/.cache/gradschool``), when its
   SHA-256 is the expected one (a cached file that does not match is deleted and fetched again);
2. the mirror, ``$GRADSCHOOL_MIRROR/<folder>/<name>``, when that variable is set and the file is
   there (the course keeps one in ``../shared/datasets`` for tests and CI); a mirror file with the
   wrong checksum is an error, not a reason to go to the network;
3. each of the file's URLs in turn, with a tqdm progress bar.
Every copy or download is written to a temporary file beside its destination, verified, and only
then renamed into place, so an interrupted or corrupt transfer never leaves a file in the cache.
Failures raise DatasetError with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in the dataset's folder, where to get it, its SHA-256."""

    name: str
    urls: tuple[str, ...]
    sha256: str


class DatasetError(RuntimeError):
    """A dataset file could not be provided; the message says why and what to do."""


def cache_dir() -> Path:
    """$GRADSCHOOL_DATA, or ~/.cache/gradschool."""
    configured = os.environ.get("GRADSCHOOL_DATA")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "gradschool"


def mirror_dir() -> Path | None:
    """$GRADSCHOOL_MIRROR when set (a directory with one folder per dataset), else None."""
    configured = os.environ.get("GRADSCHOOL_MIRROR")
    return Path(configured).expanduser() if configured else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(folder: str, files: Sequence[RemoteFile], progress: bool = True) -> dict[str, Path]:
    """Make every file of `files` present and verified in the cache; returns {name: path}."""
    target = cache_dir() / folder
    return {f.name: _ensure(folder, f, target / f.name, progress) for f in files}


def _ensure(folder: str, file: RemoteFile, destination: Path, progress: bool) -> Path:
    if destination.exists():
        if sha256_of(destination) == file.sha256:
            return destination
        destination.unlink()  # corrupt or stale: fetch a good copy below
    destination.parent.mkdir(parents=True, exist_ok=True)
    mirror = mirror_dir()
    if mirror is not None and (mirror / folder / file.name).is_file():
        source = mirror / folder / file.name
        _install(destination, file, f"the mirror copy {source}",
                 lambda out: _copy(source, out),
                 f"The mirror ($GRADSCHOOL_MIRROR={mirror}) holds a damaged or different "
                 f"{file.name}: restore it from its SHA256SUMS, or unset GRADSCHOOL_MIRROR to "
                 f"download instead.")
        return destination
    failures = []
    for url in file.urls:
        try:
            _install(destination, file, url,
                     lambda out, url=url: _download(url, out, file.name, progress),
                     f"The server sent a different {file.name}: try again later, or put a "
                     f"verified copy in {destination.parent}.")
            return destination
        except OSError as error:  # no network, refused, timed out, HTTP error
            failures.append(f"{url}: {getattr(error, 'reason', error)}")
    where = f" and it is not in the mirror {mirror / folder}" if mirror is not None else ""
    raise DatasetError(
        f"could not get {folder}/{file.name}: the download failed{where}.\n  "
        + "\n  ".join(failures)
        + f"\nIf you are offline, point GRADSCHOOL_MIRROR at a directory holding {folder}/"
          f"{file.name} (the course's shared/datasets is one), or copy the file by hand into "
          f"{destination.parent} (its SHA-256 must be {file.sha256}).")


def _install(destination: Path, file: RemoteFile, source: str, write, mismatch_hint: str) -> None:
    """Write via `write(temporary_path)` beside `destination`, verify, then rename into place."""
    handle, temporary = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part",
                                         dir=destination.parent)
    os.close(handle)
    temporary = Path(temporary)
    try:
        write(temporary)
        digest = sha256_of(temporary)
        if digest != file.sha256:
            raise DatasetError(f"{file.name} from {source} has SHA-256 {digest}, expected "
                               f"{file.sha256}; it was not kept. {mismatch_hint}")
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _copy(source: Path, out: Path) -> None:
    shutil.copyfile(source, out)


def _download(url: str, out: Path, label: str, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "gradschool"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response, \
            open(out, "wb") as fh:
        total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=label,
                  disable=not progress, leave=False) as bar:
            for block in _blocks(response):
                fh.write(block)
                bar.update(len(block))


def _blocks(response) -> Iterable[bytes]:
    while block := response.read(CHUNK):
        yield block

