"""Re-location in recorded time: the re-location of retired rows is kept; complete versions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

A correction (late snapshot, replace, undo) retires address rows to user_address_retired;
their address_relocation rows went with them (the foreign key cascades), so
``report --as-known-at`` before the correction read those periods where they were recorded
instead of where the lookup then put them. ``address_relocation_retired`` keeps them, with
the run that retired them.

``lookup_version.relocation_complete`` says that address_relocation holds every period the
version locates elsewhere than it was recorded, including the rows corrections re-derived
after it was loaded (before this revision they got none). Only then can the next version's
re-location start from it and locate again just the periods whose postcode it changes;
versions loaded before this revision are not complete, and the next version locates every
period.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SurrogateKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "address_relocation_retired",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("address_id", _SurrogateKey, nullable=False),
        sa.Column("retired_run_id", sa.Integer(), nullable=False),
        sa.Column("local_authority_code", sa.String(length=16), nullable=False),
        sa.Column("location_status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["retired_run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_address_relocation_retired_retired_run_id_etl_run"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["lookup_version.version_id"],
            name=op.f("fk_address_relocation_retired_version_id_lookup_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "version_id", "address_id", name=op.f("pk_address_relocation_retired")
        ),
        comment="address_relocation rows of address periods a correction retired",
        sqlite_with_rowid=False,
    )
    op.add_column(
        "lookup_version",
        sa.Column(
            "relocation_complete",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
            comment=(
                "address_relocation holds every period this version locates elsewhere than "
                "recorded (false: loaded before revision 0011)"
            ),
        ),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE lookup_version DROP COLUMN relocation_complete")
    op.drop_table("address_relocation_retired")
