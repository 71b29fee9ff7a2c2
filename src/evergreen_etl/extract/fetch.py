"""Fetch one source into ``DATA_DIR/raw``: over HTTP(S), from a ``file://`` URL or a local path.

Every write is atomic (a temporary file in the same directory, fsynced, then ``os.replace``),
so a failed or interrupted fetch leaves the previous raw file as it was and no partial file.
Where a source is: ``locations.py``; HTTP with retries: ``http.py``; local copies: ``local.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from evergreen_etl.extract.http import fetch_http
from evergreen_etl.extract.local import copy_local
from evergreen_etl.extract.locations import HttpLocation, resolve_location
from evergreen_etl.models import ManifestEntry, SourceName

__all__ = ["DEFAULT_MAX_BYTES", "fetch_source"]

logger = logging.getLogger("evergreen_etl.extract")

DEFAULT_MAX_BYTES = 5 * 1024**3


def fetch_source(
    source: SourceName,
    url: str,
    dest: Path,
    *,
    previous: ManifestEntry | None = None,
    timeout: float = 30.0,
    retries: int = 4,
    progress: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    staging: Path | None = None,
) -> ManifestEntry:
    """Fetch ``source`` from ``url`` into ``dest`` and describe the result.

    ``previous`` is the source's entry in the last manifest: when it shows the source is
    unchanged (HTTP 304 to a conditional GET, or a local file with the same size and mtime)
    and ``dest`` still holds the recorded bytes, the file is reused (``downloaded=False``).
    With ``staging``, new bytes are written there instead of ``dest`` (the entry still names
    ``dest``), so the caller can check them and move them into place with other files.

    Redirects are followed to any host (S3 and CDNs redirect across hosts), up to
    ``MAX_REDIRECTS``; credentials given in the URL are not sent to another host, and a
    redirect from https to plain http is refused.

    Raises:
        ConfigurationError: the URL has an unsupported scheme.
        SourceError: the source is missing, refused, larger than ``max_bytes``, redirected
            from https to http, or kept failing (connection errors, timeouts, 5xx, 429,
            truncated bodies) after ``retries`` retries.
    """
    location = resolve_location(url)
    target = staging or dest
    if isinstance(location, HttpLocation):
        entry = fetch_http(
            source,
            location.url,
            dest,
            target,
            previous=previous,
            timeout=timeout,
            retries=retries,
            progress=progress,
            max_bytes=max_bytes,
        )
    else:
        entry = copy_local(
            source,
            location.path,
            dest,
            target,
            previous=previous,
            progress=progress,
            max_bytes=max_bytes,
        )
    logger.info(
        "%s: %s bytes, sha256 %s, %s",
        source,
        f"{entry.size:,}",
        entry.sha256[:12],
        "downloaded" if entry.downloaded else "unchanged, reused",
    )
    return entry
