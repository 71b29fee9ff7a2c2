"""A bad network, end to end through the CLI: retried when it may pass, refused when it cannot,
and ``raw/`` (both files and the manifest) exactly as it was whenever an extract fails.

Decisions these tests pin down (see docs/failure-modes.md):
* a connection dropped mid-body is retried from the first byte (no ``Range`` resume): the
  retry is a clean restart into a new temporary file, so a truncated body is never kept;
* redirects are followed to any host (S3 and CDNs redirect across hosts), at most ten, with
  credentials from the URL never sent to the other host; https to plain http is refused.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from pytest_httpx import HTTPXMock
from typer.testing import CliRunner, Result

from evergreen_etl.errors import SourceError
from evergreen_etl.extract import extract, read_manifest
from evergreen_etl.extract.fetch import DEFAULT_MAX_BYTES, fetch_source
from evergreen_etl.extract.http import MAX_REDIRECTS
from evergreen_etl.settings import Settings
from reliability.checks import assert_fails_cleanly, invoke, tree, warehouse_digest
from reliability.fault_server import Fault, FaultServer
from support.http_server import ScriptedResponse, SourceServer
from support.sources import user, write_lookup_zip, write_users

RETRIES = 2  # three attempts
TIMEOUT = 1.0


@pytest.fixture(autouse=True)
def fast_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two retries and a one-second timeout, from the environment as a deployment sets them."""
    monkeypatch.setenv("EVERGREEN_HTTP_RETRIES", str(RETRIES))
    monkeypatch.setenv("EVERGREEN_HTTP_TIMEOUT", str(TIMEOUT))


