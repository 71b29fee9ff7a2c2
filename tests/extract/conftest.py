"""Fixtures for the extract tests: sample sources, fast retries, a real HTTP server."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from evergreen_etl.extract import retry
from evergreen_etl.settings import Settings
from support.http_server import SourceServer

USERS_JSON = b"""{
  "email": "a@example.com",
  "address": {"postcode": "AB1 3QF"}
}
{
  "email": "b@example.com",
  "address": {"postcode": "E3"}
}
"""


def _postcodes_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "National_Statistics_Postcode_Lookup_Latest_Centroids.csv",
            "pcds,laua\nAB1 3QF,S12000033\n",
        )
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def backoff_delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits between retries instead of sleeping through them."""
    delays: list[float] = []
    monkeypatch.setattr(retry, "sleep", delays.append)
    return delays


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private data directory and two retries."""
    return Settings(data_dir=tmp_path / "data", http_retries=2, http_timeout=5.0)


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    """A directory holding a small users.json and postcodes.zip."""
    directory = tmp_path / "www"
    directory.mkdir()
    (directory / "users.json").write_bytes(USERS_JSON)
    (directory / "postcodes.zip").write_bytes(_postcodes_zip())
    return directory


@pytest.fixture
def server(source_dir: Path) -> Iterator[SourceServer]:
    """A real HTTP server on 127.0.0.1 serving ``source_dir``."""
    with SourceServer(source_dir) as running:
        yield running
    assert running.errors == []
