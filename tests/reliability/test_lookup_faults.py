"""The postcode lookup zip and its CSV: what is read alike, what is refused, and that a refused
lookup changes nothing (raw files, manifest, staged files, warehouse).

Bad lookups are refused by ``extract`` before they may replace the previous raw file
(``extract.validate.check_postcode_lookup``); the reader refuses them too, for lookups given
to ``load`` directly.
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner, Result

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import SourceError
from evergreen_etl.extract import extract
from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from evergreen_etl.sources.nspl import PostcodeLookupReader, PostcodeRow
from reliability.checks import assert_fails_cleanly, invoke, tree, warehouse_digest
from reliability.zips import patch_member, write_zip, write_zip_with_damaged_stream
from support.sources import DATA_MEMBER, NSPL_HEADER, nspl_row, user, write_lookup_zip, write_users

ROWS = [
    nspl_row("AB1 1AA", "E06000001", ward='Ward, "North"'),
    nspl_row("CV4 9RE", "E08000026", doterm="202001"),
    nspl_row("GY1 1AA", "L99999999", lat="99.999999", long="0.000000"),
]


def _csv(
    rows: Sequence[Mapping[str, str]] = ROWS,
    *,
    rename: Mapping[str, str] | None = None,
    header_case: Callable[[str], str] = str,
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,
    newline: str = "\r\n",
    delimiter: str = ",",
    bom: bool = False,
) -> bytes:
    """The rows as an NSPL CSV, with header names renamed or re-cased as a vintage does."""
    names = [header_case((rename or {}).get(column, column)) for column in NSPL_HEADER]
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=newline, delimiter=delimiter)
    writer.writerow(names)
    for row in rows:
        writer.writerow([row[column] for column in NSPL_HEADER])
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


def _lookup(path: Path, content: bytes, member: str = DATA_MEMBER) -> Path:
    return write_zip(path, {member: content})


def _read(path: Path) -> list[PostcodeRow]:
    return list(PostcodeLookupReader(path))


VINTAGE_2021 = {"oa11": "oa21", "lsoa11": "lsoa21", "msoa11": "msoa21", "ccg": "sicbl"}
# The column names of the NSPL releases from 2025 on.
VINTAGE_2025 = {
    "pcd": "pcd7",
    "pcd2": "pcd8",
    "usertype": "usrtypind",
    "oseast1m": "east1m",
    "osnrth1m": "north1m",
    "osgrdind": "gridind",
    "oa11": "oa21cd",
    "cty": "cty25cd",
    "laua": "lad25cd",
    "ward": "wd25cd",
    "ctry": "ctry25cd",
    "rgn": "rgn25cd",
    "lsoa11": "lsoa21cd",
    "msoa11": "msoa21cd",
    "ccg": "sicbl24cd",
}

ACCEPTED: dict[str, bytes] = {
    "bom": _csv(bom=True),
    "crlf": _csv(newline="\r\n"),
    "lf": _csv(newline="\n"),
    "quoted-fields": _csv(quoting=csv.QUOTE_ALL),
    "upper-case-header": _csv(header_case=str.upper),
    "padded-mixed-case-header": _csv(header_case=lambda name: f" {name.title()} "),
    "vintage-2021-oa21-lsoa21-sicbl": _csv(rename=VINTAGE_2021),
    "laua-as-lad23cd": _csv(rename={"laua": "lad23cd"}),
    "vintage-2025-lad25cd-pcd7": _csv(rename=VINTAGE_2025),
    "bom-crlf-quoted-upper": _csv(bom=True, quoting=csv.QUOTE_ALL, header_case=str.upper),
}


@pytest.mark.parametrize("content", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_csv_variants_read_the_same_rows(tmp_path: Path, content: bytes) -> None:
    """BOM, line ends, quoting, header case and vintage names change nothing in the rows."""
    expected = _read(_lookup(tmp_path / "plain.zip", _csv()))

    rows = _read(_lookup(tmp_path / "variant.zip", content))

    assert rows == expected
    assert rows[0][:5] == ("AB1 1AA", "AB1", "E06000001", "E92000001", "E12000001")


# --- refused lookups, end to end --------------------------------------------------------------


def _zip_bytes(members: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(zipfile.ZipInfo(name), content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _write(content: bytes) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        path.write_bytes(content)
        return path

    return build


def _patched(**fields: int) -> Callable[[Path], Path]:
    return lambda path: patch_member(_lookup(path, _csv()), **fields)


GOOD_ZIP = _zip_bytes({DATA_MEMBER: _csv()})
REFUSED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "random-bytes": (
        _write(random.Random(6).randbytes(4096)),
        r"not a readable zip file \(File is not a zip file\)",
    ),
    "zero-bytes": (_write(b""), r"not a readable zip file"),
    "truncated-download": (_write(GOOD_ZIP[: len(GOOD_ZIP) // 2]), r"not a readable zip file"),
    "zip-bomb": (
        _write(_zip_bytes({DATA_MEMBER: _csv() + bytes(8 * 1024**2)})),
        r"would expand \d[\d,]* times \(limit 200\); refusing a possible zip bomb",
    ),
    "zip-slip": (
        _write(_zip_bytes({DATA_MEMBER: _csv(), "../../.bashrc": b"echo owned\n"})),
        r"member '\.\./\.\./\.bashrc' has an unsafe path",
    ),
    "absolute-member": (
        _write(_zip_bytes({"/etc/cron.d/nspl.csv": _csv()})),
        r"member '/etc/cron\.d/nspl\.csv' has an unsafe path",
    ),
    "encrypted": (_patched(flag_bits=0x1), r"is encrypted; the lookup must be a plain zip"),
    "deflate64": (_patched(method=9), r"compressed with Deflate64, which cannot be read"),
    "no-csv-member": (
        _write(_zip_bytes({"README.txt": b"pcds,laua\n", "data.xlsx": b"PK"})),
        r"no postcode CSV found",
    ),
    "several-csv-members": (
        _write(_zip_bytes({"a/nspl.csv": _csv(), "b/nspl.csv": _csv()})),
        r"several postcode CSVs found \(a/nspl\.csv, b/nspl\.csv\); expected one",
    ),
    "missing-laua": (
        _write(_zip_bytes({DATA_MEMBER: _csv(rename={"laua": "lauaX"})})),
        rf"{DATA_MEMBER}: required column 'laua' is missing from the header",
    ),
    "empty-csv-member": (_write(_zip_bytes({DATA_MEMBER: b""})), r"no postcode CSV found"),
    "header-only": (
        _write(_zip_bytes({DATA_MEMBER: _csv(rows=[])})),
        rf"{DATA_MEMBER} holds a header but no postcode rows; refusing an empty lookup",
    ),
    "semicolon-delimited": (
        _write(_zip_bytes({DATA_MEMBER: _csv(delimiter=";")})),
        r"no postcode CSV found",
    ),
    "latin-1-bytes": (
        _write(_zip_bytes({DATA_MEMBER: _csv().replace(b"North", "Nörth".encode("latin-1"))})),
        rf"{DATA_MEMBER}: line \d+: not valid UTF-8",
    ),
}


@pytest.fixture
def loaded(tmp_path: Path) -> Settings:
    """A data directory with one snapshot extracted, anonymised and loaded (SQLite)."""
    www = tmp_path / "www"
    www.mkdir()
    write_users(www / "users.json", [user("one@example.com", "AB1 1AA")])
    write_lookup_zip(www / "postcodes.zip")
    settings = Settings(data_dir=tmp_path / "data", max_reject_rate=1.0)
    extract(
        settings,
        users_url=str(www / "users.json"),
        postcodes_url=str(www / "postcodes.zip"),
        progress=False,
    )
    anonymise(settings, progress=False)
    load(settings, as_of=datetime(2024, 1, 1), progress=False)
    return settings


def _state(settings: Settings) -> tuple[dict[str, bytes], dict[str, bytes], str]:
    return (
        tree(settings.raw_dir),
        tree(settings.staged_dir),
        warehouse_digest(settings.data_dir / "warehouse.db"),
    )


def _run(runner: CliRunner, settings: Settings, postcodes: Path) -> Result:
    users = write_users(postcodes.parent / "users-new.json", [user("two@example.com", "CV4 9RE")])
    return invoke(
        runner,
        "run",
        "--data-dir",
        str(settings.data_dir),
        "--users-url",
        str(users),
        "--postcodes-url",
        str(postcodes),
        "--as-of",
        "2024-02-01",
        "-q",
    )


@pytest.mark.parametrize(("build", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_bad_lookup_is_refused_and_changes_nothing(
    runner: CliRunner,
    loaded: Settings,
    tmp_path: Path,
    build: Callable[[Path], Path],
    message: str,
) -> None:
    """`run` with a bad lookup: exit 3, one line naming the zip, every earlier file and row kept."""
    before = _state(loaded)
    (tmp_path / "bad").mkdir()
    bad = build(tmp_path / "bad" / "postcodes.zip")

    result = _run(runner, loaded, bad)

    assert_fails_cleanly(result, 3, rf"^error: {re.escape(str(bad))}: .*{message}")
    assert _state(loaded) == before


def _damaged_deep_in_the_data(path: Path) -> Path:
    """A lookup whose first 2,000 rows inflate and whose deflate stream then breaks."""
    rows = [nspl_row(f"AB{i % 90 + 1} {i % 10}AA", "E06000001") for i in range(4000)]
    header_only = len(_csv(rows=[]))
    return write_zip_with_damaged_stream(
        path, DATA_MEMBER, good=_csv(rows[:2000]), rest=_csv(rows[2000:])[header_only:]
    )


def test_lookup_damaged_deep_in_the_data_is_refused_by_load_and_changes_nothing(
    runner: CliRunner, loaded: Settings, tmp_path: Path
) -> None:
    """Damage past the first row passes extract; the load reports it (exit 3) and rolls back."""
    before_warehouse = warehouse_digest(loaded.data_dir / "warehouse.db")
    (tmp_path / "bad").mkdir()
    bad = _damaged_deep_in_the_data(tmp_path / "bad" / "postcodes.zip")

    result = _run(runner, loaded, bad)

    assert_fails_cleanly(result, 3, r"postcodes\.zip: .*: the zip member is corrupt")
    assert warehouse_digest(loaded.data_dir / "warehouse.db") == before_warehouse


# --- the reader itself (load reads raw/postcodes.zip, or a path given to load()) ------------

UNSAFE_FOR_THE_READER = {
    name: REFUSED[name]
    for name in ("zip-bomb", "zip-slip", "absolute-member", "encrypted", "deflate64")
}


@pytest.mark.parametrize(
    ("build", "message"), UNSAFE_FOR_THE_READER.values(), ids=UNSAFE_FOR_THE_READER.keys()
)
def test_reader_refuses_unsafe_archives(
    tmp_path: Path, build: Callable[[Path], Path], message: str
) -> None:
    """PostcodeLookupReader itself refuses bombs, zip-slip, encrypted and Deflate64 members."""
    path = build(tmp_path / "postcodes.zip")

    with pytest.raises(SourceError, match=rf"^postcodes\.zip: .*{message}"):
        _read(path)


def test_reader_reports_a_damaged_deflate_stream_as_corrupt(tmp_path: Path) -> None:
    """An invalid deflate block is a SourceError naming the member, not a zlib.error."""
    path = _damaged_deep_in_the_data(tmp_path / "postcodes.zip")

    with pytest.raises(SourceError, match=rf"^postcodes\.zip: {DATA_MEMBER}: .*corrupt"):
        _read(path)


def test_reader_refuses_a_lookup_without_rows(tmp_path: Path) -> None:
    """A header-only lookup is an error, not an empty lookup that unlocates every user."""
    path = _lookup(tmp_path / "postcodes.zip", _csv(rows=[]))

    with pytest.raises(SourceError, match="no postcode rows"):
        _read(path)


def test_semicolon_delimited_csv_is_named_as_such(tmp_path: Path) -> None:
    """A lookup re-saved by a spreadsheet with ';' says so, instead of 'no postcode CSV'."""
    path = _lookup(tmp_path / "postcodes.zip", _csv(delimiter=";"))

    with pytest.raises(SourceError, match=r"no postcode CSV found.*semicolon"):
        _read(path)


def test_declared_member_size_caps_the_bytes_read(tmp_path: Path) -> None:
    """A member whose directory understates its size fails its CRC: it cannot inflate past it."""
    rows = [nspl_row(f"AB{i % 90 + 1} {i % 10}AA", "E06000001") for i in range(300)]
    content = _csv(rows)
    # Past the header (so the header reads), short of the end.
    path = patch_member(_lookup(tmp_path / "postcodes.zip", content), declared_size=20_000)
    assert len(content) > 30_000

    with pytest.raises(SourceError, match=r"the zip member is corrupt \(Bad CRC-32"):
        _read(path)


def test_load_with_an_empty_zip_path_keeps_the_warehouse(loaded: Settings, tmp_path: Path) -> None:
    """load() given a 0-byte zip fails with SourceError and leaves every row as it was."""
    digest = warehouse_digest(loaded.data_dir / "warehouse.db")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")

    with pytest.raises(SourceError, match=r"empty\.zip: not a readable zip file"):
        load(loaded, as_of=datetime(2024, 2, 1), postcodes_path=empty, progress=False)

    assert warehouse_digest(loaded.data_dir / "warehouse.db") == digest
