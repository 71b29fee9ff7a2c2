"""Reading the ONS postcode lookup out of its zip: columns by name, members by header."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from evergreen_etl.errors import SourceError
from evergreen_etl.sources.nspl import PostcodeLookupReader
from support.sources import NSPL_HEADER, nspl_row, write_lookup_zip


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def test_rows_come_out_in_canonical_form(tmp_path: Path) -> None:
    """A data row gives (pcds, outward, laua, ctry, rgn, lat, long, dointr, doterm)."""
    path = write_lookup_zip(
        tmp_path / "postcodes.zip",
        [nspl_row("AB1 3QF", "S12000033", doterm="202001", ctry="S92000003", rgn="S99999999")],
    )

    assert list(PostcodeLookupReader(path)) == [
        ("AB1 3QF", "AB1", "S12000033", "S92000003", None, 54.5, -1.2, "198001", "202001")
    ]


def test_live_postcode_has_no_termination_date(tmp_path: Path) -> None:
    """An empty doterm (a live postcode) comes out as None."""
    path = write_lookup_zip(tmp_path / "postcodes.zip", [nspl_row("CV4 9RE", "E08000026")])

    (row,) = PostcodeLookupReader(path)

    assert row[8] is None


@pytest.mark.parametrize(
    "laua",
    ["E99999999", "S99999999", "W99999999", "L99999999", "M99999999", "", "  "],
    ids=["england", "scotland", "wales", "channel-islands", "isle-of-man", "empty", "blank"],
)
def test_pseudo_or_empty_local_authority_is_none(tmp_path: Path, laua: str) -> None:
    """A pseudo-code (…99999999) or an empty laua means no local authority."""
    path = write_lookup_zip(tmp_path / "postcodes.zip", [nspl_row("GY1 1AA", laua)])

    (row,) = PostcodeLookupReader(path)

    assert row[2] is None


@pytest.mark.parametrize(
    ("pcd", "canonical"),
    [
        ("AB1 3QF", "AB1 3QF"),
        ("SW1A1AA", "SW1A 1AA"),
        ("B1  1AA", "B1 1AA"),
        ("ab1 3qf", "AB1 3QF"),
    ],
    ids=["seven-char", "no-space", "padded", "lower-case"],
)
def test_pcd_only_header_is_canonicalised(tmp_path: Path, pcd: str, canonical: str) -> None:
    """An older vintage with only the 7-character pcd column gives canonical pcds postcodes."""
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": f"pcd,laua\n{pcd},E06000001\n".encode()})

    (row,) = PostcodeLookupReader(path)

    assert row[:3] == (canonical, canonical.split(" ")[0], "E06000001")


def test_upper_case_headers_are_matched(tmp_path: Path) -> None:
    """Column names are matched case-insensitively."""
    header = [column.upper() for column in NSPL_HEADER]
    row = {column.upper(): value for column, value in nspl_row("AB1 3QF", "S12000033").items()}
    path = write_lookup_zip(tmp_path / "postcodes.zip", [row], header=header)

    assert list(PostcodeLookupReader(path)) == [
        ("AB1 3QF", "AB1", "S12000033", None, None, 54.5, -1.2, "198001", None)
    ]


def test_2021_census_vintage_header_is_read(tmp_path: Path) -> None:
    """A vintage with oa21/lsoa21/sicbl columns instead of oa11/lsoa11/ccg reads the same."""
    renamed = {"oa11": "oa21", "lsoa11": "lsoa21", "ccg": "sicbl"}
    header = [renamed.get(column, column) for column in NSPL_HEADER]
    path = write_lookup_zip(
        tmp_path / "postcodes.zip", [nspl_row("CV4 9RE", "E08000026")], header=header
    )

    (row,) = PostcodeLookupReader(path)

    assert row[:3] == ("CV4 9RE", "CV4", "E08000026")


def test_data_csv_is_found_by_header_under_another_name(tmp_path: Path) -> None:
    """The data CSV is picked by its header; macOS resource forks and ._ files are ignored."""
    fork = b"pcds,laua\nZZ1 1ZZ,E06000009\n"  # would be a second postcode CSV if not ignored
    path = write_lookup_zip(
        tmp_path / "postcodes.zip",
        [nspl_row("CV4 9RE", "E08000026")],
        member="Data/NSPL21_FEB_2024_UK.csv",
        extra_members={
            "__MACOSX/Data/._NSPL21_FEB_2024_UK.csv": fork,
            "Data/._NSPL21_FEB_2024_UK.csv": fork,
            "Documents/User Guide.txt": b"pcds,laua\n",
        },
    )

    reader = PostcodeLookupReader(path)

    assert reader.members.data == "Data/NSPL21_FEB_2024_UK.csv"
    assert [row[0] for row in reader] == ["CV4 9RE"]


def test_authority_names_come_from_the_zip_lookup(tmp_path: Path) -> None:
    """A LAD23CD,LAD23NM names-and-codes CSV in the zip gives code -> name."""
    names = {"E06000001": "Hartlepool", "S12000033": "Aberdeen City"}
    path = write_lookup_zip(tmp_path / "postcodes.zip", names=names)

    assert PostcodeLookupReader(path).authority_names() == names


def test_authority_names_are_empty_without_a_lookup(tmp_path: Path) -> None:
    """With no names CSV in the zip there are no names (the caller falls back)."""
    path = write_lookup_zip(tmp_path / "postcodes.zip")

    assert PostcodeLookupReader(path).authority_names() == {}


def test_zip_without_a_postcode_csv_is_refused(tmp_path: Path) -> None:
    """A zip whose CSVs have no pcds/pcd column is a SourceError naming the zip."""
    path = _zip(tmp_path / "lookup.zip", {"other.csv": b"code,name\nE06000001,Hartlepool\n"})

    with pytest.raises(SourceError, match=r"^lookup\.zip: no postcode CSV"):
        PostcodeLookupReader(path)


def test_zip_with_two_postcode_csvs_is_refused(tmp_path: Path) -> None:
    """Two CSVs with a postcode header is ambiguous: a SourceError listing both."""
    data = b"pcds,laua\nAB1 3QF,S12000033\n"
    path = _zip(tmp_path / "lookup.zip", {"one.csv": data, "two.csv": data})

    with pytest.raises(SourceError, match=r"several postcode CSVs.*one\.csv.*two\.csv"):
        PostcodeLookupReader(path)


def test_missing_laua_column_is_named_in_the_error(tmp_path: Path) -> None:
    """A data CSV without a local-authority column fails with a message naming laua."""
    header = [column for column in NSPL_HEADER if column != "laua"]
    path = write_lookup_zip(tmp_path / "postcodes.zip", header=header)

    with pytest.raises(SourceError, match="'laua'"):
        PostcodeLookupReader(path)


def test_corrupt_zip_is_a_source_error(tmp_path: Path) -> None:
    """Random bytes instead of a zip raise SourceError naming the file."""
    path = tmp_path / "postcodes.zip"
    path.write_bytes(random.Random(20240101).randbytes(4096))

    with pytest.raises(SourceError, match=r"postcodes\.zip"):
        PostcodeLookupReader(path)


def test_missing_zip_is_a_source_error(tmp_path: Path) -> None:
    """A lookup path that does not exist raises SourceError."""
    with pytest.raises(SourceError, match="not found"):
        PostcodeLookupReader(tmp_path / "postcodes.zip")


def test_byte_order_mark_and_crlf_are_handled(tmp_path: Path) -> None:
    """A BOM before the first column name and CRLF line ends read like plain UTF-8."""
    text = (
        "\ufeffpcds,laua,lat,long\r\nAB1 3QF,S12000033,57.1,-2.1\r\nCV4 9RE,E08000026,52.4,-1.6\r\n"
    )
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": text.encode()})

    rows = [row[:3] + row[5:7] for row in PostcodeLookupReader(path)]

    assert rows == [
        ("AB1 3QF", "AB1", "S12000033", 57.1, -2.1),
        ("CV4 9RE", "CV4", "E08000026", 52.4, -1.6),
    ]


def test_short_row_is_a_source_error_with_its_line(tmp_path: Path) -> None:
    """A row with too few columns raises SourceError naming its line."""
    text = "pcds,laua,lat\nAB1 3QF,S12000033,57.1\nCV4 9RE\nB1 1AA,E08000025,52.4\n"
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": text.encode()})

    with pytest.raises(SourceError, match=r"nspl\.csv: line 3: "):
        list(PostcodeLookupReader(path))


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    """Empty lines (e.g. at the end of the file) are not rows."""
    text = "pcds,laua\nAB1 3QF,S12000033\n\nCV4 9RE,E08000026\n\n"
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": text.encode()})

    assert [row[0] for row in PostcodeLookupReader(path)] == ["AB1 3QF", "CV4 9RE"]


def test_non_utf8_data_is_a_source_error(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 in the data CSV raise SourceError."""
    text = b"pcds,laua\nAB1 3QF,S12000033\nCV4 9RE,E0800\xff026\n"
    path = _zip(tmp_path / "postcodes.zip", {"nspl.csv": text})

    with pytest.raises(SourceError, match="not valid UTF-8"):
        list(PostcodeLookupReader(path))


