"""A fake ONS postcode lookup: plausible postcode geography, written as the real zip is laid out.

``write_postcode_lookup`` writes the 44-column National Statistics Postcode Lookup centroid
CSV plus the local-authority names member, and returns the postcodes users may live at.
"""

from __future__ import annotations

import csv
import io
import random
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple, TextIO

from evergreen_etl.sample.words import words

__all__ = [
    "CHUNK_ROWS",
    "INWARDS",
    "NAMES_MEMBER",
    "NSPL_HEADER",
    "NSPL_MEMBER",
    "PostcodeSample",
    "SampleDistrict",
    "write_postcode_lookup",
]

NSPL_MEMBER = "National_Statistics_Postcode_Lookup_Latest_Centroids.csv"
NAMES_MEMBER = "Documents/LA_UA names and codes UK as at 04_23.csv"
NSPL_HEADER: tuple[str, ...] = words(
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
CHUNK_ROWS = 8192
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
    _ENGLAND: words(
        "AL B BA BB BD BH BL BN BR BS CA CB CH CM CO CR CT CV CW DA DE DH DL DN DT DY E EC EN "
        "EX GL GU HA HD HG HP HR HU HX IG IP KT L LA LE LN LS LU M ME MK N NE NG NN NR NW OL "
        "OX PE PL PO PR RG RH RM S SE SG SK SL SM SN SO SP SR SS ST SW SY TA TF TN TQ TR TS TW "
        "UB W WA WC WD WF WN WR WS WV YO"
    ),
    _SCOTLAND: words("AB DD DG EH FK G HS IV KA KW KY ML PA PH TD ZE"),
    _WALES: ("CF", "LD", "LL", "NP", "SA"),
    _NORTHERN_IRELAND: ("BT",),
    _CHANNEL_ISLANDS: ("GY", "JE"),
    _ISLE_OF_MAN: ("IM",),
}
# Districts whose outward code ends in a letter, as central London has them.
_SPECIAL_DISTRICTS: dict[str, tuple[str, ...]] = {
    "EC": words(
        "EC1A EC1M EC1N EC1R EC1V EC1Y EC2A EC2M EC2N EC2R EC2V EC2Y EC3A EC3M EC3N EC3R EC3V "
        "EC4A EC4M EC4N EC4R EC4V EC4Y"
    ),
    "WC": words("WC1A WC1B WC1E WC1H WC1N WC1R WC1V WC1X WC2A WC2B WC2E WC2H WC2N WC2R"),
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
INWARDS: tuple[str, ...] = tuple(
    f"{sector}{a}{b}" for sector in "0123456789" for a in _UNIT_LETTERS for b in _UNIT_LETTERS
)
# Offsets (metres) of each unit from its district centre: a fixed scatter within about 2 km.
_DX: tuple[int, ...] = tuple((i * 7919) % 4001 - 2000 for i in range(len(INWARDS)))
_DY: tuple[int, ...] = tuple((i * 104729) % 3989 - 1994 for i in range(len(INWARDS)))

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
    inwards = INWARDS
    dx = _DX
    dy = _DY
    unit_count = len(INWARDS)
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
        if len(lines) >= CHUNK_ROWS:
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
