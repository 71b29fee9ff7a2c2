"""The driver-level helpers the backends of ``dialect`` share: the DBAPI connection, batched
``executemany``, the batches of a staged CSV file, temporary tables, dropping and making again
indexes, and column type OIDs for binary ``COPY``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, islice
from operator import methodcaller
from typing import Any, TextIO

from sqlalchemy import Connection, text

BATCH_ROWS = 10_000
_CSV_BLOCK_CHARS = 1 << 20

Batches = Iterable[Sequence[Sequence[Any]]]
OnBatch = Callable[[int], None] | None


def _driver(conn: Connection) -> Any:
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver


def _executemany(conn: Connection, sql: str, batches: Batches, on_batch: OnBatch) -> int:
    cursor = _driver(conn).cursor()
    count = 0
    try:
        for batch in batches:
            cursor.executemany(sql, batch)
            count += len(batch)
            if on_batch is not None:
                on_batch(len(batch))
    finally:
        cursor.close()
    return count


def _is_empty(conn: Connection, table: str) -> bool:
    return conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() is None


@contextmanager
def _dropped(conn: Connection, statements: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Run each pair's drop, the block, then each pair's create (an exception skips them:
    the transaction rolls back)."""
    for drop, _ in statements:
        conn.execute(text(drop))
    yield
    for _, create in statements:
        conn.execute(text(create))


def _create_temp_table(conn: Connection, name: str, columns_sql: str, suffix: str) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} ({columns_sql}){suffix}"))


def _column_types(conn: Connection, table: str, columns: Sequence[str]) -> list[int]:
    """The type OIDs of ``columns`` of ``table`` (a temporary table too), for binary COPY."""
    rows = conn.execute(
        text(
            "SELECT attname, atttypid FROM pg_attribute "
            "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"table": table},
    ).all()
    oids = {str(name): int(oid) for name, oid in rows}
    return [oids[column] for column in columns]


def _csv_batches(handle: TextIO) -> Iterator[list[list[str]]]:
    """The records after the header, a block of lines at a time.

    A block without a quote character or a bare carriage return is split on line breaks and
    commas: exactly what ``csv.reader`` gives for it, in a third of the time. From the first
    block holding either, ``csv.reader`` reads the rest (a quoted field may hold a comma or
    span lines). Blank lines are dropped.
    """
    handle.readline()  # the header
    split = methodcaller("split", ",")
    pending = ""
    while True:
        chunk = handle.read(_CSV_BLOCK_CHARS)
        block = pending + chunk
        cut = block.rfind("\n") + 1 if chunk else len(block)
        if not block:
            return
        if not cut:  # one line longer than a block: read on
            pending = block
            continue
        block, pending = block[:cut], block[cut:]
        if "\r" in block:
            block = block.replace("\r\n", "\n")
        if '"' in block or "\r" in block:
            reader = csv.reader(chain(io.StringIO(block + pending, newline=""), handle))
            while batch := list(islice(reader, BATCH_ROWS)):
                yield [row for row in batch if row]
            return
        yield list(map(split, filter(None, block.split("\n"))))