@pytest.mark.parametrize(
    ("lat", "long", "expected"),
    [
        ("99.999999", "0.000000", (None, None)),
        ("99.999999", "-1.2", (None, -1.2)),
        ("", "", (None, None)),
        ("54.5", "-1.2", (54.5, -1.2)),
    ],
    ids=["no-location", "no-latitude", "empty", "located"],
)
def test_placeholder_coordinates_are_none(
    tmp_path: Path, lat: str, long: str, expected: tuple[float | None, float | None]
) -> None:
    """NSPL's "no location" values (lat 99.999999, long 0.000000) come out as None."""
    path = write_lookup_zip(
        tmp_path / "postcodes.zip", [nspl_row("GY1 1AA", "L99999999", lat=lat, long=long)]
    )

    (row,) = PostcodeLookupReader(path)

    assert row[5:7] == expected


def test_rows_stream_in_file_order(tmp_path: Path) -> None:
    """Every data row comes out once, in the order of the file."""
    path = write_lookup_zip(tmp_path / "postcodes.zip")

    postcodes = [row[0] for row in PostcodeLookupReader(path)]

    assert postcodes == [
        "AB1 1AA",
        "AB1 1AB",
        "AB2 1AA",
        "AB2 1AB",
        "AB3 1AA",
        "AB3 1AB",
        "GY1 1AA",
        "AB4 1AA",
        "CV4 9RE",
    ]
