"""One ``run`` at a time per data directory, so no run reads another's files halfway.

Two runs on one ``DATA_DIR`` would otherwise interleave their stages: one run's load could
read the staged users another run has just written, paired with its own summary and snapshot
time. ``run`` holds an advisory lock on ``DataDir.run_lock`` from its extract to its
report. A second run waits for it, like a second load waits for the load lock, and gives up
with a clear error (exit 5) after ``LOCK_WAIT_SECONDS``. The lock is re-entrant within a
thread, and the operating system releases it when the process ends, however it ends.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from evergreen_etl.datadir.layout import DataDir
from evergreen_etl.datadir.modes import PRIVATE_FILE, private_dir
from evergreen_etl.errors import ConcurrentLoadError
from evergreen_etl.settings import Settings

__all__ = ["LOCK_WAIT_SECONDS", "data_dir_lock", "holding_data_dir"]

LOCK_WAIT_SECONDS = 30.0
_POLL_SECONDS = 0.1
_held = threading.local()
P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def data_dir_lock(data_dir: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the data directory's lock while inside; wait up to ``wait`` seconds for it.

    Raises:
        ConcurrentLoadError: another process (or thread) held it for the whole wait.
    """
    private_dir(data_dir, tighten=False)
    key = str(data_dir.resolve())
    depths: dict[str, int] = getattr(_held, "depths", None) or {}
    _held.depths = depths
    if depths.get(key):  # this thread holds it already: a run inside a demo, say
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    if sys.platform == "win32":  # pragma: no cover - POSIX advisory locks only
        yield
        return
    fd = os.open(DataDir(data_dir).run_lock, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        _acquire(fd, data_dir, LOCK_WAIT_SECONDS if wait is None else wait)
        depths[key] = 1
        try:
            yield
        finally:
            depths.pop(key, None)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, data_dir: Path, wait: float) -> None:
    import fcntl

    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ConcurrentLoadError(
                    f"another run is using the data directory {data_dir} "
                    f"(waited {wait:g}s); run again when it ends"
                ) from None
            time.sleep(_POLL_SECONDS)


def holding_data_dir(
    function: Callable[Concatenate[Settings, P], R],
) -> Callable[Concatenate[Settings, P], R]:
    """``function(settings, ...)`` run while holding ``settings.data_dir``'s lock."""

    @functools.wraps(function)
    def locked(settings: Settings, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with data_dir_lock(settings.data_dir):
            return function(settings, *args, **kwargs)

    return locked
