"""Record keys for the cell key method: a random 0-255 per user, from the pseudonym.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30

``dim_user.record_key`` is the first byte of HMAC-SHA256(label, pseudonym) (see
``evergreen_etl.privacy.ckm``); users already loaded are given theirs here, new users by the
load. The derivation is written out here, frozen, so that this migration does the same
whatever later code does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LABEL = b"evergreen-etl record key for the cell key method, v1"
_BATCH = 10_000


def upgrade() -> None:
    op.add_column(
        "dim_user",
        sa.Column(
            "record_key",
            sa.SmallInteger(),
            nullable=True,
            comment="Cell key method: 0-255, first byte of an HMAC of the pseudonym",
        ),
    )
    bind = op.get_bind()
    select = sa.text(
        "SELECT user_id, pseudonym FROM dim_user WHERE user_id > :after "
        "ORDER BY user_id LIMIT :batch"
    )
    update = sa.text("UPDATE dim_user SET record_key = :key WHERE user_id = :id")
    after = 0
    while True:
        rows = bind.execute(select, {"after": after, "batch": _BATCH}).all()
        if rows:
            bind.execute(
                update,
                [
                    {"id": user_id, "key": hmac.new(_LABEL, p.encode(), hashlib.sha256).digest()[0]}
                    for user_id, p in rows
                ],
            )
        if len(rows) < _BATCH:
            break
        after = int(rows[-1][0])


def downgrade() -> None:
    # Plain ALTER TABLE: SQLite (3.35+) drops a column in place (see 0004).
    op.execute("ALTER TABLE dim_user DROP COLUMN record_key")
