"""Hostile and damaged zip files, patched byte by byte where ``zipfile`` would not write them."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
# Byte offsets of fields inside the two headers (APPNOTE 4.3.7 and 4.3.12).
_CENTRAL_FLAGS, _CENTRAL_METHOD, _CENTRAL_SIZE = 8, 10, 24
_LOCAL_FLAGS, _LOCAL_METHOD = 6, 8


def write_zip(
    path: Path, members: Mapping[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    """A zip holding ``members`` (name → content) as given, names unsanitised."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, content in members.items():
            zf.writestr(zipfile.ZipInfo(name), content, compress_type=compression)
    return path


def patch_member(
    path: Path,
    *,
    flag_bits: int | None = None,
    method: int | None = None,
    declared_size: int | None = None,
) -> Path:
    """Rewrite header fields of the zip's only member, as a hostile or foreign tool would."""
    data = bytearray(path.read_bytes())
    central, local = data.index(_CENTRAL), data.index(_LOCAL)
    assert data.count(_CENTRAL) == 1, "patch_member handles one-member zips"
    if flag_bits is not None:
        for at in (central + _CENTRAL_FLAGS, local + _LOCAL_FLAGS):
            struct.pack_into("<H", data, at, struct.unpack_from("<H", data, at)[0] | flag_bits)
    if method is not None:
        struct.pack_into("<H", data, central + _CENTRAL_METHOD, method)
        struct.pack_into("<H", data, local + _LOCAL_METHOD, method)
    if declared_size is not None:
        struct.pack_into("<I", data, central + _CENTRAL_SIZE, declared_size)
    path.write_bytes(bytes(data))
    return path


class _FlushingCompressor:
    """A raw-deflate compressor that ends every ``compress`` call on a byte boundary."""

    def __init__(self, inner: Any, sizes: list[int]) -> None:
        self._inner = inner
        self._sizes = sizes

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._inner.compress(data) + self._inner.flush(zlib.Z_FULL_FLUSH)
        self._sizes.append(len(out))
        return out

    def flush(self, mode: int = zlib.Z_FINISH) -> bytes:
        out: bytes = self._inner.flush(mode)
        return out


@contextmanager
def _flushing_deflate(sizes: list[int]) -> Iterator[None]:
    real = zlib.compressobj
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            zlib,
            "compressobj",
            lambda *args, **kwargs: _FlushingCompressor(real(*args, **kwargs), sizes),
        )
        yield


def write_zip_with_damaged_stream(path: Path, name: str, *, good: bytes, rest: bytes) -> Path:
    """A zip whose member inflates ``good`` and then hits an invalid deflate block.

    The damage sits exactly where ``rest`` starts, whatever the zlib build: ``good`` is
    flushed to a byte boundary, and the next block header is overwritten with 0xFF
    (final block of the reserved type 3, which every inflater rejects).
    """
    sizes: list[int] = []
    with (
        _flushing_deflate(sizes),
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open(name, "w") as member,
    ):
        member.write(good)
        member.write(rest)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    data = bytearray(path.read_bytes())
    (name_length, extra_length) = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    data[start + sizes[0]] = 0xFF
    path.write_bytes(bytes(data))
    return path
