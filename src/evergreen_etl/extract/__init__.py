"""The ``extract`` stage: fetch the two sources into ``DATA_DIR/raw`` and record a manifest."""

from __future__ import annotations

import functools
import logging

from evergreen_etl.errors import SourceError
from evergreen_etl.extract.fetch import DEFAULT_MAX_BYTES, fetch_source, resolve_location
from evergreen_etl.extract.manifest import manifest_path, read_manifest, write_manifest
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

USERS_FILE = "users.json"
POSTCODES_FILE = "postcodes.zip"

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
    is reused rather than fetched again. The manifest is written only once both sources are
    in place, so a failed extract leaves the previous manifest as it was.

    Raises:
        ConfigurationError: a URL has an unsupported scheme (checked before anything is fetched).
        SourceError: a source could not be fetched.
    """
    users_url = users_url or settings.users_url
    postcodes_url = postcodes_url or settings.postcodes_url
    # Check both before fetching either: a typo in the second URL should not cost a download.
    resolve_location(users_url)
    resolve_location(postcodes_url)

    raw_dir = settings.raw_dir
    raw_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous_entries(settings)

    fetch = functools.partial(
        fetch_source,
        timeout=settings.http_timeout,
        retries=settings.http_retries,
        progress=progress,
        max_bytes=max_bytes,
    )
    users = fetch("users", users_url, raw_dir / USERS_FILE, previous=previous.get("users"))
    postcodes = fetch(
        "postcodes", postcodes_url, raw_dir / POSTCODES_FILE, previous=previous.get("postcodes")
    )
    path = write_manifest(raw_dir, [users, postcodes])
    return ExtractResult(users=users, postcodes=postcodes, manifest_path=path)


def _previous_entries(settings: Settings) -> dict[str, ManifestEntry]:
    try:
        return read_manifest(settings.raw_dir)
    except SourceError as exc:
        # A damaged manifest only costs a full download; extract rewrites it afterwards.
        logger.warning("ignoring the previous manifest: %s", exc)
        return {}
