"""`run` from a path, a file:// URL and a real HTTP server; then no personal data anywhere."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.sample import SampleResult
from evergreen_etl.sources.users import UsersReader
from support.http_server import SourceServer


@pytest.fixture
def served(sample: SampleResult) -> Iterator[SourceServer]:
    """The sample sources on a real HTTP server on 127.0.0.1."""
    with SourceServer(sample.postcodes_path.parent) as server:
        yield server


def _urls(form: str, sample: SampleResult, served: SourceServer) -> tuple[str, str]:
    users, postcodes = sample.users_paths[0], sample.postcodes_path
    if form == "path":
        return str(users), str(postcodes)
    if form == "file-url":
        return users.as_uri(), postcodes.as_uri()
    return served.url(users.name), served.url(postcodes.name)


@pytest.mark.parametrize("form", ["path", "file-url", "http"])
def test_run_accepts_each_source_form(
    runner: CliRunner,
    tmp_path: Path,
    sample: SampleResult,
    served: SourceServer,
    form: str,
    key_env: None,
) -> None:
    """`run --users-url --postcodes-url` works with a path, a file:// URL and http://127.0.0.1."""
    users_url, postcodes_url = _urls(form, sample, served)
    result = runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            str(tmp_path / "d"),
            "--users-url",
            users_url,
            "--postcodes-url",
            postcodes_url,
            "--as-of",
            "2024-01-01",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert sum(row["users"] for row in json.loads(result.stdout)["report"]) > 300
    manifest = json.loads((tmp_path / "d" / "raw" / "manifest.json").read_text())
    assert len(manifest["sources"]["users"]["sha256"]) == 64
    if form == "http":
        assert served.requests_for(sample.users_paths[0].name)


def _identifiers(users_file: Path) -> set[str]:
    """Every email, given name, family name and street in a users file, as written."""
    found: set[str] = set()
    for record in UsersReader(users_file):
        value = record.value
        if not isinstance(value, dict):
            continue
        for field in ("email", "givenName", "familyName"):
            if isinstance(value.get(field), str) and value[field].strip():
                found.add(value[field].strip())
        address = value.get("address")
        if isinstance(address, dict) and isinstance(address.get("street"), str):
            found.add(address["street"].strip())
    return {item for item in found if len(item) >= 4}


def test_no_personal_data_outside_raw(
    runner: CliRunner, tmp_path: Path, sample: SampleResult
) -> None:
    """After two runs, no email, name or street occurs outside raw/, in the database or output."""
    data = tmp_path / "d"
    outputs = []
    for k, users in enumerate(sample.users_paths):
        result = runner.invoke(
            app,
            [
                "run",
                "--data-dir",
                str(data),
                "--users-url",
                str(users),
                "--postcodes-url",
                str(sample.postcodes_path),
                "--as-of",
                f"2024-0{k + 1}-01",
                "--debug",
            ],
        )
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    identifiers = {i.lower() for path in sample.users_paths for i in _identifiers(path)}
    assert len(identifiers) > 500
    pattern = re.compile("|".join(re.escape(i) for i in sorted(identifiers, key=len, reverse=True)))
    scanned = 0
    for path in data.rglob("*"):
        if path.is_file() and "raw" not in path.relative_to(data).parts:
            text = path.read_bytes().decode("utf-8", errors="replace").lower()
            match = pattern.search(text)
            assert match is None, f"{path.name} holds personal data"
            scanned += 1
    assert scanned >= 4  # warehouse.db (+ WAL), staged users, rejects, summary, key
    for output in outputs:
        assert pattern.search(output.lower()) is None


def test_key_file_created_once_with_mode_0600(
    runner: CliRunner, tmp_path: Path, sample: SampleResult
) -> None:
    """Without a key, the first run creates a 0600 key file; the second reuses it."""
    data = tmp_path / "d"
    args = [
        "--users-url",
        str(sample.users_paths[0]),
        "--postcodes-url",
        str(sample.postcodes_path),
    ]
    first = runner.invoke(app, ["run", "--data-dir", str(data), *args, "--as-of", "2024-01-01"])
    assert first.exit_code == 0, first.stderr
    key_file = data / "pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    assert "created a new pseudonym key" in first.stderr
    assert key.decode().strip() not in first.stderr + first.stdout
    second = runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            str(data),
            "--users-url",
            str(sample.users_paths[1]),
            "--postcodes-url",
            str(sample.postcodes_path),
            "--as-of",
            "2024-02-01",
            "--format",
            "json",
        ],
    )
    assert second.exit_code == 0, second.stderr
    assert "created a new pseudonym key" not in second.stderr
    assert key_file.read_bytes() == key
