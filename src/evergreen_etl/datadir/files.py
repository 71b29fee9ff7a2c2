"""Durable file writes under the data directory: atomic replacement, fsync, checksums.

Every file a stage writes (raw sources, the manifest, staged users, rejects, the summary)
goes through ``atomic_output``: a temporary file in the same directory, fsynced, then
``os.replace``, so a failed or interrupted write leaves the previous file as it was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["CHUNK_SIZE", "atomic_output", "atomic_outputs", "file_sha256", "fsync_directory"]

CHUNK_SIZE = 1024 * 1024


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``dest``; on success fsync it and move it onto ``dest``.

    On any exception the temporary file is removed and ``dest`` is left untouched.
    """
    fd, temp = _temporary_beside(dest)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(dest.parent)


@contextmanager
def atomic_outputs(*dests: Path) -> Iterator[tuple[Path, ...]]:
    """Temporary paths next to ``dests`` for the caller to write; on success, commit them all.

    Committing fsyncs each temporary file, moves each onto its destination in the order given
    (so the last one can mark the set complete) and fsyncs the directories. On any exception
    before the commit the temporary files are removed and every destination is left untouched.
    """
    temps: list[Path] = []
    try:
        for dest in dests:
            fd, temp = _temporary_beside(dest)
            os.close(fd)
            temps.append(temp)
        yield tuple(temps)
        for temp in temps:
            _fsync_file(temp)
        for temp, dest in zip(temps, dests, strict=True):
            os.replace(temp, dest)
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise
    for directory in dict.fromkeys(dest.parent for dest in dests):
        fsync_directory(directory)


def _temporary_beside(dest: Path) -> tuple[int, Path]:
    """A new temporary file in ``dest``'s directory (created if need be): descriptor and path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    return fd, Path(temp_name)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable (POSIX; a no-op on Windows)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
