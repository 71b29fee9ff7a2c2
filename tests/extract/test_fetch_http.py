"""HTTP fetching against mocked responses: retries, refusals, truncation and size limits."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock, IteratorStream

from evergreen_etl.errors import ConfigurationError, SourceError
from evergreen_etl.extract.fetch import fetch_source
from evergreen_etl.extract.retry import BACKOFF_CAP_SECONDS, RETRY_AFTER_CAP_SECONDS, backoff_delay

URL = "https://example.test/users.json"
BODY = b'{"email": "a@example.com"}\n'


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """Where the raw file goes."""
    return tmp_path / "raw" / "users.json"


def test_503_then_200_is_retried(
    httpx_mock: HTTPXMock, dest: Path, backoff_delays: list[float]
) -> None:
    """A 503 is transient: the request is repeated after a backoff and the file is written."""
    httpx_mock.add_response(url=URL, status_code=503)
    httpx_mock.add_response(url=URL, content=BODY)

    entry = fetch_source("users", URL, dest, previous=None, timeout=5, retries=2, progress=False)

    assert dest.read_bytes() == BODY
    assert entry.sha256 == hashlib.sha256(BODY).hexdigest()
    assert len(httpx_mock.get_requests()) == 2
    assert len(backoff_delays) == 1


def test_429_waits_as_long_as_retry_after_says(
    httpx_mock: HTTPXMock, dest: Path, backoff_delays: list[float]
) -> None:
    """A 429 with Retry-After: 7 is retried after exactly seven seconds."""
    httpx_mock.add_response(url=URL, status_code=429, headers={"Retry-After": "7"})
    httpx_mock.add_response(url=URL, content=BODY)

    fetch_source("users", URL, dest, previous=None, timeout=5, retries=2, progress=False)

    assert backoff_delays == [7.0]
    assert dest.read_bytes() == BODY


def test_retry_after_is_capped(
    httpx_mock: HTTPXMock, dest: Path, backoff_delays: list[float]
) -> None:
    """A server asking for an hour's wait does not stall the pipeline for an hour."""
    httpx_mock.add_response(url=URL, status_code=503, headers={"Retry-After": "3600"})
    httpx_mock.add_response(url=URL, content=BODY)

    fetch_source("users", URL, dest, previous=None, timeout=5, retries=1, progress=False)

    assert backoff_delays == [RETRY_AFTER_CAP_SECONDS]


@pytest.mark.parametrize("status", [404, 403, 410], ids=["not-found", "forbidden", "gone"])
def test_client_error_fails_at_once_naming_url_and_status(
    httpx_mock: HTTPXMock, dest: Path, status: int, backoff_delays: list[float]
) -> None:
    """A 4xx other than 429 is not retried; the error names the URL and the status."""
    httpx_mock.add_response(url=URL, status_code=status)

    with pytest.raises(SourceError, match=rf"{URL} answered HTTP {status}"):
        fetch_source("users", URL, dest, previous=None, timeout=5, retries=3, progress=False)

    assert len(httpx_mock.get_requests()) == 1
    assert backoff_delays == []
    assert not dest.exists()


def test_read_timeout_then_success(
    httpx_mock: HTTPXMock, dest: Path, backoff_delays: list[float]
) -> None:
    """A read timeout is retried and the second answer is kept."""
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=URL)
    httpx_mock.add_response(url=URL, content=BODY)

    entry = fetch_source("users", URL, dest, previous=None, timeout=5, retries=2, progress=False)

    assert entry.downloaded is True
    assert dest.read_bytes() == BODY
    assert len(backoff_delays) == 1


def test_persistent_connection_errors_give_up_after_the_retries(
    httpx_mock: HTTPXMock, dest: Path, backoff_delays: list[float]
) -> None:
    """With retries=2 a refused connection is tried three times, then reported once."""
    httpx_mock.add_exception(httpx.ConnectError("connection refused"), url=URL, is_reusable=True)

    with pytest.raises(SourceError, match=r"after 3 attempts: ConnectError: connection refused"):
        fetch_source("users", URL, dest, previous=None, timeout=5, retries=2, progress=False)

    assert len(httpx_mock.get_requests()) == 3
    assert len(backoff_delays) == 2


