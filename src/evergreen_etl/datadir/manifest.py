"""The extract manifest: ``DATA_DIR/raw/manifest.json``, one entry per source.

It records where each raw file came from (URL, ETag, Last-Modified), its size and SHA-256
and when it was fetched, so the next extract can send a conditional request and the later
stages know exactly which bytes they read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evergreen_etl.datadir.files import atomic_output, file_sha256
from evergreen_etl.datadir.layout import MANIFEST_NAME
from evergreen_etl.errors import SourceError
from evergreen_etl.models import ManifestEntry, SourceName

__all__ = [
    "MANIFEST_FORMAT",
    "holds_recorded_bytes",
    "manifest_path",
    "read_manifest",
    "recorded_entry",
    "recorded_sha256",
    "source_label",
    "write_manifest",
]

MANIFEST_FORMAT = 1


def manifest_path(raw_dir: Path) -> Path:
    """Where the manifest lives under ``raw_dir``."""
    return raw_dir / MANIFEST_NAME


def read_manifest(raw_dir: Path) -> dict[str, ManifestEntry]:
    """The manifest's entries keyed by source name; ``{}`` when there is no manifest yet.

    Raises:
        SourceError: the manifest exists but cannot be read or is not a valid manifest.
    """
    path = manifest_path(raw_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SourceError(
            f"cannot read the extract manifest {path}: {exc.strerror or exc}"
        ) from exc
    try:
        document: Any = json.loads(text)
        if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
            raise ValueError("expected an object with a 'sources' object")
        if document.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unknown manifest format {document.get('format')!r}")
        entries = [ManifestEntry.model_validate(value) for value in document["sources"].values()]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SourceError(
            f"{path} is not a valid extract manifest: {where}: {first['msg']}",
            hint="delete it and run `evergreen-etl extract` again",
        ) from exc
    except ValueError as exc:
        raise SourceError(
            f"{path} is not a valid extract manifest: {str(exc).splitlines()[0]}",
            hint="delete it and run `evergreen-etl extract` again",
        ) from exc
    return {entry.source: entry for entry in entries}


def write_manifest(
    raw_dir: Path, entries: Mapping[str, ManifestEntry] | Iterable[ManifestEntry]
) -> Path:
    """Write ``entries`` (one per source) as the manifest, atomically; return its path."""
    values = entries.values() if isinstance(entries, Mapping) else entries
    by_source = {entry.source: entry.model_dump(mode="json") for entry in values}
    document = {"format": MANIFEST_FORMAT, "sources": dict(sorted(by_source.items()))}
    path = manifest_path(raw_dir)
    with atomic_output(path) as handle:
        handle.write((json.dumps(document, indent=2) + "\n").encode("utf-8"))
    return path


def recorded_entry(raw_dir: Path, source: SourceName, path: Path) -> ManifestEntry | None:
    """The manifest's entry for ``source`` when ``path`` is the raw file extract recorded for it.

    ``None`` when there is no manifest, no entry for ``source``, or ``path`` is another file
    (a path given on the command line, say).

    Raises:
        SourceError: the manifest exists but cannot be read or is not a valid manifest.
    """
    entry = read_manifest(raw_dir).get(source)
    if entry is None or (raw_dir / entry.path).resolve() != path.resolve():
        return None
    return entry


def recorded_sha256(path: Path, entry: ManifestEntry | None, raw_dir: Path) -> str:
    """The checksum ``entry`` recorded while ``path`` is still that file, else ``path`` hashed.

    Extract writes the manifest after the file: a file of another size, or changed after the
    manifest was written (edited by hand, or an extract killed between the two), is hashed.
    """
    if entry is not None:
        try:
            stat = path.stat()
            manifest = manifest_path(raw_dir).stat()
        except OSError:
            pass
        else:
            if stat.st_size == entry.size and stat.st_mtime_ns <= manifest.st_mtime_ns:
                return entry.sha256
    return file_sha256(path)


def holds_recorded_bytes(path: Path, entry: ManifestEntry) -> bool:
    """True when ``path`` still holds exactly the bytes ``entry`` recorded (size and SHA-256)."""
    try:
        if path.stat().st_size != entry.size:
            return False
        return file_sha256(path) == entry.sha256
    except OSError:
        return False


def source_label(entry: ManifestEntry | None, path: Path) -> str:
    """How to name a source file in messages: its URL when it is the raw copy ``entry`` recorded.

    ``entry`` is what ``recorded_entry`` found for ``path``.
    """
    return entry.url if entry is not None else str(path)
