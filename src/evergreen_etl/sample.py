"""Realistic fake sources in the real layouts, for demos, tests and benchmarks.

``generate_sample`` writes a ``postcodes.zip`` shaped like the ONS National Statistics Postcode
Lookup (44-column centroid CSV plus a names lookup) and one or more ``users.json`` snapshots shaped
like the Evergreen customer export, with the mess the real sources have (SPEC §1). Everything is
deterministic for a seed and nothing touches the network.

The people are invented: names, streets and emails are distinctive strings that cannot occur by
accident in a database file or a local-authority name, so a test can search any output for them
to prove that no personal data leaked.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
import unicodedata
import zipfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple, TextIO

from pydantic import BaseModel, ConfigDict

__all__ = [
    "NAMES_MEMBER",
    "NSPL_HEADER",
    "NSPL_MEMBER",
    "PostcodeSample",
    "SampleDistrict",
    "SampleResult",
    "generate_sample",
    "write_postcode_lookup",
    "write_users_snapshots",
]


def _words(text: str) -> tuple[str, ...]:
    """Split a table of words written as one string (easier to read than a tuple literal)."""
    return tuple(text.split())


NSPL_MEMBER = "National_Statistics_Postcode_Lookup_Latest_Centroids.csv"
NAMES_MEMBER = "Documents/LA_UA names and codes UK as at 04_23.csv"
NSPL_HEADER: tuple[str, ...] = _words(
    "X Y objectid pcd pcd2 pcds dointr doterm usertype oseast1m osnrth1m osgrdind oa11 cty "
    "laua ward hlthau ctry pcon eer teclec ttwa pct nuts park lsoa11 msoa11 wz11 ccg bua11 "
    "buasd11 ru11ind oac11 lat long lep1 lep2 pfa imd ced nhser rgn calncv stp"
)

# Zip members get a fixed timestamp so that the same seed gives the same bytes.
_ZIP_DATE = (2023, 5, 1, 0, 0, 0)
# Above this many rows the CSV member may pass 2 GiB and needs ZIP64 headers up front.
_ZIP64_ROWS = 5_000_000
_MAX_POSTCODES = 7_000_000  # keeps the largest district under 4000 units
_MIN_POSTCODES = 100
_ROWS_PER_DISTRICT = 60
_MAX_DISTRICTS = 3000
_CHUNK_ROWS = 8192
# Postcodes per district kept for the users to live at.
_LIVE_SAMPLE = 48
_TERMINATED_SAMPLE = 6
# The start of an AppleDouble resource-fork file, as macOS Finder leaves in zips it makes.
_APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(66)

# --------------------------------------------------------------------------------------------
# Postcode geography
# --------------------------------------------------------------------------------------------

_ENGLAND = "E92000001"
_SCOTLAND = "S92000003"
_WALES = "W92000004"
_NORTHERN_IRELAND = "N92000002"
_CHANNEL_ISLANDS = "L93000001"
_ISLE_OF_MAN = "M83000003"

_AREAS: dict[str, tuple[str, ...]] = {
    _ENGLAND: _words(
        "AL B BA BB BD BH BL BN BR BS CA CB CH CM CO CR CT CV CW DA DE DH DL DN DT DY E EC EN "
        "EX GL GU HA HD HG HP HR HU HX IG IP KT L LA LE LN LS LU M ME MK N NE NG NN NR NW OL "
        "OX PE PL PO PR RG RH RM S SE SG SK SL SM SN SO SP SR SS ST SW SY TA TF TN TQ TR TS TW "
        "UB W WA WC WD WF WN WR WS WV YO"
    ),
    _SCOTLAND: _words("AB DD DG EH FK G HS IV KA KW KY ML PA PH TD ZE"),
    _WALES: ("CF", "LD", "LL", "NP", "SA"),
    _NORTHERN_IRELAND: ("BT",),
    _CHANNEL_ISLANDS: ("GY", "JE"),
    _ISLE_OF_MAN: ("IM",),
}
# Districts whose outward code ends in a letter, as central London has them.
_SPECIAL_DISTRICTS: dict[str, tuple[str, ...]] = {
    "EC": _words(
        "EC1A EC1M EC1N EC1R EC1V EC1Y EC2A EC2M EC2N EC2R EC2V EC2Y EC3A EC3M EC3N EC3R EC3V "
        "EC4A EC4M EC4N EC4R EC4V EC4Y"
    ),
    "WC": _words("WC1A WC1B WC1E WC1H WC1N WC1R WC1V WC1X WC2A WC2B WC2E WC2H WC2N WC2R"),
    "SW": ("SW1A", "SW1E", "SW1H", "SW1P", "SW1V", "SW1W", "SW1X", "SW1Y"),
    "W": ("W1A", "W1B", "W1C", "W1D", "W1F", "W1G", "W1H", "W1J", "W1K", "W1S", "W1T", "W1U"),
    "E": ("E1", "E1W"),
    "N": ("N1", "N1C"),
}
_DISTRICT_COUNT_LIMIT: dict[str, int] = {"GY": 10, "JE": 5, "IM": 9, "ZE": 3, "HS": 9, "LD": 8}
_DEFAULT_DISTRICT_LIMIT = 40
_ALWAYS_PRESENT = ("GY1", "JE2", "IM1")

# Inward unit letters: NSPL never uses C, I, K, M, O or V there.
_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_UNITS_PER_SECTOR = len(_UNIT_LETTERS) ** 2
_INWARDS: tuple[str, ...] = tuple(
    f"{sector}{a}{b}" for sector in "0123456789" for a in _UNIT_LETTERS for b in _UNIT_LETTERS
)
# Offsets (metres) of each unit from its district centre: a fixed scatter within about 2 km.
_DX: tuple[int, ...] = tuple((i * 7919) % 4001 - 2000 for i in range(len(_INWARDS)))
_DY: tuple[int, ...] = tuple((i * 104729) % 3989 - 1994 for i in range(len(_INWARDS)))

_MONTHS: tuple[str, ...] = tuple(
    f"{year}{month:02d}"
    for year in range(1980, 2024)
    for month in range(1, 13)
    if year * 100 + month <= 202302
)

# Per country: ranges for district centres (easting low/high, northing low/high) and the rough
# lat/long of the grid's origin (British National Grid; the Irish Grid for Northern Ireland).
# A flat-earth conversion: plausible coordinates, not surveyed ones.
_GRID: dict[str, tuple[int, int, int, int, float, float]] = {
    _ENGLAND: (360_000, 640_000, 90_000, 560_000, 49.766, -7.557),
    _SCOTLAND: (200_000, 420_000, 600_000, 980_000, 49.766, -7.557),
    _WALES: (200_000, 330_000, 180_000, 380_000, 49.766, -7.557),
    _NORTHERN_IRELAND: (130_000, 330_000, 320_000, 450_000, 51.4, -9.95),
}
_LAT_PER_METRE = 1 / 111_320
_LON_PER_METRE = 1 / (111_320 * 0.62)  # cos(52°)
_CROWN_LATLONG: dict[str, tuple[float, float]] = {
    "GY": (49.455, -2.583),
    "JE": (49.205, -2.135),
    "IM": (54.225, -4.545),
}
_WELSH_NAMES = {
    "W06000011": "Abertawe",
    "W06000015": "Caerdydd",
    "W06000022": "Casnewydd",
    "W06000001": "Ynys Môn",
}
_OAC = ("1A1", "2B2", "3C1", "4A3", "5B1", "6A2", "7C3", "8B1")
_RURAL_URBAN = ("A1", "C1", "C1", "C1", "D1", "E1")


class SampleDistrict(NamedTuple):
    """A postcode district of the sample lookup, with a sample of its postcodes."""

    outward: str
    authorities: tuple[str, ...]
    """Distinct ``laua`` codes of the district's live postcodes, the main one first."""
    live: tuple[str, ...]
    """Some of its live postcodes, canonical (``pcds``) form."""
    terminated: tuple[str, ...]
    """Some of its terminated postcodes, including every one with a pseudo-code ``laua``."""


