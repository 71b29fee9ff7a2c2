"""Key rotation: re-key every keyed value in the warehouse, in one transaction, keeping history.

The key makes two kinds of value: the users' pseudonyms and the postcode tokens that detect a
move whatever precision the postcode is kept at. Neither can be converted from one key to
the other (that is the point of a keyed hash), so rotation needs the raw sources: each email
and each postcode is keyed under both keys and the warehouse's values are replaced through
that mapping. Every user and every token in the warehouse must be found in the sources
given, or nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Connection, DateTime, Engine, bindparam, text

from evergreen_etl.errors import WarehouseError
from evergreen_etl.postcodes import normalise_postcode
from evergreen_etl.privacy.ckm import fill_record_keys
from evergreen_etl.privacy.pseudonym import PseudonymKey, normalise_email
from evergreen_etl.sources.users import UsersReader
from evergreen_etl.times import utc_now
from evergreen_etl.warehouse.dialect import bulk_insert, create_temp_table
from evergreen_etl.warehouse.engine import write_transaction

log = logging.getLogger("evergreen_etl.privacy")


class RotationResult(BaseModel):
    """What a key rotation did."""

    model_config = ConfigDict(frozen=True)

    old_key_id: str
    new_key_id: str
    users_rekeyed: int
    emails_read: int
    postcode_tokens_rekeyed: int = 0


_NO_TOKENS = (None, None)


def _pairs(
    paths: Sequence[Path], old: PseudonymKey, new: PseudonymKey
) -> Iterator[tuple[str, str, str | None, str | None]]:
    """Per record with an email: its pseudonym and its postcode's token, old and new."""
    to_old, to_new = old.pseudonymiser(), new.pseudonymiser()
    tokens = _token_pair(old.postcode_tokeniser(), new.postcode_tokeniser())
    for path in paths:
        for record in UsersReader(path):
            value = record.value
            email_value = value.get("email") if isinstance(value, dict) else None
            email = normalise_email(email_value) if isinstance(email_value, str) else None
            if email is None:
                continue
            address = value.get("address") if isinstance(value, dict) else None
            # The postcode as the anonymise stage normalises it before keying it.
            postcode, _ = normalise_postcode(
                address.get("postcode") if isinstance(address, dict) else None
            )
            yield to_old(email), to_new(email), *(tokens(postcode) if postcode else _NO_TOKENS)


def _token_pair(
    old: Callable[[str], str], new: Callable[[str], str]
) -> Callable[[str], tuple[str, str]]:
    """A postcode's token under both keys; a bounded cache, as postcodes repeat."""

    @lru_cache(maxsize=1 << 16)
    def pair(postcode: str) -> tuple[str, str]:
        return old(postcode), new(postcode)

    return pair


