"""Safety checks on a zip archive before any member is read: bombs, unsafe names, encryption.

The checks read only the central directory, so they cost nothing next to reading the data.
``zipfile`` never yields more bytes for a member than its declared size (and a member whose
data does not match that size fails its CRC check), so capping the declared sizes caps what
reading the archive can ever produce.
"""

from __future__ import annotations

import re
import zipfile

from evergreen_etl.errors import SourceError

__all__ = [
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_MEMBER_BYTES",
    "DEFAULT_MAX_RATIO",
    "RATIO_FLOOR_BYTES",
    "check_archive",
]

# The real NSPL data CSV is about 1 GB; eight times that is room for growth, not for a bomb.
DEFAULT_MAX_MEMBER_BYTES = 8 * 1024**3
# NSPL's CSV deflates about 10:1; zeros deflate about 1000:1, which is what a bomb is made of.
DEFAULT_MAX_RATIO = 200.0
# Below this size a high ratio is harmless (a small, repetitive file), so it is not checked.
RATIO_FLOOR_BYTES = 1024**2
# NSPL and ONSPD releases carry tens to a few hundred members.
DEFAULT_MAX_MEMBERS = 10_000

_READABLE_METHODS = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}
_METHOD_NAMES = {9: "Deflate64", 10: "PKWARE implode", 93: "Zstandard", 95: "XZ", 98: "PPMd"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENCRYPTED_FLAG = 0x1


def check_archive(
    zf: zipfile.ZipFile,
    label: str,
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> None:
    """Refuse an archive that is unsafe or impossible to read, before reading any member.

    Every member is checked, including those the reader would skip: a zip carrying one
    hostile member is not a genuine ONS release.

    Raises:
        SourceError: (one line, naming ``label`` and the member) when the archive has more
            than ``max_members`` members, or a member has an absolute or ``..`` path, would
            expand past ``max_member_bytes`` or more than ``max_ratio`` times its compressed
            size, is encrypted, or uses a compression method Python cannot read.
    """
    members = zf.infolist()
    if len(members) > max_members:
        raise SourceError(
            f"{label}: holds {len(members):,} members, over the limit of {max_members:,}; "
            "not a postcode lookup"
        )
    for info in members:
        name = info.filename
        if _is_unsafe_name(name):
            raise SourceError(
                f"{label}: member {name!r} has an unsafe path (absolute or with '..'); "
                "refusing the archive"
            )
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise SourceError(
                f"{label}: member {name!r} is encrypted; the lookup must be a plain zip"
            )
        if info.compress_type not in _READABLE_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise SourceError(
                f"{label}: member {name!r} is compressed with {method}, which cannot be read; "
                "re-zip it with standard Deflate"
            )
        if info.file_size > max_member_bytes:
            raise SourceError(
                f"{label}: member {name!r} would expand to {info.file_size:,} bytes, "
                f"over the {max_member_bytes:,} byte limit"
            )
        if info.file_size >= RATIO_FLOOR_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > max_ratio:
                raise SourceError(
                    f"{label}: member {name!r} would expand {ratio:,.0f} times "
                    f"(limit {max_ratio:g}); refusing a possible zip bomb"
                )


def _is_unsafe_name(name: str) -> bool:
    # Windows tools write backslashes; a name is judged as either OS would read it.
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return ".." in re.split(r"[/\\]", name)
