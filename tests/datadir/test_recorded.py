"""The one check of whether a file is the one extract recorded, and the checksum it gives."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evergreen_etl.datadir import DataDir
from evergreen_etl.datadir.manifest import (
    recorded_entry,
    recorded_sha256,
    source_label,
    write_manifest,
)
from evergreen_etl.models import ManifestEntry

URL = "https://example.test/postcodes.zip"
CONTENT = b"the lookup"


def _extracted(data: DataDir, sha256: str | None = None) -> ManifestEntry:
    """Write raw/postcodes.zip, then its manifest entry, as extract does."""
    data.raw.mkdir(parents=True)
    data.raw_postcodes.write_bytes(CONTENT)
    entry = ManifestEntry(
        source="postcodes",
        url=URL,
        path=data.raw_postcodes.name,
        size=len(CONTENT),
        sha256=sha256 or hashlib.sha256(CONTENT).hexdigest(),
        fetched_at=datetime(2024, 1, 1, tzinfo=UTC),
        downloaded=True,
    )
    write_manifest(data.raw, [entry])
    return entry


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    """An empty data directory."""
    return DataDir(tmp_path / "data")


def test_the_recorded_file_has_its_entry_and_label(data: DataDir) -> None:
    """The raw file extract recorded is found in the manifest and named by its URL."""
    entry = _extracted(data)

    found = recorded_entry(data.raw, "postcodes", data.raw_postcodes)

    assert found == entry
    assert source_label(found, data.raw_postcodes) == URL


def test_another_file_has_no_entry(data: DataDir, tmp_path: Path) -> None:
    """A file given by path is not the recorded one, even with the same name and bytes."""
    _extracted(data)
    other = tmp_path / "elsewhere" / data.raw_postcodes.name
    other.parent.mkdir()
    other.write_bytes(CONTENT)

    found = recorded_entry(data.raw, "postcodes", other)

    assert found is None
    assert source_label(found, other) == str(other)


def test_no_manifest_means_no_entry(data: DataDir) -> None:
    """Without a manifest nothing is recorded."""
    data.raw.mkdir(parents=True)
    data.raw_postcodes.write_bytes(CONTENT)

    assert recorded_entry(data.raw, "postcodes", data.raw_postcodes) is None


def test_an_unchanged_file_takes_the_recorded_checksum(data: DataDir) -> None:
    """While the file is as recorded, its checksum is the manifest's (it is not hashed)."""
    entry = _extracted(data, sha256="f" * 64)  # a checksum hashing could not give

    assert recorded_sha256(data.raw_postcodes, entry, data.raw) == "f" * 64


def test_a_file_changed_after_the_manifest_is_hashed(data: DataDir) -> None:
    """A file rewritten after the manifest was written gets its own checksum."""
    entry = _extracted(data, sha256="f" * 64)
    changed = b"an edited!"  # the recorded size, other bytes
    assert len(changed) == len(CONTENT)
    data.raw_postcodes.write_bytes(changed)
    later = data.manifest.stat().st_mtime_ns + 1_000_000_000
    os.utime(data.raw_postcodes, ns=(later, later))

    got = recorded_sha256(data.raw_postcodes, entry, data.raw)

    assert got == hashlib.sha256(changed).hexdigest()


def test_a_file_of_another_size_is_hashed(data: DataDir) -> None:
    """A file whose size differs from the recorded one gets its own checksum."""
    entry = _extracted(data, sha256="f" * 64)
    data.raw_postcodes.write_bytes(b"shorter")
    os.utime(data.raw_postcodes, ns=(0, 0))

    got = recorded_sha256(data.raw_postcodes, entry, data.raw)

    assert got == hashlib.sha256(b"shorter").hexdigest()
