"""Index for as-of queries on recent dates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

No index led with valid_to, so a report as of today or a recent date read every closed
period; this one lets it skip the periods that ended before the as-of time.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_user_address_valid_to",
        "user_address",
        ["valid_to", "valid_from"],
        postgresql_include=["local_authority_code", "user_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_user_address_valid_to", table_name="user_address")
