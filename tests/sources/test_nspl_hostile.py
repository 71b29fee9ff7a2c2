"""A hostile postcode zip: bounded lines and names file, and only GSS codes get through."""

from __future__ import annotations

import logging
import random
import string
import zipfile
from pathlib import Path

import pytest

from evergreen_etl.errors import SourceError
from evergreen_etl.sources.nspl import (
    MAX_LINE_BYTES,
    MAX_NAMES_BYTES,
    PostcodeLookupReader,
)
from fuzz import harness
from support.sources import nspl_row, write_lookup_zip

NAMES_MEMBER = "Documents/LA_UA names and codes UK as at 04_23.csv"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def _letters(size: int, seed: int = 1) -> bytes:
    """Text that deflates about 1.6:1, so no zip-bomb check stops it."""
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters, k=size)).encode()


def test_a_line_over_the_limit_is_refused(tmp_path: Path) -> None:
    """A data line longer than MAX_LINE_BYTES is refused naming its line, not buffered."""
    content = b"pcds,laua\nAB1 3QF,E06000001\n" + _letters(MAX_LINE_BYTES + 10) + b"\n"
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": content})

    with pytest.raises(SourceError, match=r"nspl\.csv: line 3: longer than 1,048,576 bytes"):
        list(PostcodeLookupReader(path))


def test_a_header_over_the_limit_is_refused(tmp_path: Path) -> None:
    """A CSV whose first line never ends within the limit is refused while finding members."""
    content = b"pcds,laua," + _letters(MAX_LINE_BYTES + 10) + b"\nAB1 3QF,E06000001\n"
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": content})

    with pytest.raises(SourceError, match=r"nspl\.csv: line 1: longer than 1,048,576 characters"):
        PostcodeLookupReader(path)


def test_a_quoted_record_over_the_limit_is_refused(tmp_path: Path) -> None:
    """A quoted record spanning many short lines is refused once it passes the limit."""
    letters = _letters(MAX_LINE_BYTES)
    storm = b"".join(b'"' + letters[i : i + 3] + b'\n",' for i in range(0, len(letters), 3))
    content = b"pcds,laua\nAB1 3QF,E06000001\n" + storm + b"\n"
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": content})

    with pytest.raises(SourceError, match=r"a record longer than 1,048,576 characters"):
        list(PostcodeLookupReader(path))


def test_a_names_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    """An authority names file larger than MAX_NAMES_BYTES is refused, not read whole."""
    names = b"LAD23CD,LAD23NM\nE06000001," + _letters(MAX_NAMES_BYTES + 10) + b"\n"
    path = write_lookup_zip(
        tmp_path / "postcodes.zip",
        [nspl_row("AB1 3QF", "E06000001")],
        extra_members={NAMES_MEMBER: names},
    )

    with pytest.raises(SourceError, match=r"names file holds [\d,]+ bytes, over the"):
        PostcodeLookupReader(path).authority_names()


@pytest.mark.parametrize("column", ["laua", "ctry", "rgn"])
@pytest.mark.parametrize(
    "code",
    ['=HYPERLINK("http://x.test","y")', "+cmd|' /C calc'!A0", "E0600000\x1b[31m", "e06000001"],
)
def test_a_code_that_is_not_gss_refuses_the_lookup(tmp_path: Path, column: str, code: str) -> None:
    """An authority, country or region code that is not a GSS code refuses the lookup."""
    row = {**nspl_row("AB1 3QF", "E06000001"), column: code}
    path = write_lookup_zip(tmp_path / "postcodes.zip", [row])

    with pytest.raises(SourceError, match=r"is not a GSS code") as caught:
        list(PostcodeLookupReader(path))

    assert "\x1b" not in str(caught.value)


def test_names_rows_with_bad_codes_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A names row whose code is not a GSS code names nothing; the skip is counted in a warning."""
    path = write_lookup_zip(
        tmp_path / "postcodes.zip",
        [nspl_row("AB1 3QF", "E06000001")],
        names={"E06000001": "Hartlepool", "=1+1": "Formula", "E0600000\x07": "Bell"},
    )

    with caplog.at_level(logging.WARNING, logger="evergreen_etl"):
        names = PostcodeLookupReader(path).authority_names()

    assert names == {"E06000001": "Hartlepool"}
    assert "2 rows skipped" in caplog.text


def test_a_lookup_ending_in_blank_lines_is_read_within_the_time_limit(tmp_path: Path) -> None:
    """Blank lines cost one step each (found by the fuzzer: each rescanned its whole block)."""
    content = b"pcds,laua,ctry,lat\nJG1 2WX,E06000001,,54.5\n" + b"\n" * 250_000
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": content})

    def read() -> None:
        assert len(list(PostcodeLookupReader(path))) == 1

    assert harness.exit_status(read) == 0