@dataclass(frozen=True, slots=True)
class PostcodeSample:
    """What ``write_postcode_lookup`` wrote: row count, districts and postcodes to draw from."""

    rows: int
    districts: tuple[SampleDistrict, ...]
    authorities: tuple[str, ...]
    """Every real local-authority code the lookup uses, sorted."""

    def straddling(self) -> tuple[SampleDistrict, ...]:
        """The districts whose live postcodes lie in more than one authority."""
        return tuple(d for d in self.districts if len(d.authorities) > 1)


class _Authority(NamedTuple):
    code: str
    name: str
    region: str
    country: str
    upper_tier: str


class _DistrictPlan(NamedTuple):
    outward: str
    country: str
    rows: int
    authorities: tuple[_Authority, ...]  # one, or two when the district straddles
    stale_other: _Authority | None  # a terminated postcode in another authority
    pseudo_laua: str | None  # one terminated, grid-less postcode with this pseudo-code


def _load_authorities() -> dict[str, list[_Authority]]:
    table = files("evergreen_etl") / "reference" / "local_authorities.csv"
    by_country: dict[str, list[_Authority]] = {}
    for row in csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))):
        if row["Current"].strip().upper() != "TRUE":
            continue
        authority = _Authority(
            code=row["LADCD"],
            name=row["LADNM"],
            region=row["RGNCD"],
            country=row["CTRYCD"],
            upper_tier=row["UTLACD"],
        )
        by_country.setdefault(authority.country, []).append(authority)
    return by_country


def _candidate_outwards() -> list[tuple[str, str]]:
    """Every outward code the generator may use, round-robin over areas: (outward, country)."""
    per_area: list[tuple[str, list[str]]] = []
    for country, areas in _AREAS.items():
        for area in areas:
            limit = _DISTRICT_COUNT_LIMIT.get(area, _DEFAULT_DISTRICT_LIMIT)
            special = list(_SPECIAL_DISTRICTS.get(area, ()))
            numbered = [f"{area}{n}" for n in range(1, limit + 1) if f"{area}{n}" not in special]
            if area in ("EC", "WC"):
                numbered = []
            per_area.append((country, special + numbered))
    per_area.sort(key=lambda item: item[1][0])
    ordered: list[tuple[str, str]] = []
    longest = max(len(outwards) for _, outwards in per_area)
    for rank in range(longest):
        for country, outwards in per_area:
            if rank < len(outwards):
                ordered.append((outwards[rank], country))
    return ordered


