"""Recorded time: which loads the warehouse holds, retiring rows, the ledger, "as known at".

The model (README "Correcting history"): ``user_address`` holds each user's periods in
valid time (``valid_from``, ``valid_to``: snapshot time) as the warehouse knows them now. A
load merged in time order only appends: it opens rows and closes open ones, and the run
that closed a row is ``closed_run_id``. Any other change is a correction: the rows it would
edit are *retired* (moved unchanged to ``user_address_retired`` with the run that retired
them) and the corrected rows recorded (``recorded_run_id``, when not the opening run). So
the warehouse as known right after run R is: the rows recorded at or before R and not
retired by then, each closed only if the closing run is at or before R.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import sub
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, Table, bindparam, event, text

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.warehouse.dialect import backend_for
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.schema import (
    address_relocation,
    address_relocation_retired,
    dim_user,
    etl_run,
    fact_snapshot_authority,
    fact_snapshot_relocation,
    user_address,
    user_address_retired,
    user_attributes_retired,
)

# etl_run.status: a load that holds its snapshot, one whose snapshot an undo or a replacing
# load retired, an undo itself, and a load that found its snapshot loaded but a new lookup.
SUCCEEDED = "succeeded"
UNDONE = "undone"
UNDO = "undo"
LOOKUP = "lookup"
FINISHED = (SUCCEEDED, UNDONE, UNDO, LOOKUP)

_COLUMNS = [c.name for c in user_address.columns]
_CONTENT = ", ".join(_COLUMNS)
_RETIRE = f"""
    INSERT INTO user_address_retired ({_CONTENT}, retired_run_id)
    SELECT {_CONTENT}, :run_id FROM user_address
    WHERE address_id IN (SELECT address_id FROM stg_retire)
      AND COALESCE(recorded_run_id, opened_run_id) <> :run_id
"""
# The re-location of the rows retired, kept with them; then gone from address_relocation.
_RETIRE_RELOCATION = f"""
    INSERT INTO {address_relocation_retired.name}
        (version_id, address_id, retired_run_id, local_authority_code, location_status)
    SELECT r.version_id, r.address_id, :run_id, r.local_authority_code, r.location_status
    FROM address_relocation AS r
    JOIN user_address AS a ON a.address_id = r.address_id
    WHERE r.address_id IN (SELECT address_id FROM stg_retire)
      AND COALESCE(a.recorded_run_id, a.opened_run_id) <> :run_id
"""
_DELETE_RETIRED_RELOCATION = (
    "DELETE FROM address_relocation WHERE address_id IN (SELECT address_id FROM stg_retire)"
)
_DELETE_RETIRED = "DELETE FROM user_address WHERE address_id IN (SELECT address_id FROM stg_retire)"
_LARGEST_ADDRESS_IDS = """
    SELECT (SELECT MAX(address_id) FROM user_address),
           (SELECT MAX(address_id) FROM user_address_retired)
