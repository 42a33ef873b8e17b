"""Generated files are replaced only while nobody has edited them (`make stubs`, `make notebooks`).

Students write their answers into generated files, so regenerating must never destroy work. A
generated file may be (over)written when it does not exist, already holds exactly the new text,
or still holds what the generator wrote last time: the SHA-256 of every file a generator wrote is
recorded in its folder's manifest, `.manifest.json`. Any other file is someone's work: the write
is refused, naming every such file, and nothing is written, unless `force=True` (`FORCE=1`).

The manifest is updated under an exclusive lock on the folder, so generators running at the same
time (`python -m grader stubs --phase 1` and `--phase 2`) do not lose each other's records.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST = ".manifest.json"
ABOUT = (
    "SHA-256 of the files `make stubs` / `make notebooks` last wrote here: a file whose hash "
    "differs has been edited and is not overwritten without FORCE=1."
)


class WouldOverwrite(ValueError):
    """Writing would replace files that were edited since they were generated."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        names = "\n  ".join(str(p) for p in paths)
        super().__init__(
            f"refusing to overwrite {len(paths)} edited file(s) — your work would be lost:\n"
            f"  {names}\nMove them aside, or run again with FORCE=1 (--force) to overwrite them."
        )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def recorded(folder: Path) -> dict[str, str]:
    """{file name: SHA-256 last written} for `folder` ({} when nothing was recorded)."""
    try:
        return dict(json.loads((folder / MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def edited(path: Path, new: bytes, last: dict[str, str]) -> bool:
    """Whether replacing `path` with `new` would destroy something nobody can regenerate."""
    if not path.exists():
        return False
    current = digest(path.read_bytes())
    return current != digest(new) and current != last.get(path.name)


def write_generated(files: dict[Path, str | bytes], force: bool = False) -> list[Path]:
    """Write every file of `files` (path → content), or none of them when one was edited.

    Returns the paths written; raises WouldOverwrite naming the edited files."""
    encoded = {Path(p): c.encode() if isinstance(c, str) else c for p, c in files.items()}
    by_folder: dict[Path, dict[Path, bytes]] = {}
    for path, content in encoded.items():
        by_folder.setdefault(path.parent, {})[path] = content
    for folder in by_folder:
        folder.mkdir(parents=True, exist_ok=True)
    with _locked(sorted(by_folder)):
        if not force:
            refused = [
                path
                for folder, group in by_folder.items()
                for path, content in group.items()
                if edited(path, content, recorded(folder))
            ]
            if refused:
                raise WouldOverwrite(sorted(refused))
        for folder, group in by_folder.items():
            last = recorded(folder)
            for path, content in group.items():
                _replace(path, content)
                last[path.name] = digest(content)
            save(folder, last)
    return list(encoded)


def _replace(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    temporary.replace(path)  # atomic: an interrupted write leaves the old file whole


def save(folder: Path, files: dict[str, str]) -> None:
    text = json.dumps({"about": ABOUT, "files": dict(sorted(files.items()))}, indent=2) + "\n"
    _replace(folder / MANIFEST, text.encode())


@contextmanager
def _locked(folders: list[Path]) -> Iterator[None]:
    """Exclusive flocks on the folders themselves, taken in sorted order (no deadlock)."""
    descriptors = []
    try:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            descriptors.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in descriptors:
            os.close(fd)
