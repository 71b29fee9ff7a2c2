"""Stream the ONS postcode lookup (NSPL/ONSPD) out of its zip, mapping columns by name.

The data CSV is picked by its header, not its name; columns are found case-insensitively
under the names the different vintages use; a names-and-codes lookup for local authorities
is read from the zip when one is there.
"""

from __future__ import annotations

import csv
import io
import logging
import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, cast

from evergreen_etl.errors import SourceError
from evergreen_etl.sources.archive import check_archive
from evergreen_etl.sources.csv_records import MAX_FIELD_CHARS as MAX_FIELD_CHARS
from evergreen_etl.sources.csv_records import MAX_LINE_BYTES, CsvRecords
from evergreen_etl.workers import WorkerBatches

log = logging.getLogger("evergreen_etl.load")

# Column roles and the header names that different vintages give them, in order of preference.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "postcode": ("pcds", "pcd2", "pcd"),
    "laua": ("laua", "lad25cd", "lad24cd", "lad23cd", "lad22cd", "lad21cd", "lad20cd"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "dointr": ("dointr",),
    "doterm": ("doterm",),
    "ctry": ("ctry", "ctry25cd", "ctry24cd", "ctry23cd", "ctry22cd", "ctry21cd"),
    "rgn": ("rgn", "rgn25cd", "rgn24cd", "rgn23cd", "rgn22cd", "rgn21cd"),
    "lat": ("lat",),
    "long": ("long", "lon", "lng"),
}
_POSTCODE_HEADERS = {"pcds", "pcd2", "pcd"}
_LA_NAME_HEADER = re.compile(r"^lad\d\dcd$|^lau?a?\d*cd$")
_NO_VALUE_SUFFIX = "99999999"
# What zipfile and its decompressors raise for damaged data.
_CORRUPT = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)
# NSPL's "no grid reference" coordinates.
_LAT_MISSING_TEXT = "99.999999"
_LONG_MISSING_TEXT = "0.000000"
_LAT_MISSING = float(_LAT_MISSING_TEXT)
_LONG_MISSING = float(_LONG_MISSING_TEXT)
_MEMO_LIMIT = 100_000
# From this size of data CSV on (a national NSPL is ~1 GB), ``batches`` parses the rows in a
# worker process while the caller loads them: the load then takes the longer of the two
# times instead of their sum. Below it, a process costs more than it saves.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
BATCH_ROWS = 10_000
# Bounds on what one piece of the lookup may hold, enforced while streaming, so that a hostile
# zip that passes the archive checks still cannot make a reader buffer without end (the bounds
# on a CSV line are in ``csv_records``). A national NSPL's names file is a few tens of kilobytes.
MAX_NAMES_BYTES = 4 << 20
"""The largest authority names-and-codes file, once inflated."""
# Government Statistical Service codes: a letter and eight digits (E06000001, W92000004).
_GSS_CODE = re.compile(r"[A-Z][0-9]{8}")

# (postcode, outward, laua, ctry, rgn, lat, long, dointr, doterm)
PostcodeRow = tuple[
    str, str, str | None, str | None, str | None, float | None, float | None, str | None, str | None
]


@dataclass(frozen=True, slots=True)
class LookupMembers:
    """Which members of the zip hold the data CSV and (optionally) authority names."""

    data: str
    header: tuple[str, ...]
    names: str | None


