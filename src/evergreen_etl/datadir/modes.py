"""Private files and directories: what holds personal or pseudonymised data is its owner's only.

Files are created 0600 and directories 0700 whatever the process's umask (the mode is set
after creation, since a umask can only take bits away and some umasks take too many). The
SQLite warehouse file is created the same way before SQLite opens it, and SQLite gives its
``-wal``, ``-shm`` and ``-journal`` files the mode of the database file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "create_private_file",
    "open_private",
    "private_dir",
    "private_umask",
]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create ``path`` and its missing parents as 0700 directories.

    Directories that exist already are left alone (they may be shared, such as ``/tmp``),
    except ``path`` itself when ``tighten``: a directory of our own naming, such as ``raw/``.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for directory in [path] * tighten + missing:
        with suppress(PermissionError):  # a directory someone else owns: theirs to set
            directory.chmod(PRIVATE_DIR)
    return path


def open_private(path: Path, mode: str = "w", **options: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created (or truncated) with mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, mode, **options)
    except BaseException:
        os.close(fd)
        raise


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True when it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return True


@contextmanager
def private_umask() -> Iterator[None]:
    """While inside, files and directories this process creates are private (umask 077).

    For code that creates files it does not open itself (a generator, a library); the umask
    is the process's, so this is for the command's own thread of work.
    """
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)
