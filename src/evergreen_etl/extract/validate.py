"""Checks a freshly downloaded source must pass before it may replace the previous raw file."""

from __future__ import annotations

import lzma
import zipfile
import zlib
from collections.abc import Generator
from pathlib import Path
from typing import cast

from evergreen_etl.errors import SourceError
from evergreen_etl.sources.archive import check_archive
from evergreen_etl.sources.nspl import PostcodeLookupReader, PostcodeRow

# What zipfile and its decompressors raise for damaged data (besides BadZipFile).
_CORRUPT = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)


def check_postcode_lookup(path: Path, label: str) -> None:
    """Refuse a postcode lookup that could not be loaded, naming ``label`` in the error.

    Reads the central directory, the CSV headers and the first data row only: a zip that is
    not a zip, unsafe (``check_archive``), without exactly one postcode CSV, without a
    required column, or without a single postcode row. Damage deeper in the data is found
    by the load, inside its transaction.

    Raises:
        SourceError: the lookup is one of the above.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            check_archive(zf, label)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{label}: not a readable zip file ({exc})") from None
    try:
        reader = PostcodeLookupReader(path, label=label)
        rows = cast(Generator[PostcodeRow, None, None], iter(reader))
        try:
            first = next(rows, None)
        finally:
            rows.close()
    except _CORRUPT as exc:
        raise SourceError(f"{label}: the zip is corrupt ({_first_line(exc)})") from None
    if first is None:
        raise SourceError(
            f"{label}: {reader.members.data} holds a header but no postcode rows; "
            "refusing an empty lookup"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
