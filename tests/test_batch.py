"""Batch grading (grader/batch.py, grader/intake.py): submissions in, one gradebook out."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import batch, intake, mutants, registry
from grader.notebooks import write_notebooks
from grader.runner import grade
from grader.session import Limits
from tests.conftest import ROOT, SOLUTION0, STUB0

HOSTILE = Path(__file__).parent / "hostile"
LIMITS = Limits()  # the defaults: tighter ones time honest training out on a busy machine


def _partial_source(phase0) -> str:
    mutant = next(m for m in mutants.load(phase0) if m.id == "softmax_no_max_shift")
    return mutant.apply(SOLUTION0.read_text())


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip whose bytes depend only on its members (fixed timestamps)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _honest(folder: Path, phase0) -> Path:
    """solution as a .py, stub as a folder, a partly right module in a nested zip folder."""
    folder.mkdir(parents=True)
    shutil.copyfile(SOLUTION0, folder / "ada.py")
    (folder / "bob").mkdir()
    shutil.copyfile(STUB0, folder / "bob" / "phase0_foundations.py")
    _zip(folder / "cy.zip", {"cy/phase0_foundations.py": _partial_source(phase0).encode()})
    return folder


def _tree_digest(folder: Path) -> str:
    return intake.sha256_of(folder)


def _rows(path: Path) -> dict[str, dict]:
    _, rows = batch.read_gradebook(path)
    return {r["id"]: r for r in rows}


# ---------------------------------------------------------------- intake: what is refused


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"../evil.py": b"x = 1"}, "zip-slip"),
        ({"/etc/evil.py": b"x = 1"}, "zip-slip"),
        ({"a/../../evil.py": b"x = 1"}, "zip-slip"),
    ],
)
def test_zip_slip_is_refused(tmp_path, phase0, members, reason):
    archive = _zip(tmp_path / "s.zip", members)
    with pytest.raises(intake.Rejected, match=reason):
        intake.stage(archive, phase0, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_a_symlink_entry_is_refused(tmp_path, phase0):
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("phase0_foundations.py")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, str(ROOT / "solutions" / "phase0_foundations.py"))
    with pytest.raises(intake.Rejected, match="symbolic link"):
        intake.stage(archive, phase0, tmp_path / "out")


def test_zip_bombs_are_refused(tmp_path, phase0):
    ratio = _zip(tmp_path / "ratio.zip", {"phase0_foundations.py": b"0" * (8 << 20)})
    with pytest.raises(intake.Rejected, match="zip bomb"):
        intake.stage(ratio, phase0, tmp_path / "a")
    many = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(intake.MAX_ENTRIES + 1)})
    with pytest.raises(intake.Rejected, match="entries"):
        intake.stage(many, phase0, tmp_path / "b")


def test_a_zip_whose_headers_lie_about_sizes_is_refused(tmp_path, phase0):
    archive = _zip(tmp_path / "liar.zip", {"phase0_foundations.py": b"x = 1\n" * (1 << 19)})
    data = bytearray(archive.read_bytes())
    # shrink the declared size in the central directory: extraction must count real bytes
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(intake.Rejected):
        intake.stage(archive, phase0, tmp_path / "out")


def test_a_non_utf8_entry_name_is_refused(tmp_path, phase0):
    archive = _zip(tmp_path / "n.zip", {"phase0_foundations.py": b"x = 1"})
    data = archive.read_bytes().replace(b"phase0_foundations.py", b"phase0_foundatio\xff\xfe.py")
    archive.write_bytes(data)
    with pytest.raises(intake.Rejected, match="UTF-8"):
        intake.stage(archive, phase0, tmp_path / "out")


def test_a_broken_zip_is_refused_with_a_message(tmp_path, phase0):
    (tmp_path / "b.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(intake.Rejected, match="not a readable zip"):
        intake.stage(tmp_path / "b.zip", phase0, tmp_path / "out")


def test_folders_with_symlinks_and_other_files_are_refused(tmp_path, phase0):
    folder = tmp_path / "sub"
    folder.mkdir()
    os.symlink(SOLUTION0, folder / "phase0_foundations.py")
    with pytest.raises(intake.Rejected, match="symbolic link"):
        intake.stage(folder, phase0, tmp_path / "a")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(intake.Rejected, match="not a submission"):
        intake.stage(tmp_path / "notes.txt", phase0, tmp_path / "b")
    (tmp_path / "latin1.py").write_bytes("x = 'é'\n".encode("latin-1"))
    with pytest.raises(intake.Rejected, match="UTF-8"):
        intake.stage(tmp_path / "latin1.py", phase0, tmp_path / "c")


def test_notebooks_nested_folders_and_earlier_phases_are_staged(tmp_path, phase0):
    solution = tmp_path / "solution"
    solution.mkdir()
    shutil.copyfile(SOLUTION0, solution / SOLUTION0.name)
    (notebook,) = write_notebooks(solution, tmp_path / "nb")
    staged = intake.stage(notebook, phase0, tmp_path / "a")
    assert "def softmax" in (staged / "phase0_foundations.py").read_text()
    nested = tmp_path / "upload" / "hw" / "src"
    nested.mkdir(parents=True)
    shutil.copyfile(SOLUTION0, nested / "phase0_foundations.py")
    shutil.copyfile(ROOT / "solutions" / "phase1_rnn.py", nested / "phase1_rnn.py")
    (nested / "scratch.py").write_text("import os\n")
    staged = intake.stage(tmp_path / "upload", phase0, tmp_path / "b")
    assert sorted(p.name for p in staged.iterdir()) == ["phase0_foundations.py", "phase1_rnn.py"]


# ---------------------------------------------------------------- shards and merge


def test_shards_partition_the_ids_deterministically():
    ids = [f"student{i:03d}" for i in range(200)]
    for count in (1, 2, 5):
        shards = [batch.shard_of(id, count) for id in ids]
        assert shards == [batch.shard_of(id, count) for id in ids]
        assert set(shards) == set(range(1, count + 1))
    assert batch.parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(ValueError, match="K/N"):
            batch.parse_shard(bad)


def _book(path: Path, rows: list[dict]) -> Path:
    header = ["id", "total", "status", "grader_version"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue())
    return path


def test_merge_refuses_missing_duplicate_and_mixed_shards(tmp_path):
    row = {"id": "a", "total": "1", "status": "graded", "grader_version": "v1"}
    _book(tmp_path / "gradebook.shard-1-of-3.csv", [row])
    _book(tmp_path / "gradebook.shard-2-of-3.csv", [{**row, "id": "b"}])
    with pytest.raises(ValueError, match="missing shard"):
        batch.merge([tmp_path])
    _book(tmp_path / "gradebook.shard-3-of-3.csv", [{**row, "id": "b"}])
    with pytest.raises(ValueError, match="both"):
        batch.merge([tmp_path])
    _book(tmp_path / "gradebook.shard-3-of-3.csv", [{**row, "id": "c", "grader_version": "v2"}])
    with pytest.raises(ValueError, match="grader versions"):
        batch.merge([tmp_path])
    _book(tmp_path / "gradebook.shard-3-of-3.csv", [{**row, "id": "c"}])
    merged = batch.merge([tmp_path])
    assert [r["id"] for r in batch.read_gradebook(merged)[1]] == ["a", "b", "c"]


# ---------------------------------------------------------------- the whole thing


def test_the_grader_version_is_a_digest_of_what_judges_the_phase(phase0):
    version = batch.grader_version(phase0)
    assert version == batch.grader_version(phase0)
    assert version.startswith("0.") and version != batch.grader_version(registry.phase(1))


@pytest.mark.slow
def test_hostile_submissions_change_only_their_own_rows(tmp_path, phase0, monkeypatch):
    """The hostile corpus mixed into honest work: honest rows equal an honest-only run made of
    two merged shards; re-running grades nothing again."""
    # the working tree may change while this runs (the version digests it): pin the version
    monkeypatch.setattr(batch, "grader_version", lambda phase: "0.0.0+test")
    mixed = _honest(tmp_path / "mixed", phase0)
    for path in sorted(HOSTILE.glob("*.py")):
        shutil.copyfile(path, mixed / f"hostile_{path.name}")
    (mixed / "notes.txt").write_text("not a submission")
    _zip(mixed / "slip.zip", {"../phase0_foundations.py": SOLUTION0.read_bytes()})
    before = _tree_digest(mixed)

    book = batch.run(mixed, phase0, tmp_path / "out", jobs=2, limits=LIMITS, progress=False)

    assert _tree_digest(mixed) == before, "grading changed a submission"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed", "out"]
    rows = _rows(book)
    assert len(rows) == len(list(mixed.iterdir()))
    for id, row in rows.items():
        assert row["status"] in ("graded", "rejected"), (id, row["detail"])
        assert (tmp_path / "out" / "results" / f"{id}.json").exists()
        if id.startswith("hostile_"):
            assert float(row["total"]) == 0, id
    assert rows["notes"]["status"] == rows["slip"]["status"] == "rejected"
    assert "zip-slip" in rows["slip"]["detail"]
    assert rows["ada"]["total"] == "100" and rows["bob"]["total"] == "0"
    assert 0 < float(rows["cy"]["total"]) < 100
    assert rows["ada"]["sha256"] == hashlib.sha256(SOLUTION0.read_bytes()).hexdigest()
    assert rows["ada"]["isolation"] and rows["ada"]["grader_version"] == "0.0.0+test"
    results = json.loads((tmp_path / "out" / "results" / "cy.json").read_text())
    assert any(t["visibility"] == "after_due_date" for t in results["tests"])
    solo = grade(phase0, tmp_path / "mixed" / "ada.py", hidden=True, limits=LIMITS)
    assert rows["ada"]["softmax"] == f"{solo.exercises[2].score:g}"

    # honest work alone, in two shards merged: the same rows
    alone = _honest(tmp_path / "alone", phase0)
    for k in (1, 2):
        batch.run(
            alone, phase0, tmp_path / "sharded", jobs=2, shard=(k, 2), limits=LIMITS, progress=False
        )
    merged = _rows(batch.merge([tmp_path / "sharded"]))
    assert merged == {id: rows[id] for id in ("ada", "bob", "cy")}, (merged, rows)

    # a re-run skips everything already graded with the same hash and grader version
    log = tmp_path / "out" / "batch.log"
    again = batch.run(mixed, phase0, tmp_path / "out", jobs=2, limits=LIMITS, progress=False)
    assert _rows(again) == rows
    assert log.read_text().splitlines()[-1].endswith(f"{len(rows)} already graded")


def test_the_cli_reports_a_missing_folder_cleanly(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "grader", "batch", str(tmp_path / "nope"), "--phase", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "not a folder" in run.stdout
