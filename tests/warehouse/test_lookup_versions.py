"""Lookup versions: the publication month, the source kept, the code history, the migration."""

from __future__ import annotations

import csv
import io
from importlib.resources import files
from pathlib import Path

import pytest
from sqlalchemy import text

from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.lookup_versions import publication_month, safe_source, successions
from evergreen_etl.warehouse.migrate import upgrade
from evergreen_etl.warehouse.schema import UNKNOWN_AUTHORITY
from evergreen_etl.warehouse.sqlfiles import fragments
from support.sources import LoadSnapshot, nspl_row, user, write_lookup_zip


@pytest.mark.parametrize(
    ("names", "month"),
    [
        (["NSPL_NOV_2025_UK.zip"], "2025-11"),
        (["https://example.org/files/nspl-may-2024.zip"], "2024-05"),
        (["ONSPD_February_2026_UK.csv"], "2026-02"),
        (["NSPL21_AUG_2023_UK.csv"], "2023-08"),
        (["postcodes.zip", "Data/NSPL_SEP_2025_UK.csv"], "2025-09"),
        (["postcodes.zip", "Latest_Centroids.csv"], None),
        (["marketing2024.zip"], None),
        (["NSPL_NOV_20251.zip"], None),
    ],
    ids=["abbreviated", "url", "full-name", "vintage-prefix", "member", "none", "word", "digits"],
)
def test_publication_month_from_names(names: list[str], month: str | None) -> None:
    """The first name that says a month next to a year gives YYYY-MM; others give None."""
    assert publication_month(names) == month


def test_location_fragment_names_the_unknown_member() -> None:
    """The shared location rule puts unlocated postcodes under the schema's UNKNOWN member."""
    assert f"ELSE '{UNKNOWN_AUTHORITY}'" in fragments()["location_code"]


def test_source_keeps_no_credentials() -> None:
    """A URL is kept without its user name, password, query or fragment; a path as it is."""
    assert (
        safe_source("https://user:secret@example.org/nspl.zip?token=abc#x")
        == "https://example.org/nspl.zip"
    )
    assert safe_source("/data/raw/postcodes.zip") == "/data/raw/postcodes.zip"


def _shipped() -> list[dict[str, str]]:
    resource = files("evergreen_etl") / "reference" / "local_authorities.csv"
    return list(csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8"))))


def test_successor_table_maps_every_retired_code() -> None:
    """Every retired code in the shipped table reaches the authority that holds it today."""
    chains = successions()
    current = {row["LADCD"] for row in _shipped() if row["Current"].upper() == "TRUE"}
    retired = [row for row in _shipped() if row["Current"].upper() != "TRUE"]
    assert retired
    for row in retired:
        assert row["LADCD"] in chains, row["LADCD"]
        successor, _ = chains[row["LADCD"]]
        assert successor in current, row["LADCD"]
        assert successor == row["LADCD_ACTIVE"], row["LADCD"]


def test_successor_chains_mark_approximate_mappings() -> None:
    """Mergers of whole districts are exact, even over two steps; a recode is approximate."""
    chains = successions()
    assert chains["E07000190"] == ("E06000066", "exact")  # Taunton Deane -> ... -> Somerset
    assert chains["E07000004"] == ("E06000060", "exact")  # Aylesbury Vale -> Buckinghamshire
    assert chains["E08000016"] == ("E08000038", "approximate")  # Barnsley, 2024
    assert chains["E06000048"] == ("E06000057", "approximate")  # Northumberland, 2020
    approximate = {code for code, (_, how) in chains.items() if how == "approximate"}
    resource = files("evergreen_etl") / "reference" / "la_successors.csv"
    rows = csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8")))
    # No recoded district was merged afterwards: the approximate chains are the recodes.
    assert approximate == {row["code"] for row in rows if row["mapping"] == "approximate"}


def test_month_in_the_member_name_is_the_publication(
    load_snapshot: LoadSnapshot, lookup_zip: Path, settings: Settings
) -> None:
    """A lookup whose data file is NSPL_NOV_2025_UK.csv is recorded as published 2025-11."""
    from evergreen_etl.report.lookups import lookup_versions

    write_lookup_zip(lookup_zip, [nspl_row("AB1 1AA", "E06000001")], member="NSPL_NOV_2025_UK.csv")
    load_snapshot([user("ann@example.com", "AB1 1AA")], "2024-01-01")
    (version,) = lookup_versions(settings)
    assert (version.published, version.published_from, version.postcodes) == ("2025-11", "name", 1)


def test_migration_records_the_lookup_already_loaded(database_url: str) -> None:
    """Upgrading a warehouse that holds a lookup records it as version 1 and maps retired
    codes through their successor chain."""
    upgrade(database_url, "0004")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO etl_run (started_at, finished_at, as_of, status, key_id,"
                    " postcodes_sha256, postcodes_loaded) VALUES ('2024-01-01 10:00:00',"
                    " '2024-01-01 10:01:00', '2024-01-01', 'succeeded', 'k', 'abc', 2)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO dim_postcode (postcode, outward, local_authority_code, introduced)"
                    " VALUES ('TA1 1AA', 'TA1', 'E07000190', '201905'),"
                    " ('TA1 1AB', 'TA1', 'E07000190', '202311')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO dim_local_authority (code, name, current_code, is_current)"
                    " VALUES ('E07000190', 'Taunton Deane', 'E07000246', false)"
                )
            )
        upgrade(database_url)
        with engine.connect() as conn:
            version = conn.execute(
                text(
                    "SELECT version_id, sha256, published, published_from, postcodes, run_id"
                    " FROM lookup_version"
                )
            ).one()
            authority = conn.execute(
                text(
                    "SELECT current_code, current_mapping FROM dim_local_authority"
                    " WHERE code = 'E07000190'"
                )
            ).one()
        assert tuple(version) == (1, "abc", "2023-11", "data", 2, 1)
        assert tuple(authority) == ("E06000066", "exact")
    finally:
        engine.dispose()
