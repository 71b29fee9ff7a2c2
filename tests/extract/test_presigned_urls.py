"""A presigned source URL: its credentials reach no message, log line or manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from evergreen_etl.cli import app
from support.http_server import ScriptedResponse, SourceServer

QUERY = (
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101"
    "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token=TOKENEXAMPLE"
    "&X-Amz-Signature=SIGNATUREEXAMPLE&sig=SASEXAMPLE&token=TOKEN2EXAMPLE"
)
SECRETS = ("AKIAEXAMPLE", "TOKENEXAMPLE", "SIGNATUREEXAMPLE", "SASEXAMPLE", "TOKEN2EXAMPLE")


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner; stdout and stderr are captured apart."""
    return CliRunner()


def _leaks(*texts: str) -> list[str]:
    return [secret for secret in SECRETS if any(secret in text for text in texts)]


def _extract(
    runner: CliRunner, data: Path, users_url: str, postcodes_url: str, *options: str
) -> Result:
    return runner.invoke(
        app,
        [
            *("extract", "--data-dir", str(data)),
            *("--users-url", users_url, "--postcodes-url", postcodes_url, *options),
        ],
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_successful_extract_records_no_credential(
    runner: CliRunner, server: SourceServer, tmp_path: Path, log_format: str
) -> None:
    """stdout, the logs (text and JSON) and manifest.json hold the URL without its secrets."""
    data = tmp_path / "data"
    server.script("users.json", ScriptedResponse(status=503))  # a retry: a warning log line
    result = _extract(
        runner,
        data,
        server.url("users.json") + QUERY,
        server.url("postcodes.zip") + QUERY,
        "--log-format",
        log_format,
    )

    assert result.exit_code == 0, result.output
    manifest = (data / "raw" / "manifest.json").read_text()
    assert _leaks(result.stdout, result.stderr, manifest) == []
    assert "X-Amz-Signature=***" in json.loads(manifest)["sources"]["users"]["url"]
    assert "retrying" in result.stderr


def test_refused_download_names_the_url_without_credentials(
    runner: CliRunner, server: SourceServer, tmp_path: Path
) -> None:
    """A 403 names the URL with its query values redacted (exit 3)."""
    server.script("users.json", ScriptedResponse(status=403))
    result = _extract(
        runner, tmp_path / "data", server.url("users.json") + QUERY, server.url("postcodes.zip")
    )

    assert result.exit_code == 3, result.output
    assert "403" in result.stderr
    assert _leaks(result.stdout, result.stderr) == []


def test_redirect_target_credentials_are_redacted(
    runner: CliRunner, server: SourceServer, tmp_path: Path
) -> None:
    """A redirect to a presigned URL that then fails names it without its secrets."""
    server.script(
        "users.json",
        ScriptedResponse(status=302, headers={"Location": server.url("gone.json") + QUERY}),
    )
    result = _extract(
        runner, tmp_path / "data", server.url("users.json"), server.url("postcodes.zip")
    )

    assert result.exit_code == 3, result.output
    assert "redirected" in result.stderr
    assert _leaks(result.stdout, result.stderr) == []
