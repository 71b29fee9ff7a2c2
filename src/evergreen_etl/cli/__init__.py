"""The ``evergreen-etl`` command: a thin Typer layer over the library API.

The commands are registered on ``app`` as their modules are imported, in the order ``--help``
lists them: the pipeline's stages, then the warehouse's administration, then ``history``.
"""

from __future__ import annotations

import copy
import os
import select
import sys

import typer
from typer.main import get_command_name

from evergreen_etl.cli.common import BROKEN_PIPE_EXIT, _stdout_gone, app

# isort: split
from evergreen_etl.cli import stages  # noqa: F401 - registers extract ... demo

# isort: split
from evergreen_etl.cli import admin  # noqa: F401 - registers db ... publish
from evergreen_etl.cli.history import add_history_commands

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point (also ``python -m evergreen_etl``, under the same name, so
    that shell completion answers either way)."""
    try:
        _app_for(sys.argv[1:])(prog_name="evergreen-etl")
    except SystemExit as exc:
        # Typer's own output (--help, usage errors) meeting a closed pipe exits 1, after
        # swapping stdout for a wrapper that swallows the error (or, in older Typer versions,
        # without it): report it as ours do.
        failed = exc.code not in (0, None)
        if type(sys.stdout).__name__ == "PacifyFlushWrapper" or (failed and _reader_gone()):
            raise SystemExit(BROKEN_PIPE_EXIT) from None
        raise
    except BrokenPipeError:
        _stdout_gone()
        raise SystemExit(BROKEN_PIPE_EXIT) from None


def _app_for(args: list[str]) -> typer.Typer:
    """``app``, or, when ``args`` start with a top-level command's name, ``app`` holding that
    command alone: Typer builds every command's options before it parses anything (some 10
    ms, one command 1 ms), and the other commands cannot be reached from there anyway."""
    if not args or "_EVERGREEN_ETL_COMPLETE" in os.environ:
        return app
    for command in app.registered_commands:
        callback = command.callback
        name = command.name or (get_command_name(callback.__name__) if callback else None)
        if name == args[0]:
            alone = copy.copy(app)
            alone.registered_commands = [command]
            alone.registered_groups = []
            return alone
    return app


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno() if sys.__stdout__ else 1, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


add_history_commands(app)
