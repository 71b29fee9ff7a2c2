"""The command starts light: --version, shell completion, and --help without SQLAlchemy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl import __version__
from evergreen_etl.cli import app

_HEAVY = ("sqlalchemy", "alembic", "psycopg")


def _imported(*args: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """Run `python -X importtime -m evergreen_etl ARGS`; its stdout and the top-level imports."""
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "evergreen_etl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in process.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return process.stdout, modules


def test_version_prints_the_package_version() -> None:
    """`--version` prints the installed version and exits 0."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"evergreen-etl {__version__}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_generated(shell: str) -> None:
    """`--show-completion SHELL` prints a completion script for the command."""
    result = CliRunner().invoke(app, ["--show-completion", shell], prog_name="evergreen-etl")
    assert result.exit_code == 0, result.stderr
    assert "_EVERGREEN_ETL_COMPLETE" in result.stdout


def test_help_does_not_import_sqlalchemy() -> None:
    """`--help` as a new process imports neither SQLAlchemy nor Alembic nor psycopg."""
    stdout, modules = _imported("--help")
    assert "status" in stdout
    assert "evergreen_etl" in modules
    assert not modules & set(_HEAVY), modules & set(_HEAVY)


def test_run_help_does_not_import_sqlalchemy() -> None:
    """A command's --help is as light as the top-level one."""
    stdout, modules = _imported("run", "--help")
    assert "--summary-json" in stdout
    assert not modules & set(_HEAVY)


def test_completion_answers_without_sqlalchemy(tmp_path: Path) -> None:
    """Completing `evergreen-etl sta` offers `status`, without importing SQLAlchemy."""
    stdout, modules = _imported(
        env={
            "_EVERGREEN_ETL_COMPLETE": "complete_bash",
            "COMP_WORDS": "evergreen-etl sta",
            "COMP_CWORD": "1",
        }
    )
    assert "Usage" not in stdout
    assert "status" in stdout.split()
    assert not modules & set(_HEAVY)
