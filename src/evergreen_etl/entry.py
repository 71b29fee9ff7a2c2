"""The ``evergreen-etl`` process: start-up with Python's cyclic garbage collector paused.

A command's start-up imports Typer, pydantic, SQLAlchemy and the package: some 60,000
container objects (modules, classes, functions, the libraries' tables) that live as long as
the process. As they pile up the collector scans them again and again, and all of them once
more when the interpreter exits: about 0.08 s of the 0.41 s a report took as a new process.
None of them is garbage. So the console script pauses the collector until the command's
work begins, then freezes what start-up made (kept out of every later collection) and turns
the collector back on: a long load collects as before. At exit it freezes the rest, as the
process is ending anyway. Used as a library (or under a test runner) nothing here runs.
"""

from __future__ import annotations

import gc

from evergreen_etl.gc_pause import pause_for_startup, work_begins

__all__ = ["main", "work_begins"]


def main() -> None:
    """The console script (and ``python -m evergreen_etl``): the CLI, started quickly."""
    pause_for_startup()
    try:
        from evergreen_etl.cli import main as cli_main

        cli_main()
    finally:
        gc.freeze()
