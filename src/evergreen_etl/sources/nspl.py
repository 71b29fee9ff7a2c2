"""Stream the ONS postcode lookup (NSPL/ONSPD) out of its zip, mapping columns by name.

The data CSV is picked by its header, not its name; columns are found case-insensitively
under the names the different vintages use; a names-and-codes lookup for local authorities
is read from the zip when one is there.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from evergreen_etl.errors import SourceError

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
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise SourceError(f"{label}: postcode lookup not found") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{label}: not a readable zip file ({exc})") from None


def find_members(zf: zipfile.ZipFile, zip_name: str) -> LookupMembers:
    """Pick the postcode data CSV (by its header) and a names lookup, if any, from the zip."""
    data: list[tuple[str, list[str]]] = []
    names: str | None = None
    for info in zf.infolist():
        if _is_junk(info.filename) or not info.filename.lower().endswith(".csv"):
            continue
        header = [h.strip().lower() for h in _read_header(zf, info.filename)]
        if _POSTCODE_HEADERS & set(header):
            data.append((info.filename, header))
        elif names is None and _names_columns(header) is not None:
            names = info.filename
    if not data:
        raise SourceError(
            f"{zip_name}: no postcode CSV found (a CSV whose header has a pcds/pcd column)"
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


def _coordinate(text: str, missing: str) -> float | None:
    text = text.strip()
    if not text or text == missing:
        return None
    try:
        return float(text)
    except ValueError:
        return None


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
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.reader(text)
        i = self._index
        pc_i, la_i = i["postcode"], i["laua"]
        assert pc_i is not None
        assert la_i is not None
        optional = [i[role] for role in ("ctry", "rgn", "lat", "long", "dointr", "doterm")]
        width = max([pc_i, la_i] + [x for x in optional if x is not None]) + 1
        ctry_i, rgn_i, lat_i, long_i, intr_i, term_i = optional
        name = f"{self.label}: {self.members.data}"
        try:
            next(reader, None)  # header
            for row in reader:
                if len(row) < width:
                    if not row:
                        continue
                    raise SourceError(
                        f"{name}: line {reader.line_num}: expected at least {width} columns, "
                        f"found {len(row)}"
                    )
                postcode = row[pc_i]
                if not postcode.strip():
                    continue
                canonical = canonical_lookup_postcode(postcode)
                yield (
                    canonical,
                    canonical.split(" ", 1)[0],
                    _no_value(row[la_i]),
                    _no_value(row[ctry_i]) if ctry_i is not None else None,
                    _no_value(row[rgn_i]) if rgn_i is not None else None,
                    _coordinate(row[lat_i], "99.999999") if lat_i is not None else None,
                    _coordinate(row[long_i], "0.000000") if long_i is not None else None,
                    (row[intr_i].strip() or None) if intr_i is not None else None,
                    (row[term_i].strip() or None) if term_i is not None else None,
                )
        except UnicodeDecodeError:
            raise SourceError(f"{name}: line {reader.line_num + 1}: not valid UTF-8") from None
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise SourceError(f"{name}: the zip member is corrupt ({exc})") from None
        except csv.Error as exc:
            raise SourceError(f"{name}: line {reader.line_num}: {exc}") from None
