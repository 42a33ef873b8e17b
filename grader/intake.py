"""Turn one received submission — a .py, a .ipynb, a folder or a .zip — into a folder to grade.

Batch grading and the Gradescope autograder receive files nobody has looked at. Each one is
copied (or unpacked) into a fresh private folder holding only the phase module and the
student's other phase modules, so that nothing one submission contains can reach another's
grading. What cannot be taken safely is refused with a message, never a crash:
- zip archives: entries that would land outside the folder (absolute paths, `..`: zip-slip),
  symbolic links, encrypted entries, names that are not UTF-8, and archives that unpack to more
  than MAX_UNPACKED bytes, MAX_ENTRIES entries or a compression ratio above MAX_RATIO (zip bombs);
- folders containing symbolic links (one could point at the solutions);
- files over MAX_SOURCE_BYTES, sources that are not UTF-8, anything that is not one of the four.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from grader.registry import Phase, phases
from grader.submission import MAX_SOURCE_BYTES, SubmissionError, notebook_source

MAX_ENTRIES = 2000
MAX_UNPACKED = 64 << 20
MAX_RATIO = 200
KINDS = ".py, .ipynb, a folder or .zip"
WANTED = (".py", ".ipynb")


class Rejected(ValueError):
    """The submission cannot be graded safely; the message says why, for the gradebook."""


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, or of a folder's sorted (relative path, file hash) pairs."""
    if path.is_dir():
        outer = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = file.relative_to(path).as_posix().encode("utf-8", "surrogateescape")
            outer.update(rel + b"\0" + _file_digest(file).encode() + b"\n")
        return outer.hexdigest()
    return _file_digest(path)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stage(source: Path, phase: Phase, into: Path) -> Path:
    """Copy `source` into the empty folder `into` as a gradable folder; returns `into`.

    Raises Rejected when the submission cannot be taken safely."""
    source = Path(source)
    _check_name(source.name)
    if source.is_symlink():
        raise Rejected("the submission is a symbolic link")
    if source.is_dir():
        _stage_folder(source, phase, into)
    elif source.suffix == ".zip":
        unpacked = into.parent / f"{into.name}.unzipped"
        try:
            unzip(source, unpacked)
            _stage_folder(unpacked, phase, into)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
    elif source.suffix in WANTED:
        _stage_module(source, phase, into)
    else:
        raise Rejected(f"{source.name} is not a submission: expected {KINDS}")
    return into


def _check_name(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("the file name is not valid UTF-8") from None


def _stage_module(module: Path, phase: Phase, into: Path) -> None:
    if module.stat().st_size > MAX_SOURCE_BYTES:
        raise Rejected(f"{module.name} is larger than {MAX_SOURCE_BYTES >> 20} MiB")
    if module.suffix == ".ipynb":
        try:
            source = notebook_source(module)
        except SubmissionError as error:
            raise Rejected(str(error).replace(str(module), module.name)) from None
    else:
        try:
            source = module.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected(f"{module.name} is not UTF-8 text") from None
    into.mkdir(parents=True, exist_ok=True)
    (into / phase.filename).write_text(source, encoding="utf-8")


def _stage_folder(folder: Path, phase: Phase, into: Path) -> None:
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            _check_name(name)
            if path.is_symlink():
                raise Rejected(f"{path.relative_to(folder)} is a symbolic link")
    module = find_module(folder, phase)
    _stage_module(module, phase, into)
    known = {p.filename for p in phases().values()} - {phase.filename}
    for other in sorted(module.parent.iterdir()):
        if other.name in known and other.is_file() and other.stat().st_size <= MAX_SOURCE_BYTES:
            shutil.copyfile(other, into / other.name)


def find_module(folder: Path, phase: Phase) -> Path:
    """The phase module in `folder`: the shallowest <module>.py (or .ipynb), else the only
    .py or .ipynb file there is."""
    names = (phase.filename, f"{phase.module}.ipynb")
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in WANTED and "__MACOSX" not in p.parts
    ]
    named = [p for p in files if p.name in names]
    if named:
        depth = min(len(p.relative_to(folder).parts) for p in named)
        shallow = [p for p in named if len(p.relative_to(folder).parts) == depth]
        python = [p for p in shallow if p.suffix == ".py"]
        chosen = python or shallow
        if len(chosen) > 1:
            listed = ", ".join(str(p.relative_to(folder)) for p in chosen)
            raise Rejected(f"more than one {phase.filename} at the same depth: {listed}")
        return chosen[0]
    if len(files) == 1:
        return files[0]
    raise Rejected(
        f"no {phase.filename} (or {phase.module}.ipynb) in the submission"
        + (f"; found {len(files)} other .py/.ipynb files" if files else "")
    )


def unzip(archive: Path, into: Path) -> None:
    """Extract the .py and .ipynb files of `archive` into `into`, refusing unsafe archives."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [(info, _member_name(info)) for info in zf.infolist()]
            _check_sizes([info for info, _ in members])
            into.mkdir(parents=True, exist_ok=True)
            budget = MAX_UNPACKED
            for info, name in members:
                if info.is_dir() or not name.endswith(WANTED):
                    continue
                budget -= _extract(zf, info, into / name, budget)
    except zipfile.BadZipFile as error:
        raise Rejected(f"{archive.name} is not a readable zip archive ({error})") from None
    except UnicodeDecodeError:
        raise Rejected(f"{archive.name} has a file name that is not valid UTF-8") from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, zipfile.LargeZipFile) as error:
        raise Rejected(f"{archive.name} cannot be unpacked ({error})") from None


def _member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:  # not flagged UTF-8: zipfile decoded the raw bytes as cp437
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise Rejected(f"the archive entry {name!r} has a name that is not UTF-8") from None
    if info.flag_bits & 0x1:
        raise Rejected(f"the archive entry {name!r} is encrypted")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise Rejected(f"the archive entry {name!r} is a symbolic link")
    parts = PurePosixPath(name).parts
    if (
        "\0" in name
        or "\\" in name
        or name.startswith("/")
        or re.match(r"^[A-Za-z]:", name)
        or ".." in parts
    ):
        raise Rejected(f"the archive entry {name!r} would be written outside its folder (zip-slip)")
    return name


def _check_sizes(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_ENTRIES:
        raise Rejected(f"the archive has {len(infos)} entries (at most {MAX_ENTRIES}): a zip bomb?")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNPACKED:
        raise Rejected(
            f"the archive unpacks to {total >> 20} MiB (at most {MAX_UNPACKED >> 20}): a zip bomb?"
        )
    for info in infos:
        if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(1, info.compress_size):
            raise Rejected(
                f"the archive entry {info.filename!r} is compressed more than {MAX_RATIO}×: "
                "a zip bomb?"
            )


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Stream one entry out, counting real bytes (headers can lie); returns the bytes written."""
    limit = min(budget, MAX_SOURCE_BYTES)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 16):
            written += len(chunk)
            if written > limit:
                raise Rejected(
                    f"the archive entry {info.filename!r} unpacks to more than {limit >> 10} KiB"
                )
            dst.write(chunk)
    return written
