"""The extract stage end to end: both sources, the manifest, and a real HTTP server."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from evergreen_etl.errors import ConfigurationError, SourceError
from evergreen_etl.extract import extract, read_manifest
from evergreen_etl.models import ExtractResult
from evergreen_etl.settings import Settings
from support.http_server import ScriptedResponse, SourceServer


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _http_extract(settings: Settings, server: SourceServer) -> ExtractResult:
    return extract(
        settings,
        users_url=server.url("users.json"),
        postcodes_url=server.url("postcodes.zip"),
        progress=False,
    )


def test_extract_from_plain_paths(settings: Settings, source_dir: Path) -> None:
    """Plain paths are copied to raw/users.json and raw/postcodes.zip and recorded."""
    result = extract(
        settings,
        users_url=str(source_dir / "users.json"),
        postcodes_url=str(source_dir / "postcodes.zip"),
        progress=False,
    )

    raw = settings.raw_dir
    assert (raw / "users.json").read_bytes() == (source_dir / "users.json").read_bytes()
    assert (raw / "postcodes.zip").read_bytes() == (source_dir / "postcodes.zip").read_bytes()
    assert result.manifest_path == raw / "manifest.json"
    assert read_manifest(raw) == {"users": result.users, "postcodes": result.postcodes}


def test_extract_from_file_urls(settings: Settings, source_dir: Path) -> None:
    """file:// URLs are read like paths."""
    result = extract(
        settings,
        users_url=(source_dir / "users.json").as_uri(),
        postcodes_url=(source_dir / "postcodes.zip").as_uri(),
        progress=False,
    )

    assert result.users.sha256 == _sha256(source_dir / "users.json")
    assert result.postcodes.sha256 == _sha256(source_dir / "postcodes.zip")


def test_second_local_extract_reuses_both_files(settings: Settings, source_dir: Path) -> None:
    """Unchanged local sources are recognised through the written manifest and not copied."""
    urls = {
        "users_url": str(source_dir / "users.json"),
        "postcodes_url": str(source_dir / "postcodes.zip"),
    }
    first = extract(settings, **urls, progress=False)

    second = extract(settings, **urls, progress=False)

    assert (second.users.downloaded, second.postcodes.downloaded) == (False, False)
    assert second.users.sha256 == first.users.sha256
    assert read_manifest(settings.raw_dir)["users"].downloaded is False


def test_urls_default_to_the_settings(tmp_path: Path, source_dir: Path) -> None:
    """Without explicit URLs, extract fetches settings.users_url and settings.postcodes_url."""
    settings = Settings(
        data_dir=tmp_path / "data",
        users_url=str(source_dir / "users.json"),
        postcodes_url=str(source_dir / "postcodes.zip"),
    )

    result = extract(settings, progress=False)

    assert result.users.url == str(source_dir / "users.json")
    assert result.postcodes.url == str(source_dir / "postcodes.zip")


def test_extract_over_http(settings: Settings, server: SourceServer, source_dir: Path) -> None:
    """Both sources download from a real server with their ETag and Last-Modified recorded."""
    result = _http_extract(settings, server)

    assert (settings.raw_dir / "users.json").read_bytes() == (
        source_dir / "users.json"
    ).read_bytes()
    for entry in (result.users, result.postcodes):
        assert entry.downloaded is True
        assert entry.etag is not None
        assert entry.last_modified is not None
        assert entry.last_modified.tzinfo is not None
        assert entry.sha256 == _sha256(settings.raw_dir / entry.path)
    assert [request.is_conditional for request in server.requests] == [False, False]


def test_second_http_extract_sends_a_conditional_get_and_reuses_the_file(
    settings: Settings, server: SourceServer
) -> None:
    """An unchanged remote file answers 304 to If-None-Match; the raw file is not rewritten."""
    first = extract(
        settings,
        users_url=server.url("users.json"),
        postcodes_url=server.url("postcodes.zip"),
        progress=False,
    )
    raw_users = settings.raw_dir / "users.json"
    before = raw_users.stat().st_ino, raw_users.stat().st_mtime_ns

    second = extract(
        settings,
        users_url=server.url("users.json"),
        postcodes_url=server.url("postcodes.zip"),
        progress=False,
    )

    request = server.requests_for("users.json")[-1]
    assert request.headers["if-none-match"] == first.users.etag
    assert "if-modified-since" in request.headers
    assert second.users.downloaded is False
    assert second.postcodes.downloaded is False
    assert second.users.sha256 == first.users.sha256
    assert second.users.etag == first.users.etag
    assert (raw_users.stat().st_ino, raw_users.stat().st_mtime_ns) == before


def test_changed_remote_file_is_downloaded_again(
    settings: Settings, server: SourceServer, source_dir: Path
) -> None:
    """A conditional GET for a file that changed gets the new body."""
    _http_extract(settings, server)
    (source_dir / "users.json").write_bytes(b"[]\n")

    second = extract(
        settings,
        users_url=server.url("users.json"),
        postcodes_url=server.url("postcodes.zip"),
        progress=False,
    )

    assert server.requests_for("users.json")[-1].is_conditional
    assert second.users.downloaded is True
    assert (settings.raw_dir / "users.json").read_bytes() == b"[]\n"


def test_raw_file_changed_locally_is_fetched_without_conditions(
    settings: Settings, server: SourceServer, source_dir: Path
) -> None:
    """If the raw file no longer matches the manifest, no conditional GET is sent."""
    _http_extract(settings, server)
    (settings.raw_dir / "users.json").write_bytes(b"tampered")

    second = extract(
        settings,
        users_url=server.url("users.json"),
        postcodes_url=server.url("postcodes.zip"),
        progress=False,
    )

    assert not server.requests_for("users.json")[-1].is_conditional
    assert second.users.downloaded is True
    assert (settings.raw_dir / "users.json").read_bytes() == (
        source_dir / "users.json"
    ).read_bytes()


