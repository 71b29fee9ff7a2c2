"""Messages and help print user and file text literally; a closed pipe ends a command quietly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from evergreen_etl.cli import app
from support.keys import TEST_KEY


def _one_line(text: str) -> str:
    """Help text with Rich's box drawing and line wrapping taken out."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def _commands(group: typer.core.TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, typer.core.TyperGroup):
            found += _commands(command, path)
        else:
            found.append(path)
    return found


COMMANDS = _commands(typer.main.get_command(app))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_texts_render_their_brackets(runner: CliRunner, path: tuple[str, ...]) -> None:
    """Every bracketed part of an option's help ([default: ...], [postgres]) reaches --help."""
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
    shown = _one_line(result.stdout)
    for param in command.params:
        for bracketed in re.findall(r"\[[^\]]*\]", getattr(param, "help", None) or ""):
            assert _one_line(bracketed) in shown, f"{' '.join(path)}: {bracketed} is lost"


@pytest.mark.parametrize("name", ["[bold]x", "a[/]b", "[red]y[/red]"])
def test_error_messages_print_paths_literally(runner: CliRunner, tmp_path: Path, name: str) -> None:
    """A data directory whose name looks like Rich markup is named as it is, exit 3."""
    data = tmp_path / name
    result = runner.invoke(
        app, ["anonymise", "--data-dir", str(data), "-q"], env={"COLUMNS": "400"}
    )

    assert result.exit_code == 3, result.output
    assert f"{data}/raw/users.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_hints_keep_their_brackets(runner: CliRunner, tmp_path: Path) -> None:
    """The missing-driver error names the extra literally: evergreen-etl[postgres]."""
    result = runner.invoke(
        app,
        [
            "db",
            "current",
            "--data-dir",
            str(tmp_path),
            "--database-url",
            "postgresql+nodriver://h/d",
        ],
        env={"COLUMNS": "400"},
    )

    assert result.exit_code == 2, result.output
    assert "evergreen-etl[postgres]" in result.stderr


def _keys_id(runner: CliRunner, tmp_path: Path, key: Path) -> Result:
    """``keys id`` with the key file at ``key`` (and no key in the environment)."""
    return runner.invoke(
        app,
        ["keys", "id", "--data-dir", str(tmp_path)],
        env={"EVERGREEN_PSEUDONYM_KEY_FILE": str(key), "EVERGREEN_PSEUDONYM_KEY": None},
    )


def test_unreadable_key_file_is_a_configuration_error(runner: CliRunner, tmp_path: Path) -> None:
    """A key file that cannot be read (here a directory) exits 2 with the fix, not 70."""
    key = tmp_path / "pseudonym.key"
    key.mkdir(mode=0o700)

    result = _keys_id(runner, tmp_path, key)

    assert result.exit_code == 2, result.output
    assert str(key) in result.stderr
    assert f"chmod 600 {key}" in result.stderr


def test_key_file_that_is_not_text_is_a_configuration_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A key file holding bytes that are not UTF-8 exits 2 naming the file, not 70."""
    key = tmp_path / "pseudonym.key"
    key.write_bytes(b"\xff" * 64)
    key.chmod(0o600)

    result = _keys_id(runner, tmp_path, key)

    assert result.exit_code == 2, result.output
    assert str(key) in result.stderr


def test_key_file_that_cannot_be_created_is_a_configuration_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A key file path that cannot be created (under a regular file) exits 2, not 70."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    result = _keys_id(runner, tmp_path, blocker / "pseudonym.key")

    assert result.exit_code == 2, result.output
    assert str(blocker / "pseudonym.key") in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_key_file_without_read_permission_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    """A key file the user may not read exits 2 naming it and the fix."""
    key = tmp_path / "pseudonym.key"
    key.write_text(TEST_KEY)
    key.chmod(0o200)

    result = _keys_id(runner, tmp_path, key)

    assert result.exit_code == 2, result.output
    assert str(key) in result.stderr


@pytest.mark.parametrize("args", [["report", "--list"], ["--help"], ["report", "--help"]])
def test_closed_stdout_ends_quietly_with_status_141(args: list[str]) -> None:
    """Writing to a pipe whose reader has gone (`| head -1`) exits 141 with nothing on stderr."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first write, as `head -1` may have
    try:
        done = subprocess.run(
            [sys.executable, "-m", "evergreen_etl", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)

    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