"""


@dataclass(frozen=True)
class LoadedSnapshot:
    """A load whose snapshot the warehouse holds."""

    run_id: int
    as_of: datetime
    users_sha256: str | None


def loaded_snapshots(conn: Connection) -> list[LoadedSnapshot]:
    """Every load whose snapshot the warehouse holds, oldest snapshot time first."""
    rows = conn.execute(
        text(
            "SELECT run_id, as_of, users_sha256 FROM etl_run WHERE status = :status "
            "ORDER BY as_of, run_id"
        ).columns(as_of=DateTime()),
        {"status": SUCCEEDED},
    ).all()
    return [LoadedSnapshot(int(r.run_id), r.as_of, r.users_sha256) for r in rows]


def neighbours(
    snapshots: Sequence[LoadedSnapshot], moment: datetime
) -> tuple[LoadedSnapshot | None, LoadedSnapshot | None]:
    """The loaded snapshots just before and just after ``moment`` (either may be None)."""
    before = [s for s in snapshots if s.as_of < moment]
    after = [s for s in snapshots if s.as_of > moment]
    return (before[-1] if before else None, after[0] if after else None)


def retire_rows(conn: Connection, run_id: int) -> int:
    """Retire the ``user_address`` rows listed in ``stg_retire`` on behalf of ``run_id``.

    A row recorded by ``run_id`` itself was never visible to anyone: it goes without a trace.
    """
    conn.execute(text(_RETIRE), {"run_id": run_id})
    conn.execute(text(_RETIRE_RELOCATION), {"run_id": run_id})
    conn.execute(text(_DELETE_RETIRED_RELOCATION))
    return int(conn.execute(text(_DELETE_RETIRED)).rowcount)


@dataclass(frozen=True)
class NewAddressIds:
    """How an insert into ``user_address`` numbers its rows so that no row ever gets the
    ``address_id`` of a retired one (whose re-location is kept under that id)."""

    largest: int  # the largest address_id ever given, current or retired
    column: str  # "address_id, " when the insert numbers its rows itself, else ""
    value: str  # the SQL of the row's id then (before the other values), else ""

    def sql(self, template: str) -> str:
        """``template`` with its ``{address_id}`` and ``{new_address_id}`` filled."""
        return template.format(address_id=self.column, new_address_id=self.value)


def new_address_ids(conn: Connection, order: str) -> NewAddressIds:
    """Number an insert's rows after every id given so far, in ``order`` (a SQL ORDER BY
    list), where the backend would otherwise reuse the id of a row retired from the end of
    ``user_address`` (SQLite); else let the database number them. Bind ``largest`` as
    ``:largest_address_id``."""
    current, retired = conn.execute(text(_LARGEST_ADDRESS_IDS)).one()
    largest = max(int(current or 0), int(retired or 0))
    if backend_for(conn).reuses_keys and largest > int(current or 0):
        value = f":largest_address_id + ROW_NUMBER() OVER (ORDER BY {order}), "
        return NewAddressIds(largest, "address_id, ", value)
    return NewAddressIds(largest, "", "")


# ---- type 1 attributes in recorded time ---------------------------------------------------

# The values a run is about to overwrite, kept with that run. A run that overwrites a user
# twice (a replacing load takes its snapshot out, then merges the new one) keeps the first:
# the values as they were before the run.
_KEEP_ATTRIBUTES = """
    INSERT INTO user_attributes_retired (user_id, retired_run_id, sex, birth_year)
    SELECT u.user_id, :run_id, u.sex, u.birth_year FROM dim_user AS u
    WHERE {users}
    ON CONFLICT (user_id, retired_run_id) DO NOTHING
