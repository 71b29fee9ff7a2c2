"""Recorded time in the warehouse: retired rows kept, one current row, the snapshot ledger."""

from __future__ import annotations

import zlib

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from evergreen_etl.warehouse.history import ledger_attributes
from evergreen_etl.warehouse.schema import user_address
from support.sources import LoadSnapshot, user

S1 = [user("alice@example.com", "AB1 1AA"), user("bob@example.com", "AB2 1AA")]
S2 = [user("alice@example.com", "AB2 1AB"), user("bob@example.com", "AB2 1AA")]
S3 = [user("alice@example.com", "AB2 1AB")]


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _rows(engine: Engine, table: str, where: str = "") -> set[tuple[object, ...]]:
    columns = ", ".join(c.name for c in user_address.columns)
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM {table} {where}"))}


def test_a_correction_retires_rows_instead_of_deleting_them(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """A late snapshot moves the rows it corrects, unchanged, to user_address_retired."""
    load_snapshot(S1, "2024-01-01")
    load_snapshot(S3, "2024-03-01")
    before = _rows(engine, "user_address")
    late = load_snapshot(S2, "2024-02-01")
    gone = before - _rows(engine, "user_address")
    assert gone
    assert _rows(engine, "user_address_retired", f"WHERE retired_run_id = {late.run_id}") == gone
    recorded = _rows(engine, "user_address", f"WHERE recorded_run_id = {late.run_id}")
    assert recorded
    assert not recorded & before


def test_database_allows_one_current_row_per_user_among_rows_not_retired(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """A second current row for a user is refused; a retired current row is not counted."""
    load_snapshot(S1, "2024-01-01")
    load_snapshot(S3, "2024-03-01")
    load_snapshot(S2, "2024-02-01")  # retires alice's current row and records a new one
    assert _count(engine, "SELECT COUNT(*) FROM user_address_retired WHERE is_current") > 0
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_address (user_id, postcode_kind, local_authority_code,"
                " location_status, valid_from, is_current, opened_run_id)"
                " SELECT user_id, 'missing', 'UNKNOWN', 'missing', valid_from, true,"
                " opened_run_id FROM user_address WHERE is_current"
            )
        )


def test_ledger_keeps_each_snapshots_attributes_compressed_without_pseudonyms(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """The ledger holds user ids, sex and birth year per snapshot: no pseudonym, no postcode."""
    run = load_snapshot(
        [user("alice@example.com", "AB1 1AA", sex="M", dateOfBirth="1990-05-01")], "2024-01-01"
    )
    assert run.run_id is not None
    with engine.connect() as conn:
        blob = conn.execute(text("SELECT attributes FROM snapshot_ledger")).scalar_one()
        pseudonym = conn.execute(text("SELECT pseudonym FROM dim_user")).scalar_one()
        attributes = ledger_attributes(conn, run.run_id)
    raw = zlib.decompress(bytes(blob))
    assert pseudonym.encode() not in raw
    assert b"AB1" not in raw
    assert list(attributes.values()) == [("M", 1990)]


def test_ledger_of_a_large_snapshot_is_small(load_snapshot: LoadSnapshot, engine: Engine) -> None:
    """About a byte per user: ids as deltas, sex and birth year as columns, compressed."""
    users = [
        user(f"u{i}@example.com", "AB1 1AA", dateOfBirth=f"{1950 + i % 50}-01-01")
        for i in range(3000)
    ]
    load_snapshot(users, "2024-01-01")
    size = _count(engine, "SELECT LENGTH(attributes) FROM snapshot_ledger")
    assert size < 3000 * 2