def _plan_districts(postcodes: int, rng: random.Random) -> list[_DistrictPlan]:
    authorities = _load_authorities()
    count = min(max(6, postcodes // _ROWS_PER_DISTRICT), _MAX_DISTRICTS)
    candidates = _candidate_outwards()
    chosen = candidates[:count]
    # The Channel Islands and the Isle of Man are always present, however small the sample.
    picked = {outward for outward, _ in chosen}
    replace_at = len(chosen) - 1
    for outward in _ALWAYS_PRESENT:
        if outward in picked:
            continue
        while chosen[replace_at][1] in (_CHANNEL_ISLANDS, _ISLE_OF_MAN):
            replace_at -= 1
        chosen[replace_at] = (outward, _ISLE_OF_MAN if outward[:2] == "IM" else _CHANNEL_ISLANDS)
        replace_at -= 1
    chosen.sort()

    # Cycle through each country's authorities in a shuffled order so that every authority
    # gets districts once there are enough of them.
    cycles: dict[str, Iterator[_Authority]] = {}
    for country, country_authorities in authorities.items():
        shuffled = list(country_authorities)
        rng.shuffle(shuffled)
        cycles[country] = _cycle(shuffled)

    ordinary = [i for i, (_, country) in enumerate(chosen) if country in authorities]
    straddle = set(rng.sample(ordinary, max(1, round(len(ordinary) * 0.10))))
    rest = [i for i in ordinary if i not in straddle]
    stale = set(rng.sample(rest, max(1, round(len(ordinary) * 0.03))))
    rest = [i for i in rest if i not in stale]
    pseudo_english = [i for i in rest if chosen[i][1] == _ENGLAND]
    pseudo_scottish = [i for i in rest if chosen[i][1] == _SCOTLAND]
    pseudo_count = max(2, len(ordinary) // 100)
    pseudo = dict.fromkeys(rng.sample(pseudo_scottish, min(1, len(pseudo_scottish))), "S99999999")
    for i in rng.sample(pseudo_english, min(pseudo_count - len(pseudo), len(pseudo_english))):
        pseudo[i] = "E99999999"

    weights = [
        0.3 if chosen[i][1] not in authorities else rng.uniform(0.4, 1.6)
        for i in range(len(chosen))
    ]
    sizes = _apportion(postcodes, weights, minimum=6)

    plans: list[_DistrictPlan] = []
    for i, (outward, country) in enumerate(chosen):
        if country not in authorities:
            plans.append(_DistrictPlan(outward, country, sizes[i], (), None, None))
            continue
        main = next(cycles[country])
        members: tuple[_Authority, ...] = (main,)
        other: _Authority | None = None
        if i in straddle or i in stale:
            # Drawn aside from the cycle, so every authority still gets districts of its own.
            neighbours = [a for a in authorities[country] if a.code != main.code]
            other = neighbours[int(rng.random() * len(neighbours))]
        if i in straddle and other is not None:
            members = (main, other)
            other = None
        plans.append(_DistrictPlan(outward, country, sizes[i], members, other, pseudo.get(i)))
    return plans


def _cycle(items: Sequence[_Authority]) -> Iterator[_Authority]:
    while True:
        yield from items


def _apportion(total: int, weights: Sequence[float], *, minimum: int) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights``, each at least ``minimum``."""
    spare = total - minimum * len(weights)
    scale = sum(weights)
    sizes = [minimum + int(spare * w / scale) for w in weights]
    shortfall = total - sum(sizes)
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    for k in range(shortfall):
        sizes[order[k % len(order)]] += 1
    return sizes


def _authority_blocks(
    authority: _Authority, serial: int, district: int
) -> tuple[list[str], list[str]]:
    """Per-sector constant column blocks for one authority in one district.

    Returns ``(middle, tail)``: ``middle`` covers ``osgrdind`` to ``oac11`` and ``tail`` covers
    ``lep1`` to ``stp``, one string per sector (0-9). Codes other than ``laua``, ``ctry`` and
    ``rgn`` are pseudo-codes of the right shape, cheap to make and good enough for a loader.
    """
    c = authority.code[0]
    none = f"{c}99999999"
    upper = authority.upper_tier
    county = upper if c == "E" and upper.startswith("E10") else none
    region = authority.region or none
    region_digit = int(region[-1]) if authority.region else 1
    english = c == "E"
    middle: list[str] = []
    tail: list[str] = []
    for sector in range(10):
        small_area = district * 10 + sector + 1
        middle.append(
            ",".join(
                (
                    "1",
                    f"{c}00{small_area * 7 % 1_000_000:06d}",
                    county,
                    authority.code,
                    f"{c}05{small_area % 1_000_000:06d}",
                    f"{c}18{serial % 100:06d}",
                    authority.country,
                    f"{c}14{serial % 650 + 1:06d}",
                    f"{c}15{region_digit:06d}",
                    none,
                    f"{c}30{serial % 228 + 1:06d}",
                    f"{c}16{serial % 150 + 1:06d}",
                    authority.code,
                    none,
                    f"{c}01{small_area % 1_000_000:06d}",
                    f"{c}02{district % 999_999 + 1:06d}",
                    f"{c}33{small_area % 1_000_000:06d}",
                    f"{c}38{serial % 200 + 1:06d}",
                    f"{c}34{district % 999_999 + 1:06d}",
                    none,
                    _RURAL_URBAN[district % len(_RURAL_URBAN)],
                    _OAC[small_area % len(_OAC)],
                )
            )
        )
        tail.append(
            ",".join(
                (
                    f"{c}37{serial % 38 + 1:06d}" if english else none,
                    "",
                    f"{c}23{serial % 44 + 1:06d}",
                    str(small_area * 7919 % 32_844 + 1),
                    none,
                    f"{c}40{region_digit:06d}" if english else none,
                    region,
                    f"{c}56{serial % 30 + 1:06d}" if english else none,
                    f"{c}54{serial % 42 + 1:06d}" if english else none,
                )
            )
        )
    return middle, tail


def _crown_blocks(outward: str) -> tuple[list[str], list[str]]:
    """Column blocks for Channel Islands and Isle of Man rows: pseudo-codes throughout."""
    man = outward.startswith("IM")
    c = "M" if man else "L"
    none = f"{c}99999999"
    country = _ISLE_OF_MAN if man else _CHANNEL_ISLANDS
    # osgrdind, oa11..hlthau, ctry, pcon..buasd11, ru11ind, oac11
    middle = ",".join(["1", *[none] * 5, country, *[none] * 13, "", ""])
    tail = ",".join((none, "", none, "", none, none, none, none, none))
    return [middle] * 10, [tail] * 10


def _pseudo_blocks(pseudo_laua: str, authority: _Authority) -> tuple[str, str]:
    """Blocks for a postcode whose authority is a pseudo-code (no grid reference)."""
    none = pseudo_laua
    region = authority.region or none
    # No grid reference: osgrdind 9 and no output area.
    middle = ",".join(["9", "", *[none] * 4, authority.country, *[none] * 13, "", ""])
    tail = ",".join((none, "", none, "", none, none, region, none, none))
    return middle, tail


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    # ZipFile.open() takes the level from the member, not the archive; the attribute was
    # renamed in Python 3.13. Level 1: the benchmark scale is ~1 GB of CSV.
    level_attribute = "compress_level" if sys.version_info >= (3, 13) else "_compresslevel"
    setattr(info, level_attribute, 1)
    info.external_attr = 0o644 << 16
    return info


def write_postcode_lookup(
    path: Path, *, postcodes: int, seed: int, macos_junk: bool = False
) -> PostcodeSample:
    """Write an NSPL-shaped ``postcodes.zip`` with ``postcodes`` data rows to ``path``.

    The zip holds the 44-column centroid CSV and a ``Documents/`` names lookup (and, with
    ``macos_junk``, ``__MACOSX/`` entries). About 10% of postcodes are terminated. Most
    districts lie in one authority; about 10% straddle two; about 3% lie in one authority
    among their live postcodes but have a terminated one in another. A few terminated
    postcodes carry the pseudo-codes ``E99999999``/``S99999999`` and no grid reference, and
    the Channel Islands (``L99999999``) and Isle of Man (``M99999999``) are included.

    Returns the district structure and a sample of postcodes to give the users.
    """
    if not _MIN_POSTCODES <= postcodes <= _MAX_POSTCODES:
        raise ValueError(f"postcodes must be between {_MIN_POSTCODES} and {_MAX_POSTCODES}")
    rng = random.Random(f"evergreen-sample:{seed}:postcodes")
    plans = _plan_districts(postcodes, rng)
    used = sorted(
        {a for plan in plans for a in plan.authorities}
        | {plan.stale_other for plan in plans if plan.stale_other is not None}
    )

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        big = postcodes > _ZIP64_ROWS
        with (
            archive.open(_zip_info(NSPL_MEMBER), "w", force_zip64=big) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
        ):
            csv.writer(text, lineterminator="\r\n").writerow(NSPL_HEADER)
            rows, districts = _write_rows(text, plans, rng)
        with (
            archive.open(_zip_info(NAMES_MEMBER), "w") as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
        ):
            names = csv.writer(text, lineterminator="\r\n")
            names.writerow(("LAD23CD", "LAD23NM", "LAD23NMW"))
            names.writerows((a.code, a.name, _WELSH_NAMES.get(a.code, "")) for a in used)
        if macos_junk:
            for member in (NSPL_MEMBER, NAMES_MEMBER):
                folder, _, base = member.rpartition("/")
                junk = f"__MACOSX/{folder + '/' if folder else ''}._{base}"
                archive.writestr(_zip_info(junk), _APPLE_DOUBLE)
    return PostcodeSample(
        rows=rows, districts=tuple(districts), authorities=tuple(a.code for a in used)
    )


def _write_rows(
    out: TextIO, plans: Sequence[_DistrictPlan], rng: random.Random
) -> tuple[int, list[SampleDistrict]]:
    """Write every data row, district by district; return the row count and the districts."""
    rand = rng.random
    months = _MONTHS
    n_months = len(months)
    inwards = _INWARDS
    dx = _DX
    dy = _DY
    unit_count = len(_INWARDS)
    object_id = 0
    lines: list[str] = []
    districts: list[SampleDistrict] = []
    for number, plan in enumerate(plans):
        units = sorted(rng.sample(range(unit_count), plan.rows))
        # Build the per-district constants once; the row loop only formats the varying fields.
        if plan.authorities:
            blocks = [
                _authority_blocks(a, number * 3 + k, number) for k, a in enumerate(plan.authorities)
            ]
            east_low, east_high, north_low, north_high, lat_origin, lon_origin = _GRID[plan.country]
            east0 = rng.randrange(east_low, east_high)
            north0 = rng.randrange(north_low, north_high)
            lat0 = lat_origin + north0 * _LAT_PER_METRE
            lon0 = lon_origin + east0 * _LON_PER_METRE
            gridded = True
        else:
            blocks = [_crown_blocks(plan.outward)]
            lat0, lon0 = _CROWN_LATLONG[plan.outward[:2]]
            lat0 += rng.uniform(-0.03, 0.03)
            lon0 += rng.uniform(-0.03, 0.03)
            east0 = north0 = 0
            gridded = False
        stale = (
            _authority_blocks(plan.stale_other, number * 3 + 2, number)
            if plan.stale_other is not None
            else None
        )
        pcd_prefix = f"{plan.outward:<4}"
        pcd2_prefix = f"{plan.outward:<4} "
        pcds_prefix = plan.outward + " "
        split = len(units) // 2 if len(blocks) > 1 else len(units)
        pseudo_at = len(units) - 1 if plan.pseudo_laua is not None else -1
        stale_at = len(units) - 2 if stale is not None else -1
        live: list[int] = []
        terminated: list[int] = []
        laua_of_live: dict[int, None] = {}
        for position, unit in enumerate(units):
            object_id += 1
            which = 0 if position < split else 1
            middle, tail = blocks[which]
            sector = unit // _UNITS_PER_SECTOR
            r = rand()
            start = 0 if r < 0.35 else int(rand() * (n_months - 1))
            intr = months[start]
            inward = inwards[unit]
            if position in (pseudo_at, stale_at) or r > 0.9:
                term = months[start + 1 + int(rand() * (n_months - start - 1))]
                terminated.append(position)
            else:
                term = ""
                live.append(position)
                laua_of_live[which] = None
            if position == pseudo_at and plan.pseudo_laua is not None:
                mid, tl = _pseudo_blocks(plan.pseudo_laua, plan.authorities[0])
                lines.append(
                    f"0.000000,99.999999,{object_id},{pcd_prefix}{inward},{pcd2_prefix}{inward},"
                    f"{pcds_prefix}{inward},{intr},{term},0,,,{mid},99.999999,0.000000,{tl}\r\n"
                )
                continue
            if position == stale_at and stale is not None:
                middle, tail = stale
            ox = dx[unit]
            oy = dy[unit]
            lat = f"{lat0 + oy * _LAT_PER_METRE:.6f}"
            lon = f"{lon0 + ox * _LON_PER_METRE:.6f}"
            grid = f"{east0 + ox},{north0 + oy:07d}" if gridded else ","
            lines.append(
                f"{lon},{lat},{object_id},{pcd_prefix}{inward},{pcd2_prefix}{inward},"
                f"{pcds_prefix}{inward},{intr},{term},{'1' if r < 0.02 else '0'},{grid},"
                f"{middle[sector]},{lat},{lon},{tail[sector]}\r\n"
            )
        if len(lines) >= _CHUNK_ROWS:
            out.write("".join(lines))
            lines.clear()
        if plan.authorities:
            codes = tuple(plan.authorities[k].code for k in laua_of_live)
        else:
            codes = (("M" if plan.outward.startswith("IM") else "L") + "99999999",)
        sampled_live = rng.sample(live, min(_LIVE_SAMPLE, len(live)))
        sampled_terminated = set(rng.sample(terminated, min(_TERMINATED_SAMPLE, len(terminated))))
        if pseudo_at >= 0:
            sampled_terminated.add(pseudo_at)
        districts.append(
            SampleDistrict(
                outward=plan.outward,
                authorities=codes,
                live=tuple(pcds_prefix + inwards[units[p]] for p in sorted(sampled_live)),
                terminated=tuple(
                    pcds_prefix + inwards[units[p]] for p in sorted(sampled_terminated)
                ),
            )
        )
    out.write("".join(lines))
    return object_id, districts


# --------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------

# Distinctive on purpose (see the module docstring): at least 5 characters, and none is a
# substring of any local-authority name in the shipped table (a test checks both).
_GIVEN_NAMES: tuple[str, ...] = _words(
    "Aurelie Bartholomew Cressida Damaris Evander Fenella Gwendolyn Horatio Isolde Jolyon "
    "Keziah Leopold Marisol Niamh Octavia Peregrine Quintessa Rosalind Seraphina Thaddeus "
    "Ottoline Valentina Wilhelmina Xanthe Yevgenia Zebedee Anouk Benedikt Clementine Dorotea "
    "Eulalia Florimond Ginevra Hyacinth Ignatius Jessamy Kasimir Lavinia Maximilian Nerissa "
    "Orsolya Perpetua Quillon Radegund Sigismund Tamsyn Ulrika Vespasian Winifred Ximena "
    "Yolanda Zenobia Artemisia Barnaby Cosimo Delphine Emmerich Fabienne Griselda Hortensia "
    "Isidore Jemima Leocadia Mirabel Zoë-Mireille Søren Bronisław Siobhán Aoibheann Ngozi "
    "Oluwaseun Ayodele Chidinma Parvati Anjali Rukmini Xiaoling Haruki Emeka"
)
_FAMILY_NAMES: tuple[str, ...] = _words(
    "Quenneville Ashbury-Thwaite Fairweather-Lomax Okonkwo-Brandt Vandersloot Pemberton-Quayle "
    "Zelazny Vasquez-Ormerod Trelawney-Fitch Blennerhassett Featherstonhaugh Cholmondeley "
    "Marjoribanks Drummond-Hay Quartermaine Ravenscroft-Ngata Ollerenshaw Higginbottom "
    "Wetherspoon-Vale Abernathy-Kowal Nakamura-Pryde Szczepanski Oyelaran Brzezinski "
    "Kowalczyk-Hume Villeneuve Desrosiers Lindqvist Fitzwarren Montmorency Plantagenet-Roe "
    "Tregothnan Pendragon-Eyre Illingworth Thistlewood Wolstenholme Aldersey-Quint "
    "Benedetto-Vane Castellanos Dimitriou-Shaw Eckersley-Grau Fortescue-Zhang Gwilliam-Oduya "
    "Hetherington-Blu Isherwood-Kamau Jagielska Kettlewell-Ruiz Lightowler Mackintosh-Vey "
    "Nettleship Oddfellow-Kaur Postlethwaite Quarrington Rushworth-Abebe Sowerbutts "
    "Tattersall-Ng Uttley-Moreau Vavasour Whitlock-Ansah Yarborough-Dunn Achterberg "
    "Bellingham-Osei Cartwright-Zoll Dunkerley Eversholt-Pike Farquharson Grimshaw-Adeyemi "
    "Hollingsworth Ingleby-Sato Jowett-Marchetti O'Callaghan-Wren Nkemelu-Barraclough "
    "Przybylski Żelazowska Ó'Súilleabháin Dvořáková Müller-Lüdenscheid"
)
_STREET_NAMES: tuple[str, ...] = _words(
    "Larkspur Quillfeather Brackenholt Wintercress Marchbanks Foxglove Hawkweed Starthistle "
    "Celandine Honeysuckle Meadowsweet Cowparsley Bellflower Sweetbriar Wolfsbane Juniperhill "
    "Saxifrage Tormentil Vervain Yellowrattle Mistlethrush Nightjar Fieldfare Whinchat "
    "Stonechat Redpoll Goldcrest Firecrest Wagtail Nuthatch Treecreeper Kittiwake Shearwater "
    "Guillemot Razorbill Oystercatcher Lapwing Dunnock Brambling Siskin Bullfinch Linnet "
    "Yellowhammer Corncrake Dotterel Greenshank Whimbrel Godwit Sanderling"
)
_STREET_KINDS = ("Mews", "Close", "Rise", "Gardens", "Crescent", "Row", "Walk", "Lane", "Court")

# (value, weight); None means the "sex" key is absent.
_SEX_CHOICES: tuple[tuple[str | None, int], ...] = (
    ("Male", 24),
    ("M", 9),
    ("m", 4),
    ("Female", 26),
    ("F", 10),
    ("f", 4),
    ("Other", 2),
    ("Prefer not to say", 2),
    ("Non-binary", 1),
    ("", 2),
    (None, 2),
)
_SEX_VALUES: tuple[str | None, ...] = tuple(v for v, _ in _SEX_CHOICES)
_INVALID_DATES = ("31/02/1990", "unknown", "1990-13-01", "", "00/00/0000")
_INVALID_POSTCODES = ("NOT KNOWN", "12345", "N/A", "unknown", "SW1A 1A", "?", "TBC", "n/a")
_UNMATCHED_AREAS = ("ZZ", "QX", "XY")
_EXTRAS: tuple[tuple[str, object], ...] = (
    ("marketingOptIn", True),
    ("marketingOptIn", False),
    ("tags", ["beta", "android"]),
    ("tags", []),
    ("appVersion", "4.12.0"),
    ("consent", {"research": True, "updatedAt": "2022-11-03T09:14:00Z"}),
    ("lastLogin", None),
)

# Where a person's postcode comes from (the low three bits of the person's flags).
_PC_FULL = 0
_PC_PARTIAL = 1
_PC_INVALID = 2
_PC_UNMATCHED = 3
_PC_ADDRESS_EMPTY = 4  # "address": {}
_PC_ADDRESS_NULL = 5  # "address": null
_PC_ADDRESS_MISSING = 6  # no "address" key
_PC_STREET_ONLY = 7  # an address without a postcode
# Cumulative thresholds over one uniform draw, in that order: ~1 in 6 give only the outward code.
_PC_THRESHOLDS = (
    (0.1667, _PC_PARTIAL),
    (0.1867, _PC_INVALID),
    (0.1967, _PC_UNMATCHED),
    (0.2067, _PC_ADDRESS_EMPTY),
    (0.2167, _PC_ADDRESS_NULL),
    (0.2267, _PC_ADDRESS_MISSING),
    (0.2317, _PC_STREET_ONLY),
)
# Email kind (bits 3-4): 0 valid, else missing, no domain ("name@") or no "@".
_EMAIL_MISSING = 1
_EMAIL_NO_DOMAIN = 2
_EMAIL_NO_AT = 3
_SPARSE = 1 << 5  # no names, sex or date of birth
_BAD_DATE = 1 << 6
_NO_STREET = 1 << 7

_MOVE_RATE = 0.07
_LEAVE_RATE = 0.03
_JOIN_RATE = 0.02
_RETURN_RATE = 0.15  # of the people absent from the previous snapshot
_MOVE_BACK_RATE = 0.2
_DUPLICATE_RATE = 0.03
_CONFLICT_RATE = 0.013  # of people, ~3/4 of whom have a postcode to vary: ~1%
_EXTRA_FIELD_RATE = 0.05
_TERMINATED_SHARE = 0.03  # of the postcodes people live at


def _ascii_lower(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == "-")


_GIVEN_EMAIL = tuple(_ascii_lower(n) for n in _GIVEN_NAMES)
_FAMILY_EMAIL = tuple(_ascii_lower(n) for n in _FAMILY_NAMES)
_JSON_STRING = json.encoder.encode_basestring_ascii


class _People:
    """Compact per-person state: parallel arrays indexed by person number (no objects)."""

    def __init__(self) -> None:
        self.given = array("H")
        self.family = array("H")
        self.street = array("H")
        self.house = array("H")
        self.sex = array("B")
        self.birth = array("I")  # yyyymmdd
        self.flags = array("B")
        self.postcode = array("I")  # index into the postcode pool
        self.previous = array("I")  # the postcode before the last move, or _NO_PREVIOUS
        self.present = bytearray()

    def __len__(self) -> int:
        return len(self.present)

    def add(self, rng: random.Random, pool: _Pool) -> None:
        """Append one new person with random attributes."""
        rand = rng.random
        self.given.append(int(rand() * len(_GIVEN_NAMES)))
        self.family.append(int(rand() * len(_FAMILY_NAMES)))
        self.street.append(int(rand() * len(_STREET_NAMES) * len(_STREET_KINDS)))
        self.house.append(1 + int(rand() * 180))
        self.sex.append(_pick_sex(rand()))
        year = 1935 + int(rand() * 72)
        self.birth.append(year * 10000 + (1 + int(rand() * 12)) * 100 + 1 + int(rand() * 28))
        flags = _PC_FULL
        draw = rand()
        for threshold, kind in _PC_THRESHOLDS:
            if draw < threshold:
                flags = kind
                break
        draw = rand()
        if draw < 0.006:
            flags |= _EMAIL_MISSING << 3
        elif draw < 0.013:
            flags |= _EMAIL_NO_DOMAIN << 3
        elif draw < 0.02:
            flags |= _EMAIL_NO_AT << 3
        draw = rand()
        if draw < 0.03:
            flags |= _SPARSE
        elif draw < 0.037:
            flags |= _BAD_DATE
        if rand() < 0.45:
            flags |= _NO_STREET
        self.flags.append(flags)
        self.postcode.append(pool.draw(rand))
        self.previous.append(_NO_PREVIOUS)
        self.present.append(1)


_NO_PREVIOUS = 0xFFFFFFFF
_SEX_CUMULATIVE: tuple[float, ...] = tuple(
    sum(w for _, w in _SEX_CHOICES[: i + 1]) / sum(w for _, w in _SEX_CHOICES)
    for i in range(len(_SEX_CHOICES))
)


def _pick_sex(draw: float) -> int:
    for index, bound in enumerate(_SEX_CUMULATIVE):
        if draw < bound:
            return index
    return len(_SEX_CUMULATIVE) - 1


class _Pool:
    """Postcodes people live at: the sampled live ones, then the sampled terminated ones."""

    def __init__(self, lookup: PostcodeSample) -> None:
        live = [p for d in lookup.districts for p in d.live]
        terminated = [p for d in lookup.districts for p in d.terminated]
        self.postcodes: list[str] = live + terminated
        self.live = len(live)
        self.terminated = len(terminated)

    def draw(self, rand: Callable[[], float]) -> int:
        """A random postcode's index: a live one, or now and then a terminated one."""
        if self.terminated and rand() < _TERMINATED_SHARE:
            return self.live + int(rand() * self.terminated)
        return int(rand() * self.live)


class _Renderer:
    """Turns a person into the JSON text of one record, with per-record variation."""

    def __init__(self, people: _People, pool: Sequence[str], rng: random.Random) -> None:
        self.people = people
        self.pool = pool
        self.rand = rng.random

    def email(self, person: int) -> str | None:
        """The person's email as this record spells it (None: the key is absent)."""
        kind = (self.people.flags[person] >> 3) & 3
        local = (
            f"{_GIVEN_EMAIL[self.people.given[person]]}."
            f"{_FAMILY_EMAIL[self.people.family[person]]}.{person + 1}"
        )
        if kind == _EMAIL_MISSING:
            return None
        if kind == _EMAIL_NO_DOMAIN:
            text = f"{local}@"
        elif kind == _EMAIL_NO_AT:
            text = f"{local}.example.com"
        else:
            text = f"{local}@example.com"
        draw = self.rand()
        if draw < 0.70:
            return text
        if draw < 0.80:
            return ".".join(part[:1].upper() + part[1:] for part in text.split("."))
        if draw < 0.88:
            return text.upper()
        if draw < 0.94:
            return f"  {text} "
        return f" {text.upper()}\t"

    def postcode(self, person: int, pool_index: int) -> str | None:
        """The postcode as this record spells it (None: no postcode key)."""
        kind = self.people.flags[person] & 7
        if kind == _PC_INVALID:
            return _INVALID_POSTCODES[person % len(_INVALID_POSTCODES)]
        if kind == _PC_UNMATCHED:
            area = _UNMATCHED_AREAS[person % len(_UNMATCHED_AREAS)]
            unit = _INWARDS[(person * 7) % len(_INWARDS)]
            return f"{area}{person % 9 + 1} {unit}"
        if kind not in (_PC_FULL, _PC_PARTIAL):
            return None
        canonical = self.pool[pool_index]
        outward, _, inward = canonical.partition(" ")
        draw = self.rand()
        if kind == _PC_PARTIAL:
            if draw < 0.45:
                return outward
            if draw < 0.65:
                return f"{outward} "
            if draw < 0.85:
                return outward.lower()
            return f" {outward.lower()} "
        if draw < 0.45:
            return canonical
        if draw < 0.60:
            return canonical.lower()
        if draw < 0.72:
            return outward + inward
        if draw < 0.80:
            return (outward + inward).lower()
        if draw < 0.88:
            return f"{outward}  {inward}"
        if draw < 0.94:
            return f" {canonical.lower()} "
        return f"{canonical} "

    def record(self, person: int, pool_index: int) -> str:
        """The record's text: what ``json.dumps(record, indent=2)`` would give."""
        people = self.people
        flags = people.flags[person]
        lines: list[str] = []
        email = self.email(person)
        if email is not None:
            lines.append(f'  "email": {_JSON_STRING(email)}')
        if not flags & _SPARSE:
            lines.append(f'  "givenName": {_JSON_STRING(_GIVEN_NAMES[people.given[person]])}')
            lines.append(f'  "familyName": {_JSON_STRING(_FAMILY_NAMES[people.family[person]])}')
            sex = _SEX_VALUES[people.sex[person]]
            if sex is not None:
                lines.append(f'  "sex": {_JSON_STRING(sex)}')
            lines.append(f'  "dateOfBirth": {_JSON_STRING(self.birth_date(person))}')
        kind = flags & 7
        if kind == _PC_ADDRESS_EMPTY:
            lines.append('  "address": {}')
        elif kind == _PC_ADDRESS_NULL:
            lines.append('  "address": null')
        elif kind != _PC_ADDRESS_MISSING:
            parts: list[str] = []
            if not flags & _NO_STREET or kind == _PC_STREET_ONLY:
                street = people.street[person]
                name = _STREET_NAMES[street % len(_STREET_NAMES)]
                suffix = _STREET_KINDS[street // len(_STREET_NAMES)]
                parts.append(f'    "street": "{people.house[person]} {name} {suffix}"')
            postcode = self.postcode(person, pool_index)
            if postcode is not None:
                parts.append(f'    "postcode": {_JSON_STRING(postcode)}')
            lines.append('  "address": {\n' + ",\n".join(parts) + "\n  }")
        if self.rand() < _EXTRA_FIELD_RATE:
            key, value = _EXTRAS[int(self.rand() * len(_EXTRAS))]
            lines.append(f"  {_JSON_STRING(key)}: " + _indent_json(value))
        if not lines:
            return "{}"
        return "{\n" + ",\n".join(lines) + "\n}"

    def birth_date(self, person: int) -> str:
        """The date of birth as this record spells it: ISO, dd/mm/yyyy, or invalid."""
        if self.people.flags[person] & _BAD_DATE:
            return _INVALID_DATES[person % len(_INVALID_DATES)]
        packed = self.people.birth[person]
        year, month, day = packed // 10000, packed // 100 % 100, packed % 100
        if self.rand() < 0.6:
            return f"{year:04d}-{month:02d}-{day:02d}"
        return f"{day:02d}/{month:02d}/{year:04d}"


def _indent_json(value: object) -> str:
    """A nested value as ``json.dumps(..., indent=2)`` prints it one level down."""
    return json.dumps(value, indent=2).replace("\n", "\n  ")


def _advance(people: _People, rng: random.Random, pool: _Pool) -> None:
    """Turn the people of one snapshot into the next: moves, leavers, joiners, returners."""
    rand = rng.random
    present = people.present
    postcode = people.postcode
    previous = people.previous
    before = sum(present)
    for person in range(len(people)):
        draw = rand()
        if present[person]:
            if draw < _LEAVE_RATE:
                present[person] = 0
            elif draw < _LEAVE_RATE + _MOVE_RATE:
                if previous[person] != _NO_PREVIOUS and rand() < _MOVE_BACK_RATE:
                    postcode[person], previous[person] = previous[person], postcode[person]
                else:
                    previous[person] = postcode[person]
                    moved_to = pool.draw(rand)
                    if moved_to == postcode[person]:
                        moved_to = (moved_to + 1) % pool.live
                    postcode[person] = moved_to
        elif draw < _RETURN_RATE:
            present[person] = 1
            if rand() < 0.5:
                previous[person] = postcode[person]
                postcode[person] = pool.draw(rand)
    for _ in range(round(before * _JOIN_RATE)):
        people.add(rng, pool)


def _write_snapshot(path: Path, people: _People, pool: Sequence[str], rng: random.Random) -> None:
    """Write one snapshot: present people in order, with duplicates and conflicting records."""
    render = _Renderer(people, pool, rng)
    rand = rng.random
    pending: dict[int, list[str]] = {}
    chunk: list[str] = []
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for person in range(len(people)):
            chunk.extend(pending.pop(person, ()))
            if not people.present[person]:
                continue
            pool_index = people.postcode[person]
            draw = rand()
            kind = people.flags[person] & 7
            if draw < _CONFLICT_RATE and kind in (_PC_FULL, _PC_PARTIAL):
                # The same email with another address, before the true one: last one wins.
                other = (pool_index + 1 + int(rand() * (len(pool) - 1))) % len(pool)
                chunk.append(render.record(person, other))
            text = render.record(person, pool_index)
            chunk.append(text)
            if draw > 1.0 - _DUPLICATE_RATE:
                pending.setdefault(person + 1 + int(rand() * 40), []).append(text)
            if len(chunk) >= _CHUNK_ROWS:
                out.write("\n".join(chunk))
                out.write("\n")
                chunk.clear()
        for due in sorted(pending):
            chunk.extend(pending[due])
        if chunk:
            out.write("\n".join(chunk))
            out.write("\n")


def _snapshot_name(number: int) -> str:
    return "users.json" if number == 1 else f"users-{number}.json"


def write_users_snapshots(
    directory: Path,
    lookup: PostcodeSample,
    *,
    users: int,
    snapshots: int = 1,
    seed: int,
) -> list[Path]:
    """Write ``snapshots`` users exports to ``directory``; return their paths in order.

    The first (``users.json``) holds ``users`` distinct people; each later one
    (``users-2.json``, ...) derives from the one before: about 7% move, 3% leave, 2% join and
    a few who left come back. Each file is a stream of pretty-printed JSON objects with the
    mess of the real export (SPEC §1); people live at postcodes drawn from ``lookup``.
    """
    if users < 0:
        raise ValueError("users must not be negative")
    if snapshots < 1:
        raise ValueError("snapshots must be at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    pool = _Pool(lookup)
    people = _People()
    rng = random.Random(f"evergreen-sample:{seed}:users")
    for _ in range(users):
        people.add(rng, pool)
    paths: list[Path] = []
    for number in range(1, snapshots + 1):
        if number > 1:
            _advance(people, random.Random(f"evergreen-sample:{seed}:advance:{number}"), pool)
        path = directory / _snapshot_name(number)
        _write_snapshot(
            path, people, pool.postcodes, random.Random(f"evergreen-sample:{seed}:render:{number}")
        )
        paths.append(path)
    return paths


class SampleResult(BaseModel):
    """What ``generate_sample`` wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    postcodes_path: Path
    users_paths: list[Path]
    postcodes: int
    """Data rows written to the lookup CSV."""
    users: int
    """Distinct people in the first snapshot."""


def generate_sample(
    directory: Path,
    *,
    users: int = 2000,
    postcodes: int = 20000,
    snapshots: int = 1,
    seed: int = 42,
    macos_junk: bool = False,
) -> SampleResult:
    """Write ``postcodes.zip`` and ``users.json`` (+ ``users-2.json``...) into ``directory``.

    The same arguments always give the same bytes. Nothing is fetched from the network.
    """
    directory.mkdir(parents=True, exist_ok=True)
    postcodes_path = directory / "postcodes.zip"
    lookup = write_postcode_lookup(
        postcodes_path, postcodes=postcodes, seed=seed, macos_junk=macos_junk
    )
    users_paths = write_users_snapshots(
        directory, lookup, users=users, snapshots=snapshots, seed=seed
    )
    return SampleResult(
        postcodes_path=postcodes_path,
        users_paths=users_paths,
        postcodes=lookup.rows,
        users=users,
    )
