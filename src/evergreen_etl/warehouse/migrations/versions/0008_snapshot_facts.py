"""Periodic-snapshot facts: users by local authority at each loaded snapshot.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

The table is filled from the address history already loaded, for every succeeded load's
snapshot time; afterwards each load keeps it (warehouse/snapshot_facts.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fact_snapshot_authority",
        sa.Column(
            "snapshot_at", sa.DateTime(), nullable=False, comment="A loaded snapshot's time t"
        ),
        sa.Column(
            "local_authority_code",
            sa.String(length=16),
            nullable=False,
            comment="As supplied (user_address.local_authority_code)",
        ),
        sa.Column(
            "users",
            sa.Integer(),
            nullable=False,
            comment="Users whose address row was valid at t",
        ),
        sa.PrimaryKeyConstraint(
            "snapshot_at", "local_authority_code", name=op.f("pk_fact_snapshot_authority")
        ),
        comment="Users by local authority at each loaded snapshot (periodic snapshot facts)",
    )
    # The history loaded so far, at each succeeded load's snapshot time (the SQL as of this
    # revision: the package's own may change later).
    op.execute(
        """
        INSERT INTO fact_snapshot_authority (snapshot_at, local_authority_code, users)
        SELECT r.as_of, a.local_authority_code, COUNT(*)
        FROM (SELECT DISTINCT as_of FROM etl_run WHERE status = 'succeeded') AS r
        JOIN user_address AS a
          ON a.valid_from <= r.as_of AND (a.valid_to IS NULL OR a.valid_to > r.as_of)
        GROUP BY r.as_of, a.local_authority_code
        """
    )


def downgrade() -> None:
    op.drop_table("fact_snapshot_authority")