def _is_junk(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith("._") or name.endswith("/")


def _read_header(zf: zipfile.ZipFile, name: str, label: str) -> list[str]:
    with zf.open(name) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        first = text.readline(MAX_LINE_BYTES + 1)
    if len(first) > MAX_LINE_BYTES:
        raise SourceError(
            f"{label}: {name}: line 1: longer than {MAX_LINE_BYTES:,} characters; "
            "not a postcode lookup"
        )
    return next(csv.reader([first]), [])


def _open_zip(path: Path, label: str) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise SourceError(f"{label}: postcode lookup not found") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{label}: not a readable zip file ({exc})") from None
    try:
        check_archive(zf, label)
    except SourceError:
        zf.close()
        raise
    return zf


def find_members(zf: zipfile.ZipFile, zip_name: str) -> LookupMembers:
    """Pick the postcode data CSV (by its header) and a names lookup, if any, from the zip."""
    data: list[tuple[str, list[str]]] = []
    names: str | None = None
    misdelimited = ""
    for info in zf.infolist():
        if _is_junk(info.filename) or not info.filename.lower().endswith(".csv"):
            continue
        try:
            header = [h.strip().lower() for h in _read_header(zf, info.filename, zip_name)]
        except _CORRUPT as exc:
            raise SourceError(
                f"{zip_name}: {info.filename}: the zip member is corrupt ({exc})"
            ) from None
        if _POSTCODE_HEADERS & set(header):
            data.append((info.filename, header))
        elif names is None and _names_columns(header) is not None:
            names = info.filename
        elif not misdelimited and len(header) == 1:
            for separator, word in ((";", "semicolon"), ("\t", "tab")):
                if _POSTCODE_HEADERS & {h.strip() for h in header[0].split(separator)}:
                    misdelimited = (
                        f"; {info.filename} looks {word}-separated, "
                        "but the lookup must be comma-separated"
                    )
    if not data:
        raise SourceError(
            f"{zip_name}: no postcode CSV found (a CSV whose header has a pcds/pcd column)"
            + misdelimited
        )
    if len(data) > 1:
        listed = ", ".join(name for name, _ in data)
        raise SourceError(f"{zip_name}: several postcode CSVs found ({listed}); expected one")
    name, header = data[0]
    return LookupMembers(data=name, header=tuple(header), names=names)


def _names_columns(header: list[str]) -> tuple[int, int] | None:
    code = next((i for i, h in enumerate(header) if re.fullmatch(r"lad\d\dcd", h)), None)
    name = next((i for i, h in enumerate(header) if re.fullmatch(r"lad\d\dnm", h)), None)
    if code is None or name is None:
        return None
    return code, name


def _column_index(header: tuple[str, ...], aliases: tuple[str, ...]) -> int | None:
    for alias in aliases:
        if alias in header:
            return header.index(alias)
    return None


def canonical_lookup_postcode(value: str) -> str:
    """A lookup postcode in any of the pcd/pcd2/pcds forms, as canonical ``pcds``."""
    compact = value.replace(" ", "").upper()
    return f"{compact[:-3]} {compact[-3:]}"


def _no_value(code: str) -> str | None:
    code = code.strip()
    if not code or code.endswith(_NO_VALUE_SUFFIX):
        return None
    return code


def is_gss_code(code: str) -> bool:
    """True for a Government Statistical Service code: a capital letter and eight digits."""
    return _GSS_CODE.fullmatch(code) is not None


class _GssCodes:
    """``_no_value``, refusing (``SourceError``) a code that is not a GSS code."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, text: str) -> str | None:
        code = _no_value(text)
        if code is not None and not is_gss_code(code):
            # Quoted with repr(): escaped, cut short, and lookup data is not personal data.
            shown = repr(code[:24] + ("…" if len(code) > 24 else ""))
            raise SourceError(
                f"{self._name}: the code {shown} is not a GSS code (a capital letter and eight "
                "digits, e.g. E06000001); refusing the lookup"
            )
        return code


def _text_or_none(text: str) -> str | None:
    return text.strip() or None


class _Memo(dict[str, str | None]):
    """A function of a column's text, memoised: codes and YYYYMM dates take a few hundred values.

    Looking a value up is one dictionary access instead of a call and a strip per row; the
    memo stops growing at ``_MEMO_LIMIT`` entries, so a file of unique values costs no memory.
    """

    def __init__(self, function: Callable[[str], str | None]) -> None:
        super().__init__()
        self._function = function

    def __missing__(self, text: str) -> str | None:
        value = self._function(text)
        if len(self) < _MEMO_LIMIT:
            self[text] = value
        return value


class PostcodeLookupReader:
    """Stream the rows of an NSPL-style zip as ``PostcodeRow`` tuples, in bounded memory."""

    def __init__(self, path: Path, *, label: str | None = None) -> None:
        self.path = path
        self.label = label or path.name
        with _open_zip(path, self.label) as zf:
            self.members = find_members(zf, self.label)
            self.data_bytes = zf.getinfo(self.members.data).file_size
            """The size of the data CSV once inflated."""
        header = self.members.header
        self._index: dict[str, int | None] = {}
        for role, aliases in REQUIRED_COLUMNS.items():
            index = _column_index(header, aliases)
            if index is None:
                raise SourceError(
                    f"{self.label}: {self.members.data}: required column "
                    f"'{aliases[0]}' is missing from the header"
                )
            self._index[role] = index
        for role, aliases in OPTIONAL_COLUMNS.items():
            self._index[role] = _column_index(header, aliases)

    def estimated_rows(self, sample_bytes: int = 1 << 20) -> int:
        """About how many rows the data CSV holds, for a progress bar's total: its inflated
        size times the line density of its first ``sample_bytes`` (NSPL rows are of much the
        same length). Exact for a CSV shorter than the sample."""
        with _open_zip(self.path, self.label) as zf, zf.open(self.members.data) as raw:
            sample = raw.read(sample_bytes)
        lines = sample.count(b"\n") + (0 if sample.endswith(b"\n") or not sample else 1)
        if len(sample) < sample_bytes:
            return max(lines - 1, 0)
        return max(round(self.data_bytes * lines / len(sample)) - 1, 0)

    def authority_names(self) -> dict[str, str]:
        """Local-authority names from the zip's own names-and-codes lookup ({} if none).

        Rows whose code is not a GSS code are skipped (and counted in a warning): such a
        code never names an authority. A names file over ``MAX_NAMES_BYTES`` is refused.
        """
        if self.members.names is None:
            return {}
        where = f"{self.label}: {self.members.names}"
        names: dict[str, str] = {}
        skipped = 0
        with _open_zip(self.path, self.label) as zf:
            size = zf.getinfo(self.members.names).file_size
            if size > MAX_NAMES_BYTES:
                raise SourceError(
                    f"{where}: the authority names file holds {size:,} bytes, over the "
                    f"{MAX_NAMES_BYTES:,} byte limit"
                )
            try:
                with zf.open(self.members.names) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
                    reader = csv.reader(text)
                    header = [h.strip().lower() for h in next(reader, [])]
                    columns = _names_columns(header)
                    if columns is None:  # pragma: no cover - find_members checked it
                        return {}
                    code_i, name_i = columns
                    for row in reader:
                        if len(row) <= max(code_i, name_i) or not row[code_i].strip():
                            continue
                        code = row[code_i].strip()
                        if is_gss_code(code):
                            names[code] = row[name_i].strip()
                        else:
                            skipped += 1
            except _CORRUPT as exc:
                raise SourceError(f"{where}: the zip member is corrupt ({exc})") from None
            except csv.Error as exc:
                raise SourceError(f"{where}: line {reader.line_num}: {exc}") from None
        if skipped:
            log.warning(
                "%s: %d rows skipped: their code is not a GSS code (a capital letter and "
                "eight digits)",
                where,
                skipped,
            )
        return names

    def batches(
        self, size: int = BATCH_ROWS, *, parallel: bool | None = None
    ) -> Iterator[list[PostcodeRow]]:
        """The rows in lists of up to ``size``, for a bulk load.

        With ``parallel`` (by default: a data CSV of ``PARALLEL_MIN_BYTES`` or more, and more
        than one CPU) a worker process inflates, decodes and splits the CSV
        and sends the fields each row needs, while this process builds the rows of the
        batches it already has and the caller loads them; at most a few batches are in
        flight. Errors are raised here as they would be by iterating the reader.
        """
        if parallel is None:
            parallel = self.data_bytes >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
        if not parallel:
            rows = iter(self)
            while batch := list(islice(rows, size)):
                yield batch
            return
        builder = _RowBuilder(self._absent_roles(), f"{self.label}: {self.members.data}")
        empty = True
        with WorkerBatches(
            _fields_in_worker,
            (str(self.path), self.label),
            label=self.label,
            what="postcode parser",
        ) as worker:
            for fields in worker:
                batch = list(builder.rows(fields))
                if batch:
                    empty = False
                    yield batch
        if empty:
            raise self._empty_error()

    def __iter__(self) -> Iterator[PostcodeRow]:
        with _open_zip(self.path, self.label) as zf, zf.open(self.members.data) as raw:
            yield from self._rows(raw)

    def _empty_error(self) -> SourceError:
        # An empty lookup would replace dim_postcode with nothing: no user located.
        return SourceError(
            f"{self.label}: {self.members.data} holds a header but no postcode rows; "
            "refusing an empty lookup"
        )

    def _absent_roles(self) -> frozenset[int]:
        """Positions in ``PostcodeRow`` of the optional columns this lookup lacks."""
        return frozenset(
            position
            for position, role in enumerate(_ROW_ROLES)
            if role in OPTIONAL_COLUMNS and self._index[role] is None
        )

    def _fields(self, raw: IO[bytes]) -> Iterator[list[tuple[str, ...]]]:
        """The text fields each row needs, in ``_PICKED`` order: a list per block of lines.

        Blank lines are skipped; a row with too few fields is an error naming its line.
        """
        name = f"{self.label}: {self.members.data}"
        records = CsvRecords(raw, name)
        i = self._index
        columns = [i[role] for role in _PICKED]
        present = [x for x in columns if x is not None]
        width = max(present) + 1
        # An absent optional column reads the postcode column; _RowBuilder blanks it.
        pick = itemgetter(*(present[0] if x is None else x for x in columns))
        try:
            for lines in records.batches():
                fields = map(pick, lines)
                batch: list[tuple[str, ...]] = []
                blank = 0
                while True:
                    try:
                        batch.extend(fields)
                    except IndexError:  # a row with too few fields: blank, or an error
                        short = records.short_row(width, len(batch) + blank)
                        if short is None:
                            blank += 1
                            continue  # a blank line: go on with the rest of the block
                        line, found = short
                        raise SourceError(
                            f"{name}: line {line}: expected at least {width} columns, found {found}"
                        ) from None
                    break
                if batch:
                    yield batch
        except _CORRUPT as exc:
            raise SourceError(f"{name}: the zip member is corrupt ({exc})") from None
        except csv.Error as exc:
            raise SourceError(f"{name}: line {records.line_num}: {exc}") from None

    def _rows(self, raw: IO[bytes]) -> Iterator[PostcodeRow]:
        builder = _RowBuilder(self._absent_roles(), f"{self.label}: {self.members.data}")
        empty = True
        for fields in self._fields(raw):
            rows = list(builder.rows(fields))
            empty = empty and not rows
            yield from rows
        if empty:
            raise self._empty_error()


# The roles of the fields picked from each CSV row, and of the values of a PostcodeRow.
_PICKED = ("postcode", "laua", "ctry", "rgn", "lat", "long", "dointr", "doterm")
_ROW_ROLES = ("postcode", "outward", "laua", "ctry", "rgn", "lat", "long", "dointr", "doterm")


class _RowBuilder:
    """Turns the picked text fields into ``PostcodeRow`` values: the hot loop of a national load.

    2.7 million rows pass through ``rows``, so each costs a few string operations, memo
    look-ups for the code and date columns (a few hundred distinct values) and ``float``.
    """

    def __init__(self, absent: frozenset[int], name: str) -> None:
        self._absent = absent
        self._codes = _Memo(_GssCodes(name))
        # An absent column reads the postcode column (blanked afterwards): not a code to check.
        unchecked = _Memo(_no_value)
        self._ctry_codes = unchecked if _ROW_ROLES.index("ctry") in absent else self._codes
        self._rgn_codes = unchecked if _ROW_ROLES.index("rgn") in absent else self._codes
        self._dates = _Memo(_text_or_none)

    def rows(self, fields: Iterable[tuple[str, ...]]) -> Iterator[PostcodeRow]:
        rows = self._rows(fields)
        if not self._absent:
            return rows
        absent = self._absent
        return (
            cast(PostcodeRow, tuple(None if k in absent else v for k, v in enumerate(row)))
            for row in rows
        )

    def _rows(self, fields: Iterable[tuple[str, ...]]) -> Iterator[PostcodeRow]:
        codes, ctry_codes, rgn_codes = self._codes, self._ctry_codes, self._rgn_codes
        dates = self._dates
        for postcode, laua, ctry, rgn, lat, long, dointr, doterm in fields:
            if postcode[-4:-3] == " " and postcode.count(" ") == 1 and postcode.isupper():
                canonical = postcode  # already canonical, as every pcds value is
                outward = postcode[:-4]
            else:
                compact = postcode.replace(" ", "").upper()
                if not compact or compact.isspace():
                    continue
                outward = compact[:-3]
                canonical = f"{outward} {compact[-3:]}"
            # float() strips spaces itself; only a placeholder's value needs a second look.
            try:
                latitude: float | None = float(lat)
            except ValueError:
                latitude = None
            else:
                if latitude == _LAT_MISSING and lat.strip() == _LAT_MISSING_TEXT:
                    latitude = None
            try:
                longitude: float | None = float(long)
            except ValueError:
                longitude = None
            else:
                if longitude == _LONG_MISSING and long.strip() == _LONG_MISSING_TEXT:
                    longitude = None
            yield (
                canonical,
                outward,
                codes[laua],
                ctry_codes[ctry],
                rgn_codes[rgn],
                latitude,
                longitude,
                dates[dointr],
                dates[doterm],
            )


def _fields_in_worker(path: str, label: str) -> Generator[list[tuple[str, ...]], None, None]:
    """In the worker process: the picked fields of the lookup at ``path``, batch by batch."""
    reader = PostcodeLookupReader(Path(path), label=label)
    with _open_zip(reader.path, label) as zf, zf.open(reader.members.data) as raw:
        yield from reader._fields(raw)
