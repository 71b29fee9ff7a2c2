"""Progress on stderr: a rich bar on a terminal, nothing when stderr is a file or a pipe."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress


class _LiveDisplay:
    """A rich display on stderr, started and stopped with the block it shows (if any)."""

    _bar: RichProgress | None = None

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()


class Progress(_LiveDisplay):
    """Count work done in a stage; shows a live counter only when stderr is a terminal."""

    def __init__(
        self, description: str, *, unit: str, total: int | None = None, enabled: bool = True
    ) -> None:
        self.done = 0
        self._bar: RichProgress | None = None
        self._task = None
        if enabled and sys.stderr.isatty():
            self._bar = RichProgress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit, markup=False),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        """Record ``amount`` more units done."""
        self.done += amount
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=amount)


class Spinner(_LiveDisplay):
    """A spinner with the time elapsed, on stderr, for work that cannot count its progress
    (one long SQL statement); shown only when stderr is a terminal."""

    def __init__(self, description: str, *, enabled: bool = True) -> None:
        self._bar: RichProgress | None = None
        if enabled and sys.stderr.isatty():
            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.add_task(description, total=None)
