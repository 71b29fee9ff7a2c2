"""Stream the ONS postcode lookup (NSPL/ONSPD) out of its zip, mapping columns by name.

The data CSV is picked by its header, not its name; columns are found case-insensitively
under the names the different vintages use; a names-and-codes lookup for local authorities
is read from the zip when one is there.
"""

from __future__ import annotations

import codecs
import csv
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import IO, Any, cast

from evergreen_etl.errors import SourceError
from evergreen_etl.sources.archive import check_archive

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
_BLOCK_BYTES = 1 << 20
_MEMO_LIMIT = 100_000

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


def _read_header(zf: zipfile.ZipFile, name: str) -> list[str]:
    with zf.open(name) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        first = text.readline()
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
            header = [h.strip().lower() for h in _read_header(zf, info.filename)]
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


class _CsvRecords:
    """The records of the data CSV as lists of fields, read block by block in bounded memory.

    A line without a quote character is split on commas, which gives exactly what
    ``csv.reader`` gives for it at a fraction of the cost (the real lookup never quotes).
    From the first block holding a quote or a bare carriage return on, the rest of the stream
    is read by ``csv.reader``, which handles quoted commas and line breaks.
    ``line_of`` says on which line of the file a record started.
    """

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._raw = raw
        self._name = name
        self._lines_before = 0  # physical lines in the blocks before the current one
        self._block: list[str] = []
        self._csv_lines_before: int | None = None  # set once csv.reader has taken over
        self._csv: Any = None

    def __iter__(self) -> Iterator[list[str]]:
        split = methodcaller("split", ",")
        for text in self._texts():
            if self._csv_lines_before is None:
                if "\r" in text:
                    text = text.replace("\r\n", "\n")
                if '"' not in text and "\r" not in text:
                    lines = text.split("\n")
                    lines.pop()  # the text ends with a line break: nothing after it
                    self._block = lines
                    yield from map(split, lines)
                    self._lines_before += len(lines)
                    continue
                self._csv_lines_before = self._lines_before
                self._csv = csv.reader(self._csv_lines(text))
                yield from self._csv
                return

    def _csv_lines(self, first: str) -> Iterator[str]:
        yield from io.StringIO(first, newline="")
        self._lines_before += first.count("\n")
        for text in self._texts():
            yield from io.StringIO(text, newline="")
            self._lines_before += text.count("\n")

    def _texts(self) -> Iterator[str]:
        """Decoded blocks of whole lines, each ending with a line break."""
        pending = b""
        first = True
        while True:
            chunk = self._raw.read(_BLOCK_BYTES)
            data = pending + chunk if pending else chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if not cut:  # one line longer than a block: read on
                    pending = data
                    continue
                data, pending = data[:cut], data[cut:]
            elif not data:
                return
            else:
                pending = b""
                data += b"\n"
            if first:
                first = False
                if data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8) :]
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = self._lines_before + data.count(b"\n", 0, exc.start) + 1
                raise SourceError(f"{self._name}: line {line}: not valid UTF-8") from None

    def line_of(self, record: list[str]) -> int:
        """The line on which ``record``, the last one yielded, started."""
        if self._csv_lines_before is not None:
            return self._csv_lines_before + int(self._csv.line_num)
        split = methodcaller("split", ",")
        index = next(i for i, fields in enumerate(map(split, self._block)) if fields == record)
        return self._lines_before + index + 1

    @property
    def line_num(self) -> int:
        """The number of lines read so far (for errors raised by ``csv.reader``)."""
        if self._csv_lines_before is not None:
            return self._csv_lines_before + int(self._csv.line_num)
        return self._lines_before


