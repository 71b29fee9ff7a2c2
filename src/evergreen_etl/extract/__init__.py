"""The ``extract`` stage: fetch the two sources into ``DATA_DIR/raw`` and record a manifest."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evergreen_etl.datadir.files import fsync_directory
from evergreen_etl.datadir.layout import RAW_POSTCODES_NAME as POSTCODES_FILE
from evergreen_etl.datadir.layout import RAW_USERS_NAME as USERS_FILE
from evergreen_etl.datadir.manifest import manifest_path, read_manifest, write_manifest
from evergreen_etl.errors import ConcurrentLoadError, SourceError
from evergreen_etl.extract.fetch import DEFAULT_MAX_BYTES, fetch_source
from evergreen_etl.extract.locations import resolve_location
from evergreen_etl.extract.validate import check_postcode_lookup
from evergreen_etl.models import ExtractResult, ManifestEntry
from evergreen_etl.settings import Settings

__all__ = [
    "DEFAULT_MAX_BYTES",
    "POSTCODES_FILE",
    "USERS_FILE",
    "extract",
    "fetch_source",
    "manifest_path",
    "read_manifest",
    "write_manifest",
]

_STAGING_PREFIX = ".incoming-"

logger = logging.getLogger("evergreen_etl.extract")


def extract(
    settings: Settings,
    *,
    users_url: str | None = None,
    postcodes_url: str | None = None,
    progress: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ExtractResult:
    """Fetch users and postcodes into ``settings.raw_dir`` and write the manifest.

    URLs default to ``settings.users_url`` / ``settings.postcodes_url``; each may be an
    http(s):// URL, a file:// URL or a local path. A source unchanged since the last extract
    is reused rather than fetched again.

    Both sources are fetched into a staging directory first; a new postcode lookup must pass
    ``check_postcode_lookup``. Only then do the new files replace the old ones and the
    manifest is rewritten, so a failed extract leaves ``raw/`` exactly as it was.

    Raises:
        ConfigurationError: a URL has an unsupported scheme (checked before anything is fetched).
        SourceError: a source could not be fetched, the new lookup is unusable, or ``raw/``
            cannot be written (disk full, read-only).
        ConcurrentLoadError: another extract is writing to the same ``raw/`` directory.
    """
    users_url = users_url or settings.users_url
    postcodes_url = postcodes_url or settings.postcodes_url
    # Check both before fetching either: a typo in the second URL should not cost a download.
    resolve_location(users_url)
    resolve_location(postcodes_url)

    raw_dir = settings.raw_dir
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(settings.data.extract_lock):
            _remove_leftovers(raw_dir)
            return _fetch_both(
                settings, users_url, postcodes_url, progress=progress, max_bytes=max_bytes
            )
    except OSError as exc:
        # A full disk or a read-only data directory; raw/ is as it was (atomic writes).
        raise SourceError(f"cannot write the sources to {raw_dir}: {exc.strerror or exc}") from None


def _fetch_both(
    settings: Settings, users_url: str, postcodes_url: str, *, progress: bool, max_bytes: int
) -> ExtractResult:
    """Fetch both sources into a staging directory, check them, then move them into raw/."""
    data = settings.data
    raw_dir = data.raw
    previous = _previous_entries(settings)
    staging = Path(tempfile.mkdtemp(dir=raw_dir, prefix=_STAGING_PREFIX))
    fetch = functools.partial(
        fetch_source,
        timeout=settings.http_timeout,
        retries=settings.http_retries,
        progress=progress,
        max_bytes=max_bytes,
    )
    try:
        users = fetch(
            "users",
            users_url,
            data.raw_users,
            previous=previous.get("users"),
            staging=staging / USERS_FILE,
        )
        postcodes = fetch(
            "postcodes",
            postcodes_url,
            data.raw_postcodes,
            previous=previous.get("postcodes"),
            staging=staging / POSTCODES_FILE,
        )
        if postcodes.downloaded:
            check_postcode_lookup(staging / POSTCODES_FILE, postcodes.url)
        for entry in (users, postcodes):
            if entry.downloaded:
                os.replace(staging / entry.path, raw_dir / entry.path)
        fsync_directory(raw_dir)
        path = write_manifest(raw_dir, [users, postcodes])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExtractResult(users=users, postcodes=postcodes, manifest_path=path)


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an advisory lock on ``lock_file`` so two extracts cannot mix their raw files."""
    if sys.platform == "win32":  # pragma: no cover - POSIX advisory locks only
        yield
        return
    import fcntl

    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConcurrentLoadError(
                f"another extract is writing to {lock_file.parent}; try again when it ends"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _remove_leftovers(raw_dir: Path) -> None:
    """Delete partial downloads left by an extract that was killed (we hold the lock)."""
    for path in raw_dir.glob(".*.part"):
        path.unlink(missing_ok=True)
    for path in raw_dir.glob(f"{_STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def _previous_entries(settings: Settings) -> dict[str, ManifestEntry]:
    try:
        return read_manifest(settings.raw_dir)
    except SourceError as exc:
        # A damaged manifest only costs a full download; extract rewrites it afterwards.
        logger.warning("ignoring the previous manifest: %s", exc)
        return {}
