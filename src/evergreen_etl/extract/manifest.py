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

from evergreen_etl.errors import SourceError
from evergreen_etl.extract.fetch import atomic_output
from evergreen_etl.models import ManifestEntry

MANIFEST_NAME = "manifest.json"
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


def source_label(raw_dir: Path, source: str, path: Path) -> str:
    """How to name a source file in messages: its URL when it is the raw copy of one."""
    entry = read_manifest(raw_dir).get(source) if (raw_dir / "manifest.json").exists() else None
    if entry is not None and (raw_dir / entry.path).resolve() == path.resolve():
        return entry.url
    return str(path)
