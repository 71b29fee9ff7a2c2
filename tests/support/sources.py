"""Small, exact source files for tests: an NSPL-shaped zip and users exports in three forms."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from evergreen_etl.models import LoadResult

NSPL_HEADER = [
    "X",
    "Y",
    "objectid",
    "pcd",
    "pcd2",
    "pcds",
    "dointr",
    "doterm",
    "usertype",
    "oseast1m",
    "osnrth1m",
    "osgrdind",
    "oa11",
    "cty",
    "laua",
    "ward",
    "hlthau",
    "ctry",
    "pcon",
    "eer",
    "teclec",
    "ttwa",
    "pct",
    "nuts",
    "park",
    "lsoa11",
    "msoa11",
    "wz11",
    "ccg",
    "bua11",
    "buasd11",
    "ru11ind",
    "oac11",
    "lat",
    "long",
    "lep1",
    "lep2",
    "pfa",
    "imd",
    "ced",
    "nhser",
    "rgn",
    "calncv",
    "stp",
]
# load_snapshot(records, as_of, **load_options): the conftest fixture of that name.
LoadSnapshot = Callable[..., LoadResult]
DATA_MEMBER = "National_Statistics_Postcode_Lookup_Latest_Centroids.csv"

# (pcds, laua, doterm): a tiny lookup whose districts cover every location rule.
SCENARIO_POSTCODES: tuple[tuple[str, str, str], ...] = (
    ("AB1 1AA", "E06000001", ""),  # AB1: one authority -> partial "AB1" resolves
    ("AB1 1AB", "E06000001", ""),
    ("AB2 1AA", "E06000002", ""),  # AB2: two authorities -> partial "AB2" is unknown
    ("AB2 1AB", "E06000003", ""),
    ("AB3 1AA", "E06000004", "202001"),  # AB3: the only other authority is terminated
    ("AB3 1AB", "E06000005", ""),
    ("GY1 1AA", "L99999999", ""),  # Channel Islands pseudo-code -> unknown
    ("AB4 1AA", "E99999999", ""),  # England pseudo-code -> unknown
    ("CV4 9RE", "E08000026", ""),
)


def nspl_row(pcds: str, laua: str, doterm: str = "", **overrides: str) -> dict[str, str]:
    """One NSPL data row with plausible values in every column."""
    outward, inward = pcds.split(" ")
    row = dict.fromkeys(NSPL_HEADER, "")
    row.update(
        pcd=f"{outward:<4}{inward}",
        pcd2=f"{outward:<5}{inward}",
        pcds=pcds,
        dointr="198001",
        doterm=doterm,
        laua=laua,
        osnrth1m="0123456",
        ctry="E92000001" if laua.startswith("E") else "",
        rgn="E12000001" if laua.startswith("E") else "",
        lat="54.5",
        long="-1.2",
    )
    row.update(overrides)
    return row


def write_lookup_zip(
    path: Path,
    rows: Iterable[Mapping[str, str]] = (),
    *,
    header: Sequence[str] = NSPL_HEADER,
    member: str = DATA_MEMBER,
    names: Mapping[str, str] | None = None,
    extra_members: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a zip shaped like the real NSPL: the data CSV, optionally a names lookup."""
    if not rows:
        rows = [nspl_row(*spec) for spec in SCENARIO_POSTCODES]
    data = io.StringIO()
    writer = csv.writer(data, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data.getvalue())
        if names is not None:
            lines = ["LAD23CD,LAD23NM,LAD23NMW"] + [f"{c},{n}," for c, n in names.items()]
            zf.writestr("Documents/LA_UA names and codes UK as at 04_23.csv", "\n".join(lines))
        for name, content in (extra_members or {}).items():
            zf.writestr(name, content)
    return path


def user(email: str | None, postcode: str | None = None, **fields: Any) -> dict[str, Any]:
    """A users.json record; ``postcode=None`` leaves the address out."""
    record: dict[str, Any] = {
        "email": email,
        "givenName": "Testgiven",
        "familyName": "Testfamily",
        "sex": "F",
        "dateOfBirth": "1984-03-02",
    }
    if postcode is not None:
        record["address"] = {"street": "1 Testing Lane", "postcode": postcode}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None or k == "email"}


def write_users(
    path: Path,
    records: Iterable[Any],
    style: Literal["concatenated", "array", "ndjson"] = "concatenated",
) -> Path:
    """Write a users export in one of the three forms the reader accepts."""
    records = list(records)
    if style == "array":
        text = json.dumps(records, indent=2)
    elif style == "ndjson":
        text = "".join(json.dumps(r) + "\n" for r in records)
    else:
        text = "\n".join(json.dumps(r, indent=2) for r in records) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