class PostcodeLookupReader:
    """Stream the rows of an NSPL-style zip as ``PostcodeRow`` tuples, in bounded memory."""

    def __init__(self, path: Path, *, label: str | None = None) -> None:
        self.path = path
        self.label = label or path.name
        with _open_zip(path, self.label) as zf:
            self.members = find_members(zf, self.label)
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

    def authority_names(self) -> dict[str, str]:
        """Local-authority names from the zip's own names-and-codes lookup ({} if none)."""
        if self.members.names is None:
            return {}
        names: dict[str, str] = {}
        with _open_zip(self.path, self.label) as zf, zf.open(self.members.names) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            reader = csv.reader(text)
            header = [h.strip().lower() for h in next(reader, [])]
            columns = _names_columns(header)
            if columns is None:  # pragma: no cover - find_members checked it
                return {}
            code_i, name_i = columns
            for row in reader:
                if len(row) > max(code_i, name_i) and row[code_i].strip():
                    names[row[code_i].strip()] = row[name_i].strip()
        return names

    def __iter__(self) -> Iterator[PostcodeRow]:
        with _open_zip(self.path, self.label) as zf, zf.open(self.members.data) as raw:
            yield from self._rows(raw)

    def _rows(self, raw: IO[bytes]) -> Iterator[PostcodeRow]:
        name = f"{self.label}: {self.members.data}"
        records = _CsvRecords(raw, name)
        try:
            rows = self._build_rows(records, name)
            first = next(rows, None)
            if first is None:
                # An empty lookup would replace dim_postcode with nothing: no user located.
                raise SourceError(
                    f"{self.label}: {self.members.data} holds a header but no postcode rows; "
                    "refusing an empty lookup"
                )
            yield first
            yield from rows
        except _CORRUPT as exc:
            raise SourceError(f"{name}: the zip member is corrupt ({exc})") from None
        except csv.Error as exc:
            raise SourceError(f"{name}: line {records.line_num}: {exc}") from None

    def _build_rows(self, records: _CsvRecords, name: str) -> Iterator[PostcodeRow]:
        """Turn each record into a ``PostcodeRow``: the hot loop of a national load.

        2.7 million rows pass through here, so the loop keeps to one ``itemgetter`` call,
        memo lookups for the few-valued columns and ``float`` for the coordinates.
        """
        i = self._index
        pc_i, la_i = i["postcode"], i["laua"]
        assert pc_i is not None
        assert la_i is not None
        optional = [i[role] for role in ("ctry", "rgn", "lat", "long", "dointr", "doterm")]
        width = max([pc_i, la_i] + [x for x in optional if x is not None]) + 1
        # An absent optional column reads the postcode column and is blanked afterwards.
        pick = itemgetter(pc_i, la_i, *(pc_i if x is None else x for x in optional))
        absent = {3 + k for k, x in enumerate(optional[:2]) if x is None}
        absent |= {5 + k for k, x in enumerate(optional[2:]) if x is None}
        codes = _Memo(_no_value)
        dates = _Memo(_text_or_none)
        rows = iter(records)
        next(rows, None)  # the header
        built = self._iterate(rows, records, name, pick, width, codes, dates)
        if absent:
            built = (
                cast(PostcodeRow, tuple(None if k in absent else v for k, v in enumerate(row)))
                for row in built
            )
        yield from built

    @staticmethod
    def _iterate(
        rows: Iterator[list[str]],
        records: _CsvRecords,
        name: str,
        pick: Callable[[list[str]], tuple[str, ...]],
        width: int,
        codes: _Memo,
        dates: _Memo,
    ) -> Iterator[PostcodeRow]:
        for row in rows:
            try:
                postcode, laua, ctry, rgn, lat, long, dointr, doterm = pick(row)
            except IndexError:
                if not row or row == [""]:
                    continue  # a blank line
                raise SourceError(
                    f"{name}: line {records.line_of(row)}: expected at least {width} columns, "
                    f"found {len(row)}"
                ) from None
            compact = postcode.replace(" ", "").upper()
            if not compact or compact.isspace():
                continue
            outward = compact[:-3]
            # float() strips spaces itself; only a value equal to a placeholder needs a look.
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
                f"{outward} {compact[-3:]}",
                outward,
                codes[laua],
                codes[ctry],
                codes[rgn],
                latitude,
                longitude,
                dates[dointr],
                dates[doterm],
            )
