"""The cell key method (``--disclosure ckm``), after the one ONS used for Census 2021.

Every user carries a *record key*, a number from 0 to 255 drawn once and stored in
``dim_user.record_key``: the first byte of an HMAC-SHA256 of the user's pseudonym. The
pseudonym is itself the HMAC of the email under the pseudonym key, so nobody without that key
can tell a person's record key; a key rotation re-derives every record key.

A published cell's *cell key* is the sum of its users' record keys modulo 256, and the
*perturbation table* below maps (count, cell key) to the noise added to the count. The same
set of users always has the same cell key, so the same noise, whatever report, date or query
produced the cell: asking again, or at another time when nobody joined or left, gives the
same figure, and averaging repeated queries learns nothing.

The perturbation table (``PTABLE``), for a count c and each of the 256 cell keys:

======  =============================================  ==========
count   published value (how many of the 256 keys)      noise
======  =============================================  ==========
0       0 (256)                                         0
1       0 (192), 4 (64)                                 -1 or +3
2       0 (128), 4 (128)                                -2 or +2
3       0 (64), 3 (64), 4 (64), 5 (64)                  -3 to +2
4       3 (64), 4 (128), 5 (64)                         -1 to +1
>= 5    c-2 (32), c-1 (64), c (64), c+1 (64), c+2 (32)  -2 to +2
======  =============================================  ==========

Its properties, tested: for every count the noise averages exactly 0 over the 256 keys (the
published figures are unbiased); it is never more than 3 in size; a published figure is
never 1 or 2 (small counts are not published as such) and never negative; 0 stays 0.

What it does not do: the published cells no longer add up exactly (a total is perturbed as
its own cell), and a cell whose users changed gets fresh noise, so a large change between
two dates still shows; the noise hides the change of one or two users, not of many.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from evergreen_etl.privacy.disclosure import CellKeyMethod
from evergreen_etl.privacy.pseudonym import record_key
from evergreen_etl.warehouse.dialect import analyze_temp_table, bulk_insert, create_temp_table

__all__ = ["PTABLE", "CellKeyMethod", "fill_record_keys", "noise", "perturb", "record_key"]

CELL_KEYS = 256
MAX_NOISE = 3
_BATCH = 10_000

# (noise, how many of the 256 cell keys get it), in cell-key order, for counts 0 to 4 and
# for every count from 5 up.
_SMALL: dict[int, tuple[tuple[int, int], ...]] = {
    0: ((0, 256),),
    1: ((-1, 192), (3, 64)),
    2: ((-2, 128), (2, 128)),
    3: ((-3, 64), (0, 64), (1, 64), (2, 64)),
    4: ((-1, 64), (0, 128), (1, 64)),
}
_LARGE: tuple[tuple[int, int], ...] = ((-2, 32), (-1, 64), (0, 64), (1, 64), (2, 32))


def _expand(rows: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    return tuple(noise for noise, keys in rows for _ in range(keys))


PTABLE: dict[int, tuple[int, ...]] = {count: _expand(rows) for count, rows in _SMALL.items()}
PTABLE_LARGE = _expand(_LARGE)


def noise(count: int, cell_key: int) -> int:
    """The perturbation table's noise for ``count`` users with cell key ``cell_key``."""
    if count < 0 or not 0 <= cell_key < CELL_KEYS:
        raise ValueError("a count is >= 0 and a cell key in 0..255")
    return PTABLE.get(count, PTABLE_LARGE)[cell_key]


def perturb(count: int, cell_key: int) -> int:
    """The published figure of a cell of ``count`` users whose record keys sum to
    ``cell_key`` (mod 256)."""
    return count + noise(count, cell_key)


def fill_record_keys(conn: Connection, *, every_user: bool = False) -> int:
    """Give every user without a record key one (``every_user``: every user, after a key
    rotation changed the pseudonyms); the number of users given one.

    Users are read by ranges of user id, so memory does not grow with the warehouse; each
    range is read whole before its keys are written (a COPY cannot share its connection).
    """
    create_temp_table(conn, "stg_record_key", "user_id BIGINT NOT NULL, record_key INTEGER")
    missing = "" if every_user else "record_key IS NULL AND "
    query = text(
        f"SELECT user_id, pseudonym FROM dim_user WHERE {missing}user_id > :after "
        "ORDER BY user_id LIMIT :batch"
    )
    written, after = 0, 0
    while True:
        rows = conn.execute(query, {"after": after, "batch": _BATCH}).all()
        keys = [(int(user_id), record_key(str(pseudonym))) for user_id, pseudonym in rows]
        if keys:
            written += bulk_insert(conn, "stg_record_key", ("user_id", "record_key"), keys)
        if len(rows) < _BATCH:
            break
        after = keys[-1][0]
    if written:
        # Fresh statistics: the planner then updates the few new users through dim_user's key
        # instead of hashing every user (PostgreSQL; nothing on SQLite).
        analyze_temp_table(conn, "stg_record_key")
        conn.execute(
            text(
                "UPDATE dim_user SET record_key = k.record_key FROM stg_record_key AS k "
                "WHERE k.user_id = dim_user.user_id"
            )
        )
    conn.execute(text("DROP TABLE stg_record_key"))
    return written
