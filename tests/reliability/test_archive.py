"""``check_archive``: what makes a zip unsafe or unreadable, judged from its directory alone."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from evergreen_etl.errors import SourceError
from evergreen_etl.sources.archive import RATIO_FLOOR_BYTES, check_archive
from reliability.zips import patch_member, write_zip
from support.sources import write_lookup_zip

LABEL = "https://example.test/postcodes.zip"


def _check(path: Path, **limits: Any) -> None:
    with zipfile.ZipFile(path) as zf:
        check_archive(zf, LABEL, **limits)


def _refused(path: Path, **limits: Any) -> str:
    with pytest.raises(SourceError) as failure:
        _check(path, **limits)
    message = str(failure.value)
    assert message.startswith(f"{LABEL}: ")
    assert "\n" not in message
    return message


def test_a_real_shaped_lookup_passes(tmp_path: Path) -> None:
    """The NSPL layout (data CSV, names lookup, macOS junk) passes every check."""
    path = write_lookup_zip(
        tmp_path / "postcodes.zip",
        names={"E06000001": "Hartlepool"},
        extra_members={"__MACOSX/._x.csv": b"\0\0", "Documents/User Guide.pdf": b"%PDF"},
    )

    _check(path)


@pytest.mark.parametrize(
    "name",
    [
        "../evil.csv",
        "Data/../../evil.csv",
        "/etc/evil.csv",
        "\\evil.csv",
        "..\\..\\evil.csv",
        "Data\\..\\..\\evil.csv",
        "C:/Windows/evil.csv",
        "c:evil.csv",
    ],
    ids=[
        "parent",
        "nested-parent",
        "absolute",
        "absolute-backslash",
        "parent-backslash",
        "nested-parent-backslash",
        "drive",
        "drive-relative",
    ],
)
def test_zip_slip_member_names_are_refused(tmp_path: Path, name: str) -> None:
    """A member path that climbs out of, or starts outside, the extraction root is refused."""
    path = write_zip(tmp_path / "slip.zip", {"nspl.csv": b"pcds,laua\n", name: b"pcds,laua\n"})

    message = _refused(path)

    assert f"member {name!r} has an unsafe path" in message


@pytest.mark.parametrize(
    "name", ["a..b.csv", "...csv", "Data/..hidden.csv", "Data/v1.2/nspl.csv"], ids=str
)
def test_dots_inside_a_name_are_not_a_climb(tmp_path: Path, name: str) -> None:
    """Only a whole '..' path component is unsafe, not two dots inside a name."""
    _check(write_zip(tmp_path / "ok.zip", {name: b"pcds,laua\n"}))


def test_member_expanding_past_the_ratio_cap_is_a_bomb(tmp_path: Path) -> None:
    """Four MiB of zeros deflates about a thousandfold: refused as a possible zip bomb."""
    path = write_zip(tmp_path / "bomb.zip", {"nspl.csv": b"pcds,laua\n" + bytes(4 * 1024**2)})

    message = _refused(path)

    assert "member 'nspl.csv' would expand" in message
    assert "(limit 200); refusing a possible zip bomb" in message


def test_ratio_cap_can_be_raised(tmp_path: Path) -> None:
    """The caller may allow a higher ratio."""
    path = write_zip(tmp_path / "zeros.zip", {"nspl.csv": bytes(4 * 1024**2)})

    _check(path, max_ratio=5000)


def test_small_members_are_not_judged_by_ratio(tmp_path: Path) -> None:
    """A small, very repetitive member (under the floor) cannot be a bomb and passes."""
    path = write_zip(tmp_path / "small.zip", {"blank.csv": bytes(RATIO_FLOOR_BYTES - 1)})

    _check(path)


def test_member_larger_than_the_size_cap_is_refused(tmp_path: Path) -> None:
    """A member whose declared size passes max_member_bytes is refused, whatever its ratio."""
    content = os.urandom(3 * 1024**2)  # incompressible: the ratio check cannot catch it
    path = write_zip(tmp_path / "big.zip", {"nspl.csv": content}, zipfile.ZIP_STORED)

    message = _refused(path, max_member_bytes=2 * 1024**2)

    assert "member 'nspl.csv' would expand to 3,145,728 bytes, over the 2,097,152" in message


def test_declared_size_bounds_what_zipfile_yields(tmp_path: Path) -> None:
    """Why checking declared sizes is enough: a member that understates its size fails its CRC.

    zipfile stops inflating at the declared size, so a lie cannot expand past the cap.
    """
    content = b"pcds,laua\n" + b"AB1 1AA,E06000001\n" * 10_000
    path = patch_member(write_zip(tmp_path / "liar.zip", {"nspl.csv": content}), declared_size=100)
    _check(path)

    with zipfile.ZipFile(path) as zf, zf.open("nspl.csv") as member:
        with pytest.raises(zipfile.BadZipFile, match="CRC"):
            member.read()
        assert member.tell() <= 100


def test_encrypted_member_is_refused(tmp_path: Path) -> None:
    """An encrypted member cannot be read without a password we do not have: refused."""
    path = patch_member(write_zip(tmp_path / "locked.zip", {"nspl.csv": b"pcds\n"}), flag_bits=0x1)

    assert "member 'nspl.csv' is encrypted" in _refused(path)


def test_deflate64_member_is_refused_with_a_fix(tmp_path: Path) -> None:
    """Windows Explorer zips large files with Deflate64, which Python cannot inflate."""
    path = patch_member(write_zip(tmp_path / "win.zip", {"nspl.csv": b"pcds\n"}), method=9)

    message = _refused(path)

    assert "compressed with Deflate64, which cannot be read; re-zip it" in message


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    """An archive with an absurd member count is not a lookup (each CSV header is read)."""
    path = write_zip(tmp_path / "many.zip", {f"{i}.csv": b"x\n" for i in range(4)})

    assert "holds 4 members, over the limit of 3" in _refused(path, max_members=3)
