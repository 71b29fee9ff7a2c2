"""The manifest file: round trip, absence, damage, and atomic replacement."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evergreen_etl.errors import SourceError
from evergreen_etl.extract import extract, read_manifest, write_manifest
from evergreen_etl.models import ManifestEntry
from evergreen_etl.settings import Settings


def _entry(source: str = "users", **changes: object) -> ManifestEntry:
    values: dict[str, object] = {
        "source": source,
        "url": f"https://example.test/{source}",
        "path": f"{source}.bin",
        "etag": '"abc"',
        "last_modified": datetime(2025, 6, 3, 10, 15, 30, tzinfo=UTC),
        "size": 12,
        "sha256": "0" * 64,
        "fetched_at": datetime(2025, 6, 4, 8, 0, 0, 123456, tzinfo=UTC),
        "downloaded": True,
    }
    return ManifestEntry.model_validate(values | changes)


def test_manifest_round_trips(tmp_path: Path) -> None:
    """What write_manifest writes, read_manifest reads back equal, keyed by source."""
    users, postcodes = _entry("users"), _entry("postcodes", etag=None, last_modified=None)

    path = write_manifest(tmp_path, [users, postcodes])

    assert path == tmp_path / "manifest.json"
    assert read_manifest(tmp_path) == {"users": users, "postcodes": postcodes}


def test_manifest_accepts_a_mapping(tmp_path: Path) -> None:
    """Entries may be given as the mapping read_manifest returns."""
    entries = {"users": _entry("users")}

    write_manifest(tmp_path, entries)

    assert read_manifest(tmp_path) == entries


def test_missing_manifest_reads_as_empty(tmp_path: Path) -> None:
    """No manifest yet means no previous entries."""
    assert read_manifest(tmp_path) == {}


def test_manifest_is_plain_json_with_utc_timestamps(tmp_path: Path) -> None:
    """The file is readable JSON with ISO-8601 timestamps that keep their UTC offset."""
    write_manifest(tmp_path, [_entry("users")])

    document = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))

    assert document["format"] == 1
    assert document["sources"]["users"]["fetched_at"] == "2025-06-04T08:00:00.123456Z"


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"format": 1, "sources": {"users": {"source": "users"}}}'],
    ids=["not-json", "not-an-object", "entry-incomplete"],
)
def test_damaged_manifest_is_a_one_line_source_error(tmp_path: Path, content: str) -> None:
    """A damaged manifest is reported in one line naming the file."""
    (tmp_path / "manifest.json").write_text(content, encoding="utf-8")

    with pytest.raises(SourceError, match="is not a valid extract manifest") as failure:
        read_manifest(tmp_path)

    assert str(tmp_path / "manifest.json") in str(failure.value)
    assert "\n" not in str(failure.value)


def test_rewriting_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Replacing the manifest leaves only manifest.json behind."""
    write_manifest(tmp_path, [_entry("users")])
    write_manifest(tmp_path, [_entry("users", size=99)])

    assert [path.name for path in tmp_path.iterdir()] == ["manifest.json"]
    assert read_manifest(tmp_path)["users"].size == 99


def test_extract_recovers_from_a_damaged_manifest(
    settings: Settings, source_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged manifest costs a full fetch and a warning, then is rewritten."""
    settings.raw_dir.mkdir(parents=True)
    (settings.raw_dir / "manifest.json").write_text("{not json", encoding="utf-8")

    result = extract(
        settings,
        users_url=str(source_dir / "users.json"),
        postcodes_url=str(source_dir / "postcodes.zip"),
        progress=False,
    )

    assert result.users.downloaded is True
    assert read_manifest(settings.raw_dir)["users"] == result.users
    assert any(
        r.levelno == logging.WARNING and "manifest" in r.getMessage() for r in caplog.records
    )
