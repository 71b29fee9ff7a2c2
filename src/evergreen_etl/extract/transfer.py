"""Stream a source's bytes into a raw file: atomic, size-limited, checksummed, with progress."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from evergreen_etl.datadir.files import atomic_output
from evergreen_etl.errors import SourceError
from evergreen_etl.models import SourceName

__all__ = ["now", "progress_reporter", "write_atomically"]


def now() -> datetime:
    """The current time in UTC, as the manifest records it."""
    return datetime.now(UTC)


def write_atomically(
    chunks: Iterable[bytes],
    dest: Path,
    *,
    limit: int,
    on_chunk: Callable[[int], None],
    too_large: str,
    verify: Callable[[], None] | None = None,
) -> tuple[int, str]:
    """Stream ``chunks`` into ``dest`` atomically; return the size and hex SHA-256.

    More than ``limit`` bytes raise ``SourceError(too_large)``; ``verify`` runs after the last
    chunk and before ``dest`` is replaced, so a body it refuses never replaces the file.
    """
    digest = hashlib.sha256()
    size = 0
    with atomic_output(dest) as handle:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise SourceError(too_large)
            digest.update(chunk)
            handle.write(chunk)
            on_chunk(len(chunk))
        if verify is not None:
            verify()
    return size, digest.hexdigest()


@contextmanager
def progress_reporter(
    source: SourceName, total: int | None, *, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances a progress bar on stderr, or does nothing.

    The bar is shown only when asked for and stderr is a terminal; stdout is never touched,
    because it carries the commands' machine-readable output.
    """
    console = Console(stderr=True) if enabled else None
    if console is None or not console.is_terminal:
        yield lambda _count: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(source, total=total)
        yield lambda count: bar.advance(task, count)