"""
_CHANGED_IN_SNAPSHOT = (
    "u.user_id IN (SELECT s.user_id FROM stg_snapshot AS s WHERE s.attributes_changed = 1)"
)


def keep_changed_attributes(conn: Connection, run_id: int) -> None:
    """Before the merge overwrites them: the sex and birth year of the users of
    ``stg_snapshot`` flagged ``attributes_changed``."""
    conn.execute(text(_KEEP_ATTRIBUTES.format(users=_CHANGED_IN_SNAPSHOT)), {"run_id": run_id})


def keep_attributes(conn: Connection, run_id: int, user_ids: Sequence[int]) -> None:
    """Before ``run_id`` overwrites them: the sex and birth year of ``user_ids``."""
    if user_ids:
        conn.execute(
            text(_KEEP_ATTRIBUTES.format(users="u.user_id = :user_id")),
            [{"run_id": run_id, "user_id": user_id} for user_id in user_ids],
        )


# ---- the snapshot ledger -------------------------------------------------------------------

_SEXES = "FMU"
_NO_YEAR = -1
_LEDGER_BATCH = 100_000
# Sex as its position in _SEXES and a missing birth year as _NO_YEAR, computed by the database
# so that each range of users is only transposed here (no per-row Python). Read by ranges of
# user id through stg_snapshot's key, so memory does not grow with the snapshot on either
# backend, and through the driver's own cursor (plain tuples: a million users a snapshot). The
# two numbers in it are this module's integers, not values from outside.
_LEDGER_ROWS = (
    "SELECT user_id, CASE sex WHEN 'F' THEN 0 WHEN 'M' THEN 1 ELSE 2 END, "
    f"COALESCE(birth_year, {_NO_YEAR}) FROM stg_snapshot "
    "WHERE user_id > {after:d} ORDER BY user_id LIMIT {batch:d}"
)


def record_ledger(conn: Connection, run_id: int) -> int:
    """Keep, compressed, each user's sex and birth year as ``stg_snapshot`` gives them.

    The history already says where every user was at every loaded snapshot time; type 1
    attributes it does not keep, and an undo needs them. User ids are stored as deltas (they
    come sorted), sex as one byte, birth year as two: columns compress far better apart.
    """
    # One zlib stream of the id deltas, then the sexes, then the birth years: the deltas (8
    # bytes a user) are compressed as they come; only the two small columns are held.
    compressor = zlib.compressobj(1)  # a tenth larger than level 6, five times quicker
    parts: list[bytes] = []
    sexes, years = bytearray(), array("h")
    previous = 0
    cursor = conn.connection.cursor()
    while True:
        cursor.execute(_LEDGER_ROWS.format(after=previous, batch=_LEDGER_BATCH))
        rows = cursor.fetchall()
        if not rows:
            break
        user_ids, sex_codes, birth_years = zip(*rows, strict=True)
        deltas = array("q", map(sub, user_ids, (previous, *user_ids[:-1])))
        parts.append(compressor.compress(deltas.tobytes()))
        sexes.extend(sex_codes)
        years.extend(birth_years)
        previous = user_ids[-1]
        if len(rows) < _LEDGER_BATCH:
            break
    cursor.close()
    parts += (compressor.compress(bytes(sexes)), compressor.compress(years.tobytes()))
    payload = b"".join([*parts, compressor.flush()])
    conn.execute(
        text("INSERT INTO snapshot_ledger (run_id, users, attributes) VALUES (:r, :n, :a)"),
        {"r": run_id, "n": len(sexes), "a": payload},
    )
    return len(sexes)


def ledger_attributes(conn: Connection, run_id: int) -> dict[int, tuple[str, int | None]]:
    """Sex and birth year of each user of run ``run_id``'s snapshot (empty without a ledger)."""
    row = conn.execute(
        text("SELECT users, attributes FROM snapshot_ledger WHERE run_id = :r"), {"r": run_id}
    ).first()
    if row is None:
        return {}
    users, raw = int(row.users), zlib.decompress(bytes(row.attributes))
    ids, years = array("q"), array("h")
    ids.frombytes(raw[: 8 * users])
    sexes = raw[8 * users : 9 * users]
    years.frombytes(raw[9 * users :])
    found: dict[int, tuple[str, int | None]] = {}
    user_id = 0
    for delta, sex, year in zip(ids, sexes, years, strict=True):
        user_id += delta
        found[user_id] = (_SEXES[sex], None if year == _NO_YEAR else year)
    return found


# ---- as known at ---------------------------------------------------------------------------


def resolve_known_at(conn: Connection, value: int | datetime) -> int:
    """The run that ``--as-known-at`` names: a run id, or the last run finished by a time."""
    if isinstance(value, int):
        found = conn.execute(
            text("SELECT run_id FROM etl_run WHERE run_id = :r AND status IN :finished").bindparams(
                bindparam("finished", expanding=True)
            ),
            {"r": value, "finished": FINISHED},
        ).scalar()
        if found is None:
            raise ConfigurationError(f"--as-known-at: no finished run {value} in this warehouse")
        return int(found)
    found = conn.execute(
        text(
            "SELECT MAX(run_id) FROM etl_run WHERE finished_at <= :t AND status IN :finished"
        ).bindparams(bindparam("t", type_=DateTime()), bindparam("finished", expanding=True)),
        {"t": value, "finished": FINISHED},
    ).scalar()
    if found is None:
        raise ConfigurationError(
            f"--as-known-at: no run had finished by {value:%Y-%m-%d %H:%M:%S} UTC"
        )
    return int(found)


