"""The ``evergreen-etl`` command: a thin Typer layer over the library API.

The commands are registered on ``app`` as their modules are imported, in the order ``--help``
lists them: the pipeline's stages, then the warehouse's administration, then ``history``.
"""

from __future__ import annotations

import select
import sys

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
        app(prog_name="evergreen-etl")
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


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno() if sys.__stdout__ else 1, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


add_history_commands(app)