def rotate_key(
    engine: Engine, *, old_key: PseudonymKey, new_key: PseudonymKey, users_paths: Sequence[Path]
) -> RotationResult:
    """Replace every pseudonym made with ``old_key`` by the one ``new_key`` gives, atomically."""
    if old_key.key_id == new_key.key_id:
        raise WarehouseError("the new key is the same as the current key")
    with write_transaction(engine) as conn:
        _check_warehouse_key(conn, old_key.key_id)
        create_temp_table(
            conn,
            "stg_rekey",
            "old_pseudonym VARCHAR(64) NOT NULL, new_pseudonym VARCHAR(64) NOT NULL, "
            "old_token VARCHAR(32), new_token VARCHAR(32)",
        )
        read = bulk_insert(
            conn,
            "stg_rekey",
            ("old_pseudonym", "new_pseudonym", "old_token", "new_token"),
            _pairs(users_paths, old_key, new_key),
        )
        conn.execute(text("CREATE INDEX ix_stg_rekey_old ON stg_rekey (old_pseudonym)"))
        conn.execute(text("CREATE INDEX ix_stg_rekey_token ON stg_rekey (old_token)"))
        unmapped = conn.execute(
            text(
                "SELECT COUNT(*) FROM dim_user u WHERE NOT EXISTS "
                "(SELECT 1 FROM stg_rekey m WHERE m.old_pseudonym = u.pseudonym)"
            )
        ).scalar_one()
        if unmapped:
            raise WarehouseError(
                f"{unmapped} users in the warehouse are not in the sources given; pass the raw "
                "users file of every snapshot loaded (nothing was changed)"
            )
        tokens = _rekey_postcode_tokens(conn)
        rekeyed = conn.execute(
            text(
                """
                UPDATE dim_user SET pseudonym = m.new_pseudonym
                FROM (SELECT DISTINCT old_pseudonym, new_pseudonym FROM stg_rekey) AS m
                WHERE dim_user.pseudonym = m.old_pseudonym
                """
            )
        ).rowcount
        conn.execute(
            text("UPDATE etl_run SET key_id = :new WHERE key_id = :old"),
            {"new": new_key.key_id, "old": old_key.key_id},
        )
        fill_record_keys(conn, every_user=True)  # derived from the pseudonyms just changed
        _record_rotation(conn, old_key.key_id, new_key.key_id, rekeyed)
    log.info(
        "re-keyed %d users and %d postcode tokens from key %s to key %s",
        rekeyed,
        tokens,
        old_key.key_id,
        new_key.key_id,
    )
    return RotationResult(
        old_key_id=old_key.key_id,
        new_key_id=new_key.key_id,
        users_rekeyed=rekeyed,
        emails_read=read,
        postcode_tokens_rekeyed=tokens,
    )


def _rekey_postcode_tokens(conn: Connection) -> int:
    """Replace every postcode token in the address history; the rows changed.

    Refused when a token is not the token of a postcode in the sources given: left under
    the old key, it would read as a move at the next load (and stay open to the old key).
    """
    unmapped = conn.execute(
        text(
            "SELECT COUNT(DISTINCT a.postcode_token) FROM user_address a "
            "WHERE a.postcode_token IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM stg_rekey m WHERE m.old_token = a.postcode_token)"
        )
    ).scalar_one()
    if unmapped:
        raise WarehouseError(
            f"{unmapped} postcodes in the warehouse's address history are not in the sources "
            "given; pass the raw users file of every snapshot loaded (nothing was changed)"
        )
    return conn.execute(
        text(
            """
            UPDATE user_address SET postcode_token = m.new_token
            FROM (SELECT DISTINCT old_token, new_token FROM stg_rekey
                  WHERE old_token IS NOT NULL) AS m
            WHERE user_address.postcode_token = m.old_token
            """
        )
    ).rowcount


def warehouse_key_id(conn: Connection) -> str | None:
    """The key id of the pseudonyms in the warehouse (None before the first load)."""
    value = conn.execute(
        text(
            "SELECT key_id FROM etl_run WHERE status IN ('succeeded', 'rekeyed') "
            "ORDER BY run_id DESC LIMIT 1"
        )
    ).scalar()
    return None if value is None else str(value)


def _check_warehouse_key(conn: Connection, key_id: str) -> None:
    current = warehouse_key_id(conn)
    if current is None:
        raise WarehouseError("the warehouse holds no pseudonyms yet: nothing to re-key")
    if current != key_id:
        raise WarehouseError(
            f"the warehouse's pseudonyms were made with key {current}, not with the configured "
            f"key {key_id}; configure the key the warehouse was loaded with"
        )


def _record_rotation(conn: Connection, old: str, new: str, users: int) -> None:
    """An audit row for the rotation, at the newest snapshot time (it changes no history)."""
    now = utc_now()
    conn.execute(
        text(
            """
            INSERT INTO etl_run (started_at, finished_at, as_of, status, key_id, users_in_snapshot,
                                 details)
            SELECT :now, :now, MAX(as_of), 'rekeyed', :new, :users, :details FROM etl_run
            """
        ).bindparams(bindparam("now", type_=DateTime()), bindparam("details", type_=JSON())),
        {"now": now, "new": new, "users": users, "details": {"rotated_from": old}},
    )
