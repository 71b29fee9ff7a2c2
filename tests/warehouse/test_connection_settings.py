"""Connection settings: SQLite's WAL, keys and page sizes; PostgreSQL's memory for bulk work."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from evergreen_etl.warehouse.dialect import POSTGRES_BULK_WORK_MEM, bulk_work
from evergreen_etl.warehouse.engine import (
    POSTGRES_TEMP_BUFFERS,
    SQLITE_PAGE_BYTES,
    SQLITE_TEMP_PAGE_BYTES,
    make_engine,
)
from evergreen_etl.warehouse.migrate import upgrade


def _pragma(url: str, name: str) -> object:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()
    finally:
        engine.dispose()


def test_a_new_warehouse_is_in_wal_mode_with_16k_pages(tmp_path: Path) -> None:
    """Created by the package, the file has 16 KiB pages, WAL and foreign keys on."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)

    assert _pragma(url, "page_size") == SQLITE_PAGE_BYTES == 16_384
    assert _pragma(url, "journal_mode") == "wal"
    assert _pragma(url, "foreign_keys") == 1


def test_an_existing_warehouse_keeps_its_page_size(tmp_path: Path) -> None:
    """A database made elsewhere with 4 KiB pages is used as it is, not rebuilt."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA page_size=4096")
        raw.execute("CREATE TABLE t (x INTEGER)")
        raw.execute("INSERT INTO t VALUES (1)")
    url = f"sqlite:///{path}"

    assert _pragma(url, "page_size") == 4096
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1
    finally:
        engine.dispose()


def test_temporary_tables_use_64k_pages(tmp_path: Path) -> None:
    """The staging tables of a merge live in a temporary database with 64 KiB pages."""
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TEMPORARY TABLE scratch (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO scratch VALUES (1)")
            size = conn.exec_driver_sql("PRAGMA temp.page_size").scalar()
    finally:
        engine.dispose()
    assert size == SQLITE_TEMP_PAGE_BYTES == 65_536


@pytest.mark.postgres
def test_postgres_bulk_work_raises_work_mem_for_its_transaction_only(pg_url: str) -> None:
    """Inside bulk_work the merge's sorts get POSTGRES_BULK_WORK_MEM; the next transaction not."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            default = conn.execute(text("SHOW work_mem")).scalar()
            conn.commit()
            with conn.begin(), bulk_work(conn):
                inside = conn.execute(text("SHOW work_mem")).scalar()
            after = conn.execute(text("SHOW work_mem")).scalar()
    finally:
        engine.dispose()
    assert inside == POSTGRES_BULK_WORK_MEM == "256MB"
    assert after == default != inside


@pytest.mark.postgres
def test_postgres_connections_get_room_for_a_staged_snapshot(pg_url: str) -> None:
    """Each PostgreSQL connection sets temp_buffers before any temporary table, for good."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            conn.rollback()  # a rolled-back transaction must not undo it
            found = conn.execute(text("SHOW temp_buffers")).scalar()
    finally:
        engine.dispose()
    assert found == POSTGRES_TEMP_BUFFERS == "256MB"