def _write_sources(directory: Path, *emails: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_users(directory / "users.json", [user(email, "AB1 1AA") for email in emails])
    write_lookup_zip(directory / "postcodes.zip")
    return directory


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """A users.json and postcodes.zip to serve."""
    return _write_sources(tmp_path / "www", "first@example.com", "second@example.com")


@pytest.fixture
def faulty(www: Path) -> Iterator[FaultServer]:
    """A misbehaving server holding the two sources."""
    with FaultServer(_files(www)) as server:
        yield server


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The data directory of one test."""
    return tmp_path / "data"


def _extract(runner: CliRunner, data: Path, users_url: str, postcodes_url: str) -> Result:
    return invoke(
        runner,
        "extract",
        "--data-dir",
        str(data),
        "--users-url",
        users_url,
        "--postcodes-url",
        postcodes_url,
        "-q",
    )


def _extract_from(runner: CliRunner, data: Path, server: FaultServer | SourceServer) -> Result:
    return _extract(runner, data, server.url("users.json"), server.url("postcodes.zip"))


def _new_snapshot_served(server: FaultServer, tmp_path: Path) -> None:
    """The server now holds different files, as after the source was republished."""
    fresh = _write_sources(tmp_path / "www2", "third@example.com")
    write_lookup_zip(fresh / "postcodes.zip", extra_members={"notes.txt": b"republished"})
    server.files.update({f"/{name}": body for name, body in _files(fresh).items()})


@pytest.mark.parametrize(
    ("faults", "delays"),
    [
        ([Fault("status", status=500), Fault("status", status=503)], [0.5, 1.0]),
        ([Fault("status", status=503, headers={"Retry-After": "3"})], [3.0]),
        ([Fault("status", status=429, headers={"Retry-After": "7"})], [7.0]),
        ([Fault("stall_before_headers")], [0.5]),
        ([Fault("stall_mid_body", after=20)], [0.5]),
        ([Fault("drop", after=20), Fault("drop", after=5)], [0.5, 1.0]),
    ],
    ids=[
        "500-503-backoff",
        "503-retry-after",
        "429-retry-after",
        "timeout-before-headers",
        "timeout-mid-body",
        "dropped-mid-body-twice",
    ],
)
def test_transient_failure_then_success_is_retried_after_the_right_wait(
    runner: CliRunner,
    faulty: FaultServer,
    www: Path,
    data: Path,
    backoff_delays: list[float],
    faults: list[Fault],
    delays: list[float],
) -> None:
    """5xx, 429, timeouts and drops are retried: exponential backoff, or Retry-After if sent."""
    faulty.script("users.json", *faults)

    result = _extract_from(runner, data, faulty)

    assert result.exit_code == 0, result.stderr
    assert backoff_delays == delays
    assert faulty.requests_for("users.json") == len(faults) + 1
    assert (data / "raw" / "users.json").read_bytes() == (www / "users.json").read_bytes()


def test_retry_after_as_an_http_date_is_honoured(
    runner: CliRunner, faulty: FaultServer, data: Path, backoff_delays: list[float]
) -> None:
    """Retry-After given as a date means "wait until then", not a fixed backoff."""
    later = formatdate(time.time() + 20, usegmt=True)
    faulty.script("postcodes.zip", Fault("status", status=503, headers={"Retry-After": later}))

    result = _extract_from(runner, data, faulty)

    assert result.exit_code == 0, result.stderr
    (delay,) = backoff_delays
    assert 17.0 <= delay <= 20.0


PERSISTENT = [
    ("users", Fault("status", status=500), r"HTTP 500 Internal Server Error"),
    ("postcodes", Fault("status", status=503, headers={"Retry-After": "1"}), r"HTTP 503"),
    ("users", Fault("status", status=429), r"HTTP 429 Too Many Requests"),
    ("postcodes", Fault("stall_before_headers"), r"ReadTimeout"),
    ("users", Fault("stall_mid_body", after=20), r"ReadTimeout"),
    ("postcodes", Fault("drop", after=20), r"RemoteProtocolError: peer closed connection"),
    (
        "users",
        Fault("announce", length=10**6),
        r"RemoteProtocolError: .*\(received \d+ bytes, expected 1000000\)",
    ),
]


@pytest.mark.parametrize(
    ("source", "fault", "message"),
    PERSISTENT,
    ids=[
        "500",
        "503",
        "429",
        "timeout-before-headers",
        "timeout-mid-body",
        "dropped-mid-body",
        "content-length-mismatch",
    ],
)
def test_persistent_failure_leaves_raw_exactly_as_it_was(
    runner: CliRunner,
    faulty: FaultServer,
    data: Path,
    tmp_path: Path,
    backoff_delays: list[float],
    source: str,
    fault: Fault,
    message: str,
) -> None:
    """After the last retry: exit 3, one line naming the URL, and the previous raw files kept.

    The other source, fetched fine this time, does not replace its previous copy either.
    """
    assert _extract_from(runner, data, faulty).exit_code == 0
    before = tree(data / "raw")
    _new_snapshot_served(faulty, tmp_path)
    name = "users.json" if source == "users" else "postcodes.zip"
    faulty.script(name, *[fault] * (RETRIES + 1))

    result = _extract_from(runner, data, faulty)

    url = faulty.url(name).replace(".", r"\.")
    assert_fails_cleanly(result, 3, rf"{source}: could not fetch {url} after 3 attempts: {message}")
    assert tree(data / "raw") == before
    assert len(backoff_delays) == RETRIES


def test_dropped_connection_restarts_from_the_first_byte(
    runner: CliRunner, www: Path, data: Path
) -> None:
    """The retry after a drop asks for the whole file again (no Range) and keeps it whole."""
    with SourceServer(www) as server:
        server.script("postcodes.zip", ScriptedResponse(truncate_after=100))

        result = _extract_from(runner, data, server)

        retry = server.requests_for("postcodes.zip")[-1]
    assert result.exit_code == 0, result.stderr
    assert "range" not in retry.headers
    assert (data / "raw" / "postcodes.zip").read_bytes() == (www / "postcodes.zip").read_bytes()


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "Forbidden"), (404, "Not Found")], ids=["403", "404"]
)
def test_client_error_fails_at_once_and_keeps_raw(
    runner: CliRunner,
    faulty: FaultServer,
    data: Path,
    tmp_path: Path,
    backoff_delays: list[float],
    status: int,
    reason: str,
) -> None:
    """403/404 are not retried: one request, exit 3, the URL and status in one line."""
    assert _extract_from(runner, data, faulty).exit_code == 0
    before = tree(data / "raw")
    _new_snapshot_served(faulty, tmp_path)
    faulty.script("postcodes.zip", Fault("status", status=status))
    requests_before = faulty.requests_for("postcodes.zip")

    result = _extract_from(runner, data, faulty)

    url = faulty.url("postcodes.zip").replace(".", r"\.")
    assert_fails_cleanly(result, 3, rf"postcodes: {url} answered HTTP {status} {reason}$")
    assert faulty.requests_for("postcodes.zip") == requests_before + 1
    assert backoff_delays == []
    assert tree(data / "raw") == before


def test_size_announced_over_the_cap_is_refused_before_any_byte(
    runner: CliRunner, faulty: FaultServer, data: Path, backoff_delays: list[float]
) -> None:
    """A Content-Length past the default cap (5 GiB) is refused at once, without retrying."""
    faulty.script("postcodes.zip", Fault("announce", length=6 * 1024**3))

    result = _extract_from(runner, data, faulty)

    assert_fails_cleanly(
        result,
        3,
        rf"postcodes: .*postcodes\.zip announces 6,442,450,944 bytes, "
        rf"over the {DEFAULT_MAX_BYTES:,} byte limit",
    )
    assert faulty.requests_for("postcodes.zip") == 1
    assert backoff_delays == []
    assert not (data / "raw" / "manifest.json").exists()


def test_endless_body_is_cut_off_at_the_cap(faulty: FaultServer, tmp_path: Path) -> None:
    """A chunked body that never ends stops at max_bytes; nothing of it stays on disk."""
    settings = Settings(data_dir=tmp_path / "data", http_retries=RETRIES, http_timeout=TIMEOUT)
    extract(
        settings,
        users_url=faulty.url("users.json"),
        postcodes_url=faulty.url("postcodes.zip"),
        progress=False,
    )
    before = tree(settings.raw_dir)
    faulty.script("users.json", Fault("endless"))

    with pytest.raises(SourceError, match=r"users\.json is larger than the 2,097,152 byte limit"):
        extract(
            settings,
            users_url=faulty.url("users.json"),
            postcodes_url=faulty.url("postcodes.zip"),
            progress=False,
            max_bytes=2 * 1024**2,
        )

    assert tree(settings.raw_dir) == before


def test_unchanged_sources_make_run_a_no_op(runner: CliRunner, www: Path, data: Path) -> None:
    """A second run against unchanged sources gets 304s, reuses the files and loads nothing."""
    with SourceServer(www) as server:
        args = [
            "run",
            "--data-dir",
            str(data),
            "--users-url",
            server.url("users.json"),
            "--postcodes-url",
            server.url("postcodes.zip"),
            "--format",
            "json",
        ]
        first = invoke(runner, *args)
        assert first.exit_code == 0, first.stderr
        raw_files = [data / "raw" / "users.json", data / "raw" / "postcodes.zip"]
        written = [(path.stat().st_ino, path.stat().st_mtime_ns) for path in raw_files]
        digest = warehouse_digest(data / "warehouse.db")
        server.clear_requests()

        second = invoke(runner, *args)

        requests = server.requests
    assert second.exit_code == 0, second.stderr
    assert len(requests) == 2
    assert all(request.is_conditional for request in requests)
    assert [(path.stat().st_ino, path.stat().st_mtime_ns) for path in raw_files] == written
    assert {entry.downloaded for entry in read_manifest(data / "raw").values()} == {False}
    assert "snapshot already loaded: nothing changed" in second.stderr
    assert json.loads(second.stdout)["report"] == json.loads(first.stdout)["report"]
    assert warehouse_digest(data / "warehouse.db") == digest

    load = invoke(runner, "load", "--data-dir", str(data), "-q")
    assert load.exit_code == 0, load.stderr
    assert '"skipped": true' in load.stdout
    assert warehouse_digest(data / "warehouse.db") == digest


def test_redirect_to_another_host_is_followed_without_the_credentials(
    runner: CliRunner, www: Path, data: Path
) -> None:
    """A 302 to another origin is followed; the password in the URL is never sent there.

    (Both servers listen on 127.0.0.1; another port is another origin, which is what decides
    whether credentials travel.)
    """
    with SourceServer(www) as origin, SourceServer(www) as mirror:
        origin.script(
            "users.json", ScriptedResponse(302, headers={"Location": mirror.url("users.json")})
        )
        users_url = origin.url("users.json").replace("http://", "http://reader:s3cr3t@")

        result = _extract(runner, data, users_url, origin.url("postcodes.zip"))

        (asked,) = origin.requests_for("users.json")
        (followed,) = mirror.requests_for("users.json")
    assert result.exit_code == 0, result.stderr
    assert asked.headers["authorization"].startswith("Basic ")
    assert "authorization" not in followed.headers
    assert (data / "raw" / "users.json").read_bytes() == (www / "users.json").read_bytes()
    assert read_manifest(data / "raw")["users"].url == users_url.replace("s3cr3t", "***")
    assert "s3cr3t" not in result.stdout + result.stderr


def test_redirect_from_https_to_plain_http_is_refused(
    httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    """Health data does not leave TLS: a redirect to http:// fails with the hop named."""
    httpx_mock.add_response(
        url="https://example.test/users.json",
        status_code=302,
        headers={"Location": "http://cdn.example.test/users.json"},
    )
    dest = tmp_path / "raw" / "users.json"

    with pytest.raises(SourceError) as failure:
        fetch_source("users", "https://example.test/users.json", dest, retries=2)

    assert str(failure.value) == (
        "users: https://example.test/users.json redirected to "
        "http://cdn.example.test/users.json; refusing to leave https for plain http"
    )
    assert len(httpx_mock.get_requests()) == 1
    assert not dest.exists()


def test_redirect_loop_is_cut_short(
    runner: CliRunner, www: Path, data: Path, backoff_delays: list[float]
) -> None:
    """A redirect loop fails after MAX_REDIRECTS hops, once, with the URL named."""
    with SourceServer(www) as server:
        loop = ScriptedResponse(302, headers={"Location": "/loop.json"})
        server.script("loop.json", *[loop] * (MAX_REDIRECTS + 5))

        result = _extract(runner, data, server.url("loop.json"), server.url("postcodes.zip"))

        hops = len(server.requests_for("loop.json"))
    assert_fails_cleanly(
        result,
        3,
        r"users: cannot fetch http://127\.0\.0\.1:\d+/loop\.json: "
        r"Exceeded maximum allowed redirects",
    )
    assert hops == MAX_REDIRECTS + 1
    assert backoff_delays == []


def test_extract_refuses_to_share_raw_with_another_extract(
    runner: CliRunner, faulty: FaultServer, data: Path
) -> None:
    """While another extract holds raw/, a second one fails at once with exit 5."""
    assert _extract_from(runner, data, faulty).exit_code == 0
    before = tree(data / "raw")
    requests = faulty.requests_for("users.json")
    fd = os.open(data / "raw" / ".extract.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

        result = _extract_from(runner, data, faulty)
    finally:
        os.close(fd)

    assert_fails_cleanly(result, 5, r"another extract is writing to .*raw; try again")
    assert faulty.requests_for("users.json") == requests
    assert tree(data / "raw") == before


def test_leftovers_of_a_killed_extract_are_removed(
    runner: CliRunner, faulty: FaultServer, data: Path
) -> None:
    """Partial downloads left by a killed extract do not pile up: the next extract deletes them."""
    raw = data / "raw"
    (raw / ".incoming-x1y2").mkdir(parents=True)
    (raw / ".incoming-x1y2" / "postcodes.zip").write_bytes(b"half a zip")
    (raw / ".postcodes.zip.k3j4.part").write_bytes(b"half a zip")

    result = _extract_from(runner, data, faulty)

    assert result.exit_code == 0, result.stderr
    assert sorted(tree(raw)) == ["manifest.json", "postcodes.zip", "users.json"]


def test_disk_full_during_a_download_keeps_raw(
    runner: CliRunner,
    faulty: FaultServer,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC while writing a download: exit 3 naming raw/ and the reason, raw/ as it was."""
    assert _extract_from(runner, data, faulty).exit_code == 0
    before = tree(data / "raw")
    _new_snapshot_served(faulty, tmp_path)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        result = _extract_from(runner, data, faulty)

    assert_fails_cleanly(
        result, 3, rf"cannot write the sources to {re.escape(str(data / 'raw'))}: No space left"
    )
    assert tree(data / "raw") == before
