"""Copy a source from the local file system (a path or a ``file://`` URL) into ``DATA_DIR/raw``."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evergreen_etl.datadir.files import CHUNK_SIZE
from evergreen_etl.datadir.manifest import holds_recorded_bytes
from evergreen_etl.errors import SourceError
from evergreen_etl.extract.transfer import now, progress_reporter, write_atomically
from evergreen_etl.models import ManifestEntry, SourceName

__all__ = ["copy_local"]


def copy_local(
    source: SourceName,
    path: Path,
    dest: Path,
    target: Path,
    *,
    previous: ManifestEntry | None,
    progress: bool,
    max_bytes: int,
) -> ManifestEntry:
    """Copy ``path`` into ``target`` (the entry names ``dest``), or reuse ``dest``.

    ``dest`` is reused when ``previous`` recorded the same file (path, size and mtime) and
    ``dest`` still holds the recorded bytes.
    """
    recorded_url = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise SourceError(f"{source}: source file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise SourceError(f"{source}: source {path} is a directory, not a file") from exc
    except OSError as exc:
        raise SourceError(f"{source}: cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        stat = os.fstat(handle.fileno())
        mtime = _mtime_utc(stat.st_mtime_ns)
        if (
            previous is not None
            and previous.source == source
            and previous.url == recorded_url
            and previous.size == stat.st_size
            and previous.last_modified == mtime
            and holds_recorded_bytes(dest, previous)
        ):
            return previous.model_copy(update={"fetched_at": now(), "downloaded": False})
        if stat.st_size > max_bytes:
            raise SourceError(
                f"{source}: {path} holds {stat.st_size:,} bytes, over the {max_bytes:,} byte limit"
            )
        try:
            with progress_reporter(source, stat.st_size, enabled=progress) as advance:
                size, sha256 = write_atomically(
                    iter(lambda: handle.read(CHUNK_SIZE), b""),
                    target,
                    limit=max_bytes,
                    on_chunk=advance,
                    too_large=f"{source}: {path} is larger than the {max_bytes:,} byte limit",
                )
        except OSError as exc:
            raise SourceError(f"{source}: cannot copy {path} to {dest}: {exc}") from exc
    return ManifestEntry(
        source=source,
        url=recorded_url,
        path=dest.name,
        etag=None,
        last_modified=mtime,
        size=size,
        sha256=sha256,
        fetched_at=now(),
        downloaded=True,
    )


def _mtime_utc(mtime_ns: int) -> datetime:
    # From integer nanoseconds, so the same mtime always gives the same datetime.
    seconds, nanoseconds = divmod(mtime_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=nanoseconds // 1000)
