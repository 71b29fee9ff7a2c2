"""Recorded time: corrections retire rows instead of editing them; the snapshot ledger.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Each user_address row may name the load that recorded it (when a correction recorded it,
not the load that opened its period); rows a correction retires move unchanged to
user_address_retired; an undone or replaced load names the run that retired it; and the
snapshot ledger keeps, compressed, the part of each snapshot the history does not keep.
Existing rows need no change: a row without recorded_run_id was recorded by its opener.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SURROGATE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_RECORDED_COMMENT = "The load that recorded the row, when not the one that opened it (a correction)"


def upgrade() -> None:
    op.add_column(
        "user_address",
        sa.Column("recorded_run_id", sa.Integer(), nullable=True, comment=_RECORDED_COMMENT),
    )
    op.add_column(
        "etl_run",
        sa.Column(
            "undone_run_id",
            sa.Integer(),
            nullable=True,
            comment="The undo or replacing load that retired this load's snapshot",
        ),
    )
    op.create_table(
        "user_address_retired",
        sa.Column("address_id", _SURROGATE, autoincrement=False, nullable=False),
        sa.Column("retired_run_id", sa.Integer(), nullable=False),
        sa.Column("user_id", _SURROGATE, nullable=False),
        sa.Column("postcode", sa.String(length=8), nullable=True),
        sa.Column("postcode_district", sa.String(length=4), nullable=True),
        sa.Column("postcode_token", sa.String(length=32), nullable=True),
        sa.Column("postcode_kind", sa.String(length=8), nullable=False),
        sa.Column("local_authority_code", sa.String(length=16), nullable=False),
        sa.Column("location_status", sa.String(length=20), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_to", sa.DateTime(), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("opened_run_id", sa.Integer(), nullable=False),
        sa.Column("closed_run_id", sa.Integer(), nullable=True),
        sa.Column("recorded_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["retired_run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_user_address_retired_retired_run_id_etl_run"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["dim_user.user_id"], name=op.f("fk_user_address_retired_user_id_dim_user")
        ),
        sa.PrimaryKeyConstraint(
            "address_id", "retired_run_id", name=op.f("pk_user_address_retired")
        ),
        comment="Rows of user_address retired by a correction (late snapshot, replace, undo)",
    )
    op.create_table(
        "snapshot_ledger",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column(
            "attributes",
            sa.LargeBinary(),
            nullable=False,
            comment="zlib: user ids, sex, birth year",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_snapshot_ledger_run_id_etl_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_snapshot_ledger")),
        comment="The part of each loaded snapshot the history does not keep (no PII)",
    )


def downgrade() -> None:
    op.drop_table("snapshot_ledger")
    op.drop_table("user_address_retired")
    # Plain ALTER TABLE: SQLite (3.35+) drops a column in place, so the views stay valid.
    op.execute("ALTER TABLE etl_run DROP COLUMN undone_run_id")
    op.execute("ALTER TABLE user_address DROP COLUMN recorded_run_id")
