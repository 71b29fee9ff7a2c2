"""Local sources: plain paths and file:// URLs, copied atomically with a checksum."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evergreen_etl.errors import ConfigurationError, SourceError
from evergreen_etl.extract.fetch import fetch_source


def _copy(url: str, dest: Path, **options: int) -> None:
    fetch_source("users", url, dest, previous=None, timeout=5, retries=0, progress=False, **options)


def test_local_copy_is_byte_identical_and_checksummed(source_dir: Path, tmp_path: Path) -> None:
    """A local file is copied as it is; size, sha256 and mtime are recorded."""
    source = source_dir / "users.json"
    dest = tmp_path / "raw" / "users.json"

    entry = fetch_source(
        "users", str(source), dest, previous=None, timeout=5, retries=0, progress=False
    )

    assert dest.read_bytes() == source.read_bytes()
    assert entry.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert entry.size == source.stat().st_size
    assert entry.last_modified is not None
    assert entry.last_modified.utcoffset() == timedelta(0)
    mtime = datetime.fromtimestamp(source.stat().st_mtime, tz=UTC)
    assert abs(entry.last_modified - mtime) <= timedelta(microseconds=1)
    assert entry.etag is None
    assert entry.path == "users.json"
    assert entry.url == str(source)


def test_unchanged_local_source_is_not_copied_again(source_dir: Path, tmp_path: Path) -> None:
    """Same path, size and mtime as recorded, raw file intact: reused, not rewritten."""
    source = source_dir / "users.json"
    dest = tmp_path / "raw" / "users.json"
    first = fetch_source("users", str(source), dest, timeout=5, retries=0, progress=False)
    written = dest.stat().st_ino, dest.stat().st_mtime_ns

    second = fetch_source(
        "users", str(source), dest, previous=first, timeout=5, retries=0, progress=False
    )

    assert second.downloaded is False
    assert second.sha256 == first.sha256
    assert (dest.stat().st_ino, dest.stat().st_mtime_ns) == written


def test_touched_local_source_is_copied_again(source_dir: Path, tmp_path: Path) -> None:
    """A new mtime on the source means a fresh copy, even with the same size."""
    source = source_dir / "users.json"
    dest = tmp_path / "raw" / "users.json"
    first = fetch_source("users", str(source), dest, timeout=5, retries=0, progress=False)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))

    second = fetch_source(
        "users", str(source), dest, previous=first, timeout=5, retries=0, progress=False
    )

    assert second.downloaded is True
    assert second.last_modified != first.last_modified


def test_damaged_raw_file_is_replaced(source_dir: Path, tmp_path: Path) -> None:
    """When the raw file no longer holds the recorded bytes, the source is copied again."""
    source = source_dir / "users.json"
    dest = tmp_path / "raw" / "users.json"
    first = fetch_source("users", str(source), dest, timeout=5, retries=0, progress=False)
    dest.write_bytes(b"X" * first.size)

    second = fetch_source(
        "users", str(source), dest, previous=first, timeout=5, retries=0, progress=False
    )

    assert second.downloaded is True
    assert dest.read_bytes() == source.read_bytes()


def test_relative_path_is_read_from_the_working_directory(
    source_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path is resolved against the working directory and recorded absolute."""
    monkeypatch.chdir(source_dir.parent)
    dest = tmp_path / "raw" / "users.json"

    entry = fetch_source(
        "users", "www/users.json", dest, previous=None, timeout=5, retries=0, progress=False
    )

    assert dest.read_bytes() == (source_dir / "users.json").read_bytes()
    assert entry.url == str((source_dir / "users.json").resolve())


def test_file_url_with_escaped_characters(tmp_path: Path) -> None:
    """A file:// URL is decoded (``%20`` is a space) and read like a path."""
    source = tmp_path / "my sources" / "users.json"
    source.parent.mkdir()
    source.write_bytes(b"[]\n")
    dest = tmp_path / "raw" / "users.json"

    _copy(source.as_uri(), dest)

    assert "%20" in source.as_uri()
    assert dest.read_bytes() == b"[]\n"


def test_missing_local_file_is_a_source_error_naming_the_path(tmp_path: Path) -> None:
    """A path that does not exist fails with a SourceError that names it."""
    missing = tmp_path / "nowhere" / "users.json"

    with pytest.raises(SourceError, match=f"source file {missing} does not exist"):
        _copy(str(missing), tmp_path / "raw" / "users.json")


def test_directory_is_not_a_source(tmp_path: Path) -> None:
    """A directory given as a source is reported as such."""
    with pytest.raises(SourceError, match="is a directory"):
        _copy(str(tmp_path), tmp_path / "raw" / "users.json")


def test_local_file_over_the_limit_is_refused(source_dir: Path, tmp_path: Path) -> None:
    """A local file larger than max_bytes is refused and nothing is written."""
    dest = tmp_path / "raw" / "users.json"

    with pytest.raises(SourceError, match="over the 10 byte limit"):
        _copy(str(source_dir / "users.json"), dest, max_bytes=10)

    assert not dest.exists()


@pytest.mark.parametrize(
    "url",
    ["ftp://example.test/users.json", "s3://bucket/users.json", "gopher://example.test/x"],
    ids=["ftp", "s3", "gopher"],
)
def test_unknown_scheme_is_a_configuration_error(url: str, tmp_path: Path) -> None:
    """Only http(s), file and plain paths are sources; anything else is a one-line error."""
    with pytest.raises(ConfigurationError, match="unsupported scheme") as failure:
        _copy(url, tmp_path / "raw" / "users.json")

    assert "\n" not in str(failure.value)


def test_file_url_naming_a_remote_host_is_refused(tmp_path: Path) -> None:
    """``file://server/share`` is not local, so it is refused rather than misread."""
    with pytest.raises(ConfigurationError, match="must be local"):
        _copy("file://fileserver/exports/users.json", tmp_path / "raw" / "users.json")
