"""Location precision: the postcode district and a keyed token of the full postcode.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Below full-postcode precision the warehouse keeps only a sector, a district or nothing of the
postcode; moves are then detected through a keyed token of the full postcode. Rows loaded
before this migration have no token and are compared by their (full) postcode.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "user_address",
        sa.Column(
            "postcode_district",
            sa.String(length=4),
            nullable=True,
            comment="Outward code, unless precision is authority",
        ),
    )
    op.add_column(
        "user_address",
        sa.Column(
            "postcode_token",
            sa.String(length=32),
            nullable=True,
            comment="Keyed HMAC of the full postcode: detects moves without keeping the postcode",
        ),
    )
    # Existing rows hold full postcodes: their district is the part before the space.
    op.execute(
        "UPDATE user_address SET postcode_district = CASE "
        "WHEN postcode_kind = 'full' THEN substr(postcode, 1, length(postcode) - 4) "
        "WHEN postcode_kind = 'partial' THEN postcode END"
    )
    _comment_postcode(
        "Normalised postcode at the warehouse's location precision, or NULL",
        "Canonical full postcode, outward code, or NULL",
    )


def downgrade() -> None:
    # Plain ALTER TABLE: SQLite (3.35+) drops a column in place, so the views that read
    # user_address stay valid (a batch "move and copy" would break them).
    op.execute("ALTER TABLE user_address DROP COLUMN postcode_token")
    op.execute("ALTER TABLE user_address DROP COLUMN postcode_district")
    _comment_postcode(
        "Canonical full postcode, outward code, or NULL",
        "Normalised postcode at the warehouse's location precision, or NULL",
    )


def _comment_postcode(comment: str, existing: str) -> None:
    # SQLite keeps no column comments; elsewhere the comment follows the metadata.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "user_address",
            "postcode",
            existing_type=sa.String(length=8),
            comment=comment,
            existing_comment=existing,
            existing_nullable=True,
        )
