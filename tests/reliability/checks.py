"""Assertions shared by the fault battery: how a failure must look, and what must not change."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner, Result

from evergreen_etl.cli import app

# Every input email the battery's sources hold ends with this domain.
PII_MARKERS = ("@example.com", "Testgiven", "Testfamily", "Testing Lane")
WAREHOUSE_TABLES = ("dim_user", "user_address", "etl_run", "dim_postcode", "dim_local_authority")


def invoke(runner: CliRunner, *args: str) -> Result:
    """Run ``evergreen-etl ARGS`` in-process, stdout and stderr apart."""
    return runner.invoke(app, list(args))


def assert_fails_cleanly(result: Result, exit_code: int, pattern: str) -> str:
    """Exit ``exit_code``; one ``error:`` line matching ``pattern``; no traceback, PII or stdout.

    Returns the error line.
    """
    assert result.exit_code == exit_code, (result.exit_code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert re.search(pattern, errors[0]), errors[0]
    assert "Traceback" not in result.stderr
    for marker in PII_MARKERS:
        assert marker not in result.stderr
    assert result.stdout == ""
    return errors[0]


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (hidden ones included) by relative path, with its bytes."""
    if not directory.exists():
        return {}
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != ".extract.lock"
    }


def warehouse_digest(database: Path) -> str:
    """A digest of every row of the warehouse's tables (SQLite)."""
    digest = hashlib.sha256()
    with closing(sqlite3.connect(database)) as conn:
        for table in WAREHOUSE_TABLES:
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                digest.update(repr(row).encode())
    return digest.hexdigest()