def test_if_modified_since_alone_is_enough(settings: Settings, source_dir: Path) -> None:
    """A server without ETags still answers 304 to If-Modified-Since."""
    with SourceServer(source_dir, etag=False) as server:
        _http_extract(settings, server)
        second = extract(
            settings,
            users_url=server.url("users.json"),
            postcodes_url=server.url("postcodes.zip"),
            progress=False,
        )

        request = server.requests_for("users.json")[-1]
    assert "if-none-match" not in request.headers
    assert "if-modified-since" in request.headers
    assert second.users.downloaded is False


def test_truncated_body_over_a_real_socket_is_retried(
    settings: Settings, server: SourceServer, source_dir: Path, backoff_delays: list[float]
) -> None:
    """A connection dropped mid-body is retried; the file kept is the complete one."""
    server.script("users.json", ScriptedResponse(truncate_after=10))

    result = _http_extract(settings, server)

    assert len(server.requests_for("users.json")) == 2
    assert len(backoff_delays) == 1
    assert result.users.sha256 == _sha256(source_dir / "users.json")


def test_truncated_every_time_keeps_the_previous_file_and_manifest(
    settings: Settings, server: SourceServer
) -> None:
    """When every attempt is cut short, extract fails and leaves raw/ exactly as it was."""
    _http_extract(settings, server)
    raw = settings.raw_dir
    before = {path.name: path.read_bytes() for path in raw.iterdir()}
    server.script("users.json", *[ScriptedResponse(truncate_after=10)] * 3)

    with pytest.raises(SourceError, match="after 3 attempts"):
        extract(
            settings,
            users_url=server.url("users.json"),
            postcodes_url=server.url("postcodes.zip"),
            progress=False,
        )

    assert {path.name: path.read_bytes() for path in raw.iterdir()} == before


def test_server_error_then_success_over_a_real_socket(
    settings: Settings, server: SourceServer
) -> None:
    """A 503 from the real server is retried and the download completes."""
    server.script("postcodes.zip", ScriptedResponse(503, headers={"Retry-After": "1"}))

    result = _http_extract(settings, server)

    assert [r.path for r in server.requests] == ["/users.json", "/postcodes.zip", "/postcodes.zip"]
    assert result.postcodes.downloaded is True


def test_redirect_over_a_real_socket_is_followed(
    settings: Settings, server: SourceServer, source_dir: Path
) -> None:
    """A 301 to the file's new address is followed."""
    server.script("old/users.json", ScriptedResponse(301, headers={"Location": "/users.json"}))

    result = extract(
        settings,
        users_url=server.url("old/users.json"),
        postcodes_url=server.url("postcodes.zip"),
        progress=False,
    )

    assert result.users.sha256 == _sha256(source_dir / "users.json")


def test_not_found_over_a_real_socket_names_the_url(
    settings: Settings, server: SourceServer
) -> None:
    """A 404 fails at once with the URL in the message and no manifest written."""
    url = server.url("missing.json")

    with pytest.raises(SourceError, match=f"{url} answered HTTP 404"):
        extract(settings, users_url=url, postcodes_url=server.url("postcodes.zip"), progress=False)

    assert len(server.requests_for("missing.json")) == 1
    assert not (settings.raw_dir / "manifest.json").exists()


def test_failed_extract_keeps_the_previous_manifest(settings: Settings, source_dir: Path) -> None:
    """The manifest is rewritten only after both sources succeed."""
    users, postcodes = str(source_dir / "users.json"), str(source_dir / "postcodes.zip")
    extract(settings, users_url=users, postcodes_url=postcodes, progress=False)
    manifest = settings.raw_dir / "manifest.json"
    before = manifest.read_bytes()
    (source_dir / "users.json").write_bytes(b"[]\n")

    with pytest.raises(SourceError, match="does not exist"):
        extract(settings, users_url=users, postcodes_url=postcodes + ".gone", progress=False)

    assert manifest.read_bytes() == before


def test_bad_scheme_is_refused_before_anything_is_fetched(
    settings: Settings, source_dir: Path
) -> None:
    """An unsupported postcodes URL fails before the users file is fetched."""
    with pytest.raises(ConfigurationError, match="unsupported scheme 'ftp'"):
        extract(
            settings,
            users_url=str(source_dir / "users.json"),
            postcodes_url="ftp://example.test/postcodes.zip",
            progress=False,
        )

    assert not (settings.raw_dir / "users.json").exists()


def test_extract_prints_nothing_on_stdout(
    settings: Settings, server: SourceServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even with progress on, stdout stays empty: it is reserved for machine-readable output."""
    extract(
        settings,
        users_url=server.url("users.json"),
        postcodes_url=server.url("postcodes.zip"),
        progress=True,
    )

    assert capsys.readouterr().out == ""


def test_each_source_is_logged_with_size_checksum_and_outcome(
    settings: Settings, server: SourceServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a terminal, the outcome per source is logged at INFO."""
    caplog.set_level(logging.INFO, logger="evergreen_etl.extract")

    first = _http_extract(settings, server)
    _http_extract(settings, server)

    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    sha_prefix = first.users.sha256[:12]
    assert any(m.startswith("users:") and sha_prefix in m and "downloaded" in m for m in messages)
    assert any(m.startswith("users:") and "reused" in m for m in messages)