@pytest.mark.parametrize(
    "announced", [len(BODY) + 10, len(BODY) - 5], ids=["body-shorter", "body-longer"]
)
def test_content_length_mismatch_never_replaces_the_previous_file(
    httpx_mock: HTTPXMock, dest: Path, announced: int
) -> None:
    """A body that disagrees with Content-Length is retried, then refused; the old file stays."""
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"previous good file\n")
    httpx_mock.add_response(
        url=URL, content=BODY, headers={"Content-Length": str(announced)}, is_reusable=True
    )

    with pytest.raises(SourceError, match="Content-Length announced"):
        fetch_source("users", URL, dest, previous=None, timeout=5, retries=2, progress=False)

    assert dest.read_bytes() == b"previous good file\n"
    assert list(dest.parent.iterdir()) == [dest]
    assert len(httpx_mock.get_requests()) == 3


def test_announced_size_over_the_limit_is_refused(httpx_mock: HTTPXMock, dest: Path) -> None:
    """A Content-Length above max_bytes is refused before any byte is written."""
    httpx_mock.add_response(url=URL, content=BODY)

    with pytest.raises(SourceError, match="over the 10 byte limit"):
        fetch_source(
            "users", URL, dest, previous=None, timeout=5, retries=2, progress=False, max_bytes=10
        )

    assert len(httpx_mock.get_requests()) == 1
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_streamed_body_over_the_limit_is_refused(httpx_mock: HTTPXMock, dest: Path) -> None:
    """A body without Content-Length is cut off once it passes max_bytes; no temp file stays."""
    httpx_mock.add_response(url=URL, stream=IteratorStream([b"x" * 8, b"x" * 8, b"x" * 8]))

    with pytest.raises(SourceError, match="larger than the 10 byte limit"):
        fetch_source(
            "users", URL, dest, previous=None, timeout=5, retries=2, progress=False, max_bytes=10
        )

    assert list(dest.parent.iterdir()) == []


def test_validators_are_recorded(httpx_mock: HTTPXMock, dest: Path) -> None:
    """ETag is kept verbatim and Last-Modified becomes a timezone-aware UTC datetime."""
    httpx_mock.add_response(
        url=URL,
        content=BODY,
        headers={"ETag": '"abc123"', "Last-Modified": "Tue, 03 Jun 2025 10:15:30 GMT"},
    )

    entry = fetch_source("users", URL, dest, previous=None, timeout=5, retries=0, progress=False)

    assert entry.etag == '"abc123"'
    assert entry.last_modified == datetime(2025, 6, 3, 10, 15, 30, tzinfo=UTC)
    assert entry.fetched_at.tzinfo is not None
    assert entry.path == "users.json"
    assert entry.size == len(BODY)


def test_redirects_are_followed(httpx_mock: HTTPXMock, dest: Path) -> None:
    """A 302 to another URL is followed and the final body kept."""
    moved = "https://cdn.example.test/users-v2.json"
    httpx_mock.add_response(url=URL, status_code=302, headers={"Location": moved})
    httpx_mock.add_response(url=moved, content=BODY)

    fetch_source("users", URL, dest, previous=None, timeout=5, retries=0, progress=False)

    assert dest.read_bytes() == BODY


def test_password_in_url_is_sent_as_basic_auth_and_never_recorded(
    httpx_mock: HTTPXMock, dest: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Credentials in the URL authenticate the request but stay out of manifest, errors and logs."""
    caplog.set_level(logging.DEBUG)
    url = "https://reader:s3cr3t@example.test/users.json"
    httpx_mock.add_response(url="https://example.test/users.json", content=BODY)
    httpx_mock.add_response(url="https://example.test/users.json", status_code=404)

    entry = fetch_source("users", url, dest, previous=None, timeout=5, retries=0, progress=False)
    with pytest.raises(SourceError) as failure:
        fetch_source("users", url, dest, previous=None, timeout=5, retries=0, progress=False)

    sent = httpx_mock.get_requests()[0]
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"reader:s3cr3t").decode()
    assert entry.url == "https://reader:***@example.test/users.json"
    assert "s3cr3t" not in str(failure.value)
    assert "s3cr3t" not in caplog.text


def test_http_url_without_host_is_a_configuration_error(dest: Path) -> None:
    """``http:///users.json`` is a typo, not a network failure."""
    with pytest.raises(ConfigurationError, match="has no host"):
        fetch_source(
            "users", "http:///users.json", dest, previous=None, timeout=5, retries=0, progress=False
        )


def test_backoff_grows_and_is_capped() -> None:
    """Backoff doubles per attempt (with jitter of at most half) and never passes the cap."""
    first, third = backoff_delay(1), backoff_delay(3)

    assert 0.25 <= first <= 0.5
    assert 1.0 <= third <= 2.0
    assert backoff_delay(50) <= BACKOFF_CAP_SECONDS
