"""Durable writes: several files committed together, fsynced, or none of them touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evergreen_etl.datadir.files import atomic_output, atomic_outputs, file_sha256


def _dests(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    dests = [directory / name for name in ("a.csv", "b.csv", "c.json")]
    for dest in dests:
        dest.write_text(f"old {dest.name}")
    return dests


def test_outputs_replace_every_destination_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On success each destination gets its new bytes, moved into place in the order given."""
    dests = _dests(tmp_path / "staged")
    moved: list[str] = []
    replace = os.replace

    def recording_replace(source: Path, dest: Path) -> None:
        moved.append(Path(dest).name)
        replace(source, dest)

    monkeypatch.setattr(os, "replace", recording_replace)
    with atomic_outputs(*dests) as temps:
        for temp, dest in zip(temps, dests, strict=True):
            temp.write_text(f"new {dest.name}")

    assert [dest.read_text() for dest in dests] == [f"new {dest.name}" for dest in dests]
    assert moved == ["a.csv", "b.csv", "c.json"]
    assert sorted(path.name for path in dests[0].parent.iterdir()) == ["a.csv", "b.csv", "c.json"]


def test_a_failure_leaves_every_destination_untouched(tmp_path: Path) -> None:
    """An exception before the commit keeps the old files and removes the temporary ones."""
    dests = _dests(tmp_path / "staged")

    def interrupted() -> None:
        with atomic_outputs(*dests) as temps:
            for temp in temps:
                temp.write_text("half written")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted()

    assert [dest.read_text() for dest in dests] == [f"old {dest.name}" for dest in dests]
    assert sorted(path.name for path in dests[0].parent.iterdir()) == ["a.csv", "b.csv", "c.json"]


def test_every_file_is_fsynced_before_it_replaces_its_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each new file's bytes reach the disk before any rename, as the raw files' do."""
    dests = _dests(tmp_path / "staged")
    events: list[str] = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), replace(a, b))[1])

    with atomic_outputs(*dests) as temps:
        for temp in temps:
            temp.write_text("new")

    assert events[:6] == ["fsync"] * 3 + ["replace"] * 3
    assert events[6:] == ["fsync"]  # the directory, once


def test_atomic_output_writes_the_bytes_and_their_checksum_matches(tmp_path: Path) -> None:
    """A single atomic output holds exactly what was written."""
    dest = tmp_path / "raw" / "file.bin"

    with atomic_output(dest) as handle:
        handle.write(b"payload")

    assert dest.read_bytes() == b"payload"
    assert file_sha256(dest) == "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5"
