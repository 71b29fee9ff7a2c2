"""Bad input: a one-line error naming the file, a non-zero exit, the warehouse as it was."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.sample import SampleResult
from support.sources import NSPL_HEADER, nspl_row, write_lookup_zip


def _warehouse_digest(data: Path) -> str:
    """A digest of the warehouse's rows, table by table."""
    import sqlite3

    with sqlite3.connect(data / "warehouse.db") as conn:
        digest = hashlib.sha256()
        for table in ("dim_user", "user_address", "etl_run", "dim_postcode", "dim_local_authority"):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


@pytest.fixture
def loaded(runner: CliRunner, tmp_path: Path, sample: SampleResult, key_env: None) -> Path:
    """A data dir whose warehouse holds the first sample snapshot."""
    data = tmp_path / "d"
    result = runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            str(data),
            "--users-url",
            str(sample.users_paths[0]),
            "--postcodes-url",
            str(sample.postcodes_path),
            "--as-of",
            "2024-01-01",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.stderr
    return data


def _bad_users(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.json"
    if kind == "not-json":
        path.write_text("email,givenName\nsomeone@example.com,Someone\n")
    else:
        path.write_text(
            '{"email": "a@example.com", "address": {"postcode": "AB1 1AA"}}\n{"email": "b@exa'
        )
    return path


def _bad_zip(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.zip"
    if kind == "no-csv":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("README.txt", "nothing here")
            zf.writestr("Documents/LA_UA names and codes UK as at 04_23.csv", "LAD23CD,LAD23NM\n")
        return path
    header = [column for column in NSPL_HEADER if column != "laua"]
    return write_lookup_zip(path, [nspl_row("AB1 1AA", "E06000001")], header=header)


@pytest.mark.parametrize(
    ("source", "kind", "expected"),
    [
        ("users", "not-json", r"not-json\.json: line 1: not JSON"),
        ("users", "truncated", r"truncated\.json: line 2: truncated"),
        ("postcodes", "no-csv", r"no-csv\.zip: no postcode CSV"),
        ("postcodes", "no-laua", r"no-laua\.zip: .*'laua' is missing"),
    ],
    ids=["users-not-json", "users-truncated", "zip-without-csv", "csv-without-laua"],
)
def test_bad_source_fails_cleanly(
    runner: CliRunner,
    tmp_path: Path,
    sample: SampleResult,
    loaded: Path,
    source: str,
    kind: str,
    expected: str,
) -> None:
    """Each bad file: one-line error naming it (and the line), exit 3, the warehouse unchanged."""
    import re

    before = _warehouse_digest(loaded)
    users = _bad_users(tmp_path, kind) if source == "users" else sample.users_paths[1]
    postcodes = _bad_zip(tmp_path, kind) if source == "postcodes" else sample.postcodes_path
    result = runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            str(loaded),
            "--users-url",
            str(users),
            "--postcodes-url",
            str(postcodes),
            "--as-of",
            "2024-02-01",
            "-q",
        ],
    )
    assert result.exit_code == 3
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert re.search(expected, error_lines[0]), error_lines[0]
    assert "Traceback" not in result.stderr
    assert "someone@example.com" not in result.stderr
    assert result.stdout == ""
    assert _warehouse_digest(loaded) == before


def test_reject_rate_guard(runner: CliRunner, tmp_path: Path, key_env: None) -> None:
    """More rejects than --max-reject-rate allows: exit 4 and a message with the figures."""
    users = tmp_path / "users.json"
    users.write_text('{"email": "not-an-email"}\n{"email": "ok@example.com"}\n')
    (tmp_path / "d" / "raw").mkdir(parents=True)
    (tmp_path / "d" / "raw" / "users.json").write_bytes(users.read_bytes())
    result = runner.invoke(
        app, ["anonymise", "--data-dir", str(tmp_path / "d"), "--max-reject-rate", "0.2"]
    )
    assert result.exit_code == 4
    assert "1 of 2 records rejected" in result.stderr
    assert "not-an-email" not in result.stderr