def _known_at_views(run_id: int, tables: dict[str, str]) -> list[str]:
    """Temporary views that shadow user_address and its re-location, etl_run, the
    periodic-snapshot facts and the users' sex and birth year as they were right after
    ``run_id``."""
    r = int(run_id)

    def address_rows(table: str, not_retired: str) -> str:
        columns = ", ".join(
            f"CASE WHEN closed_run_id <= {r} THEN {c} END AS {c}"
            if c in ("valid_to", "closed_run_id")
            else f"(closed_run_id IS NULL OR closed_run_id > {r}) AS is_current"
            if c == "is_current"
            else c
            for c in _COLUMNS
        )
        return (
            f"SELECT {columns} FROM {tables[table]} "
            f"WHERE COALESCE(recorded_run_id, opened_run_id) <= {r}{not_retired}"
        )

    runs = ", ".join(
        f"CASE WHEN undone_run_id > {r} THEN '{SUCCEEDED}' ELSE status END AS status"
        if c.name == "status"
        else f"CASE WHEN undone_run_id <= {r} THEN undone_run_id END AS undone_run_id"
        if c.name == "undone_run_id"
        else c.name
        for c in etl_run.columns
    )
    retired = user_address_retired.name

    def facts_then(table: Table) -> str:
        """The facts recorded at or before R, each retired only by a run at or before R."""
        columns = ", ".join(
            f"CASE WHEN retired_run_id <= {r} THEN retired_run_id END AS retired_run_id"
            if c.name == "retired_run_id"
            else c.name
            for c in table.columns
        )
        return (
            f"CREATE TEMPORARY VIEW {table.name} AS SELECT {columns} FROM {tables[table.name]} "
            f"WHERE recorded_run_id <= {r}"
        )

    # Each user's sex and birth year as they were right after R: the values the first run
    # after R to overwrite them kept, else today's.
    retired_attributes = tables[user_attributes_retired.name]
    user_columns = ", ".join(
        f"CASE WHEN h.user_id IS NULL THEN u.{c.name} ELSE h.{c.name} END AS {c.name}"
        if c.name in ("sex", "birth_year")
        else f"u.{c.name}"
        for c in dim_user.columns
    )
    # Each period's re-location: the rows retired after R are the periods R still knew.
    relocation_columns = "version_id, address_id, local_authority_code, location_status"
    relocation_then = (
        f"CREATE TEMPORARY VIEW {address_relocation.name} AS "
        f"SELECT {relocation_columns} FROM {tables[address_relocation.name]} UNION ALL "
        f"SELECT {relocation_columns} FROM {tables[address_relocation_retired.name]} "
        f"WHERE retired_run_id > {r}"
    )
    return [
        relocation_then,
        facts_then(fact_snapshot_authority),
        facts_then(fact_snapshot_relocation),
        f"CREATE TEMPORARY VIEW {dim_user.name} AS SELECT {user_columns} "
        f"FROM {tables[dim_user.name]} AS u LEFT JOIN {retired_attributes} AS h "
        f"ON h.user_id = u.user_id AND h.retired_run_id = (SELECT MIN(x.retired_run_id) "
        f"FROM {retired_attributes} AS x WHERE x.user_id = u.user_id AND x.retired_run_id > {r})",
        f"CREATE TEMPORARY VIEW {user_address.name} AS "
        + address_rows(user_address.name, "")
        + " UNION ALL "
        + address_rows(retired, f" AND retired_run_id > {r}"),
        f"CREATE TEMPORARY VIEW {etl_run.name} AS "
        f"SELECT {runs} FROM {tables[etl_run.name]} WHERE run_id <= {r}",
    ]


@contextmanager
def known_at(engine: Engine, value: int | datetime | None) -> Iterator[Engine]:
    """``engine``, or with ``value`` an engine whose connections read the warehouse as it
    was right after that run (or the last run finished by that time).

    Each connection gets temporary views named like the tables they shadow (temporary
    objects come first in name resolution on both backends), so every report's SQL reads
    the past unchanged.
    """
    if value is None:
        yield engine
        return
    with engine.connect() as conn:
        run_id = resolve_known_at(conn, value)
        backend = backend_for(conn)
        tables = {
            table.name: backend.scanned_table(conn, table.name)
            for table in (user_address, user_address_retired, etl_run)
        }
        # The facts are a few hundred rows a snapshot: read through their key.
        for table in (
            address_relocation,
            address_relocation_retired,
            fact_snapshot_authority,
            fact_snapshot_relocation,
            dim_user,
            user_attributes_retired,
        ):
            tables[table.name] = backend.main_table(conn, table.name)
    views = _known_at_views(run_id, tables)
    past = make_engine(engine.url.render_as_string(hide_password=False))

    @event.listens_for(past, "connect")
    def _create_views(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for statement in views:
            cursor.execute(statement)
        cursor.close()
        dbapi_connection.commit()

    try:
        yield past
    finally:
        past.dispose()
