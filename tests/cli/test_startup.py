"""The command starts light: --version, shell completion, and --help without SQLAlchemy; a
report without migrations, pictures or the schema's tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl import __version__
from evergreen_etl.cli import _app_for, app
from evergreen_etl.warehouse.migrate import upgrade

_HEAVY = ("sqlalchemy", "alembic", "psycopg")
# What a plain report does without: migrations, the pictures, the schema's tables (the past
# views of --as-known-at build on them) and Rich (its console is made to print a message).
_NOT_FOR_A_REPORT = (
    "alembic",
    "matplotlib",
    "rich",
    "evergreen_etl.report.html",
    "evergreen_etl.report.chart_png",
    "evergreen_etl.warehouse.schema",
    "evergreen_etl.warehouse.history",
)


def _imported(*args: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """Run `python -X importtime -m evergreen_etl ARGS`; its stdout and every module imported
    (a package's own name included)."""
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "evergreen_etl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip()
        for line in process.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return process.stdout, modules


def test_version_prints_the_package_version() -> None:
    """`--version` prints the installed version and exits 0."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"evergreen-etl {__version__}"


def _in_bash(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m evergreen_etl COMMAND`` from bash (the shell completion detects)."""
    return subprocess.run(
        # `; exit` keeps bash as the parent process (it would exec a lone command), so that
        # the completion's shell detection finds bash however the tests were started.
        ["bash", "-c", f'"$PYTHON" -m evergreen_etl {command}; exit $?'],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": sys.executable, "HOME": str(home)},
        check=False,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_show_completion_prints_a_bash_script(tmp_path: Path) -> None:
    """`--show-completion` from bash prints the bash completion script for `evergreen-etl`."""
    process = _in_bash("--show-completion", tmp_path)
    assert process.returncode == 0, process.stderr
    assert "_EVERGREEN_ETL_COMPLETE=complete_bash" in process.stdout
    assert "complete -o default -F" in process.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_install_completion_writes_the_script_under_home(tmp_path: Path) -> None:
    """`--install-completion` from bash installs the script and sources it from ~/.bashrc."""
    process = _in_bash("--install-completion", tmp_path)
    assert process.returncode == 0, process.stderr
    assert "evergreen-etl" in (tmp_path / ".bashrc").read_text()
    installed = list((tmp_path / ".bash_completions").iterdir())
    assert [p.name for p in installed] == ["evergreen-etl.sh"]


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


def test_report_imports_only_what_it_needs(tmp_path: Path) -> None:
    """`report` as a new process imports no migrations, pictures, schema tables or Rich."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgrade(url)

    stdout, modules = _imported(
        "report", "--format", "csv", "--data-dir", str(tmp_path / "data"), "--database-url", url
    )

    assert stdout.startswith("local_authority_code,local_authority_name,users")
    assert "sqlalchemy" in modules
    assert not modules & set(_NOT_FOR_A_REPORT), modules & set(_NOT_FOR_A_REPORT)


def test_a_top_level_command_named_first_is_built_alone() -> None:
    """A top-level command named first is built without the others; anything else gets all."""
    alone = _app_for(["report", "--format", "csv"])

    assert [c.name or c.callback.__name__ for c in alone.registered_commands] == ["report"]
    assert alone.registered_groups == []
    assert alone.registered_callback is app.registered_callback  # --config, --version
    assert len(app.registered_commands) > 1  # the app itself keeps every command
    assert _app_for(["--config", "evergreen.toml", "report"]) is app
    assert _app_for(["db", "upgrade"]) is app
    assert _app_for(["reprot"]) is app  # "Did you mean 'report'?" needs the others
    assert _app_for([]) is app


def test_a_command_built_alone_answers_as_in_the_whole_app() -> None:
    """`report --help` and a usage error read the same as from the app with every command."""
    whole_app = "from evergreen_etl.cli import app; app(prog_name='evergreen-etl')"
    for args in (["report", "--help"], ["report", "--bogus"]):
        alone, whole = (
            subprocess.run(
                [sys.executable, *start, *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            for start in (["-m", "evergreen_etl"], ["-c", whole_app])
        )

        assert "evergreen-etl report" in alone.stdout + alone.stderr
        assert (alone.returncode, alone.stdout, alone.stderr) == (
            whole.returncode,
            whole.stdout,
            whole.stderr,
        )
