"""The SCD2 scenario (tests/load/test_scd2.py's S1..S4) with demographics and three more people.

The six people of S1..S4 keep their addresses, so the history is test_scd2's exactly; each is
given a sex and a birth date, and three stable neighbours cover a terminated postcode, an
unmatched one and an outward code alone. Expected report rows in the tests follow this table:

| person | sex, born  | 2024-01-01         | 2024-02-01         | 2024-03-01 / 04-01 |
|--------|------------|--------------------|--------------------|--------------------|
| alice  | F 1984     | AB1 1AA  E06000001 | AB2 1AB  E06000003 | AB1 1AA  E06000001 |
| bob    | M 2010     | AB2 1AA  E06000002 | same               | same               |
| carol  | U, none    | CV4 9RE  E08000026 | (left)             | CV4 9RE (returned) |
| dave   | M 1950     | invalid  UNKNOWN   | invalid  UNKNOWN   | AB1 1AB  E06000001 |
| erin   | F 2000     | AB3 1AB  E06000005 (a duplicate record too)  | same | same |
| frank  | M 1970     | -                  | CV4 9RE  E08000026 | (left)             |
| grace  | F 2006     | AB3 1AA  E06000004, terminated postcode | same | same          |
| heidi  | F 1960     | ZZ9 9ZZ  UNKNOWN, not in the lookup | same | same              |
| ivan   | M 1955     | AB1 (outward code) E06000001 | same   | same               |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from evergreen_etl.anonymise import anonymise
from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import upgrade
from support.keys import TEST_KEY
from support.sources import user, write_lookup_zip, write_users

DATES = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]

PEOPLE: dict[str, dict[str, Any]] = {
    "alice": {"sex": "F", "dateOfBirth": "1984-03-02"},
    "bob": {"sex": "Male", "dateOfBirth": "2010-06-15"},
    "carol": {"sex": None, "dateOfBirth": None},
    "dave": {"sex": "m", "dateOfBirth": "1950-01-01"},
    "erin": {"sex": "Female", "dateOfBirth": "2000-05-05"},
    "frank": {"sex": "M", "dateOfBirth": "1970-12-31"},
    "grace": {"sex": "f", "dateOfBirth": "20/07/2006"},
    "heidi": {"sex": "F", "dateOfBirth": "1960-01-01"},
    "ivan": {"sex": "M", "dateOfBirth": "1955-05-05"},
}


def person(name: str, postcode: str, email: str | None = None) -> dict[str, Any]:
    """A users.json record for ``name`` living at ``postcode``."""
    return user(email or f"{name}@example.com", postcode, **PEOPLE[name])


_NEIGHBOURS = [person("grace", "AB3 1AA"), person("heidi", "ZZ9 9ZZ"), person("ivan", "AB1 ")]

S1 = [
    person("alice", "AB1 1AA"),
    person("bob", "ab21aa"),
    person("carol", "CV4 9RE"),
    person("dave", "NOT A POSTCODE"),
    person("erin", "AB1 1AB"),
    person("erin", "AB3 1AB", email=" ERIN@example.com"),  # duplicate: the last record wins
    *_NEIGHBOURS,
]
S2 = [
    person("alice", "AB2 1AB"),
    person("bob", "AB2 1AA"),
    person("dave", "NOT A POSTCODE"),
    person("erin", "AB3 1AB"),
    person("frank", "CV4 9RE"),
    *_NEIGHBOURS,
]
S3 = [
    person("alice", "ab1 1aa"),
    person("bob", "AB2 1AA"),
    person("carol", "CV4 9RE"),
    person("dave", "AB1 1AB"),
    person("erin", "AB3 1AB"),
    *_NEIGHBOURS,
]
S4 = S3
SNAPSHOTS = [S1, S2, S3, S4]


@dataclass(frozen=True)
class Warehouse:
    """A loaded warehouse: settings that point at it and an engine on it."""

    settings: Settings
    engine: Engine


def load_snapshots(
    url: str,
    directory: Path,
    snapshots: Sequence[Sequence[Any]],
    dates: Sequence[str],
    lookup: Path | None = None,
) -> Warehouse:
    """Migrate ``url`` and load each snapshot at its date through the library API."""
    settings = Settings(
        data_dir=directory / "data",
        database_url=url,
        pseudonym_key=TEST_KEY,
        max_reject_rate=1.0,
    )
    upgrade(url)
    engine = make_engine(url)
    lookup = lookup or write_lookup_zip(directory / "postcodes.zip")
    for number, (records, as_of) in enumerate(zip(snapshots, dates, strict=True)):
        users = write_users(directory / f"users-{number}.json", records)
        anonymise(settings, users_path=users, progress=False)
        load(
            settings,
            as_of=datetime.fromisoformat(as_of),
            postcodes_path=lookup,
            engine=engine,
            progress=False,
        )
    return Warehouse(settings, engine)
